"""Analysis building blocks: argument escaping, safe conditions, measurement bookkeeping and
template resolution (all pure)."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from rollout.analysis.args import ArgError, substitute_condition, substitute_query
from rollout.analysis.expressions import ConditionError, check, evaluate
from rollout.analysis.prometheus import QueryError, parse_result
from rollout.analysis.resolve import TemplateKey, resolve
from rollout.analysis.runs import MAX_MEASUREMENTS, QueryResult, assess, due, record, seconds_to_next
from rollout.api.spec import RolloutAnalysis
from rollout.api.status import AnalysisRun
from tests.analysis_metrics import one_metric, resolved

T0 = datetime(2026, 1, 1, tzinfo=UTC)


# --- arguments ----------------------------------------------------------------------------------


def test_a_value_with_a_quote_and_a_brace_stays_inside_its_label_matcher():
    query = substitute_query('sum(rate(x{service="{{args.svc}}"}[1m]))', {"svc": 'a"} or vector(1) #'})
    assert query == 'sum(rate(x{service="a\\"} or vector(1) #"}[1m]))'


def test_escaping_follows_the_literal_quote_and_backslashes():
    assert substitute_query("x{a='{{args.v}}'}", {"v": "it's"}) == "x{a='it\\'s'}"
    assert substitute_query('x{a="{{args.v}}"}', {"v": 'c:\\d\n"'}) == 'x{a="c:\\\\d\\n\\""}'
    assert substitute_query("x{a=`{{args.v}}`}", {"v": "raw\\"}) == "x{a=`raw\\`}"
    with pytest.raises(ArgError, match="backtick"):
        substitute_query("x{a=`{{args.v}}`}", {"v": "a`b"})


def test_outside_quotes_only_plain_tokens_are_allowed():
    assert substitute_query("rate(x[{{args.window}}])", {"window": "5m"}) == "rate(x[5m])"
    assert substitute_query('x{ {{args.label}}="v"}', {"label": "rollout_dev_revision"}) == (
        'x{ rollout_dev_revision="v"}'
    )
    with pytest.raises(ArgError, match="outside a quoted label value"):
        substitute_query("rate(x[{{args.window}}])", {"window": "5m]) or vector(1"})
    with pytest.raises(ArgError, match="has no value"):
        substitute_query('x{a="{{args.missing}}"}', {})


def test_condition_arguments_become_literals_never_code():
    assert substitute_condition("result[0] >= {{args.min}}", {"min": "0.99"}) == "result[0] >= 0.99"
    text = substitute_condition("result[0] >= {{args.min}}", {"min": "__import__('os')"})
    assert text == "result[0] >= \"__import__('os')\""
    with pytest.raises(ConditionError):
        evaluate(text, [1.0])  # a string compared with a number: an error, not an import


# --- conditions ---------------------------------------------------------------------------------


def test_conditions_over_scalars_and_vectors():
    assert evaluate("result >= 0.99", 0.995) is True
    assert evaluate("result[0] < 500", [120.0]) is True
    assert evaluate("len(result) > 0", []) is False
    assert evaluate("max(result) < 0.5 and all(r >= 0 for r in result)", [0.1, 0.2]) is True


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ("result >= ", "not an expression"),
        ("__import__('os').system('true')", "not defined"),
        ("result.__class__", "__class__"),
        ("latency > 1", "'latency' is not defined"),
        ("result[0] + 1", "not true or false"),
    ],
)
def test_bad_conditions_are_reported(condition, problem):
    assert problem in check(condition)


def test_a_vector_compared_as_a_number_says_how_to_fix_it():
    with pytest.raises(ConditionError, match=r"vector of 1 values: compare result\[0\]"):
        evaluate("result >= 0.99", [0.5])


def test_prometheus_results_are_parsed_by_type():
    assert parse_result([1700000000.0, "0.5"]) == 0.5
    assert (
        parse_result([{"metric": {}, "value": [1, "0.25"]}, {"metric": {}, "value": [1, "NaN"]}])[0] == 0.25
    )
    assert math.isinf(parse_result([{"metric": {}, "value": [1, "+Inf"]}])[0])
    with pytest.raises(QueryError, match="range vector"):
        parse_result([{"metric": {}, "values": [[1, "1"]]}])


# --- bookkeeping --------------------------------------------------------------------------------


def measure(run, metric, value=None, error="", at=T0):
    return record(run, metric, QueryResult(run.name, run.revision, metric.name, at, value, error))


@pytest.mark.parametrize("value", [[], [math.nan], [math.inf], math.nan, [0.999, math.nan]])
def test_no_data_is_inconclusive_with_the_query_and_likely_causes(value):
    metric = one_metric()
    run = AnalysisRun(name="step-2", revision="r", started_at=T0)
    measurement = measure(run, metric, value)
    assert measurement.phase == "Inconclusive"
    assert "no data" in measurement.message and 'x{job="web"}' in measurement.message
    assert "likely causes" in measurement.message and "no traffic" in measurement.message
    assert assess(run, [metric], T0) == "Inconclusive"  # inconclusiveLimit 0: never a pass


def test_failure_condition_first_then_success_and_neither_is_inconclusive():
    metric = one_metric(failureCondition="result[0] < 0.9", count=3, interval="1s", inconclusiveLimit=5)
    run = AnalysisRun(name="step-2", revision="r", started_at=T0)
    assert measure(run, metric, [0.5]).phase == "Failed"
    assert measure(run, metric, [0.999]).phase == "Successful"
    assert measure(run, metric, [0.95]).phase == "Inconclusive"


def test_only_a_success_condition_not_met_is_a_failure_naming_value_and_condition():
    metric = one_metric()
    run = AnalysisRun(name="step-2", revision="r", started_at=T0)
    measure(run, metric, [0.8])
    assert assess(run, [metric], T0) == "Failed"
    assert "metric rate" in run.message and "[0.8]" in run.message and "result[0] >= 0.99" in run.message


def test_failure_limit_tolerates_that_many_failures():
    metric = one_metric(count=3, interval="1s", failureLimit=1)
    run = AnalysisRun(name="step-2", revision="r", started_at=T0)
    for value in ([0.5], [0.999], [0.999]):
        measure(run, metric, value)
    assert assess(run, [metric], T0) == "Successful"


def test_errors_beyond_the_consecutive_limit_are_an_error_and_a_success_resets_the_streak():
    metric = one_metric(count=10, interval="1s")
    run = AnalysisRun(name="step-2", revision="r", started_at=T0)
    for _ in range(4):
        measure(run, metric, error="Prometheus at http://p is unreachable")
    measure(run, metric, [0.999])
    assert run.metric("rate").consecutive_errors == 0
    for _ in range(4):
        measure(run, metric, error="Prometheus at http://p is unreachable")
    assert assess(run, [metric], T0) == "Running"
    assert "error 4/4 in a row" in run.message
    measure(run, metric, error="Prometheus at http://p is unreachable")
    assert assess(run, [metric], T0) == "Error"
    assert "5 consecutive errors" in run.message and "unreachable" in run.message


def test_count_reached_with_no_success_is_not_a_pass():
    metric = one_metric(count=2, interval="1s", inconclusiveLimit=2)
    run = AnalysisRun(name="step-2", revision="r", started_at=T0)
    measure(run, metric, [])
    measure(run, metric, [])
    assert assess(run, [metric], T0) == "Inconclusive"


def test_measurements_are_bounded_but_counts_cover_all():
    metric = one_metric(count=25, interval="1s")
    run = AnalysisRun(name="step-2", revision="r", started_at=T0)
    for i in range(25):
        measure(run, metric, [0.999], at=T0 + timedelta(seconds=i))
    counts = run.metric("rate")
    assert counts.count == 25 and counts.successful == 25 and len(counts.measurements) == MAX_MEASUREMENTS
    assert counts.phase == "Successful"


def test_measurements_are_due_after_the_initial_delay_then_every_interval():
    metric = one_metric(count=3, interval="10s", initialDelay="30s")
    run = AnalysisRun(name="step-2", revision="r", started_at=T0)
    assert due(run, [metric], T0 + timedelta(seconds=29)) == []
    assert seconds_to_next(run, [metric], T0 + timedelta(seconds=20)) == 10
    at = T0 + timedelta(seconds=30)
    assert due(run, [metric], at) == [metric]
    measure(run, metric, [0.999], at=at)
    assert due(run, [metric], at + timedelta(seconds=9)) == []
    assert due(run, [metric], at + timedelta(seconds=10)) == [metric]


# --- resolution ---------------------------------------------------------------------------------


def test_the_rollouts_args_override_template_defaults():
    metric = one_metric(ref_args=[{"name": "job", "value": 'we"b'}])
    assert metric.query == 'x{job="we\\"b"}'


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"successCondition": "result[0] >="}, "successCondition"),
        ({"provider": {"prometheus": {"query": 'x{a="{{args.nobody}}"}'}}}, "nobody have no value"),
        ({"interval": "10s"}, "never ends"),
        ({"count": 3}, "needs an interval"),
        ({"interval": "{{args.job}}", "count": 2}, "interval"),
    ],
)
def test_template_problems_name_the_metric_and_the_reason(fields, problem):
    _, errors = resolved(**fields)
    assert len(errors) == 1 and problem in errors[0].message
    assert errors[0].path.startswith("spec.strategy.canary.steps[1].analysis.templates[0]")
    assert "metric rate" in errors[0].path


def test_an_unbounded_metric_is_fine_in_the_background():
    metrics, errors = resolved(bounded=False, interval="10s")
    assert not errors and metrics[0].count is None


def test_a_missing_template_and_an_unreadable_one_are_reported():
    ref = RolloutAnalysis(templates=[{"name": "gone"}, {"name": "bad", "clusterScope": True}])
    lookup = {TemplateKey("bad", True): "spec.metrics: Field required"}
    _, errors = resolve(ref, "spec.strategy.rolling.analysis", lookup, {}, bounded=False)
    assert [str(e) for e in errors] == [
        "spec.strategy.rolling.analysis.templates[0]: AnalysisTemplate gone not found",
        "spec.strategy.rolling.analysis.templates[1]: ClusterAnalysisTemplate bad is not valid: "
        "spec.metrics: Field required",
    ]
