"""The Rollout status: the controller's only memory.

Everything the controller needs to continue after a restart is here; a reconcile reads it, the
engine returns the next one, and the controller writes it back through the status subresource.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from rollout.api.base import StatusModel

Phase = Literal["Progressing", "Paused", "Healthy", "Degraded"]
ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None
    last_update_time: datetime | None = None


class PauseCondition(StatusModel):
    reason: str
    start_time: datetime


class CanaryStatus(StatusModel):
    # Read back from the routes (or replica proportions without trafficRouting).
    weight: int = 0
    header_routes: list[str] = Field(default_factory=list)
    mirror_routes: list[str] = Field(default_factory=list)
    # Steps the current canary runs; an edit restarts it at step 0.
    steps_hash: str | None = None
    # Old ReplicaSets are scaled down from this time on (scaleDownDelaySeconds after traffic left them).
    scale_down_at: datetime | None = None
    # With dynamicStableScale, while a canary runs: the stable ReplicaSet's scale asked for.
    stable_replicas: int | None = None
    # With baselineService: the share of traffic the routes give the baseline (read back).
    baseline_weight: int = 0
    # With baselineService, while the baseline runs: its revision (the stable template's hash
    # with the rollout.dev/baseline label).
    baseline_revision: str | None = None
    # With baselineService, while the routes give the baseline a share: the Service they send it
    # to (a baselineService changed or removed meanwhile would leave that backend behind).
    baseline_service: str | None = None


AnalysisPhase = Literal["Running", "Successful", "Failed", "Inconclusive", "Error"]


class SideSamples(StatusModel):
    """One side of a comparison, as measured over the window."""

    samples: int = 0  # finite samples pooled over the side's series (counts: the total counted)
    dropped: int = 0  # NaN and Inf samples left out
    median: float | None = None
    events: int | None = None  # counts: the events (errors) among `samples`
    rate: float | None = None  # counts: events / samples


class ComparisonResult(StatusModel):
    """One query of a compare metric: the canary against the reference side."""

    name: str
    verdict: Literal["Pass", "High", "Low", "NoData"]
    canary: SideSamples = Field(default_factory=SideSamples)
    reference: SideSamples = Field(default_factory=SideSamples)
    # Hodges-Lehmann shift relative to the reference median (counts: canary rate / reference - 1)
    effect: float | None = None
    p_value: float | None = None
    weight: float = 1.0


class Measurement(StatusModel):
    phase: AnalysisPhase
    at: datetime
    # As measured: numbers "0.998" or "[0.998, 0.97]", any other JSON value as compact JSON
    # (`{"ok":true}`), clipped (rollout/engine/bounds.py); empty on error and on no data.
    value: str = ""
    message: str = ""
    # A compare metric: its score (0..100), the side compared against, and each query's result.
    score: float | None = None
    against: str | None = None
    comparisons: list[ComparisonResult] | None = None


class MetricResult(StatusModel):
    """Counts over every measurement of one metric in one run, and the latest few measurements."""

    name: str
    phase: AnalysisPhase = "Running"
    message: str = ""
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_errors: int = 0
    # True for a dry-run metric: measured and shown, never deciding the run (absent otherwise).
    dry_run: bool | None = None
    measurements: list[Measurement] = Field(default_factory=list)


class AnalysisRun(StatusModel):
    """One run of an analysis: `step-<n>` (1-based), `background`, `pre-promotion` or
    `post-promotion`, for one revision."""

    name: str
    revision: str
    phase: AnalysisPhase = "Running"
    message: str = ""
    started_at: datetime
    finished_at: datetime | None = None
    metrics: list[MetricResult] = Field(default_factory=list)

    def metric(self, name: str) -> MetricResult:
        found = next((m for m in self.metrics if m.name == name), None)
        if found is None:
            found = MetricResult(name=name)
            self.metrics.append(found)
        return found


class BlueGreenStatus(StatusModel):
    # Read back from the active and preview Services (or the routes, with trafficRouting).
    active_revision: str | None = None
    preview_revision: str | None = None
    # The current revision may be switched to (rollout.dev/promote, or auto-promotion).
    promoted: bool = False
    # The preview was available and its pre-promotion analysis passed (autoPromotionSeconds
    # counts from here).
    preview_ready_at: datetime | None = None
    # The active Service (or route) was switched to the current revision.
    switched_at: datetime | None = None
    # Old ReplicaSets are scaled down from this time on (scaleDownDelaySeconds after the switch).
    scale_down_at: datetime | None = None

    def restart(self) -> None:
        """Forget the attempt in progress (a new revision, a retry): promotion starts again."""
        self.promoted, self.preview_ready_at, self.switched_at = False, None, None


class RolloutStatus(StatusModel):
    phase: Phase | None = None
    message: str = ""
    observed_generation: int | None = None
    stable_revision: str | None = None
    current_revision: str | None = None
    current_step_index: int | None = None
    step_started_at: datetime | None = None
    pause_conditions: list[PauseCondition] = Field(default_factory=list)
    aborted: bool = False
    abort_reason: str = ""
    # Progress toward the current revision; the deadline counts from here.
    last_progress_at: datetime | None = None
    replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    # String form of the selector, for the scale subresource (kubectl scale, HPA).
    selector: str = ""
    # The role labels (canaryMetadata, ...) the pods carry now: "stable role=stable; canary role=canary".
    roles: str = ""
    canary: CanaryStatus | None = None
    blue_green: BlueGreenStatus | None = None
    analysis_runs: list[AnalysisRun] = Field(default_factory=list)
    # Set by `promote: full`: the current revision completes without waiting for any analysis.
    skip_analysis: bool = False
    # A `rollout.dev/promote` consumed while nothing waited for it: it passes the next pause step
    # or inconclusive analysis of the current revision (a consumed command is never lost).
    promote_pending: bool = False
    # The id of the commands-taken annotation whose commands this status has applied
    # (controller/command_annotations.py: a command is applied exactly once).
    commands_applied: str = ""
    # Revisions that were stable before the stable one, most recent first (as many as
    # spec.rollbackWindow.revisions): going back to one of them is fast-tracked.
    stable_history: list[str] = Field(default_factory=list)
    # Why the current revision skips its steps and analysis as a rollback within the window.
    fast_tracked: str = ""
    # A restart of the stable revision's pods (rollout.dev/restart) runs while this is set: pods
    # created before this time are replaced. It is when the restart was asked (whole seconds, as
    # creationTimestamp has them), or the newest pod's creation plus 1 s if that is earlier (the
    # API server's clock stamps pods; engine/restart.py says why).
    restarted_at: datetime | None = None
    conditions: list[Condition] = Field(default_factory=list)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def analysis_run(self, name: str, revision: str | None) -> AnalysisRun | None:
        return next((r for r in self.analysis_runs if r.name == name and r.revision == revision), None)

    def paused_by(self, reason: str) -> bool:
        return any(p.reason == reason for p in self.pause_conditions)
