"""The judge on counts (rollout/analysis/judge.py compare_counts): a rate given as events out of a
total per side, tested exactly on the pooled counts (a small error rate's per-step samples are a
few events each, or none)."""

from datetime import UTC, datetime

import numpy as np
import pytest

from rollout.analysis.compare import PROVIDER
from rollout.analysis.judge import (
    Criteria,
    JudgeSettings,
    QueryCriteria,
    compare_counts,
    describe,
    judge_samples,
)
from rollout.api.templates import parse_template
from rollout.cli.view import comparison_line
from tests.unit.test_compare_metric import resolved

AT = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULTS = Criteria("increase", 0.0, 1000, 0.95)


def test_errors_doubling_from_0_2_to_0_4_percent_are_high():
    # 20,000 requests a side over the window: 40 errors on the reference, 80 on the canary.
    result = compare_counts("errors", (80, 20_000), (40, 20_000), DEFAULTS)
    assert result.verdict == "High"
    assert result.p_value < 0.001
    assert result.effect == pytest.approx(1.0)  # the canary's rate is twice the reference's
    assert (result.canary.events, result.canary.count, result.canary.rate) == (80, 20_000, 0.004)


def test_identical_rates_fail_at_most_the_confidence_allows():
    rng = np.random.default_rng(7)
    failed = 0
    runs = 2000
    for _ in range(runs):
        canary, reference = rng.binomial(20_000, 0.002, 2)
        failed += compare_counts("errors", (canary, 20_000), (reference, 20_000), DEFAULTS).verdict != "Pass"
    assert failed / runs <= 0.05, failed


def test_the_doubling_is_caught_in_at_least_95_percent_of_runs_at_25000_requests_a_side():
    rng = np.random.default_rng(11)
    runs = 1000
    caught = sum(
        compare_counts(
            "errors",
            (rng.binomial(25_000, 0.004), 25_000),
            (rng.binomial(25_000, 0.002), 25_000),
            DEFAULTS,
            family=3,
        ).verdict
        == "High"
        for _ in range(runs)
    )
    assert caught / runs >= 0.95, caught


def test_the_tolerance_lets_a_small_rise_pass_and_not_a_large_one():
    tolerant = Criteria("increase", 0.25, 1000, 0.95)
    assert compare_counts("errors", (220, 100_000), (200, 100_000), tolerant).verdict == "Pass"  # +10 %
    assert compare_counts("errors", (400, 100_000), (200, 100_000), tolerant).verdict == "High"  # +100 %


def test_unequal_totals_compare_rates_not_counts():
    # The canary took a fifth of the reference's requests: 40 errors in 10,000 is 0.4 %, twice
    # 100 in 50,000; and 20 in 10,000 is the same 0.2 % as the reference.
    assert compare_counts("errors", (40, 10_000), (100, 50_000), DEFAULTS).verdict == "High"
    assert compare_counts("errors", (20, 10_000), (100, 50_000), DEFAULTS).verdict == "Pass"


def test_a_drop_is_low_where_the_bad_direction_is_decrease_and_either_sees_both():
    fewer = Criteria("decrease", 0.0, 1000, 0.95)
    assert compare_counts("hits", (500, 10_000), (1000, 10_000), fewer).verdict == "Low"
    assert compare_counts("hits", (1500, 10_000), (1000, 10_000), fewer).verdict == "Pass"
    either = Criteria("either", 0.0, 1000, 0.95)
    assert compare_counts("hits", (1500, 10_000), (1000, 10_000), either).verdict == "High"


def test_no_events_on_either_side_pass_with_p_one():
    result = compare_counts("errors", (0, 5000), (0, 5000), DEFAULTS)
    assert (result.verdict, result.p_value, result.effect) == ("Pass", 1.0, None)


def test_too_few_counted_no_series_or_impossible_counts_are_no_data():
    short = compare_counts("errors", (1, 300), (0, 5000), DEFAULTS)
    assert short.verdict == "NoData" and "canary counted 300" in short.why and "minSamples 1000" in short.why
    missing = compare_counts("errors", None, (0, 5000), DEFAULTS)
    assert missing.verdict == "NoData" and "canary no series" in missing.why
    nan = compare_counts("errors", (float("nan"), 5000), (0, 5000), DEFAULTS)
    assert nan.verdict == "NoData" and nan.canary.dropped == 1
    more = compare_counts("errors", (10, 5000), (6000, 5000), DEFAULTS)
    assert more.verdict == "NoData" and "more events than counted" in more.why


def test_increase_extrapolated_fractions_count_as_whole_events():
    result = compare_counts("errors", (79.6, 20_000.4), (40.2, 19_999.7), DEFAULTS)
    assert (result.canary.events, result.canary.count, result.reference.events) == (80, 20_000, 40)


def test_the_line_for_people_gives_both_rates():
    result = compare_counts("error-ratio", (80, 20_000), (40, 20_000), DEFAULTS)
    assert describe(result, "stable").startswith("error-ratio 0.40% vs 0.20% stable (+100%), p=")
    assert describe(result, "stable").endswith("(High)")


