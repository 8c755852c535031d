"""Bad input in the pure engine: Rollouts that claim the same Service, route rule or pods,
analysis templates naming an unknown provider, and headers naming a missing Secret or key. Each is
InvalidSpec with the field path and an Event, and nothing is scaled, pinned or routed."""

import copy
from datetime import UTC, datetime

import pytest

from rollout.analysis.resolve import TemplateKey
from rollout.api.rollout import parse_rollout
from rollout.api.templates import parse_template
from rollout.engine.decide import decide
from rollout.engine.types import Observed
from rollout.engine.validation import claims_of
from tests.manifests import canary_strategy, http_route_manifest, rollout_manifest
from tests.sim import Sim
from tests.unit.scenarios import app_weights, run

SERVICES = {"web-stable": {"app": "web"}, "web-canary": {"app": "web"}}
STEPS = [{"setWeight": 20}, {"pause": {}}]


def manifest(name="web", created="2026-01-01T00:00:00Z", strategy=None, labels=None):
    m = rollout_manifest(name, strategy=strategy or canary_strategy(steps=STEPS))
    m["metadata"]["creationTimestamp"] = created
    if labels is not None:
        m["spec"]["selector"]["matchLabels"] = dict(labels)
        m["spec"]["template"]["metadata"]["labels"] = dict(labels)
    else:  # the test manifests label pods app=<name>; keep them on app=web like the Services
        m["spec"]["selector"]["matchLabels"] = {"app": name}
    return m


def claims(m):
    return claims_of(parse_rollout(copy.deepcopy(m)).rollout)


def invalid_message(sim):
    return next(c for c in sim.status["conditions"] if c["type"] == "InvalidSpec")["message"]


def assert_nothing_moved(sim, route_before):
    assert sim.status["phase"] == "Degraded"
    assert sim.replicasets == {} and sim.traffic_writes == []
    assert sim.services == SERVICES  # no Service pinned
    assert sim.routes["web"] == route_before
    events = [e for d in sim.decisions for e in d.events]
    assert any(e.reason == "InvalidSpec" and e.type == "Warning" for e in events)


def new_sim(m, others=(), **kw):
    return Sim(
        m, services=copy.deepcopy(SERVICES), routes={"web": http_route_manifest()}, others=others, **kw
    )


def other_strategy(**routing_ref):
    """A canary on other Services, on the same HTTPRoute `web`."""
    strategy = canary_strategy(
        steps=STEPS, routing={"gatewayAPI": {"httpRoutes": [{"name": "web", **routing_ref}]}}
    )
    strategy["canary"].update(stableService="api-stable", canaryService="api-canary")
    return strategy


def test_the_younger_of_two_rollouts_on_the_same_services_is_invalid_and_moves_nothing():
    older = manifest("api", created="2026-01-01T00:00:00Z", labels={"app": "api"})
    younger = manifest("web", created="2026-01-02T00:00:00Z")
    sim = new_sim(younger, others=(claims(older),))
    before = copy.deepcopy(sim.routes["web"])
    run(sim, rounds=3)
    message = invalid_message(sim)
    assert (
        "spec.strategy.canary.stableService: Service shop/web-stable is already managed by "
        "Rollout shop/api (older)" in message
    )
    assert "spec.strategy.canary.canaryService: Service shop/web-canary" in message
    assert "backends web-stable,web-canary of httproutes shop/web is already managed by" in message
    assert_nothing_moved(sim, before)


def test_the_older_rollout_keeps_working_and_the_tie_goes_by_name():
    older = manifest("web", created="2026-01-01T00:00:00Z")
    younger = manifest("web2", created="2026-01-01T00:00:00Z", labels={"app": "web2"})  # same second
    sim = new_sim(older, others=(claims(younger),))
    sim.settle()
    assert sim.status["phase"] == "Healthy"
    sim.set_image("web:2")
    run(sim, rounds=6)
    assert app_weights(sim)["web-canary"] == 20 and sim.status["phase"] == "Paused"
    assert not any(c["type"] == "InvalidSpec" for c in sim.status["conditions"])


def test_the_same_named_route_rule_is_a_conflict_even_on_other_services():
    older = manifest("api", labels={"app": "api"}, strategy=other_strategy(rule="app"))
    routing = {"gatewayAPI": {"httpRoutes": [{"name": "web", "rule": "app"}]}}
    younger = manifest(
        "web", created="2026-01-02T00:00:00Z", strategy=canary_strategy(steps=STEPS, routing=routing)
    )
    sim = new_sim(younger, others=(claims(older),))
    before = copy.deepcopy(sim.routes["web"])
    run(sim, rounds=3)
    assert invalid_message(sim) == (
        "spec.strategy.canary.trafficRouting.gatewayAPI.httpRoutes[0]: rule 'app' of httproutes "
        "shop/web is already managed by Rollout shop/api (older)"
    )
    assert_nothing_moved(sim, before)


def test_other_rules_of_the_same_route_and_disjoint_selectors_are_no_conflict():
    older = manifest("api", labels={"app": "api"}, strategy=other_strategy(rule="static"))
    sim = new_sim(manifest("web", created="2026-01-02T00:00:00Z"), others=(claims(older),))
    sim.settle()
    assert sim.status["phase"] == "Healthy"


