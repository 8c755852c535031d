"""Which objects a Rollout's trafficRouting names, and the router for each: the bridge from the
spec to the routers (through the registry), used by validation (paths in errors), the engine
(capabilities), the controller and the CLI (reads and writes, through the binding interface of
binding.py)."""

from __future__ import annotations

from rollout.api.rollout import Rollout
from rollout.traffic.base import Capabilities, HeaderRoute, Mirror, TrafficState
from rollout.traffic.binding import Bindings, PinBinding, TrafficBinding
from rollout.traffic.registry import configured
from rollout.traffic.routing import Routing, RuleClaims, routing_of

__all__ = [
    "PinBinding",
    "Routing",
    "TrafficBinding",
    "capabilities",
    "pin_bindings",
    "probe_state",
    "route_bindings",
    "routing_of",
    "rule_claims",
]


def _bindings(rollout: Rollout) -> list[Bindings]:
    spec = routing_of(rollout)
    if spec is None:
        return []
    return [provider.bindings(config, spec) for provider, config in configured(spec)]


def route_bindings(rollout: Rollout) -> list[TrafficBinding]:
    """The objects that carry the Rollout's traffic, in spec order."""
    return [binding for made in _bindings(rollout) for binding in made.routes]


def pin_bindings(rollout: Rollout) -> list[PinBinding]:
    """The objects that select the Rollout's pods by revision besides its Services."""
    return [binding for made in _bindings(rollout) for binding in made.pins]


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
