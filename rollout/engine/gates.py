"""Analysis gates inside the engine: runs started, measurements folded in, outcomes acted on.

decide() builds one `Analyses` per reconcile. It first folds the measurements the controller
took (Observed.measurements) into the runs kept in status, then each strategy asks `gate(name)`
where the spec puts an analysis (a canary step, the background analysis, a blue/green hook):
- Successful: the caller moves on;
- Failed or Error (`Gate.fails`): the caller aborts with `abort(gate)` (an Event and the abort
  reason naming the metric, value and condition) and returns traffic to stable first; the
  `Analysis` condition says so already;
- Inconclusive (no data included): paused with reason AnalysisInconclusive until a person
  promotes (pass the step, or start the background analysis afresh), aborts or retries;
- Running: the caller waits; `requeue_after` says when the next measurement is due.
A dry-run metric never makes a gate fail or pause (runs.assess leaves it out of the run's
phase); when it finishes, an Event says how (AnalysisDryRun), so that its outcome is seen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rollout.analysis.resolve import ResolvedMetric
from rollout.analysis.runs import TERMINAL, assess, passed_so_far, record, seconds_to_next
from rollout.api.rollout import Rollout
from rollout.api.status import AnalysisRun, RolloutStatus
from rollout.api.vocabulary import ANALYSIS, ANALYSIS_PAUSE, BACKGROUND, step_run_name
from rollout.engine.status_conditions import add_pause, remove_pause, set_condition
from rollout.engine.types import Event, Observed

MAX_FINISHED_RUNS = 5  # finished runs of the current revision kept in status, for people to read


@dataclass(frozen=True)
class Gate:
    """The outcome of an analysis where the spec puts one."""

    phase: str  # the run's phase
    message: str
    requeue_after: float | None = None
    run: str = ""  # the run's name

    @property
    def passed(self) -> bool:
        return self.phase == "Successful"

    @property
    def fails(self) -> bool:
        """Failed or Error: the rollout is to be aborted (Analyses.abort)."""
        return self.phase in ("Failed", "Error")

    @property
    def text(self) -> str:
        return f"Analysis {self.run} {self.phase.lower()}: {self.message}"


def reset_runs(status: RolloutStatus, *, keep_background: bool = False) -> None:
    """Forget runs (a new revision, a retry, a canary restarting at step 1)."""
    status.analysis_runs = [r for r in status.analysis_runs if keep_background and r.name == BACKGROUND]


def promote_analysis(status: RolloutStatus, now: datetime) -> Event | None:
    """`rollout.dev/promote` on an Inconclusive analysis: a step run counts as passed (the strategy
    moves on), a background run starts afresh."""
    if not remove_pause(status, ANALYSIS_PAUSE):
        return None
    status.last_progress_at = now
    status.analysis_runs = [
        r for r in status.analysis_runs if not (r.name == BACKGROUND and r.phase == "Inconclusive")
    ]
    for run in status.analysis_runs:
        if run.phase == "Inconclusive" and run.name != BACKGROUND:
            run.phase, run.message = "Successful", f"passed by rollout.dev/promote after: {run.message}"
    return Event("Normal", "PromotedAnalysis", "Promoted past an inconclusive analysis")


class Analyses:
    def __init__(
        self,
        rollout: Rollout,
        status: RolloutStatus,
        observed: Observed,
        resolved: dict[str, list[ResolvedMetric]],
        current: str,
        now: datetime,
        events: list[Event],
    ) -> None:
        """`resolved`: run name -> metrics, every analysis of the spec as decide() resolved it."""
        self.rollout, self.status, self.observed, self.resolved = rollout, status, observed, resolved
        self.current, self.now, self.events = current, now, events
        # (run, metric) whose measurement is under way (a Job running): polled, not recorded.
        self.pending: set[tuple[str, str]] = set()

    def metrics(self, name: str) -> list[ResolvedMetric]:
        return self.resolved[name]

    def fold(self) -> None:
        """Measurements taken by the controller for runs still open go into their runs."""
        for result in self.observed.measurements:
            run = self.status.analysis_run(result.run, result.revision)
            if run is None or run.finished_at is not None or result.run not in self.resolved:
                continue
            metric = next((m for m in self.metrics(result.run) if m.name == result.metric), None)
            if metric is None:
                continue
            if result.pending:
                self.pending.add((run.name, metric.name))
                counts = run.metric(metric.name)
                if counts.phase == "Running":
                    counts.message = f"metric {metric.name} ({metric.template}): {result.pending}"
                continue
            was = run.metric(metric.name).phase
            latest = record(run, metric, result)
            if metric.dry_run:
                self._dry_run_outcome(run, metric.name, was, latest.message)

    def pending_in(self, run: str) -> set[str]:
        """The metrics of `run` whose measurement is under way."""
        return {metric for name, metric in self.pending if name == run}

    def _dry_run_outcome(self, run: AnalysisRun, metric: str, was: str, latest: str) -> None:
        """An Event when a dry-run metric finishes: its outcome is reported, never acted on."""
        phase = run.metric(metric).phase
        if was == phase or phase not in TERMINAL:
            return
        self.events.append(
            Event(
                "Normal" if phase == "Successful" else "Warning",
                "AnalysisDryRun",
                f"Analysis {run.name}: dry-run metric {metric} {phase}: {latest} (not counted)",
            )
        )

    def next_measurement_in(self) -> float | None:
        """Seconds until the earliest measurement due in any open run of the current revision:
        every run schedules its own look-again, whatever else the strategy waits for (a timed
        pause must not delay a background measurement)."""
        waits = [
            seconds_to_next(run, self.metrics(run.name), self.now, self.pending_in(run.name))
            for run in self.status.analysis_runs
            if run.finished_at is None and run.revision == self.current and run.name in self.resolved
        ]
        return min((w for w in waits if w is not None), default=None)

    def stop(self, why: str) -> None:
        """Runs still measuring stop (the rollout completed or was aborted)."""
        for run in self.status.analysis_runs:
            if run.finished_at is None:
                run.finished_at = self.now
                run.message = f"stopped: {why}; {run.message}"

    def gate(self, name: str) -> Gate:
        run = self.status.analysis_run(name, self.current)
        if run is None:
            run = AnalysisRun(name=name, revision=self.current, started_at=self.now)
            self.status.analysis_runs.append(run)
            self._trim()
            self.events.append(Event("Normal", "AnalysisStarted", f"Analysis {name} started"))
        metrics = self.metrics(name)
        was = run.phase
        if run.finished_at is None or run.phase not in TERMINAL:
            assess(run, metrics, self.now)
        if run.phase == "Running":
            wait = seconds_to_next(run, metrics, self.now, self.pending_in(name))
            set_condition(self.status, ANALYSIS, "Unknown", "Running", f"{name}: {run.message}", self.now)
            return Gate("Running", f"analysis {name}: {run.message}", wait)
        if run.phase == "Successful":
            if was != "Successful":
                self.events.append(Event("Normal", "AnalysisSuccessful", f"Analysis {name}: {run.message}"))
            set_condition(self.status, ANALYSIS, "True", "Successful", f"{name}: {run.message}", self.now)
            return Gate("Successful", run.message)
        self._report(run, was)
        if run.phase == "Inconclusive" and self.status.promote_pending:
            # A promote that came before this analysis had an outcome passes it now.
            self.status.promote_pending = False
            if promote_analysis(self.status, self.now) is not None:
                self.events.append(
                    Event(
                        "Normal",
                        "PromotedAnalysis",
                        f"Analysis {name} was inconclusive; passed by the pending rollout.dev/promote",
                    )
                )
                return self.gate(name)
        return Gate(run.phase, run.message, run=name)

    def background_passed(self) -> Gate:
        """Completion check for the background analysis: Successful, or (for metrics measured
        until the end) each one successful so far."""
        if BACKGROUND not in self.resolved or self.status.skip_analysis:
            return Gate("Successful", "")
        gate = self.gate(BACKGROUND)
        if gate.phase == "Running":
            run = self.status.analysis_run(BACKGROUND, self.current)
            assert run is not None
            if passed_so_far(run, self.metrics(BACKGROUND)):
                return Gate("Successful", run.message)
        return gate

    def abort(self, gate: Gate) -> None:
        """The rollout aborted by a gate that fails (once: an abort already made stands)."""
        assert gate.fails
        if self.status.aborted:
            return
        self.status.aborted = True
        self.status.abort_reason = gate.text
        self.events.append(Event("Warning", f"Analysis{gate.phase}", gate.text))
        self.events.append(
            Event(
                "Warning",
                "RolloutAborted",
                f"Aborted by analysis {gate.run}: returning to stable revision {self.status.stable_revision}",
            )
        )
        self.stop("the rollout was aborted")

    def _report(self, run: AnalysisRun, was: str) -> None:
        """The Analysis condition for a run that ended badly; an Inconclusive one pauses."""
        text = f"Analysis {run.name} {run.phase.lower()}: {run.message}"
        if run.phase in ("Failed", "Error"):
            set_condition(self.status, ANALYSIS, "False", run.phase, text, self.now)
        elif run.phase == "Inconclusive":
            set_condition(self.status, ANALYSIS, "Unknown", "Inconclusive", text, self.now)
            if add_pause(self.status, ANALYSIS_PAUSE, self.now) or was != "Inconclusive":
                self.events.append(
                    Event("Warning", "AnalysisInconclusive", f"{text}; paused until rollout.dev/promote")
                )

    def _trim(self) -> None:
        finished = [r for r in self.status.analysis_runs if r.finished_at is not None]
        excess = len(finished) - MAX_FINISHED_RUNS
        if excess > 0:
            drop = {id(r) for r in sorted(finished, key=lambda r: r.started_at)[:excess]}
            self.status.analysis_runs = [r for r in self.status.analysis_runs if id(r) not in drop]


def step_gate(analyses: Analyses, index: int) -> Gate:
    return analyses.gate(step_run_name(index))
