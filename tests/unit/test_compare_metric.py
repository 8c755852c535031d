"""A compare metric from template to measurement: the per-side query templates filled for each
side, bad templates named at their field, and the bookkeeping recording the judge's score."""

import math
from datetime import UTC, datetime

import pytest

from rollout.analysis.compare import PROVIDER, CompareRequest
from rollout.analysis.provider import NoData
from rollout.analysis.resolve import TemplateKey, builtin_args, resolve, secret_refs
from rollout.analysis.runs import QueryResult, assess, record
from rollout.api.rollout import parse_rollout
from rollout.api.spec import RolloutAnalysis
from rollout.api.status import AnalysisRun
from rollout.api.templates import parse_template
from tests.manifests import canary_strategy, rollout_manifest

AT = datetime(2026, 1, 1, tzinfo=UTC)
LATENCY = (
    "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{"
    'namespace="{{args.namespace}}", rollout_dev_revision="{{side.revision}}"}[10s])))'
)
BUILTINS = {"namespace": "shop", "rollout": "web", "canary-hash": "c4n4ry", "stable-hash": "st4bl3"}


def compare_spec(**fields):
    query = {"name": "p99", "query": LATENCY, "tolerance": "5%", **fields.pop("query_fields", {})}
    return {"queries": [query], "window": "1m", "step": "5s", **fields}


def template(compare=None, **metric):
    return {
        "spec": {"metrics": [{"name": "judge", "provider": {"compare": compare or compare_spec()}, **metric}]}
    }


def resolved(raw, builtins=BUILTINS):
    lookup = {TemplateKey("t"): parse_template(raw)}
    ref = RolloutAnalysis(templates=[{"name": "t"}])
    return resolve(ref, "spec.strategy.canary.steps[1].analysis", lookup, builtins, bounded=True)


def test_each_side_gets_its_own_revision_in_the_query():
    metrics, errors = resolved(template())
    assert not errors
    request = metrics[0].request
    assert isinstance(request, CompareRequest)
    (query,) = request.queries
    assert 'rollout_dev_revision="c4n4ry"' in query.canary and 'namespace="shop"' in query.canary
    assert 'rollout_dev_revision="st4bl3"' in query.reference
    assert request.window == 60 and request.step == 5 and request.no_reference == ""
    criteria = request.settings.queries[0].criteria
    assert criteria.tolerance == pytest.approx(0.05) and criteria.direction == "increase"
    assert (request.settings.marginal, request.settings.passing, request.settings.against) == (
        75,
        95,
        "stable",
    )


ROLE_QUERY = 'up{pod=~"{{side.pods}}", role="{{side.role}}"}'


def test_pods_and_role_placeholders_name_each_side():
    steps = [{"setWeight": 20}, {"analysis": {"templates": [{"name": "t"}]}}]
    strategy = canary_strategy(
        steps, canaryMetadata={"labels": {"role": "preview"}}, stableMetadata={"labels": {"role": "live"}}
    )
    rollout = parse_rollout(rollout_manifest(strategy=strategy)).rollout
    builtins = builtin_args(rollout, "st4bl3", "c4n4ry")
    metrics, errors = resolved(template(compare_spec(query_fields={"query": ROLE_QUERY})), builtins)
    assert not errors
    (sides,) = metrics[0].request.queries
    assert sides.canary == 'up{pod=~"web-c4n4ry-[bcdfghjklmnpqrstvwxz2456789]{5}", role="preview"}'
    assert sides.reference == 'up{pod=~"web-st4bl3-[bcdfghjklmnpqrstvwxz2456789]{5}", role="live"}'


def test_side_role_without_role_labels_on_the_rollout_is_invalid():
    steps = [{"setWeight": 20}, {"analysis": {"templates": [{"name": "t"}]}}]
    strategy = canary_strategy(steps, canaryMetadata={"labels": {"role": "canary"}})
    rollout = parse_rollout(rollout_manifest(strategy=strategy)).rollout
    builtins = builtin_args(rollout, "st4bl3", "c4n4ry")
    metrics, errors = resolved(template(compare_spec(query_fields={"query": ROLE_QUERY})), builtins)
    assert not metrics
    message = str(errors[0])
    assert "compare.queries[0].query uses {{side.role}}" in message
    assert "no `role` label for the stable pods" in message


