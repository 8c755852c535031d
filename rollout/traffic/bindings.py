"""Which routes a Rollout's trafficRouting names, and the router for each: the bridge from the
spec to the routers, used by validation (paths in errors) and by the controller (reads, writes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollout.api.rollout import Rollout
from rollout.api.spec import TrafficRouting
from rollout.engine.types import ObservedRoute
from rollout.traffic.base import HeaderRoute, Mirror, RouteProblem, Router, TrafficState
from rollout.traffic.gatewayapi import GatewayRouter
from rollout.traffic.istio import IstioRouter

GATEWAY_GROUP = "gateway.networking.k8s.io"
ISTIO_GROUP = "networking.istio.io"


@dataclass(frozen=True)
class Routing:
    """The trafficRouting of a canary or a blue/green Rollout and the two Services its routes send
    to: stable and canary, or for blue/green active and preview."""

    strategy_path: str  # spec.strategy.canary or spec.strategy.blueGreen, for errors
    routing: TrafficRouting
    stable_service: str
    canary_service: str
    stable_field: str  # the spec fields naming the two Services, for errors
    canary_field: str

    @property
    def path(self) -> str:
        return f"{self.strategy_path}.trafficRouting"


def routing_of(rollout: Rollout) -> Routing | None:
    strategy = rollout.spec.strategy
    if strategy.canary is not None and strategy.canary.traffic_routing is not None:
        canary = strategy.canary
        return Routing(
            "spec.strategy.canary",
            canary.traffic_routing,
            canary.stable_service or "",
            canary.canary_service or "",
            "stableService",
            "canaryService",
        )
    if strategy.blue_green is not None and strategy.blue_green.traffic_routing is not None:
        blue_green = strategy.blue_green
        return Routing(
            "spec.strategy.blueGreen",
            blue_green.traffic_routing,
            blue_green.active_service,
            blue_green.preview_service or "",
            "activeService",
            "previewService",
        )
    return None


@dataclass(frozen=True)
class RouteBinding:
    group: str
    plural: str
    name: str
    path: str  # field path of the reference in the Rollout spec
    router: Router


def route_bindings(rollout: Rollout) -> list[RouteBinding]:
    spec = routing_of(rollout)
    if spec is None:
        return []
    routing, path = spec.routing, spec.path
    owner = rollout.metadata.name
    stable, preview = spec.stable_service, spec.canary_service
    bindings: list[RouteBinding] = []
    if routing.gateway_api is not None:
        gateway = routing.gateway_api
        for plural, field_name, refs in (
            ("httproutes", "httpRoutes", gateway.http_routes),
            ("grpcroutes", "grpcRoutes", gateway.grpc_routes),
            ("tcproutes", "tcpRoutes", gateway.tcp_routes),
        ):
            for index, ref in enumerate(refs):
                bindings.append(
                    RouteBinding(
                        GATEWAY_GROUP,
                        plural,
                        ref.name,
                        f"{path}.gatewayAPI.{field_name}[{index}]",
                        GatewayRouter(plural, owner, stable, preview, ref.rule),
                    )
                )
    if routing.istio is not None:
        service = routing.istio.virtual_service
        rule = routing.istio.destination_rule
        router = IstioRouter(
            owner,
            stable,
            preview,
            http_routes=tuple(service.routes),
            tcp_ports=tuple(service.tcp_routes),
            stable_subset=rule.stable_subset if rule else None,
            canary_subset=rule.canary_subset if rule else None,
        )
        bindings.append(
            RouteBinding(ISTIO_GROUP, "virtualservices", service.name, f"{path}.istio.virtualService", router)
        )
    return bindings


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
    binding: RouteBinding, route: dict[str, Any] | None, probe: TrafficState
) -> ObservedRoute | None:
    """What the engine needs to know of one route: None when it does not exist, a problem when
    the router could not carry `probe` on it, else what it applies and what its status says."""
    if route is None:
        return None
    kind = binding.router.kind
    try:
        binding.router.desired(route, probe)
        traffic = binding.router.applied(route)
        explicit = binding.router.explicit(route)
    except RouteProblem as exc:
        return ObservedRoute(kind, binding.name, binding.path, problem=str(exc))
    return ObservedRoute(kind, binding.name, binding.path, traffic, binding.router.health(route), explicit)
