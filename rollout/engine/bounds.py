"""Bounds on what the engine keeps in status, applied to every decision (pure).

Status is the controller's only memory and one object in etcd: it must stay small whatever the
spec (100 metrics, 1,000 steps) and however long an analysis runs. Lists are bounded where they
grow (measurements per metric, finished runs); here every message is clipped, the measurements
a run keeps are cut to MEASUREMENTS_PER_RUN (the longest lists first: a metric's
measurementRetention may keep up to that many when its run has room), and if the analysis runs
still exceed their budget the least useful detail goes first: old measurements of finished runs,
then the oldest finished runs, then the measurements of open runs down to the latest one per metric. Counts
(measured, successful, failed, ...) are never dropped: the phases are decided from them."""

from __future__ import annotations

import json

from rollout.analysis.runs import MAX_MEASUREMENTS
from rollout.api.spec import MAX_RETENTION
from rollout.api.status import AnalysisRun, RolloutStatus
from rollout.engine.types import Decision

MAX_STATUS_BYTES = 100 * 1024  # the wire status (JSON) stays under this
ANALYSIS_BUDGET = 80 * 1024  # ... of which the analysis runs may take this much
MESSAGE = 2000  # status message, abort reason, condition messages
RUN_MESSAGE = 1000
METRIC_MESSAGE = 400
MEASUREMENT_MESSAGE = 300
VALUE = 200  # a vector of many series formats long
TERSE = 40  # metric messages (and 24 characters of values) when even that does not fit
MEASUREMENTS_PER_RUN = MAX_RETENTION  # spread over the run's metrics (MAX_MEASUREMENTS each by default)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis (idempotent)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def measurements_kept(metrics: int) -> int:
    """Per metric, when each of `metrics` metrics keeps the default MAX_MEASUREMENTS."""
    return max(1, min(MAX_MEASUREMENTS, MEASUREMENTS_PER_RUN // max(metrics, 1)))


def measurement_cap(lengths: list[int]) -> int:
    """The most measurements each metric may keep so that the run keeps MEASUREMENTS_PER_RUN at
    most (the longest lists are cut first; at least one per metric, due() needs the latest)."""
    cap = max(lengths, default=0)
    while cap > 1 and sum(min(n, cap) for n in lengths) > MEASUREMENTS_PER_RUN:
        cap -= 1
    return max(cap, 1)


def _size(run: AnalysisRun) -> int:
    return len(json.dumps(run.wire(), separators=(",", ":")))


def _keep(run: AnalysisRun, count: int) -> None:
    for metric in run.metrics:
        metric.measurements = metric.measurements[-count:] if count else []


def _terse(run: AnalysisRun) -> None:
    """Metric messages short, measurement messages gone (the metric's message says the latest)."""
    for metric in run.metrics:
        metric.message = clip(metric.message, TERSE)
        for measurement in metric.measurements:
            measurement.message, measurement.value = "", clip(measurement.value, 24)


def bound_status(status: RolloutStatus) -> RolloutStatus:
    status.message = clip(status.message, MESSAGE)
    status.abort_reason = clip(status.abort_reason, MESSAGE)
    for condition in status.conditions:
        condition.message = clip(condition.message, MESSAGE)
    for run in status.analysis_runs:
        run.message = clip(run.message, RUN_MESSAGE)
        # Each list is already within its metric's retention (runs.record).
        kept = measurement_cap([len(m.measurements) for m in run.metrics])
        for metric in run.metrics:
            metric.message = clip(metric.message, METRIC_MESSAGE)
            metric.measurements = metric.measurements[-kept:]
            for measurement in metric.measurements:
                measurement.message = clip(measurement.message, MEASUREMENT_MESSAGE)
                measurement.value = clip(measurement.value, VALUE)
    _fit_analysis_runs(status)
    return status


def _fit_analysis_runs(status: RolloutStatus) -> None:
    sizes = {id(run): _size(run) for run in status.analysis_runs}
    if sum(sizes.values()) <= ANALYSIS_BUDGET:
        return

    def over() -> bool:
        return sum(sizes[id(r)] for r in status.analysis_runs) > ANALYSIS_BUDGET

    finished = sorted(
        (r for r in status.analysis_runs if r.finished_at is not None), key=lambda r: r.started_at
    )
    running = [r for r in status.analysis_runs if r.finished_at is None]
    steps: list[tuple[AnalysisRun, str]] = [
        *((r, "latest") for r in reversed(finished)),  # finished runs: the latest measurement per metric
        *((r, "drop") for r in finished[:-1]),  # the oldest finished runs go (the newest stays)
        *((r, "latest") for r in running),  # open runs: the latest measurement per metric (due() needs it)
        *((r, "counts") for r in finished[-1:]),  # the newest finished run: counts and messages only
        *((r, "terse") for r in [*running, *finished[-1:]]),  # short messages everywhere
        # and at last the newest finished run, unless it passed: a canary past an analysis step
        # is believed only with that step's successful run in status (canary.check_step_evidence)
        *((r, "drop") for r in finished[-1:] if r.phase != "Successful"),
    ]
    for run, how in steps:
        if not over():
            return
        if how == "drop":
            status.analysis_runs = [r for r in status.analysis_runs if r is not run]
            continue
        if how == "terse":
            _terse(run)
        else:
            _keep(run, 1 if how == "latest" else 0)
        sizes[id(run)] = _size(run)


def bounded(decision: Decision) -> Decision:
    """The decision with its status within bounds (decide() returns only these)."""
    bound_status(decision.status)
    return decision
