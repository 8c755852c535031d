"""The judge against a canary's baseline (compare `against: baseline`): the reference side's
queries name the baseline's revision (built-in argument baseline-hash), a Rollout without
baselineService is InvalidSpec at the template's field, {{side.role}} has no baseline value, and a
baseline not running yet is no data, never a pass."""

import copy

import pytest

from rollout.analysis.compare import PROVIDER
from rollout.analysis.provider import NoData
from rollout.analysis.resolve import TemplateKey, builtin_args, resolve
from rollout.api.rollout import parse_rollout
from rollout.api.spec import RolloutAnalysis
from rollout.api.templates import parse_template
from tests.manifests import canary_strategy, http_route_manifest, rollout_manifest
from tests.sim import Sim

PATH = "spec.strategy.canary.steps[1].analysis"
STEPS = [{"setWeight": 20}, {"analysis": {"templates": [{"name": "t"}]}}]
REVISION_QUERY = 'sum(rate(http_requests_total{rollout_dev_revision="{{side.revision}}", code=~"5.."}[30s]))'


def template(query=REVISION_QUERY, against="baseline"):
    return parse_template(
        {
            "spec": {
                "metrics": [
                    {
                        "name": "judge",
                        "provider": {
                            "compare": {
                                "against": against,
                                "window": "1m",
                                "step": "5s",
                                "queries": [{"name": "errors", "query": query}],
                            }
                        },
                    }
                ]
            }
        }
    )


def rollout(**extra):
    return parse_rollout(rollout_manifest(strategy=canary_strategy(STEPS, **extra))).rollout


def resolved(builtins, query=REVISION_QUERY, against="baseline"):
    lookup = {TemplateKey("t"): template(query, against)}
    ref = RolloutAnalysis(templates=[{"name": "t"}])
    return resolve(ref, PATH, lookup, builtins, bounded=True)


def test_against_baseline_the_reference_query_names_the_baseline_revision():
    builtins = builtin_args(rollout(baselineService="web-baseline"), "st4bl3", "c4n4ry", "b4s3l1n3")
    assert builtins["baseline-hash"] == "b4s3l1n3" and builtins["baseline-service"] == "web-baseline"
    (metric,), errors = resolved(builtins)
    assert not errors
    (query,) = metric.request.queries
    assert 'rollout_dev_revision="c4n4ry"' in query.canary
    assert 'rollout_dev_revision="b4s3l1n3"' in query.reference
    assert "st4bl3" not in query.reference
    assert metric.request.settings.against == "baseline" and metric.request.no_reference == ""


def test_the_pods_placeholder_names_the_baseline_replicaset_pods():
    builtins = builtin_args(rollout(baselineService="web-baseline"), "st4bl3", "c4n4ry", "b4s3l1n3")
    (metric,), errors = resolved(builtins, 'up{pod=~"{{side.pods}}"}')
    assert not errors
    assert metric.request.queries[0].reference == 'up{pod=~"web-b4s3l1n3-[bcdfghjklmnpqrstvwxz2456789]{5}"}'


def test_a_baseline_not_running_yet_is_no_data_never_a_pass():
    builtins = builtin_args(rollout(baselineService="web-baseline"), "st4bl3", "c4n4ry", None)
    assert builtins["baseline-hash"] == ""
    (metric,), errors = resolved(builtins)
    assert not errors
    assert metric.request.no_reference == "no baseline revision other than the canary's to compare against"
    with pytest.raises(NoData, match="no baseline revision"):
        PROVIDER.measure(metric.request, {}, {}, {})


def test_against_baseline_without_a_baseline_service_is_named_at_the_template():
    builtins = builtin_args(rollout(), "st4bl3", "c4n4ry")
    assert "baseline-hash" not in builtins
    metrics, errors = resolved(builtins)
    assert not metrics and len(errors) == 1
    assert errors[0].path == f"{PATH}.templates[0] (AnalysisTemplate t, metric judge)"
    assert "compare.against is baseline" in errors[0].message
    assert "spec.strategy.canary.baselineService" in errors[0].message


def test_side_role_has_no_baseline_value():
    builtins = builtin_args(rollout(baselineService="web-baseline"), "st4bl3", "c4n4ry", "b4s3l1n3")
    metrics, errors = resolved(builtins, 'up{role="{{side.role}}"}')
    assert not metrics
    assert "the baseline's pods carry no role label" in errors[0].message


def test_a_rollout_judged_against_a_baseline_it_does_not_run_is_invalid_spec_and_nothing_moves():
    services = {"web-stable": {"app": "web"}, "web-canary": {"app": "web"}}
    sim = Sim(
        rollout_manifest(replicas=4, strategy=canary_strategy(STEPS)),
        services=copy.deepcopy(services),
        routes={"web": http_route_manifest()},
        templates={TemplateKey("t"): template()},
    )
    sim.settle()
    assert sim.status["phase"] == "Degraded"
    invalid = next(c for c in sim.status["conditions"] if c["type"] == "InvalidSpec")
    assert f"{PATH}.templates[0]" in invalid["message"]
    assert "compare.against is baseline" in invalid["message"]
    assert sim.replicasets == {} and sim.traffic_writes == []
