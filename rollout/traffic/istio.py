"""Istio router: a VirtualService's `http[]` entries chosen by name and `tcp[]` entries chosen by
port (they have no name), destinations told apart by host (the stable and canary Services) or by
DestinationRule subset.

Weights go on the two destinations, explicitly; a canary's baseline is a third destination (the
canary's, on the baseline Service's host) while it has a share, removed when it has none. A
header route is an `http[]` entry named `rollout.dev.<rollout>.<n>`, inserted before the entry
it copies, with lowercase header conditions added to each match and the canary as its only
destination. A mirror is `mirror` + `mirrorPercentage` on the managed entries. Other fields
(timeouts, retries, fault, corsPolicy) are left as the user wrote them.

With a DestinationRule, the destinations are its `stable` and `canary` subsets, and the
controller pins each subset to a revision (IstioSubsets) as it pins the Services."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import SpecError
from rollout.api.spec import IstioRouting
from rollout.kube.objects import copied
from rollout.kube.resources import Resource
from rollout.traffic.base import (
    MANAGED_PREFIX,
    Capabilities,
    HeaderRoute,
    Mirror,
    Restoring,
    RouteHealth,
    RouteProblem,
    TrafficState,
    managed_name,
    managed_names,
)
from rollout.traffic.binding import Bindings, PinBinding, RouteBinding
from rollout.traffic.routing import Routing, RuleClaims

GROUP = "networking.istio.io"
VIRTUAL_SERVICES = Resource(GROUP, "v1", "virtualservices", "VirtualService")
DESTINATION_RULES = Resource(GROUP, "v1", "destinationrules", "DestinationRule")

# Fields of a base entry that a header route does not copy: it gets its own.
_NOT_COPIED = {
    "name",
    "match",
    "route",
    "mirror",
    "mirrorPercentage",
    "mirror_percent",
    "mirrorPercent",
    "mirrors",
}


@dataclass(frozen=True)
class IstioRouter(Restoring):
    kind = "VirtualService"

    rollout: str
    stable_host: str
    canary_host: str
    http_routes: tuple[str, ...] = ()
    tcp_ports: tuple[int, ...] = ()
    stable_subset: str | None = None
    canary_subset: str | None = None
    # A canary's baselineService: a destination added beside the canary's while it has a share
    # (told apart by host only: validation refuses a baseline with DestinationRule subsets).
    baseline_host: str = ""

    def _host_is(self, host: str, service: str) -> bool:
        return host == service or host.startswith(f"{service}.")

    def _role(self, destination: dict[str, Any]) -> str | None:
        if self.stable_subset is not None:
            subset = destination.get("subset")
            return (
                "stable"
                if subset == self.stable_subset
                else "canary"
                if subset == self.canary_subset
                else None
            )
        host = str(destination.get("host", ""))
        if self._host_is(host, self.stable_host):
            return "stable"
        if self._host_is(host, self.canary_host):
            return "canary"
        if self.baseline_host and self._host_is(host, self.baseline_host):
            return "baseline"
        return None

    def _has_both(self, entry: dict[str, Any]) -> bool:
        roles = {self._role(r.get("destination") or {}) for r in entry.get("route") or []}
        return {"stable", "canary"} <= roles

    def _managed(self, entry: dict[str, Any]) -> bool:
        return str(entry.get("name", "")).startswith(f"{MANAGED_PREFIX}{self.rollout}.")

    def _pick(
        self, entries: list[dict[str, Any]], found: Callable[[dict[str, Any]], bool], label: str
    ) -> dict[str, Any]:
        """The one entry that `found` selects; it must route to both stable and canary."""
        entry = next((e for e in entries if found(e)), None)
        if entry is None:
            raise RouteProblem(f"VirtualService has no {label}")
        if not self._has_both(entry):
            raise RouteProblem(f"VirtualService {label} must route to both stable and canary")
        return entry

    def _base_http(self, http: list[dict[str, Any]]) -> list[dict[str, Any]]:
        user = [e for e in http if not self._managed(e)]
        if self.http_routes:
            return [
                self._pick(user, lambda e, name=name: e.get("name") == name, f"http route named {name!r}")
                for name in self.http_routes
            ]
        if self.tcp_ports:
            return []
        chosen = [e for e in user if self._has_both(e)]
        if not chosen:
            raise RouteProblem(
                "VirtualService has no http route with both the stable and the canary destination"
            )
        return chosen

    def _base_tcp(self, tcp: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            self._pick(
                tcp,
                lambda e, port=port: any(m.get("port") == port for m in e.get("match") or []),
                f"tcp route matching port {port}",
            )
            for port in self.tcp_ports
        ]

    def _set_weights(self, entry: dict[str, Any], weight: int, baseline: int) -> None:
        """Stable 100 - weight - baseline, canary weight, and the baseline's destination (the
        canary's with the baseline host) only while it has a share."""
        routes = [r for r in entry["route"] if self._role(r.get("destination") or {}) != "baseline"]
        for route in routes:
            role = self._role(route.get("destination") or {})
            if role == "stable":
                route["weight"] = 100 - weight - baseline
            elif role == "canary":
                route["weight"] = weight
        if baseline > 0:
            destination = self._canary_destination(entry)
            host = str(destination.get("host", ""))
            destination["host"] = self.baseline_host + host[len(self.canary_host) :]
            routes.append({"destination": destination, "weight": baseline})
        entry["route"] = routes

    def _canary_destination(self, entry: dict[str, Any]) -> dict[str, Any]:
        route = next(r for r in entry["route"] if self._role(r.get("destination") or {}) == "canary")
        return copy.deepcopy(route["destination"])

    def desired(self, route: dict[str, Any], state: TrafficState) -> dict[str, Any]:
        new = copied(route)
        spec = new.setdefault("spec", {})
        http = [e for e in spec.get("http") or [] if not self._managed(e)]
        base = self._base_http(http)
        tcp = spec.get("tcp") or []
        base_tcp = self._base_tcp(tcp)
        if (state.header_routes or state.mirror) and not base:
            raise RouteProblem("header and mirror routes need an http route; tcp routes carry weights only")
        for entry in [*base, *base_tcp]:
            self._set_weights(entry, state.weight, state.baseline)
        for entry in base:
            self._set_mirror(entry, state.mirror)
        for header_route in state.header_routes:
            for index, entry in enumerate(base):
                suffix = f"-{index}" if len(base) > 1 else ""
                http.insert(http.index(entry), self._header_entry(entry, header_route, suffix))
        if spec.get("http") is not None or http:
            spec["http"] = http
        return new

    def _set_mirror(self, entry: dict[str, Any], mirror: Mirror | None) -> None:
        existing = entry.get("mirror")
        if existing is not None and self._role(existing) != "canary":
            if mirror is not None:
                raise RouteProblem(
                    f"http route {entry.get('name')!r} already mirrors to {existing.get('host')}"
                )
            return
        entry.pop("mirror", None)
        entry.pop("mirrorPercentage", None)
        if mirror is not None and mirror.percent > 0:
            entry["mirror"] = self._canary_destination(entry)
            entry["mirrorPercentage"] = {"value": float(mirror.percent)}

    def _header_entry(self, base: dict[str, Any], header_route: HeaderRoute, suffix: str) -> dict[str, Any]:
        headers = {}
        for match in header_route.matches:
            kind = "exact" if match.exact is not None else "regex" if match.regex is not None else "prefix"
            headers[match.header.lower()] = {kind: getattr(match, kind)}
        matches = copy.deepcopy(base.get("match") or [{}])
        for match in matches:
            match["headers"] = {**(match.get("headers") or {}), **headers}
        entry = {k: copy.deepcopy(v) for k, v in base.items() if k not in _NOT_COPIED}
        return {
            "name": managed_name(self.rollout, header_route.name) + suffix,
            "match": matches,
            "route": [{"destination": self._canary_destination(base), "weight": 100}],
            **entry,
        }

    def applied(self, route: dict[str, Any]) -> TrafficState:
        spec = route.get("spec") or {}
        http = spec.get("http") or []
        base_http = self._base_http(http)
        base = base_http or self._base_tcp(spec.get("tcp") or [])
        weights = {"stable": 0, "canary": 0, "baseline": 0}
        for entry in base[:1]:
            for r in entry["route"]:
                role = self._role(r.get("destination") or {})
                if role is not None:
                    weights[role] = int(r.get("weight", 0))
        total = sum(weights.values())
        weight = round(100 * weights["canary"] / total) if total else 0
        baseline = round(100 * weights["baseline"] / total) if total else 0
        headers = managed_names(http, self.rollout, len(base_http))
        mirror = None
        for entry in base[:1]:
            if entry.get("mirror") is not None and self._role(entry["mirror"]) == "canary":
                mirror = Mirror("", round(float((entry.get("mirrorPercentage") or {}).get("value", 100))))
        return TrafficState(weight=weight, header_routes=headers, mirror=mirror, baseline=baseline)

    def explicit(self, route: dict[str, Any]) -> bool:
        spec = route.get("spec") or {}
        entries = [*self._base_http(spec.get("http") or []), *self._base_tcp(spec.get("tcp") or [])]
        # A baseline destination left at weight 0 is rewritten (removed): the route as written.
        return all(
            "weight" in r and (self._role(r["destination"]) != "baseline" or r["weight"] > 0)
            for entry in entries
            for r in entry["route"]
            if self._role(r.get("destination") or {}) is not None
        )

    def weighted_rules(self, route: dict[str, Any]) -> tuple[str, ...]:
        spec = route.get("spec") or {}
        found = []
        for section, bases in (
            ("http", self._base_http(spec.get("http") or [])),
            ("tcp", self._base_tcp(spec.get("tcp") or [])),
        ):
            for index, entry in enumerate(spec.get(section) or []):
                if any(entry is base for base in bases):
                    found.append(str(entry.get("name") or f"{section}[{index}]"))
        return tuple(found)

    def health(self, route: dict[str, Any]) -> RouteHealth:
        # Istio reports no per-parent acceptance for a VirtualService; analysis messages are
        # advisory. The rollout proceeds and says so.
        return RouteHealth(
            "unknown", "NoRouteStatus", "Istio reports no acceptance status for VirtualServices"
        )


