"""Measurement bookkeeping for one analysis run (pure; time is passed in).

The controller asks `due()` which metrics to measure now, queries the provider, and hands the
raw results back as `QueryResult`s; `record()` judges each against the metric's conditions and
`assess()` derives the metric and run phases from the counts:
- no data (an empty vector, NaN or Inf, or a provider saying it found none: a jsonPath matching
  nothing) is Inconclusive, never a pass;
- failureCondition first, then successCondition; with both and neither met: Inconclusive; with
  only one, the other outcome is implied (not meeting successCondition is a failure);
- failed > failureLimit: Failed; inconclusive > inconclusiveLimit: Inconclusive; consecutive
  errors > consecutiveErrorLimit: Error; `count` measurements (errors not counted) with at least
  one success: Successful.
A run is Failed, Error or Inconclusive as soon as one metric is, Successful once all are.
A dry-run metric (`dryRun`) is measured, judged and shown the same way, but never decides: the
run's phase comes from the other metrics; it is Successful once they are and every dry-run
metric has finished (a run of dry-run metrics only: once they have all finished, whatever their
outcome). Status keeps a metric's latest `retention` measurements (measurementRetention).

A measurement that spans reconciles (a Job that runs) is `pending` until it has an outcome: nothing
is recorded, and the metric is looked at again after PENDING_POLL_SECONDS. A provider whose
outcome is a verdict of its own (a Job Complete or Failed) gives it as `verdict`, with no
conditions to judge."""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rollout.analysis.compare import CompareRequest
from rollout.analysis.expressions import ConditionError, Result, evaluate
from rollout.analysis.judge import judge_samples
from rollout.analysis.resolve import DEFAULT_RETENTION, ResolvedMetric
from rollout.api.status import AnalysisPhase, AnalysisRun, Measurement, MetricResult

MAX_MEASUREMENTS = DEFAULT_RETENTION  # kept per metric without measurementRetention; counts cover all
QUERY_IN_MESSAGE = 120  # characters of the query quoted in a no-data message
VALUE_CHARS = 200  # of a JSON value formatted for status (the engine's bounds clip it further)
TERMINAL: tuple[AnalysisPhase, ...] = ("Successful", "Failed", "Inconclusive", "Error")
# Seconds between looks at a pending measurement (its Job is not watched: each look is one GET).
PENDING_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class QueryResult:
    """One query's raw outcome: a value, the error that prevented one, or why the provider
    found no data (`no_data`, said as it is: "jsonPath $.x matched nothing ...")."""

    run: str
    revision: str
    metric: str
    at: datetime
    value: Result | None = None
    error: str = ""
    no_data: str = ""
    # Not measured yet: what it waits for ("Job x running"); nothing is recorded.
    pending: str = ""
    # The provider's own outcome (a Job's), said in `message`; conditions do not apply.
    verdict: AnalysisPhase | None = None
    message: str = ""


def no_data(value: Result) -> bool:
    """An empty list, or a NaN or Inf at the top or in a top-level list."""
    values = value if isinstance(value, list) else [value]
    return not values or any(isinstance(v, float) and not math.isfinite(v) for v in values)


