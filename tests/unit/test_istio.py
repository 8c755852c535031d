"""The Istio router: documents valid against the real VirtualService schema, user fields untouched."""

import copy

import pytest

from rollout.api.spec import HeaderMatch
from rollout.traffic.base import STABLE_ONLY, HeaderRoute, Mirror, RouteProblem, TrafficState
from rollout.traffic.istio import IstioRouter
from tests.manifests import virtual_service_manifest
from tests.thirdparty import istio_errors


def virtual_service():
    return virtual_service_manifest()


ROUTER = IstioRouter("web", "web-stable", "web-canary", http_routes=("primary",))
DARK = HeaderRoute(
    "dark", (HeaderMatch(header="End-User", exact="jason"), HeaderMatch(header="x-tier", prefix="beta"))
)


def entry(doc, name):
    return next(e for e in doc["spec"]["http"] if e.get("name") == name)


def test_weights_on_named_http_route_and_nothing_else_touched():
    new = ROUTER.desired(virtual_service(), TrafficState(weight=40))
    assert istio_errors(new) == []
    assert [r["weight"] for r in entry(new, "primary")["route"]] == [60, 40]
    for field in ("timeout", "retries", "corsPolicy", "match"):
        assert entry(new, "primary")[field] == entry(virtual_service(), "primary")[field]
    assert entry(new, "admin") == entry(virtual_service(), "admin")
    assert new["spec"]["tcp"] == virtual_service()["spec"]["tcp"]


def test_header_route_is_inserted_before_with_lowercase_headers():
    new = ROUTER.desired(virtual_service(), TrafficState(header_routes=(DARK,)))
    assert istio_errors(new) == []
    assert [e.get("name") for e in new["spec"]["http"]] == ["admin", "rollout.dev.web.dark", "primary"]
    dark = entry(new, "rollout.dev.web.dark")
    assert dark["match"] == [
        {"uri": {"prefix": "/"}, "headers": {"end-user": {"exact": "jason"}, "x-tier": {"prefix": "beta"}}}
    ]
    assert dark["route"] == [{"destination": {"host": "web-canary", "port": {"number": 80}}, "weight": 100}]
    assert dark["timeout"] == "5s" and dark["retries"] == entry(virtual_service(), "primary")["retries"]


def test_mirror_and_restore():
    busy = ROUTER.desired(
        virtual_service(), TrafficState(weight=50, header_routes=(DARK,), mirror=Mirror("m", 20))
    )
    assert istio_errors(busy) == []
    primary = entry(busy, "primary")
    assert primary["mirror"] == {"host": "web-canary", "port": {"number": 80}}
    assert primary["mirrorPercentage"] == {"value": 20.0}
    applied = ROUTER.applied(busy)
    assert (applied.weight, [h.name for h in applied.header_routes], applied.mirror.percent) == (
        50,
        ["dark"],
        20,
    )
    restored = ROUTER.desired(busy, STABLE_ONLY)
    assert restored == virtual_service()


def test_tcp_route_by_port_with_fqdn_hosts():
    router = IstioRouter("web", "web-stable", "web-canary", tcp_ports=(5432,))
    new = router.desired(virtual_service(), TrafficState(weight=20))
    assert istio_errors(new) == []
    assert [r["weight"] for r in new["spec"]["tcp"][0]["route"]] == [80, 20]
    assert new["spec"]["http"] == virtual_service()["spec"]["http"]
    assert router.applied(new).weight == 20
    with pytest.raises(RouteProblem, match="tcp routes carry weights only"):
        router.desired(virtual_service(), TrafficState(header_routes=(DARK,)))
    with pytest.raises(RouteProblem, match="no tcp route matching port 3306"):
        IstioRouter("web", "web-stable", "web-canary", tcp_ports=(3306,)).desired(
            virtual_service(), STABLE_ONLY
        )


def test_destinations_by_subset():
    vs = virtual_service()
    vs["spec"]["http"][1]["route"] = [
        {"destination": {"host": "web", "subset": "stable"}, "weight": 100},
        {"destination": {"host": "web", "subset": "canary"}, "weight": 0},
    ]
    router = IstioRouter(
        "web", "web", "web", http_routes=("primary",), stable_subset="stable", canary_subset="canary"
    )
    new = router.desired(vs, TrafficState(weight=10, mirror=Mirror("m", 5)))
    assert istio_errors(new) == []
    assert [r["weight"] for r in entry(new, "primary")["route"]] == [90, 10]
    assert entry(new, "primary")["mirror"] == {"host": "web", "subset": "canary"}


def test_route_problems():
    with pytest.raises(RouteProblem, match="no http route named 'api'"):
        IstioRouter("web", "web-stable", "web-canary", http_routes=("api",)).desired(
            virtual_service(), STABLE_ONLY
        )
    with pytest.raises(RouteProblem, match="http route named 'admin' must route to both"):
        IstioRouter("web", "web-stable", "web-canary", http_routes=("admin",)).desired(
            virtual_service(), STABLE_ONLY
        )
    vs = virtual_service()
    vs["spec"]["http"][1]["mirror"] = {"host": "recorder"}
    with pytest.raises(RouteProblem, match="already mirrors to recorder"):
        ROUTER.desired(vs, TrafficState(mirror=Mirror("m", 10)))
    assert entry(ROUTER.desired(vs, STABLE_ONLY), "primary")["mirror"] == {"host": "recorder"}


def test_the_schema_check_can_fail():
    bad = copy.deepcopy(virtual_service())
    bad["spec"]["http"][1]["match"][0]["headers"] = {"x": {"exact": "a", "prefix": "b"}}
    bad["spec"]["http"][1]["route"][0]["weight"] = "heavy"
    assert len(istio_errors(bad)) >= 2
