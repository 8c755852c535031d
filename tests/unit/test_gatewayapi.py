"""The Gateway API router: every document it writes is valid against the real CRD schemas, and
everything the user wrote that is not ours stays as it was."""

import copy

import pytest

from rollout.api.spec import HeaderMatch
from rollout.sandbox.structural import apply_defaults
from rollout.traffic.base import STABLE_ONLY, HeaderRoute, Mirror, RouteProblem, TrafficState
from rollout.traffic.gatewayapi import GatewayRouter
from tests.manifests import http_route_manifest
from tests.thirdparty import gateway_schema, schema_errors


def http_route():
    return http_route_manifest()


ROUTER = GatewayRouter("httproutes", "web", "web-stable", "web-canary")
DARK = HeaderRoute(
    "dark", (HeaderMatch(header="x-canary", exact="true"), HeaderMatch(header="user", regex="^qa-.*"))
)


def rule(doc, name):
    return next(r for r in doc["spec"]["rules"] if r.get("name") == name)


def test_weights_written_explicitly_and_nothing_else_touched():
    route = http_route()
    new = ROUTER.desired(route, TrafficState(weight=30))
    assert schema_errors("HTTPRoute", new) == []
    assert [r.get("weight") for r in rule(new, "app")["backendRefs"]] == [70, 30]
    assert rule(new, "static") == rule(route, "static")
    assert rule(new, "app")["filters"] == rule(route, "app")["filters"]
    assert rule(new, "app")["timeouts"] == {"request": "10s"}
    assert new["spec"]["parentRefs"] == route["spec"]["parentRefs"]
    assert route == http_route(), "the input document must not be modified"


def test_header_route_is_a_managed_rule_to_the_canary_only():
    new = ROUTER.desired(http_route(), TrafficState(weight=0, header_routes=(DARK,)))
    assert schema_errors("HTTPRoute", new) == []
    names = [r.get("name") for r in new["spec"]["rules"]]
    assert names == ["static", "rollout.dev.web.dark", "app"]
    managed = rule(new, "rollout.dev.web.dark")
    assert managed["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [
                {"name": "x-canary", "type": "Exact", "value": "true"},
                {"name": "user", "type": "RegularExpression", "value": "^qa-.*"},
            ],
        }
    ]
    assert managed["backendRefs"] == [{"name": "web-canary", "port": 8080, "weight": 1}]
    assert managed["filters"] == rule(http_route(), "app")["filters"]
    assert [r["weight"] for r in rule(new, "app")["backendRefs"]] == [100, 0]


def test_mirror_is_a_request_mirror_filter_with_percent():
    new = ROUTER.desired(http_route(), TrafficState(weight=10, mirror=Mirror("shadow", 20)))
    assert schema_errors("HTTPRoute", new) == []
    filters = rule(new, "app")["filters"]
    assert filters[0] == rule(http_route(), "app")["filters"][0]
    assert filters[1] == {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": "web-canary", "port": 8080}, "percent": 20},
    }
    assert ROUTER.applied(new).mirror == Mirror("", 20)


def test_restore_removes_everything_managed_and_leaves_user_rules_byte_for_byte():
    original = http_route()
    busy = ROUTER.desired(original, TrafficState(weight=50, header_routes=(DARK,), mirror=Mirror("m", 5)))
    restored = ROUTER.desired(busy, STABLE_ONLY)
    expected = copy.deepcopy(original)
    expected["spec"]["rules"][1]["backendRefs"][0]["weight"] = 100
    assert restored == expected


def test_applied_reads_back_weights_headers_and_mirror():
    new = ROUTER.desired(http_route(), TrafficState(weight=25, header_routes=(DARK,), mirror=Mirror("m", 7)))
    applied = ROUTER.applied(new)
    assert applied.weight == 25
    assert [h.name for h in applied.header_routes] == ["dark"]
    assert applied.mirror.percent == 7
    # a user-written route without weights is 50/50 by the Gateway API's own rule
    plain = http_route()
    del plain["spec"]["rules"][1]["backendRefs"][1]["weight"]
    assert ROUTER.applied(plain).weight == 50


def stored(route):
    """The route as a real API server stores it: the HTTPRoute CRD's defaults applied."""
    return apply_defaults(gateway_schema("HTTPRoute"), copy.deepcopy(route))


def test_defaulted_routes_mean_what_gateway_api_says_and_are_rewritten_as_100_0():
    route = stored(http_route())  # the stable backendRef was written without a weight: reads 1
    assert [r["weight"] for r in rule(route, "app")["backendRefs"]] == [1, 0]
    assert ROUTER.applied(route).weight == 0  # 1:0 is all to stable ...
    assert not ROUTER.explicit(route)  # ... but not written as the controller writes it
    at_rest = ROUTER.desired(route, STABLE_ONLY)
    assert [r["weight"] for r in rule(at_rest, "app")["backendRefs"]] == [100, 0]
    assert ROUTER.explicit(at_rest) and stored(at_rest) == at_rest
    no_weights = http_route()
    del no_weights["spec"]["rules"][1]["backendRefs"][1]["weight"]
    no_weights = stored(no_weights)
    assert ROUTER.applied(no_weights).weight == 50 and not ROUTER.explicit(no_weights)  # 1:1


