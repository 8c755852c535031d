"""The statistical canary judge (pure: no I/O, no clock): the canary's samples of one metric
against the reference side's, and a weighted score over several such comparisons.

Where it sits: the `compare` provider (rollout/analysis/compare.py) fetches each query's range
data for both sides; the bookkeeping (runs.py) hands the pooled samples here and records the
score as the measurement's phase.

One comparison: Mann-Whitney U, one-sided in each bad direction, of the canary's samples against
the reference's moved by the tolerance (a 5 % tolerance on a metric whose bad direction is
`increase` asks "is the canary larger than the reference plus 5 % of its median?"), at the
metric's confidence shared among the metrics judged together (Bonferroni: with 3 queries at
0.95, each is tested at 0.05 / 3), so that identical revisions fail at most 5 % of the time.
The effect shown is the Hodges-Lehmann shift (the median of every canary - reference
difference), relative to the reference median. Too few samples on either side is NoData, never
a pass.

A rate given as counts (errors out of requests over the window, per side) is judged on the
pooled counts instead: conditional on the events of both sides, the canary's share of them is
binomial, with probability n_c r / (n_c r + n_ref) when the canary's rate is r times the
reference's (each side's events taken as Poisson, right for rare events such as errors). The
exact binomial test of r = 1 + tolerance against larger (Przyborowski and Wilenski's test for two
Poisson rates) sees 0.4 % against 0.2 % over 20,000 requests a side, where per-step samples,
most of them 0 on both sides, cannot. Fewer than `min_samples` counted on either side: NoData.

The score: 100 x (weight of the comparisons that passed) / (weight of those with data). Below
`marginal`: Failed; from `marginal` up to below `pass`: Inconclusive; at or above `pass`:
Successful. A comparison without data caps the outcome at Inconclusive: a failure shown by the
rest still fails, but nothing passes on missing data."""

from __future__ import annotations

import importlib
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any, Literal

from rollout.api.status import ComparisonResult, Measurement, SideSamples


def scipy_stats() -> ModuleType:
    """scipy.stats, imported on first use: it is about 60 MiB of the controller's memory and 1.4 s
    of import that a controller with no judge never pays. compare.py asks for it in the thread
    that measures, so the judge on the event loop finds it imported."""
    return importlib.import_module("scipy.stats")


Direction = Literal["increase", "decrease", "either"]
Verdict = Literal["Pass", "High", "Low", "NoData"]
Outcome = Literal["Successful", "Inconclusive", "Failed"]


@dataclass(frozen=True)
class Side:
    """One side's pooled samples, as measured."""

    count: int  # finite samples kept (counts: the total counted)
    dropped: int  # NaN and Inf samples left out
    median: float | None
    events: int | None = None  # counts: the events among `count`
    rate: float | None = None  # counts: events / count


@dataclass(frozen=True)
class Comparison:
    """One metric judged: both sides, the effect, the p-value of the test that decided, and the
    verdict (High: worse upward, Low: worse downward)."""

    name: str
    weight: float
    verdict: Verdict
    canary: Side
    reference: Side
    # Hodges-Lehmann shift / |reference median| (counts: canary rate / reference rate - 1); None
    # when the reference's median (rate) is 0
    effect: float | None
    shift: float | None  # the Hodges-Lehmann shift itself (counts: the rates' difference)
    p_value: float | None
    why: str = ""  # for NoData: what was missing


@dataclass(frozen=True)
class Criteria:
    """How one metric is judged (the template's compare.queries[i], resolved)."""

    direction: Direction = "increase"
    tolerance: float = 0.0  # a fraction of the reference median allowed in the bad direction
    min_samples: int = 10
    confidence: float = 0.95


def finite(samples: Sequence[float]) -> tuple[list[float], int]:
    """The finite samples, and how many were NaN or Inf."""
    kept = [float(s) for s in samples if math.isfinite(s)]
    return kept, len(samples) - len(kept)


def _side(samples: Sequence[float], dropped: int) -> Side:
    return Side(len(samples), dropped, float(statistics.median(samples)) if samples else None)


def hodges_lehmann(canary: Sequence[float], reference: Sequence[float]) -> float:
    """The median of all pairwise differences canary[i] - reference[j]."""
    import numpy as np  # with scipy.stats, on first use (scipy_stats)

    return float(np.median(np.subtract.outer(np.asarray(canary), np.asarray(reference))))


def _p_greater(a: Sequence[float], b: Sequence[float]) -> float:
    """One-sided Mann-Whitney U p-value of "a tends to be larger than b"; 1 when every value is
    the same (nothing to tell apart, where scipy would return NaN)."""
    if len(set(a) | set(b)) == 1:
        return 1.0
    p = float(scipy_stats().mannwhitneyu(a, b, alternative="greater").pvalue)
    return 1.0 if math.isnan(p) else p