@pytest.mark.parametrize(
    ("older_labels", "younger_labels", "younger_selector"),
    [
        ({"app": "web"}, {"app": "web"}, None),  # the same selector
        ({"app": "web"}, {"app": "web", "tier": "edge"}, None),  # the older one selects its pods
        ({"app": "web", "tier": "edge"}, {"app": "web", "tier": "edge"}, {"app": "web"}),  # subset
    ],
)
def test_overlapping_selectors_stop_the_younger_rollout(older_labels, younger_labels, younger_selector):
    older = manifest("api", labels=older_labels, strategy=other_strategy())
    younger = manifest("web", created="2026-01-02T00:00:00Z", labels=younger_labels)
    if younger_selector is not None:
        younger["spec"]["selector"]["matchLabels"] = younger_selector
    sim = new_sim(younger, others=(claims(older),))
    before = copy.deepcopy(sim.routes["web"])
    run(sim, rounds=3)
    message = invalid_message(sim)
    assert message.startswith("spec.selector: selector ") and "of Rollout shop/api (older)" in message
    assert_nothing_moved(sim, before)


def template(provider=None, headers=None):
    prometheus = {"query": "up", **({"headers": headers} if headers else {})}
    return parse_template(
        {
            "spec": {
                "metrics": [
                    {
                        "name": "ok",
                        "successCondition": "result[0] >= 1",
                        "provider": {"prometheus": prometheus},
                    },
                    {
                        "name": "rate",
                        "successCondition": "result[0] >= 0.99",
                        "provider": provider if provider is not None else {"prometheus": prometheus},
                    },
                ]
            }
        }
    )


ANALYSED = canary_strategy(steps=[{"setWeight": 20}, {"analysis": {"templates": [{"name": "rate"}]}}])


@pytest.mark.parametrize(
    ("provider", "said"),
    [
        ({"acmeMetrics": {"query": "avg:web.errors{*}"}}, "unknown provider kind acmeMetrics"),
        ({}, "no provider kind given"),
    ],
)
def test_an_unknown_provider_is_invalid_spec_naming_the_template_and_metric(provider, said):
    sim = new_sim(manifest(strategy=ANALYSED), templates={TemplateKey("rate"): template(provider)})
    before = copy.deepcopy(sim.routes["web"])
    run(sim, rounds=3)
    message = invalid_message(sim)
    assert message.startswith(
        "spec.strategy.canary.steps[1].analysis.templates[0]: AnalysisTemplate rate is not valid: "
        "spec.metrics[1].provider: " + said
    )
    assert "this controller measures with: prometheus" in message
    assert_nothing_moved(sim, before)


SECRET_HEADER = [
    {"key": "Authorization", "valueFrom": {"secretKeyRef": {"name": "prom-auth", "key": "token"}}}
]


@pytest.mark.parametrize(
    ("secrets", "said"),
    [
        ({}, "Secret shop/prom-auth not found"),
        ({"prom-auth": None}, "Secret shop/prom-auth not found"),
        ({"prom-auth": frozenset({"other"})}, "Secret shop/prom-auth has no key 'token'"),
    ],
)
def test_a_missing_header_secret_is_invalid_spec_then_recovers(secrets, said):
    sim = new_sim(
        manifest(strategy=ANALYSED),
        templates={TemplateKey("rate"): template(headers=SECRET_HEADER)},
        secrets=dict(secrets),
        metric_values={"ok": [1.0], "rate": [1.0]},
    )
    before = copy.deepcopy(sim.routes["web"])
    run(sim, rounds=3)
    assert invalid_message(sim) == (
        "spec.strategy.canary.steps[1].analysis.templates[0]: AnalysisTemplate rate "
        "metrics[0].provider.prometheus.headers[0].valueFrom.secretKeyRef (header 'Authorization'): "
        + said
        + "; spec.strategy.canary.steps[1].analysis.templates[0]: AnalysisTemplate rate "
        "metrics[1].provider.prometheus.headers[0].valueFrom.secretKeyRef (header 'Authorization'): " + said
    )
    assert_nothing_moved(sim, before)
    sim.secrets["prom-auth"] = frozenset({"token"})  # created: the next (periodic) reconcile recovers
    sim.settle()
    assert sim.status["phase"] == "Healthy"
    assert any(e.reason == "SpecValid" for d in sim.decisions for e in d.events)


def test_a_changed_invalid_spec_message_gets_an_event_of_its_own():
    sim = new_sim(
        manifest(strategy=ANALYSED), templates={TemplateKey("rate"): template(headers=SECRET_HEADER)}
    )
    run(sim, rounds=2)
    sim.secrets["prom-auth"] = frozenset({"other"})
    run(sim, rounds=2)
    said = [
        e.message.rsplit(": ", 1)[-1] for d in sim.decisions for e in d.events if e.reason == "InvalidSpec"
    ]
    assert said == ["Secret shop/prom-auth not found", "Secret shop/prom-auth has no key 'token'"]


def test_a_pod_template_the_api_server_refused_is_invalid_spec_in_its_words():
    """The CRD lets `memory: invalid` through; the API server refuses the ReplicaSet. Told so (the
    controller passes the refusal on), the engine stops on InvalidSpec with the server's words and
    decides no action, instead of asking for the same ReplicaSet forever."""
    parsed = parse_rollout(manifest())
    words = (
        'ReplicaSet.apps "web-5d8f" is invalid: spec.template.spec.containers[0].resources.'
        'requests[memory]: Invalid value: "invalid": quantities must match the regular expression'
    )
    decision = decide(parsed, Observed(refused_template=words), [], datetime(2026, 1, 1, tzinfo=UTC))
    assert decision.actions == []
    assert decision.status.phase == "Degraded"
    said = f"InvalidSpec: spec.template: the API server refused its ReplicaSet: {words}"
    assert decision.status.message.startswith(said)  # then the Services this Observed lacks
    assert [(e.reason, e.type) for e in decision.events] == [("InvalidSpec", "Warning")]