def test_every_write_on_a_defaulted_route_is_stable_under_defaults_and_restores_exactly():
    at_rest = ROUTER.desired(stored(http_route()), STABLE_ONLY)
    for state in (
        TrafficState(weight=30),
        TrafficState(weight=10, header_routes=(DARK,), mirror=Mirror("m", 20)),
    ):
        busy = stored(ROUTER.desired(at_rest, state))  # what the server stores after the write
        assert schema_errors("HTTPRoute", busy) == []
        assert ROUTER.explicit(busy) and ROUTER.applied(busy).weight == state.weight
        assert ROUTER.desired(busy, state) == busy  # nothing more to write
        assert ROUTER.restore(busy) == at_rest


def test_named_rule_and_route_problems():
    only_app = GatewayRouter("httproutes", "web", "web-stable", "web-canary", rule="app")
    assert (
        rule(only_app.desired(http_route(), TrafficState(weight=5)), "app")["backendRefs"][1]["weight"] == 5
    )
    with pytest.raises(RouteProblem, match="no rule named 'api'"):
        GatewayRouter("httproutes", "web", "web-stable", "web-canary", rule="api").desired(
            http_route(), STABLE_ONLY
        )
    with pytest.raises(RouteProblem, match="must have backendRefs to both"):
        GatewayRouter("httproutes", "web", "web-stable", "web-canary", rule="static").desired(
            http_route(), STABLE_ONLY
        )
    with pytest.raises(RouteProblem, match="no rule with backendRefs to both web-stable and other"):
        GatewayRouter("httproutes", "web", "web-stable", "other").desired(http_route(), STABLE_ONLY)
    prefix = HeaderRoute("p", (HeaderMatch(header="x", prefix="a"),))
    with pytest.raises(RouteProblem, match="prefix is Istio only"):
        ROUTER.desired(http_route(), TrafficState(header_routes=(prefix,)))
    many = tuple(HeaderRoute(f"h{i}", (HeaderMatch(header="x", exact=str(i)),)) for i in range(15))
    with pytest.raises(RouteProblem, match="at most 16"):
        ROUTER.desired(http_route(), TrafficState(header_routes=many))


def test_tcp_route_carries_weights_only():
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "TCPRoute",
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {
            "parentRefs": [{"name": "tcp-gw", "sectionName": "pg"}],
            "rules": [
                {"backendRefs": [{"name": "web-stable", "port": 5432}, {"name": "web-canary", "port": 5432}]}
            ],
        },
    }
    router = GatewayRouter("tcproutes", "web", "web-stable", "web-canary")
    new = router.desired(route, TrafficState(weight=20))
    assert schema_errors("TCPRoute", new) == []
    assert [r["weight"] for r in new["spec"]["rules"][0]["backendRefs"]] == [80, 20]
    with pytest.raises(RouteProblem, match="TCPRoute carries weights only"):
        router.desired(route, TrafficState(header_routes=(DARK,)))


def test_grpc_route_headers_and_mirror_are_valid():
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [
                {
                    "matches": [{"method": {"service": "shop.Cart", "method": "Add"}}],
                    "backendRefs": [
                        {"name": "web-stable", "port": 9090},
                        {"name": "web-canary", "port": 9090},
                    ],
                }
            ],
        },
    }
    router = GatewayRouter("grpcroutes", "web", "web-stable", "web-canary")
    new = router.desired(route, TrafficState(weight=10, header_routes=(DARK,), mirror=Mirror("m", 50)))
    assert schema_errors("GRPCRoute", new) == []
    managed = new["spec"]["rules"][0]
    assert managed["matches"][0]["method"] == {"service": "shop.Cart", "method": "Add"}
    assert managed["matches"][0]["headers"][0] == {"name": "x-canary", "type": "Exact", "value": "true"}


def with_status(conditions, generation=3):
    route = http_route()
    route["status"] = {
        "parents": [
            {"parentRef": {"name": "public"}, "controllerName": "example.com/gw", "conditions": conditions}
        ]
    }
    route["metadata"]["generation"] = generation
    return route


def cond(type_, status, reason, generation=3):
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": f"{reason} happened",
        "observedGeneration": generation,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def test_route_health_from_status_at_the_current_generation():
    assert ROUTER.health(http_route()).state == "unknown"
    ok = with_status([cond("Accepted", "True", "Accepted"), cond("ResolvedRefs", "True", "ResolvedRefs")])
    assert ROUTER.health(ok).state == "ok"
    blocked = with_status(
        [cond("Accepted", "True", "Accepted"), cond("ResolvedRefs", "False", "BackendNotFound")]
    )
    health = ROUTER.health(blocked)
    assert health.state == "blocked" and health.reason == "BackendNotFound"
    assert "ResolvedRefs=False (BackendNotFound)" in health.message
    # Status written for another generation: a Gateway is there but has not caught up yet.
    stale = with_status([cond("ResolvedRefs", "False", "BackendNotFound", generation=2)])
    health = ROUTER.health(stale)
    assert health.state == "pending" and "generation" in health.message


def test_the_schema_check_can_fail():
    bad = http_route()
    bad["spec"]["rules"][1]["backendRefs"][1]["weight"] = -1
    bad["spec"]["rules"][1]["matches"][0]["headers"] = [{"name": "x", "type": "Prefix", "value": "a"}]
    errors = schema_errors("HTTPRoute", bad)
    assert any("weight" in e for e in errors) and any("Prefix" in e for e in errors)