@dataclass(frozen=True)
class IstioSubsets:
    """The DestinationRule whose subsets select the stable and canary pods: each role's subset
    carries `rollout.dev/revision: <revision>` in its labels."""

    kind = "DestinationRule"

    name: str
    stable_subset: str
    canary_subset: str

    def _subset(self, role: str) -> str:
        return self.stable_subset if role == "stable" else self.canary_subset

    def pinned(self, document: dict[str, Any]) -> dict[str, str | None]:
        subsets = {
            str(s.get("name")): dict(s.get("labels") or {})
            for s in (document.get("spec") or {}).get("subsets") or []
        }
        missing = [
            f"{subset!r} ({field})"
            for field, subset in (("stableSubset", self.stable_subset), ("canarySubset", self.canary_subset))
            if subset not in subsets
        ]
        if missing:
            raise RouteProblem(f"has no subset {', '.join(missing)}")
        return {role: subsets[self._subset(role)].get(REVISION_LABEL) for role in ("stable", "canary")}

    def pin(self, document: dict[str, Any], role: str, revision: str) -> dict[str, Any]:
        new = copied(document)
        spec = new.setdefault("spec", {})
        spec["subsets"] = [
            {**s, "labels": {**(s.get("labels") or {}), REVISION_LABEL: revision}}
            if s.get("name") == self._subset(role)
            else s
            for s in spec.get("subsets") or []
        ]
        return new


