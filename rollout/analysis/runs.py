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
A run is Failed, Error or Inconclusive as soon as one metric is, Successful once all are."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from rollout.analysis.compare import CompareRequest
from rollout.analysis.expressions import ConditionError, Result, evaluate
from rollout.analysis.judge import judge_samples
from rollout.analysis.resolve import ResolvedMetric
from rollout.api.status import AnalysisPhase, AnalysisRun, Measurement, MetricResult

MAX_MEASUREMENTS = 10  # kept per metric in the Rollout status; counts cover all of them
QUERY_IN_MESSAGE = 120  # characters of the query quoted in a no-data message
VALUE_CHARS = 200  # of a JSON value formatted for status (the engine's bounds clip it further)
TERMINAL: tuple[AnalysisPhase, ...] = ("Successful", "Failed", "Inconclusive", "Error")


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


def seconds_to_next(run: AnalysisRun, metrics: Sequence[ResolvedMetric], now: datetime) -> float | None:
    times = [_next_at(run, run.metric(m.name), m) for m in metrics]
    pending = [(t - now).total_seconds() for t in times if t is not None]
    return max(0.0, min(pending)) if pending else None


def judge(metric: ResolvedMetric, result: QueryResult) -> Measurement:
    """One measurement's phase and message from the raw query result."""
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
    counts.measurements = [*counts.measurements, measurement][-MAX_MEASUREMENTS:]
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
    name = f"metric {metric.name} ({metric.template})"
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
    for phase in ("Failed", "Error", "Inconclusive"):
        bad = [r for r in results if r.phase == phase]
        if bad:
            run.phase, run.message = phase, "; ".join(r.message for r in bad)
            break
    else:
        if results and all(r.phase == "Successful" for r in results):
            run.phase, run.message = "Successful", "; ".join(r.message for r in results)
        else:
            run.phase = "Running"
            run.message = "; ".join(r.message or f"metric {r.name}: waiting" for r in results)
    if run.phase in TERMINAL and run.finished_at is None:
        run.finished_at = now
    return run.phase


def passed_so_far(run: AnalysisRun, metrics: Sequence[ResolvedMetric]) -> bool:
    """A background run may end with the rollout: metrics with a count have all their
    measurements done (Successful); those measured until the end have succeeded at least once
    and their latest measurement is a success."""
    for metric in metrics:
        result = run.metric(metric.name)
        if result.phase == "Successful":
            continue
        if metric.count is not None or result.phase != "Running" or result.successful == 0:
            return False
        if result.measurements and result.measurements[-1].phase != "Successful":
            return False
    return True