def _short(query: str, limit: int = QUERY_IN_MESSAGE) -> str:
    """A query as quoted in a measurement message (the full one is in the template)."""
    flat = " ".join(query.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _number(value: Result) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_value(value: Result) -> str:
    """Numbers as %.6g ("0.998", "[0.998, 0.97]"); any other JSON value as compact JSON, cut to
    VALUE_CHARS."""
    if _number(value):
        return f"{value:.6g}"
    if isinstance(value, list) and all(_number(v) for v in value):
        return "[" + ", ".join(f"{v:.6g}" for v in value) + "]"
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _next_at(run: AnalysisRun, result: MetricResult, metric: ResolvedMetric) -> datetime | None:
    """When `metric` is next measured, or None when it needs no more measurements."""
    if result.phase != "Running" or run.finished_at is not None:
        return None
    if not result.measurements:
        return run.started_at + timedelta(seconds=metric.initial_delay)
    last = result.measurements[-1]
    if last.phase == "Error":
        return last.at + timedelta(seconds=metric.retry_after)
    if metric.interval is None:
        return None
    return last.at + timedelta(seconds=metric.interval)


def due(run: AnalysisRun, metrics: Sequence[ResolvedMetric], now: datetime) -> list[ResolvedMetric]:
    out = []
    for metric in metrics:
        at = _next_at(run, run.metric(metric.name), metric)
        if at is not None and at <= now:
            out.append(metric)
    return out


def seconds_to_next(
    run: AnalysisRun, metrics: Sequence[ResolvedMetric], now: datetime, pending: Collection[str] = ()
) -> float | None:
    """Seconds until a metric is measured next; a `pending` one (by name) is looked at again
    after PENDING_POLL_SECONDS."""
    waits = []
    for metric in metrics:
        at = _next_at(run, run.metric(metric.name), metric)
        if at is not None:
            wait = (at - now).total_seconds()
            waits.append(max(wait, PENDING_POLL_SECONDS) if metric.name in pending else wait)
    return max(0.0, min(waits)) if waits else None


def judge(metric: ResolvedMetric, result: QueryResult) -> Measurement:
    """One measurement's phase and message from the raw query result; the values of secret
    arguments are masked in both (a provider's error may quote the query)."""
    measurement = _judge(metric, result)
    if metric.secrets:
        measurement.message = metric.masked(measurement.message)
        measurement.value = metric.masked(measurement.value)
    return measurement


def _judge(metric: ResolvedMetric, result: QueryResult) -> Measurement:
    """One measurement's phase and message from the raw query result."""
    if result.verdict is not None:
        return Measurement(phase=result.verdict, at=result.at, message=result.message)
    if result.error:
        return Measurement(phase="Error", at=result.at, message=f"query failed: {result.error}")
    if result.no_data:
        return Measurement(
            phase="Inconclusive", at=result.at, message=f"no data: {result.no_data}: {_short(metric.query)}"
        )
    if metric.provider == "compare":  # judged by its score, not by conditions
        assert isinstance(metric.request, CompareRequest)
        if not isinstance(result.value, dict):  # the provider answers per query and side
            return Measurement(
                phase="Error",
                at=result.at,
                message=f"compare: not per-side samples: {format_value(result.value)}",
            )
        return judge_samples(metric.request.settings, result.value, result.at)
    value = format_value(result.value)
    if no_data(result.value):
        what = "an empty result" if result.value == [] else f"{value} (not a number)"
        return Measurement(
            phase="Inconclusive",
            at=result.at,
            value=value,
            message=(
                f"no data: the query returned {what}: {_short(metric.query)} ; likely causes: labels or "
                "arguments that match no series, no traffic to the revision yet in the query's "
                "window, or the metric not scraped"
            ),
        )
    try:
        if metric.failure_condition and evaluate(metric.failure_condition, result.value):
            phase, message = "Failed", f"{value} meets failureCondition {metric.failure_condition!r}"
        elif metric.success_condition:
            if evaluate(metric.success_condition, result.value):
                phase, message = "Successful", f"{value} meets successCondition {metric.success_condition!r}"
            elif metric.failure_condition:
                phase, message = (
                    "Inconclusive",
                    (
                        f"{value} meets neither successCondition {metric.success_condition!r} "
                        f"nor failureCondition {metric.failure_condition!r}"
                    ),
                )
            else:
                phase, message = (
                    "Failed",
                    f"{value} does not meet successCondition {metric.success_condition!r}",
                )
        else:
            phase, message = (
                "Successful",
                f"{value} does not meet failureCondition {metric.failure_condition!r}",
            )
    except ConditionError as exc:
        return Measurement(phase="Error", at=result.at, value=value, message=str(exc))
    return Measurement(phase=phase, at=result.at, value=value, message=message)


def record(run: AnalysisRun, metric: ResolvedMetric, result: QueryResult) -> Measurement:
    measurement = judge(metric, result)
    counts = run.metric(metric.name)
    if counts.phase != "Running":
        return measurement
    counts.dry_run = True if metric.dry_run else None
    counts.measurements = [*counts.measurements, measurement][-metric.retention :]
    if measurement.phase == "Error":
        counts.error += 1
        counts.consecutive_errors += 1
    else:
        counts.count += 1
        counts.consecutive_errors = 0
        if measurement.phase == "Successful":
            counts.successful += 1
        elif measurement.phase == "Failed":
            counts.failed += 1
        else:
            counts.inconclusive += 1
    counts.phase, counts.message = _metric_phase(counts, metric, measurement)
    return measurement


def _scored(latest: Measurement) -> str:
    """A compare metric's latest score and worst query, for its message ("" for others)."""
    return f"; latest {latest.message}" if latest.against is not None and latest.phase != "Error" else ""


def _metric_phase(
    counts: MetricResult, metric: ResolvedMetric, latest: Measurement
) -> tuple[AnalysisPhase, str]:
    name = f"{'dry-run ' if metric.dry_run else ''}metric {metric.name} ({metric.template})"
    if counts.consecutive_errors > metric.consecutive_error_limit:
        return "Error", (
            f"{name}: {counts.consecutive_errors} consecutive errors "
            f"(consecutiveErrorLimit {metric.consecutive_error_limit}); last: {latest.message}"
        )
    if counts.failed > metric.failure_limit:
        return "Failed", (
            f"{name}: {latest.message if latest.phase == 'Failed' else 'failed'} "
            f"({counts.failed} failed, failureLimit {metric.failure_limit})"
        )
    if counts.inconclusive > metric.inconclusive_limit:
        return "Inconclusive", (
            f"{name}: {latest.message} ({counts.inconclusive} inconclusive, "
            f"inconclusiveLimit {metric.inconclusive_limit})"
        )
    if metric.count is not None and counts.count >= metric.count:
        if counts.successful == 0:
            return "Inconclusive", f"{name}: {counts.count} measurement(s), none successful"
        return "Successful", f"{name}: {counts.successful}/{counts.count} successful{_scored(latest)}"
    progress = f"{counts.count}/{metric.count}" if metric.count is not None else f"{counts.count}"
    status = f"{name}: {progress} measured{_scored(latest)}"
    if latest.phase == "Error":
        status += (
            f"; error {counts.consecutive_errors}/{metric.consecutive_error_limit} in a row: {latest.message}"
        )
    return "Running", status


def assess(run: AnalysisRun, metrics: Sequence[ResolvedMetric], now: datetime) -> AnalysisPhase:
    """The run's phase from its metrics' (sets phase, message and finished_at)."""
    results = [run.metric(m.name) for m in metrics]
    for metric, result in zip(metrics, results, strict=True):
        result.dry_run = True if metric.dry_run else None
    deciding = [r for m, r in zip(metrics, results, strict=True) if not m.dry_run]
    dry = [r for m, r in zip(metrics, results, strict=True) if m.dry_run]
    for phase in ("Failed", "Error", "Inconclusive"):
        bad = [r for r in deciding if r.phase == phase]
        if bad:
            run.phase, run.message = phase, "; ".join(r.message for r in bad)
            break
    else:
        if (
            results
            and all(r.phase == "Successful" for r in deciding)
            and all(r.phase in TERMINAL for r in dry)
        ):
            run.phase = "Successful"
            run.message = "; ".join(
                [r.message for r in deciding] + [f"{r.message} ({r.phase}, not counted)" for r in dry]
            )
        else:
            run.phase = "Running"
            run.message = "; ".join(r.message or f"metric {r.name}: waiting" for r in results)
    if run.phase in TERMINAL and run.finished_at is None:
        run.finished_at = now
    return run.phase


def passed_so_far(run: AnalysisRun, metrics: Sequence[ResolvedMetric]) -> bool:
    """A background run may end with the rollout: metrics with a count have all their
    measurements done (Successful); those measured until the end have succeeded at least once
    and their latest measurement is a success. Dry-run metrics are not asked."""
    for metric in metrics:
        result = run.metric(metric.name)
        if result.phase == "Successful" or metric.dry_run:
            continue
        if metric.count is not None or result.phase != "Running" or result.successful == 0:
            return False
        if result.measurements and result.measurements[-1].phase != "Successful":
            return False
    return True