class IstioProvider:
    """`trafficRouting.istio`: one VirtualService, optionally with DestinationRule subsets."""

    field = "istio"
    attribute = "istio"
    resources = (VIRTUAL_SERVICES, DESTINATION_RULES)

    def capabilities(self, config: IstioRouting) -> Capabilities:
        subsets = config.destination_rule is not None
        service = config.virtual_service
        # The baseline is told apart by its Service (host); a DestinationRule has two subsets only.
        third: dict[str, str] = (
            {"third_backend": "a baseline is routed by its Service (host); remove destinationRule"}
            if subsets
            else {}
        )
        if service.tcp_routes and not service.routes:
            why = "TCP routes carry weights only; header and mirror need HTTP"
            return Capabilities(
                header_matches=frozenset(),
                mirror=False,
                subsets=subsets,
                third_backend=not subsets,
                why={"headers": why, "mirror": why, **third},
            )
        return Capabilities(subsets=subsets, third_backend=not subsets, why=third)

    def bindings(self, config: IstioRouting, routing: Routing) -> Bindings:
        service = config.virtual_service
        rule = config.destination_rule
        router = IstioRouter(
            routing.rollout,
            routing.stable_service,
            routing.canary_service,
            http_routes=tuple(service.routes),
            tcp_ports=tuple(service.tcp_routes),
            stable_subset=rule.stable_subset if rule else None,
            canary_subset=rule.canary_subset if rule else None,
            baseline_host=routing.baseline_service,
        )
        at = f"{routing.path}.{self.field}"
        routes = (RouteBinding(VIRTUAL_SERVICES, service.name, f"{at}.virtualService", router),)
        if rule is None:
            return Bindings(routes=routes)
        subsets = IstioSubsets(rule.name, rule.stable_subset, rule.canary_subset)
        return Bindings(routes, (PinBinding(DESTINATION_RULES, rule.name, f"{at}.destinationRule", subsets),))

    def claims(self, config: IstioRouting, routing: Routing) -> RuleClaims:
        service = config.virtual_service
        at = f"{routing.path}.{self.field}.virtualService"
        claims: RuleClaims = {}
        for index, route in enumerate(service.routes):
            claims["virtualservices", service.name, f"http route {route!r}"] = f"{at}.routes[{index}]"
        for index, port in enumerate(service.tcp_routes):
            claims["virtualservices", service.name, f"tcp port {port}"] = f"{at}.tcpRoutes[{index}]"
        if not service.routes and not service.tcp_routes:
            claims["virtualservices", service.name, routing.backend_pair] = f"{at}.name"
        return claims

    def config_errors(self, config: IstioRouting, routing: Routing) -> list[SpecError]:
        return []


PROVIDER = IstioProvider()