def compare(
    name: str,
    canary_raw: Sequence[float],
    reference_raw: Sequence[float],
    criteria: Criteria,
    weight: float = 1.0,
    family: int = 1,
) -> Comparison:
    """The canary's samples against the reference's for one metric, as one of `family` metrics
    judged together (each tested at 1/family of the level: Bonferroni)."""
    canary, canary_dropped = finite(canary_raw)
    reference, reference_dropped = finite(reference_raw)
    sides = _side(canary, canary_dropped), _side(reference, reference_dropped)
    short = [
        f"{side} has {len(samples)} sample(s)"
        for side, samples in (("canary", canary), ("reference", reference))
        if len(samples) < criteria.min_samples
    ]
    if short:
        why = f"{' and '.join(short)}, minSamples {criteria.min_samples}"
        return Comparison(name, weight, "NoData", *sides, None, None, None, why)
    shift = hodges_lehmann(canary, reference)
    base = float(statistics.median(reference))
    effect = shift / abs(base) if base != 0 else None
    margin = criteria.tolerance * abs(base)
    tests: list[tuple[Verdict, float]] = []
    if criteria.direction in ("increase", "either"):
        tests.append(("High", _p_greater(canary, [r + margin for r in reference])))
    if criteria.direction in ("decrease", "either"):
        tests.append(("Low", _p_greater([r - margin for r in reference], canary)))
    verdict, p_value = _decided(tests, criteria, family)
    return Comparison(name, weight, verdict, *sides, effect, shift, p_value)


def _decided(tests: list[tuple[Verdict, float]], criteria: Criteria, family: int) -> tuple[Verdict, float]:
    """The verdict of the one-sided tests of a metric (one per bad direction) and the p-value that
    decided. Two tests for `either`: each at half the level, so that the pair keeps it; and the
    family's share of it, so that identical revisions fail at most 1 - confidence of the time
    however many queries a judgment has."""
    level = (1.0 - criteria.confidence) / len(tests) / max(family, 1)
    verdict, p_value = min(tests, key=lambda t: t[1])
    return ("Pass" if p_value >= level else verdict), p_value


Counts = tuple[float, float]  # (events, total) of one side over the window


def _counted(counts: Counts | None) -> tuple[Side, str]:
    """One side's counts as a Side, and what is wrong with them ("" when nothing)."""
    if counts is None:
        return Side(0, 0, None), "no series"
    events, total = counts
    if not (math.isfinite(events) and math.isfinite(total)) or events < 0 or total < 0:
        return Side(0, 1, None), f"counts {events:g} of {total:g}"
    if events > total:
        return Side(round(total), 0, None), f"{events:g} events out of {total:g}: more events than counted"
    # increase() extrapolates to the window's edges: whole events and requests are what is tested.
    kept_events, kept_total = round(events), round(total)
    return Side(kept_total, 0, None, kept_events, kept_events / kept_total if kept_total else None), ""


def _p_rate_ratio(events: int, other: int, share: float, alternative: Literal["greater", "less"]) -> float:
    """Exact binomial test of the canary's share of all events against `share`."""
    if events + other == 0:
        return 1.0  # no event on either side: nothing tells the rates apart
    return float(scipy_stats().binomtest(events, events + other, share, alternative=alternative).pvalue)


def compare_counts(
    name: str,
    canary_counts: Counts | None,
    reference_counts: Counts | None,
    criteria: Criteria,
    weight: float = 1.0,
    family: int = 1,
) -> Comparison:
    """The canary's rate against the reference's from each side's (events, total) over the
    window, as one of `family` metrics judged together (see the module docstring)."""
    canary, canary_problem = _counted(canary_counts)
    reference, reference_problem = _counted(reference_counts)
    sides = (("canary", canary, canary_problem), ("reference", reference, reference_problem))
    short = [
        f"{side} {problem}" if problem else f"{side} counted {kept.count}"
        for side, kept, problem in sides
        if problem or kept.count < criteria.min_samples
    ]
    if short:
        why = f"{' and '.join(short)}, minSamples {criteria.min_samples}"
        return Comparison(name, weight, "NoData", canary, reference, None, None, None, why)
    assert canary.rate is not None and reference.rate is not None  # counts of at least min_samples
    assert canary.events is not None and reference.events is not None
    shift = canary.rate - reference.rate
    effect = canary.rate / reference.rate - 1 if reference.rate > 0 else None

    def share(ratio: float) -> float:  # the canary's expected share of all events at that ratio
        return canary.count * ratio / (canary.count * ratio + reference.count)

    tests: list[tuple[Verdict, float]] = []
    if criteria.direction in ("increase", "either"):
        ratio = 1 + criteria.tolerance
        tests.append(("High", _p_rate_ratio(canary.events, reference.events, share(ratio), "greater")))
    if criteria.direction in ("decrease", "either"):
        ratio = max(1 - criteria.tolerance, 1e-9)
        tests.append(("Low", _p_rate_ratio(canary.events, reference.events, share(ratio), "less")))
    verdict, p_value = _decided(tests, criteria, family)
    return Comparison(name, weight, verdict, canary, reference, effect, shift, p_value)


@dataclass(frozen=True)
class Score:
    value: float | None  # 0..100 over the comparisons with data; None when none has any
    outcome: Outcome
    worst: Comparison | None  # the comparison to name first: a failing one, else one without data


