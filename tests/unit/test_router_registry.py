"""The router seam: the registry lists every resource a router reads, writes or owns (what the
controller's caches watch), and validation learns what a router can carry from the router."""

from rollout.api.rollout import parse_rollout
from rollout.engine.types import Observed
from rollout.engine.validation import validate
from rollout.traffic.registry import PROVIDERS, watched_resources
from tests.manifests import rollout_manifest

VIRTUAL_SERVICE_ROUTING = {
    "istio": {
        "virtualService": {"name": "web", "routes": ["primary"]},
        "destinationRule": {"name": "web", "stableSubset": "stable", "canarySubset": "canary"},
    }
}


def test_watched_resources_name_every_kind_a_router_touches():
    kinds = {(r.group, r.version, r.kind, r.plural) for r in watched_resources()}
    assert ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes") in kinds
    assert ("gateway.networking.k8s.io", "v1", "TCPRoute", "tcproutes") in kinds
    assert ("networking.istio.io", "v1", "DestinationRule", "destinationrules") in kinds
    assert len(kinds) == len(watched_resources())  # each once
    assert {p.field for p in PROVIDERS} >= {"gatewayAPI", "istio"}


def _messages(strategy):
    parsed = parse_rollout(rollout_manifest(strategy=strategy))
    # Nothing found in the cluster: the VirtualService and the DestinationRule are missing.
    return [str(e) for e in validate(parsed.rollout, Observed(routes=(None,), pins=(None,)))]


def test_blue_green_with_subsets_is_refused_at_the_destination_rule():
    strategy = {"blueGreen": {"activeService": "web-active", "trafficRouting": VIRTUAL_SERVICE_ROUTING}}
    found = [m for m in _messages(strategy) if "subsets are for canaries" in m]
    assert found == [
        "spec.strategy.blueGreen.trafficRouting.istio.destinationRule: a blue/green switch routes to the "
        "active and preview Services; DestinationRule subsets are for canaries (remove it)"
    ]


def test_a_missing_destination_rule_is_reported_and_subsets_need_no_services():
    strategy = {"canary": {"trafficRouting": VIRTUAL_SERVICE_ROUTING, "steps": [{"setWeight": 10}]}}
    messages = _messages(strategy)
    assert (
        "spec.strategy.canary.trafficRouting.istio.destinationRule: DestinationRule shop/web not found"
        in (messages)
    )
    assert not any("required with trafficRouting" in m for m in messages)
