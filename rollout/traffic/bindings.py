"""Which objects a Rollout's trafficRouting names, and the router for each: the bridge from the
spec to the routers (through the registry), used by validation (paths in errors), the engine
(capabilities) and the controller (reads, writes)."""

from __future__ import annotations

from typing import Any

from rollout.api.rollout import Rollout
from rollout.traffic.base import (
    Capabilities,
    HeaderRoute,
    Mirror,
    ObservedPins,
    ObservedRoute,
    RouteProblem,
    TrafficState,
)
from rollout.traffic.registry import configured
from rollout.traffic.routing import (
    OwnedRouteBinding,
    PinBinding,
    RouteBinding,
    Routing,
    RuleClaims,
    TrafficBinding,
    routing_of,
)

__all__ = [
    "OwnedRouteBinding",
    "PinBinding",
    "RouteBinding",
    "Routing",
    "capabilities",
    "observe_pins",
    "observe_route",
    "pin_bindings",
    "probe_state",
    "route_bindings",
    "routing_of",
    "rule_claims",
]


def route_bindings(rollout: Rollout) -> list[TrafficBinding]:
    """The objects that carry the Rollout's traffic, in spec order."""
    spec = routing_of(rollout)
    if spec is None:
        return []
    return [
        b
        for provider, config in configured(spec)
        for b in provider.bindings(config, spec)
        if isinstance(b, RouteBinding | OwnedRouteBinding)
    ]


def pin_bindings(rollout: Rollout) -> list[PinBinding]:
    """The objects that select the Rollout's pods by revision besides its Services."""
    spec = routing_of(rollout)
    if spec is None:
        return []
    return [
        b
        for provider, config in configured(spec)
        for b in provider.bindings(config, spec)
        if isinstance(b, PinBinding)
    ]


def capabilities(spec: Routing) -> list[tuple[str, Capabilities]]:
    """What each configured provider can carry: (field path of its config, capabilities)."""
    return [(f"{spec.path}.{p.field}", p.capabilities(config)) for p, config in configured(spec)]


def rule_claims(rollout: Rollout) -> RuleClaims:
    """The route rules a Rollout writes: (plural, route, what) -> the field path naming them."""
    spec = routing_of(rollout)
    if spec is None:
        return {}
    claims: RuleClaims = {}
    for provider, config in configured(spec):
        claims.update(provider.claims(config, spec))
    return claims


def probe_state(rollout: Rollout) -> TrafficState:
    """The most a route will be asked to carry (every header route and mirror of the steps; a
    weight alone for blue/green), to find a route the router cannot manage before any traffic
    moves."""
    canary = rollout.spec.strategy.canary
    if canary is None:
        return TrafficState(weight=1)
    headers = {
        s.set_header_route.name: HeaderRoute(s.set_header_route.name, tuple(s.set_header_route.match))
        for s in canary.steps
        if s.set_header_route is not None and s.set_header_route.match
    }
    mirrors = [s.set_mirror_route for s in canary.steps if s.set_mirror_route is not None]
    mirror = Mirror(mirrors[0].name, 1) if mirrors else None
    return TrafficState(weight=1, header_routes=tuple(headers.values()), mirror=mirror)


def observe_route(
    binding: TrafficBinding,
    route: dict[str, Any] | None,
    probe: TrafficState,
    owned: dict[str, Any] | None = None,
) -> ObservedRoute | None:
    """What the engine needs to know of one route: None when it does not exist, a problem when
    the router could not carry `probe` on it, else what it applies and what its status says.
    For a router that owns an object, `route` is the user's route and `owned` its own object."""
    if route is None:
        return None
    kind = binding.router.kind
    try:
        if isinstance(binding, OwnedRouteBinding):
            binding.router.check(route)
            traffic = binding.router.applied(owned)
            explicit = binding.router.explicit(route, owned)
            health = binding.router.health(route, owned)
        else:
            binding.router.desired(route, probe)
            traffic = binding.router.applied(route)
            explicit = binding.router.explicit(route)
            health = binding.router.health(route)
    except RouteProblem as exc:
        return ObservedRoute(kind, binding.name, binding.path, problem=str(exc))
    return ObservedRoute(kind, binding.name, binding.path, traffic, health, explicit)


def observe_pins(binding: PinBinding, document: dict[str, Any] | None) -> ObservedPins | None:
    if document is None:
        return None
    kind = binding.pinner.kind
    try:
        return ObservedPins(kind, binding.name, binding.path, binding.pinner.pinned(document))
    except RouteProblem as exc:
        return ObservedPins(kind, binding.name, binding.path, problem=str(exc))
