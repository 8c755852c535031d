"""The statistical judge (rollout/analysis/judge.py): one metric's canary samples against the
reference's (Mann-Whitney U, Hodges-Lehmann effect), and the weighted score with its thresholds."""

import math
import random
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.analysis.judge import (
    Criteria,
    JudgeSettings,
    QueryCriteria,
    compare,
    describe,
    hodges_lehmann,
    judge_samples,
    score,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)
samples = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False), min_size=10, max_size=60
)


def noisy(center, n=30, spread=0.05, seed=1):
    rng = random.Random(seed)
    return [center * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


@given(samples, st.sampled_from(["increase", "decrease", "either"]), st.floats(0.0, 0.5))
@settings(max_examples=200, deadline=None)
def test_identical_samples_never_fail(values, direction, tolerance):
    result = compare("m", values, list(values), Criteria(direction, tolerance, 10, 0.95))
    assert result.verdict == "Pass", result


@given(
    samples.filter(lambda v: max(v) - min(v) > 1e-3),
    st.sampled_from(["increase", "either"]),
    st.floats(0.0, 0.2),
)
@settings(max_examples=200, deadline=None)
def test_a_large_shift_in_the_bad_direction_is_detected(values, direction, tolerance):
    """Every canary sample above every reference sample by more than the tolerance: with ten or
    more samples a side, Mann-Whitney's p is below 1e-4."""
    median = sorted(values)[len(values) // 2]
    shift = (max(values) - min(values)) + tolerance * abs(median) + 1.0
    canary = [v + shift for v in values]
    result = compare("m", canary, values, Criteria(direction, tolerance, 10, 0.95))
    assert result.verdict == "High" and result.p_value < 0.01, result
    assert math.isclose(result.shift, shift, rel_tol=1e-9, abs_tol=1e-6)


@given(samples.filter(lambda v: max(v) - min(v) > 1e-3))
@settings(max_examples=100, deadline=None)
def test_a_shift_in_the_good_direction_passes(values):
    shift = (max(values) - min(values)) + 1.0
    result = compare("m", [v - shift for v in values], values, Criteria("increase", 0.0, 10, 0.95))
    assert result.verdict == "Pass"


def test_a_drop_is_low_where_the_bad_direction_is_decrease():
    reference = noisy(100.0)
    result = compare("throughput", noisy(70.0, seed=2), reference, Criteria("decrease", 0.05, 10, 0.95))
    assert result.verdict == "Low" and result.effect < -0.25
    higher = compare("throughput", noisy(130.0, seed=2), reference, Criteria("decrease", 0.05, 10, 0.95))
    assert higher.verdict == "Pass"
    either = compare("latency", noisy(70.0, seed=2), reference, Criteria("either", 0.05, 10, 0.95))
    assert either.verdict == "Low"


def test_the_tolerance_lets_a_small_regression_pass_and_not_a_large_one():
    reference = noisy(0.100, n=40)
    small = compare("p99", noisy(0.103, n=40, seed=3), reference, Criteria("increase", 0.10, 10, 0.95))
    assert small.verdict == "Pass"
    strict = compare("p99", noisy(0.115, n=40, seed=3), reference, Criteria("increase", 0.0, 10, 0.95))
    assert strict.verdict == "High"
    large = compare("p99", noisy(0.130, n=40, seed=3), reference, Criteria("increase", 0.10, 10, 0.95))
    assert large.verdict == "High" and 0.25 < large.effect < 0.35


def test_too_few_samples_is_no_data_and_nan_and_inf_are_dropped_and_counted():
    canary = [1.0] * 8 + [math.nan, math.inf, -math.inf]
    result = compare("m", canary, [1.0] * 20, Criteria(min_samples=10))
    assert result.verdict == "NoData" and result.p_value is None
    assert (result.canary.count, result.canary.dropped) == (8, 3)
    assert "canary has 8 sample(s)" in result.why and "minSamples 10" in result.why
    empty = compare("m", [2.0] * 20, [], Criteria(min_samples=10))
    assert empty.verdict == "NoData" and "reference has 0 sample(s)" in empty.why


def test_all_values_equal_on_both_sides_passes_with_p_one():
    result = compare("errors", [0.0] * 15, [0.0] * 15, Criteria())
    assert result.verdict == "Pass" and result.p_value == 1.0 and result.effect is None


def test_the_hodges_lehmann_shift_is_the_median_of_pairwise_differences():
    assert hodges_lehmann([3.0, 5.0], [1.0]) == 3.0
    assert hodges_lehmann([10.0, 11.0, 12.0], [1.0, 2.0, 3.0]) == 9.0


def verdicts(*pairs):
    """Comparisons with the given (verdict, weight)."""
    reference = noisy(1.0, n=20)
    made = []
    for index, (verdict, weight) in enumerate(pairs):
        canary = {"Pass": reference, "High": noisy(3.0, n=20), "NoData": []}[verdict]
        made.append(compare(f"m{index}", canary, reference, Criteria(), weight))
        assert made[-1].verdict == verdict
    return made


def test_the_score_weighs_passing_metrics_and_the_thresholds_decide():
    assert score(verdicts(("Pass", 3), ("High", 1)), 60, 90).value == 75
    assert score(verdicts(("Pass", 3), ("High", 1)), 60, 90).outcome == "Inconclusive"
    assert score(verdicts(("Pass", 1), ("High", 3)), 60, 90).outcome == "Failed"
    assert score(verdicts(("Pass", 9), ("High", 1)), 60, 90).outcome == "Successful"
    assert score(verdicts(("Pass", 1), ("Pass", 1)), 60, 90).value == 100
    failed = score(verdicts(("Pass", 1), ("High", 3)), 60, 90)
    assert failed.worst.name == "m1"


def test_a_query_without_data_never_lets_the_score_pass():
    held = score(verdicts(("Pass", 1), ("NoData", 1)), 60, 90)
    assert held.value == 100 and held.outcome == "Inconclusive" and held.worst.verdict == "NoData"
    assert score(verdicts(("High", 1), ("NoData", 1)), 60, 90).outcome == "Failed"
    nothing = score(verdicts(("NoData", 1)), 60, 90)
    assert nothing.value is None and nothing.outcome == "Inconclusive"


def test_the_line_for_people_names_effect_side_and_p_value():
    result = compare(
        "p99-latency", noisy(118.0, n=30, spread=0.01), noisy(100.0, n=30, spread=0.01), Criteria()
    )
    assert describe(result, "stable").startswith("p99-latency +18.0% vs stable, p=")
    assert describe(result, "stable").endswith("(High)")


def test_a_measurement_holds_the_score_and_each_side_of_each_query():
    judge = JudgeSettings(
        "stable",
        75,
        95,
        (QueryCriteria("latency", Criteria(), 2.0), QueryCriteria("errors", Criteria(), 1.0)),
    )
    pooled = {
        "latency": {"canary": noisy(0.12, seed=5), "reference": noisy(0.10)},
        "errors": {"canary": [0.0] * 30, "reference": [0.0] * 29 + [math.nan]},
    }
    measurement = judge_samples(judge, pooled, AT)
    assert measurement.phase == "Failed" and measurement.score == 33.3
    assert measurement.message.startswith("score 33 < marginalScore 75: latency +")
    assert "vs stable" in measurement.message
    latency, errors = measurement.comparisons
    assert latency.verdict == "High" and latency.canary.samples == 30 and latency.p_value < 0.001
    assert latency.reference.median is not None and latency.effect > 0.1
    assert errors.verdict == "Pass" and errors.reference.dropped == 1 and errors.reference.samples == 29
    passed = judge_samples(
        judge, {k: {"canary": v["reference"], "reference": v["reference"]} for k, v in pooled.items()}, AT
    )
    assert passed.phase == "Successful" and passed.value == "score 100"


def test_queries_judged_together_share_the_level_so_identical_revisions_rarely_fail():
    """Bonferroni: a difference significant at 0.05 alone (0.05/3 < p < 0.05) passes among three
    queries, and a strong one is still High."""
    borderline = None
    for seed in range(1, 400):
        canary, reference = noisy(1.0, n=20, seed=seed), noisy(1.0, n=20, seed=seed + 1000)
        if 0.05 / 3 < compare("m", canary, reference, Criteria()).p_value < 0.05:
            borderline = canary, reference
            break
    assert borderline is not None
    canary, reference = borderline
    assert compare("m", canary, reference, Criteria()).verdict == "High"
    assert compare("m", canary, reference, Criteria(), family=3).verdict == "Pass"
    assert compare("m", noisy(1.5, n=20), reference, Criteria(), family=3).verdict == "High"
