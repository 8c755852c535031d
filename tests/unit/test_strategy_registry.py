"""The strategy seam: every strategy of the spec is in the registry, says its Services, analyses
and routing in one place that every layer reads, and a decision works out its routing once."""

from datetime import UTC, datetime
from importlib import import_module

import pytest

import rollout.engine.validation as validation_module
from rollout.analysis.resolve import analysis_refs, builtin_args
from rollout.api.rollout import parse_rollout
from rollout.api.spec import Strategy
from rollout.api.vocabulary import BLUE_GREEN_PAUSE, CANARY_PAUSE, PROMOTABLE_PAUSES
from rollout.engine import Observed, decide
from rollout.engine.canary import CanaryPlan
from rollout.engine.recovery import users_service
from rollout.engine.rolling import RollingUpdate
from rollout.engine.side_by_side import SideBySide
from rollout.engine.strategies import STRATEGIES, pause_reasons, strategy_of
from rollout.engine.validation import referenced_services
from rollout.observability.metrics import _strategy
from rollout.traffic.base import ObservedRoute, TrafficState
from rollout.traffic.routing import routing_of
from tests.manifests import rollout_manifest

ANALYSIS = {"templates": [{"name": "success-rate"}]}
ROUTES = {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}}
CANARY = {
    "canary": {
        "stableService": "web-stable",
        "canaryService": "web-canary",
        "trafficRouting": ROUTES,
        "analysis": ANALYSIS,
        "steps": [{"setWeight": 20}, {"analysis": ANALYSIS}],
    }
}
BLUE_GREEN = {
    "blueGreen": {
        "activeService": "web-active",
        "previewService": "web-preview",
        "trafficRouting": ROUTES,
        "prePromotionAnalysis": ANALYSIS,
    }
}
ROLLING = {"rolling": {"analysis": ANALYSIS}}
# The module, not the function rollout.engine exports under the same name.
decide_module = import_module("rollout.engine.decide")


def _rollout(strategy):
    return parse_rollout(rollout_manifest(strategy=strategy)).rollout


def test_every_strategy_of_the_spec_is_registered_under_its_field():
    assert [s.config for s in STRATEGIES] == Strategy.configs()
    aliases = [info.alias for info in Strategy.model_fields.values()]
    assert [s.config.field for s in STRATEGIES] == aliases == ["rolling", "canary", "blueGreen"]
    for strategy in (CANARY, BLUE_GREEN, ROLLING):
        rollout = _rollout(strategy)
        assert strategy_of(rollout).config is type(rollout.spec.strategy.chosen)


@pytest.mark.parametrize(
    ("strategy", "stable", "canary", "paths"),
    [
        (CANARY, "web-stable", "web-canary", ["canary.stableService", "canary.canaryService"]),
        (BLUE_GREEN, "web-active", "web-preview", ["blueGreen.activeService", "blueGreen.previewService"]),
        (ROLLING, "", "", []),
    ],
)
def test_the_service_pair_is_worked_out_once_and_read_by_every_layer(strategy, stable, canary, paths):
    rollout = _rollout(strategy)
    services = rollout.spec.strategy.chosen.services()
    assert (services.stable, services.canary) == (stable, canary)
    assert referenced_services(rollout) == {
        f"spec.strategy.{p}": n for p, n in zip(paths, (stable, canary), strict=False)
    }
    args = builtin_args(rollout, "s", "c")
    assert (args["stable-service"], args["canary-service"]) == (stable, canary)
    assert users_service(rollout) == (stable or None)
    routing = routing_of(rollout)
    if stable:
        assert routing is not None
        assert (routing.stable_service, routing.canary_service) == (stable, canary)
        assert routing.strategy_path == services.path
    else:
        assert routing is None


def test_each_strategy_declares_its_analyses_and_its_label():
    assert list(analysis_refs(_rollout(CANARY))) == ["background", "step-2"]
    assert analysis_refs(_rollout(CANARY))["step-2"][0] == "spec.strategy.canary.steps[1].analysis"
    assert list(analysis_refs(_rollout(BLUE_GREEN))) == ["pre-promotion"]
    path, ref = analysis_refs(_rollout(ROLLING))["background"]
    assert (path, ref.templates[0].name) == ("spec.strategy.rolling.analysis", "success-rate")
    labels = [_strategy(parse_rollout(rollout_manifest(strategy=s))) for s in (CANARY, BLUE_GREEN, ROLLING)]
    assert labels == ["canary", "blueGreen", "rolling"]


def test_pause_reasons_come_from_the_strategies_and_a_promote_passes_them():
    assert set(pause_reasons()) == {CANARY_PAUSE, BLUE_GREEN_PAUSE}
    assert set(pause_reasons()) <= set(PROMOTABLE_PAUSES)


def test_the_rolling_update_has_its_own_base():
    assert not issubclass(RollingUpdate, SideBySide)
    assert issubclass(CanaryPlan, SideBySide)


def test_a_decision_works_out_its_routing_once(monkeypatch):
    canary = {"canary": {**CANARY["canary"], "analysis": None, "steps": [{"setWeight": 20}]}}
    parsed = parse_rollout(rollout_manifest(strategy=canary))
    route = ObservedRoute("HTTPRoute", "web", "spec.strategy.canary.trafficRouting", TrafficState(weight=0))
    observed = Observed(services={"web-stable": {}, "web-canary": {}}, routes=(route,))
    calls = []
    real = decide_module.routing_of
    monkeypatch.setattr(decide_module, "routing_of", lambda r: calls.append(r) or real(r))

    def not_again(rollout):
        raise AssertionError("worked out again")

    monkeypatch.setattr(validation_module, "routing_of", not_again)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    decision = decide(parsed, observed, [], now)
    assert len(calls) == 1
    assert not decision.status.condition("InvalidSpec") and decision.actions  # the strategy ran
    decide(parsed, observed, [], now, routing=real(parsed.rollout))  # the reconciler's, passed on
    assert len(calls) == 1