def score(comparisons: Sequence[Comparison], marginal: float, passing: float) -> Score:
    """The weighted score and what it means (see the module docstring)."""
    with_data = [c for c in comparisons if c.verdict != "NoData"]
    failing = [c for c in with_data if c.verdict != "Pass"]
    missing = [c for c in comparisons if c.verdict == "NoData"]
    worst = max(failing, key=lambda c: (c.weight, -(c.p_value or 1.0))) if failing else None
    worst = worst or (missing[0] if missing else None)
    total = sum(c.weight for c in with_data)
    if not with_data or total <= 0:
        return Score(None, "Inconclusive", worst)
    value = 100.0 * sum(c.weight for c in with_data if c.verdict == "Pass") / total
    if value < marginal:
        outcome: Outcome = "Failed"
    elif value < passing or missing:
        outcome = "Inconclusive"
    else:
        outcome = "Successful"
    return Score(value, outcome, worst)


def describe(comparison: Comparison, side: str) -> str:
    """One line for people: "p99-latency +18% vs stable, p=0.003 (High)"; for counts, both
    rates: "error-ratio 0.41% vs 0.19% stable (+116%), p=0.0004 (High)"."""
    if comparison.verdict == "NoData":
        return f"{comparison.name} no data vs {side}: {comparison.why}"
    outcome = f"p={comparison.p_value:.2g} ({comparison.verdict})"
    canary_rate, reference_rate = comparison.canary.rate, comparison.reference.rate
    if canary_rate is not None and reference_rate is not None:
        relative = f" ({comparison.effect * 100:+.0f}%)" if comparison.effect is not None else ""
        return f"{comparison.name} {canary_rate:.2%} vs {reference_rate:.2%} {side}{relative}, {outcome}"
    if comparison.effect is not None:
        effect = f"{comparison.effect * 100:+.1f}%"
    else:  # a reference median of 0 (no errors on most samples): the shift itself
        effect = f"{comparison.shift:+.3g} ({side} median 0)"
    return f"{comparison.name} {effect} vs {side}, {outcome}"


@dataclass(frozen=True)
class QueryCriteria:
    name: str
    criteria: Criteria
    weight: float
    counts: bool = False  # judged on (events, total) per side, not on samples


@dataclass(frozen=True)
class JudgeSettings:
    """A compare metric's judging, resolved from its template."""

    against: str  # the reference side's name, as messages say it: "stable"
    marginal: float
    passing: float
    queries: tuple[QueryCriteria, ...]


def _side_status(side: Side) -> SideSamples:
    return SideSamples(
        samples=side.count, dropped=side.dropped, median=side.median, events=side.events, rate=side.rate
    )


def _status(comparison: Comparison) -> ComparisonResult:
    return ComparisonResult(
        name=comparison.name,
        verdict=comparison.verdict,
        canary=_side_status(comparison.canary),
        reference=_side_status(comparison.reference),
        effect=comparison.effect,
        p_value=comparison.p_value,
        weight=comparison.weight,
    )


def _pair(values: Sequence[float] | None) -> Counts | None:
    return (values[0], values[1]) if values is not None and len(values) == 2 else None


def judge_samples(settings: JudgeSettings, samples: Mapping[str, Any], at: datetime) -> Measurement:
    """One measurement of a compare metric from the pooled samples the provider fetched:
    {query name: {"canary": [...], "reference": [...]}}; for a counts query each side is
    [events, total], or absent when a query found no series."""
    comparisons = []
    family = len(settings.queries)
    for query in settings.queries:
        pooled = samples.get(query.name) or {}
        if query.counts:
            canary_counts, reference_counts = (_pair(pooled.get(side)) for side in ("canary", "reference"))
            judged = compare_counts(
                query.name, canary_counts, reference_counts, query.criteria, query.weight, family
            )
        else:
            canary, reference = pooled.get("canary", []), pooled.get("reference", [])
            judged = compare(query.name, canary, reference, query.criteria, query.weight, family)
        comparisons.append(judged)
    result = score(comparisons, settings.marginal, settings.passing)
    worst = describe(result.worst, settings.against) if result.worst else ""
    if result.value is None:
        message = f"no data vs {settings.against}: {worst}"
    elif result.outcome == "Failed":
        message = f"score {result.value:.0f} < marginalScore {settings.marginal:g}: {worst}"
    elif result.outcome == "Successful":
        message = f"score {result.value:.0f} >= passScore {settings.passing:g} vs {settings.against}"
    elif result.value >= settings.passing:  # held back only by a query without data
        message = f"score {result.value:.0f} but not every query has data: {worst}"
    else:
        message = (
            f"score {result.value:.0f} between marginalScore {settings.marginal:g} and passScore "
            f"{settings.passing:g}: {worst}"
        )
    return Measurement(
        phase=result.outcome,
        at=at,
        value="" if result.value is None else f"score {result.value:.0f}",
        message=message,
        score=None if result.value is None else round(result.value, 1),
        against=settings.against,
        comparisons=[_status(c) for c in comparisons],
    )