def test_a_query_without_a_per_side_placeholder_is_invalid_at_its_field():
    metrics, errors = resolved(template(compare_spec(query_fields={"query": 'up{job="web"}'})))
    assert not metrics and len(errors) == 1
    message = str(errors[0])
    assert "spec.metrics[0].provider.compare.queries[0].query" in message
    assert "no per-side placeholder" in message and "{{side.revision}}" in message


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (
            template(compare_spec(query_fields={"query": "up{x='{{side.hash}}'}"})),
            "queries[0].query",
            "side.hash",
        ),
        (template(compare_spec(query_fields={"tolerance": "five"})), "queries[0].tolerance", "percentage"),
        (template(compare_spec(marginalScore=96)), "compare", "marginalScore 96 is above passScore 95"),
        (template(compare_spec(step="2m")), "compare", "no longer than window"),
        (template(compare_spec(against="canary")), "compare.against", "'stable' or 'baseline'"),
        (template(successCondition="result > 1"), "spec.metrics[0]", "takes no successCondition"),
    ],
)
def test_bad_compare_settings_are_named(raw, field, words):
    message = parse_template(raw)
    assert isinstance(message, str) and field in message and words in message, message


def test_window_and_step_may_be_arguments_checked_once_known():
    spec = compare_spec(window="{{args.window}}", step="{{args.step}}")
    raw = template(spec)
    raw["spec"]["args"] = [{"name": "window", "value": "30s"}, {"name": "step", "value": "3s"}]
    (metric,), errors = resolved(raw)
    assert not errors and (metric.request.window, metric.request.step) == (30, 3)
    raw["spec"]["args"][1]["value"] = "1m"
    metrics, errors = resolved(raw)
    assert not metrics and "step (60s) must be positive and no longer than window (30s)" in str(errors[0])


def test_without_a_stable_revision_other_than_the_canary_there_is_no_data():
    metrics, errors = resolved(template(), {**BUILTINS, "stable-hash": "c4n4ry"})
    assert not errors
    with pytest.raises(NoData, match="no stable revision other than the canary's"):
        PROVIDER.measure(metrics[0].request, {}, {"prometheus": None}, {})


def run_with(metric, value):
    run = AnalysisRun(name="step-2", revision="c4n4ry", started_at=AT)
    result = QueryResult(run="step-2", revision="c4n4ry", metric=metric.name, at=AT, value=value)
    measurement = record(run, metric, result)
    assess(run, [metric], AT)
    return run, measurement


def test_the_bookkeeping_fails_the_run_on_a_low_score_and_names_the_worst_query():
    (metric,), _ = resolved(template())
    reference = [0.100 + 0.001 * (i % 7) for i in range(12)]
    canary = [v * 1.2 for v in reference]
    run, measurement = run_with(metric, {"p99": {"canary": canary, "reference": reference}})
    assert measurement.phase == "Failed" and measurement.score == 0 and measurement.against == "stable"
    assert run.phase == "Failed"
    assert "score 0 < marginalScore 75: p99 +19.9% vs stable, p=" in run.message
    assert measurement.comparisons[0].canary.samples == 12


def test_the_same_samples_on_both_sides_pass_and_nan_only_is_no_data():
    (metric,), _ = resolved(template())
    reference = [0.100 + 0.001 * (i % 7) for i in range(12)]
    run, measurement = run_with(metric, {"p99": {"canary": list(reference), "reference": reference}})
    assert run.phase == "Successful" and measurement.value == "score 100"
    run, measurement = run_with(metric, {"p99": {"canary": [math.nan] * 12, "reference": reference}})
    assert measurement.phase == "Inconclusive" and run.phase == "Inconclusive"
    assert measurement.comparisons[0].canary.dropped == 12
    assert "no data vs stable: p99 no data vs stable: canary has 0 sample(s)" in measurement.message


def test_a_secret_header_of_the_compare_endpoint_is_found_at_its_field():
    endpoint = {
        "headers": [{"key": "Authorization", "valueFrom": {"secretKeyRef": {"name": "prom", "key": "token"}}}]
    }
    raw = template(compare_spec(prometheus=endpoint))
    raw["metadata"] = {"name": "t"}
    steps = [{"setWeight": 20}, {"analysis": {"templates": [{"name": "t"}]}}]
    rollout = parse_rollout(rollout_manifest(strategy=canary_strategy(steps))).rollout
    (ref,) = secret_refs(rollout, {TemplateKey("t"): parse_template(raw)})
    assert ref.field == "metrics[0].provider.compare.prometheus.headers[0].valueFrom.secretKeyRef"
    assert (ref.secret, ref.key) == ("prom", "token")


def test_a_value_that_is_not_per_side_samples_is_an_error_never_a_pass():
    (metric,), _ = resolved(template())
    run, measurement = run_with(metric, 0.5)
    assert measurement.phase == "Error" and "not per-side samples: 0.5" in measurement.message
    assert run.phase == "Running"
