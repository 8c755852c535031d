"""The ingress-nginx router: the canary Ingress it builds (checked against the networking.k8s.io/v1
Ingress schema by kubernetes-validate, strict), the stable Ingress never modified, what validation
refuses, and a canary driven through the engine on those documents."""

import copy

import kubernetes_validate
import pytest

from rollout.api.spec import HeaderMatch
from rollout.engine import Command
from rollout.traffic.base import STABLE_ONLY, HeaderRoute, Mirror, RouteProblem, TrafficState
from rollout.traffic.nginx import NginxRouter
from tests.manifests import NGINX_ROUTING, canary_strategy, ingress_manifest, rollout_manifest
from tests.sim import Sim
from tests.unit.scenarios import canary_sim

ROUTER = NginxRouter("web", "web-stable", "web-canary", "web")
CANARY = "web-web-canary"
ANNOTATION = "nginx.ingress.kubernetes.io/"


def valid_ingress(document):
    """Raises when `document` is not a networking.k8s.io/v1 Ingress (unknown fields included)."""
    body = {**document, "metadata": {"name": CANARY, "namespace": "shop", **document["metadata"]}}
    kubernetes_validate.validate(body, kubernetes_validate.latest_version(), strict=True)
    return document


def test_canary_ingress_copies_hosts_and_stable_paths_to_the_canary_service():
    stable = ingress_manifest()
    before = copy.deepcopy(stable)
    canary = valid_ingress(ROUTER.desired(stable, TrafficState(weight=30)))
    assert stable == before  # read, never modified
    assert canary["metadata"]["annotations"] == {
        f"{ANNOTATION}canary": "true",
        f"{ANNOTATION}canary-weight": "30",
        f"{ANNOTATION}canary-weight-total": "100",
    }
    assert canary["spec"]["ingressClassName"] == "nginx"
    assert [(r["host"], [p["path"] for p in r["http"]["paths"]]) for r in canary["spec"]["rules"]] == [
        ("shop.example.com", ["/"]),
        ("www.shop.example.com", ["/"]),
    ]
    backends = {p["backend"]["service"]["name"] for r in canary["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"web-canary"}
    assert ROUTER.applied(canary) == TrafficState(weight=30)
    assert ROUTER.explicit(stable, canary)


@pytest.mark.parametrize(
    ("match", "annotations"),
    [
        (HeaderMatch(header="X-Canary", exact="yes"), {"canary-by-header-value": "yes"}),
        (HeaderMatch(header="X-Canary", regex="^(yes|1)$"), {"canary-by-header-pattern": "^(yes|1)$"}),
    ],
)
def test_a_header_route_becomes_canary_by_header(match, annotations):
    state = TrafficState(weight=0, header_routes=(HeaderRoute("testers", (match,)),))
    canary = valid_ingress(ROUTER.desired(ingress_manifest(), state))
    written = canary["metadata"]["annotations"]
    assert written[f"{ANNOTATION}canary-by-header"] == "X-Canary"
    assert {k.removeprefix(ANNOTATION): v for k, v in written.items() if "by-header-" in k} == annotations
    assert written[f"{ANNOTATION}canary-weight"] == "0"
    assert [h.name for h in ROUTER.applied(canary).header_routes] == ["testers"]


def test_at_rest_there_is_no_canary_ingress():
    assert ROUTER.desired(ingress_manifest(), STABLE_ONLY) is None
    assert ROUTER.applied(None) == STABLE_ONLY


def test_what_ingress_nginx_cannot_carry_is_refused():
    with pytest.raises(RouteProblem, match="cannot mirror"):
        ROUTER.desired(ingress_manifest(), TrafficState(weight=10, mirror=Mirror("m", 50)))
    two = tuple(HeaderRoute(n, (HeaderMatch(header="x", exact=n),)) for n in ("a", "b"))
    with pytest.raises(RouteProblem, match="one header route at a time"):
        ROUTER.desired(ingress_manifest(), TrafficState(header_routes=two))
    elsewhere = NginxRouter("web", "other-stable", "web-canary", "web")
    with pytest.raises(RouteProblem, match="no path of Ingress web sends to Service other-stable"):
        elsewhere.check(ingress_manifest())


def make_sim(steps):
    """A canary taking `steps` on the stable Ingress `web`, first deploy Healthy."""
    return canary_sim(canary_strategy(steps, NGINX_ROUTING), route=ingress_manifest())


def run(sim, rounds, *commands):
    for _ in range(rounds):
        sim.reconcile(*commands)
        commands = ()
        sim.pods_ready()
        sim.tick()


def weight(sim):
    canary = sim.routes.get(CANARY)
    return None if canary is None else canary["metadata"]["annotations"][f"{ANNOTATION}canary-weight"]


def test_canary_moves_weight_on_the_canary_ingress_and_deletes_it_at_completion():
    sim = make_sim([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {"duration": 5}}])
    stable = copy.deepcopy(sim.routes["web"])
    assert CANARY not in sim.routes  # at rest: no canary Ingress
    sim.set_image("web:2")
    run(sim, 8)
    assert weight(sim) == "20" and sim.status["phase"] == "Paused"
    valid_ingress(sim.routes[CANARY])
    run(sim, 4, Command("promote"))
    assert weight(sim) == "60"
    run(sim, 20)  # the 5 s pause, then completion
    assert sim.status["phase"] == "Healthy" and sim.status["stableRevision"] == sim.revision_for("web:2")
    assert CANARY not in sim.routes
    assert sim.routes["web"] == stable


def test_abort_deletes_the_canary_ingress():
    sim = make_sim([{"setWeight": 40}, {"pause": {}}])
    sim.set_image("web:2")
    run(sim, 8)
    assert weight(sim) == "40"
    run(sim, 6, Command("abort"))
    assert CANARY not in sim.routes
    assert sim.status["canary"]["weight"] == 0


def invalid_message(steps):
    sim = Sim(
        rollout_manifest(strategy=canary_strategy(steps, NGINX_ROUTING)),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": ingress_manifest()},
    )
    sim.reconcile()
    return next(c for c in sim.status["conditions"] if c["type"] == "InvalidSpec")["message"]


def header_step(name, **match):
    return {"setHeaderRoute": {"name": name, "match": [{"header": "X-Canary", **match}]}}


def test_validation_says_what_ingress_nginx_cannot_do():
    two_at_once = invalid_message([header_step("a", exact="1"), header_step("b", exact="2"), {"pause": {}}])
    assert (
        "spec.strategy.canary.steps[1].setHeaderRoute: ingress-nginx carries one header route at a time "
        "(canary-by-header); remove the other first; active here: a, b"
    ) in two_at_once
    mirror = invalid_message([{"setMirrorRoute": {"name": "m", "percent": 10}}])
    assert "spec.strategy.canary.steps[0].setMirrorRoute: ingress-nginx cannot mirror traffic" in mirror
    prefix = invalid_message([header_step("a", prefix="1")])
    assert "steps[0].setHeaderRoute.match[0].prefix: ingress-nginx header matches are exact" in prefix


def test_one_header_route_after_another_is_valid():
    steps = [header_step("a", exact="1"), {"setHeaderRoute": {"name": "a"}}, header_step("b", regex="^2$")]
    sim = make_sim([*steps, {"pause": {}}])
    sim.set_image("web:2")
    run(sim, 12)
    annotations = sim.routes[CANARY]["metadata"]["annotations"]
    assert annotations[f"{ANNOTATION}canary-by-header-pattern"] == "^2$"
    assert f"{ANNOTATION}canary-by-header-value" not in annotations
