"""The words a Rollout's status is written in: condition types (with the reasons read back from
them), pause reasons and analysis run names, in one place.

The engine writes them (rollout/engine/), and whatever reads a status matches on them: the
engine itself on the next reconcile, the CLI, notifications, the Argo CD health script. They
are part of the API: a stored status carries them, so a name never changes once released."""

from __future__ import annotations

# --- condition types (status.conditions[].type) ------------------------------------------------

PROGRESSING = "Progressing"  # where the update stands; False with DEADLINE_EXCEEDED when stuck
AVAILABLE = "Available"  # every desired replica available
INVALID_SPEC = "InvalidSpec"  # the spec cannot be acted on; nothing moves until it is fixed
INVALID_STATUS = "InvalidStatus"  # the stored status cannot be read; the rollout holds
ANALYSIS = "Analysis"  # the latest analysis run's outcome
ROUTE_STATUS = "RouteStatus"  # what the routes' own status says (Accepted, pending, unknown)

# A reason of the Progressing condition the engine reads back (progress resumed, or not).
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"

# --- pause reasons (status.pauseConditions[].reason) -------------------------------------------

USER_PAUSE = "UserPause"  # rollout.dev/pause; rollout.dev/resume clears it
SPEC_PAUSE = "SpecPaused"  # spec.paused: true
ANALYSIS_PAUSE = "AnalysisInconclusive"  # an inconclusive analysis, until rollout.dev/promote
CANARY_PAUSE = "CanaryPauseStep"  # a canary's pause step
BLUE_GREEN_PAUSE = "BlueGreenPause"  # a blue/green preview waiting for promotion

# The pauses rollout.dev/promote passes (the others are a person's or the spec's own).
PROMOTABLE_PAUSES = (CANARY_PAUSE, ANALYSIS_PAUSE, BLUE_GREEN_PAUSE)

# --- analysis run names (status.analysisRuns[].name) ---------------------------------------------

BACKGROUND = "background"  # a rolling update's or a canary's analysis, beside the steps
PRE_PROMOTION = "pre-promotion"  # blue/green, before the switch
POST_PROMOTION = "post-promotion"  # blue/green, after the switch


def step_run_name(index: int) -> str:
    """The run of the analysis step at `index` (0-based): `step-<n>`, 1-based."""
    return f"step-{index + 1}"


# Labels on a job metric's Jobs (kubectl get jobs -l rollout.dev/analysis=step-2), beside
# rollout.dev/rollout: what each Job measures.
ANALYSIS_LABEL = "rollout.dev/analysis"  # the run's name
METRIC_LABEL = "rollout.dev/metric"  # the metric's name
MEASUREMENT_LABEL = "rollout.dev/measurement"  # the measurement's index in the run, from 0

# Labels on the Leases of --shards (kubectl get leases -l rollout.dev/lease-role=shard).
SHARD_OF_LABEL = "rollout.dev/shard-of"  # the controller's name (--leader-election-id)
LEASE_ROLE_LABEL = "rollout.dev/lease-role"  # "shard" or "member"
# On a Rollout's ReplicaSets under --shards: "<shard>-of-<count>", so that each replica watches
# only its shards' (kubectl get rs -l rollout.dev/shard=2-of-6).
SHARD_LABEL = "rollout.dev/shard"