def test_a_measurement_mixes_counts_and_samples_queries_and_records_the_counts():
    settings = JudgeSettings(
        against="stable",
        marginal=75,
        passing=95,
        queries=(
            QueryCriteria("latency", Criteria("increase", 0.05, 10, 0.95), 2.0),
            QueryCriteria("errors", DEFAULTS, 1.0, counts=True),
        ),
    )
    samples = {
        "latency": {
            "canary": [50.0 + i % 3 for i in range(12)],
            "reference": [50.0 + i % 3 for i in range(12)],
        },
        "errors": {"canary": [80, 20_000], "reference": [40, 20_000]},
    }
    measurement = judge_samples(settings, samples, AT)
    assert measurement.phase == "Failed"  # 2 of 3 weight passed: score 67 < 75
    assert measurement.score == pytest.approx(66.7)
    assert "errors 0.40% vs 0.20% stable" in measurement.message
    errors = next(c for c in measurement.comparisons if c.name == "errors")
    assert (errors.canary.samples, errors.canary.events, errors.canary.rate) == (20_000, 80, 0.004)
    assert (errors.reference.events, errors.verdict) == (40, "High")
    # A side without series is NoData, and the score cannot pass on it.
    no_series = judge_samples(settings, {**samples, "errors": {"reference": [40, 20_000]}}, AT)
    assert no_series.phase == "Inconclusive" and "canary no series" in no_series.message


# The compare metric's counts queries, from template to request and measurement ------------------

ERRORS = (
    'sum(increase(http_requests_total{code=~"5..", rollout_dev_revision="{{side.revision}}"}'
    "[{{args.window}}]))"
)
REQUESTS = 'sum(increase(http_requests_total{rollout_dev_revision="{{side.revision}}"}[{{args.window}}]))'


def counts_template(**query):
    query = {"name": "errors", "counts": {"events": ERRORS, "total": REQUESTS}, "minSamples": 1000, **query}
    compare_spec = {"queries": [query], "window": "{{args.window}}", "step": "10s"}
    return {
        "spec": {
            "args": [{"name": "window", "value": "2m"}],
            "metrics": [{"name": "judge", "provider": {"compare": compare_spec}}],
        }
    }


def test_counts_queries_are_filled_per_side_with_the_window():
    (metric,), errors = resolved(counts_template())
    assert not errors
    (query,) = metric.request.queries
    assert 'code=~"5..", rollout_dev_revision="c4n4ry"}[2m]' in query.canary
    assert 'code=~"5..", rollout_dev_revision="st4bl3"}[2m]' in query.reference
    assert query.totals == (
        'sum(increase(http_requests_total{rollout_dev_revision="c4n4ry"}[2m]))',
        'sum(increase(http_requests_total{rollout_dev_revision="st4bl3"}[2m]))',
    )
    assert metric.request.settings.queries[0].counts


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        (
            {"counts": {"events": 'sum(http_requests_total{code="500"})', "total": REQUESTS}},
            "counts.events",
            "per-side",
        ),
        ({"counts": {"events": ERRORS}}, "counts.total", "Field required"),
        ({"query": REQUESTS}, "queries[0]", "either `query` (samples) or `counts`"),
        ({"counts": None}, "queries[0]", "either `query` (samples) or `counts`"),
    ],
)
def test_bad_counts_are_named_at_their_field(query, field, words):
    raw = counts_template(**query)
    if query.get("counts", True) is None:
        raw["spec"]["metrics"][0]["provider"]["compare"]["queries"][0].pop("counts")
    message = parse_template(raw)
    assert isinstance(message, str) and field in message and words in message, message


class CountingPrometheus:
    """Answers instant queries from a table of query text -> vector values."""

    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    def query(self, text, **_):
        self.asked.append(text)
        return self.answers[text]


def test_counts_are_summed_over_series_missing_errors_are_none_and_a_missing_total_is_no_data():
    (metric,), _ = resolved(counts_template())
    (query,) = metric.request.queries
    answers = {
        query.canary: [50.0, 30.0],  # two series (two pods): pooled
        query.totals[0]: [10_000.0, 10_000.0],
        query.reference: [],  # stable never answered a 500: no series with code 500
        query.totals[1]: [20_000.0],
    }
    client = CountingPrometheus(answers)
    measured = PROVIDER.measure(metric.request, {}, {"prometheus": client}, {})
    assert measured == {"errors": {"canary": [80.0, 20_000.0], "reference": [0.0, 20_000.0]}}
    assert len(client.asked) == 4
    assert judge_samples(metric.request.settings, measured, AT).comparisons[0].verdict == "High"
    # No requests counted on a side (no series of the total): no data, never a pass.
    client = CountingPrometheus({**answers, query.totals[1]: []})
    measured = PROVIDER.measure(metric.request, {}, {"prometheus": client}, {})
    assert measured == {"errors": {"canary": [80.0, 20_000.0]}}
    result = judge_samples(metric.request.settings, measured, AT)
    assert result.phase == "Inconclusive" and "reference no series" in result.message


def test_rollout_get_shows_both_rates_and_counts_of_a_counts_query():
    settings = JudgeSettings("stable", 75, 95, (QueryCriteria("errors", DEFAULTS, 1.0, counts=True),))
    measurement = judge_samples(settings, {"errors": {"canary": [80, 20_000], "reference": [40, 20_000]}}, AT)
    (comparison,) = measurement.model_dump(by_alias=True, mode="json")["comparisons"]
    line = comparison_line(comparison, "stable")
    assert line.startswith("errors High: +100% vs stable, p=")
    assert line.endswith("rates canary 0.40% (80 of 20000), stable 0.20% (40 of 20000)")
