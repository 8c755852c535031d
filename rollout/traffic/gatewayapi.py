"""Gateway API router: HTTPRoute, GRPCRoute and TCPRoute (gateway.networking.k8s.io/v1).

Weights go on the backendRefs that name the stable and canary Services, always both explicitly
and summing to 100 (an omitted weight counts as 1, and a real API server writes that 1 in). A
canary with a baseline gets a third backendRef, to the baseline Service, while the baseline has a
share (stable 100 - 2w, baseline w, canary w); it is removed when the share goes back to 0.
Header routes are managed rules named `rollout.dev.<rollout>.<n>`
that copy the base rule's matches and filters, add the header matches and send to the canary
only; a mirror is a RequestMirror filter with `percent` on the base rules. Everything else the
user wrote is left exactly as it was."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from rollout.api.rollout import SpecError
from rollout.api.spec import GatewayAPIRouting, RouteRef
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
from rollout.traffic.binding import Bindings, RouteBinding
from rollout.traffic.routing import Routing, RuleClaims

MAX_RULES = 16
KINDS = {"httproutes": "HTTPRoute", "grpcroutes": "GRPCRoute", "tcproutes": "TCPRoute"}
GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
RESOURCES = {plural: Resource(GROUP, VERSION, plural, kind) for plural, kind in KINDS.items()}
WEIGHTS_ONLY = "TCP routes carry weights only; header and mirror need HTTP"


def _is_service(ref: dict[str, Any], name: str) -> bool:
    return ref.get("name") == name and ref.get("group", "") == "" and ref.get("kind", "Service") == "Service"


@dataclass(frozen=True)
class GatewayRouter(Restoring):
    plural: str  # httproutes | grpcroutes | tcproutes
    rollout: str
    stable_service: str
    canary_service: str
    rule: str | None = None  # only this named rule; otherwise every rule naming both Services
    # A canary's baselineService: a backendRef added beside the canary's while it has a share.
    baseline_service: str = ""

    @property
    def kind(self) -> str:
        return KINDS[self.plural]

    def _managed(self, rule: dict[str, Any]) -> bool:
        return str(rule.get("name", "")).startswith(f"{MANAGED_PREFIX}{self.rollout}.")

    def _base_rules(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def names_both(rule: dict[str, Any]) -> bool:
            refs = rule.get("backendRefs") or []
            return any(_is_service(r, self.stable_service) for r in refs) and any(
                _is_service(r, self.canary_service) for r in refs
            )

        base = [r for r in rules if not self._managed(r)]
        if self.rule is not None:
            chosen = [r for r in base if r.get("name") == self.rule]
            if not chosen:
                raise RouteProblem(f"{self.kind} has no rule named {self.rule!r}")
            if not names_both(chosen[0]):
                raise RouteProblem(
                    f"{self.kind} rule {self.rule!r} must have backendRefs to both "
                    f"{self.stable_service} and {self.canary_service}"
                )
            return chosen
        chosen = [r for r in base if names_both(r)]
        if not chosen:
            raise RouteProblem(
                f"{self.kind} has no rule with backendRefs to both {self.stable_service} "
                f"and {self.canary_service}"
            )
        return chosen

    def _canary_ref(self, rule: dict[str, Any]) -> dict[str, Any]:
        ref = next(r for r in rule["backendRefs"] if _is_service(r, self.canary_service))
        return {k: v for k, v in ref.items() if k in ("group", "kind", "name", "namespace", "port")}

    def _is_managed_mirror(self, flt: dict[str, Any]) -> bool:
        target = (flt.get("requestMirror") or {}).get("backendRef") or {}
        return flt.get("type") == "RequestMirror" and _is_service(target, self.canary_service)

    def desired(self, route: dict[str, Any], state: TrafficState) -> dict[str, Any]:
        new = copied(route)
        spec = new.setdefault("spec", {})
        rules = [r for r in spec.get("rules") or [] if not self._managed(r)]
        base = self._base_rules(rules)
        if self.plural == "tcproutes" and (state.header_routes or state.mirror):
            raise RouteProblem("TCPRoute carries weights only: header and mirror routes need HTTP or gRPC")
        for rule in base:
            for ref in rule["backendRefs"]:
                if _is_service(ref, self.stable_service):
                    ref["weight"] = 100 - state.weight - state.baseline
                elif _is_service(ref, self.canary_service):
                    ref["weight"] = state.weight
            self._set_baseline(rule, state.baseline)
            if self.plural != "tcproutes":
                self._set_mirror(rule, state.mirror)
        for header_route in state.header_routes:
            for index, rule in enumerate(base):
                suffix = f"-{index}" if len(base) > 1 else ""
                managed = self._header_rule(rule, header_route, suffix)
                rules.insert(rules.index(rule), managed)
        if len(rules) > MAX_RULES:
            raise RouteProblem(f"{self.kind} would have {len(rules)} rules; at most {MAX_RULES} are allowed")
        spec["rules"] = rules
        return new

    def _is_baseline(self, ref: dict[str, Any]) -> bool:
        return bool(self.baseline_service) and _is_service(ref, self.baseline_service)

    def _set_baseline(self, rule: dict[str, Any], share: int) -> None:
        """The baseline's backendRef (the canary's, renamed) while it has a share; gone at 0, so
        that the rule reads as the user wrote it."""
        if not self.baseline_service:
            return
        refs = [r for r in rule["backendRefs"] if not self._is_baseline(r)]
        if share > 0:
            refs.append({**self._canary_ref(rule), "name": self.baseline_service, "weight": share})
        rule["backendRefs"] = refs

    def _set_mirror(self, rule: dict[str, Any], mirror: Mirror | None) -> None:
        filters = [f for f in rule.get("filters") or [] if not self._is_managed_mirror(f)]
        if mirror is not None and mirror.percent > 0:
            filters.append(
                {
                    "type": "RequestMirror",
                    "requestMirror": {"backendRef": self._canary_ref(rule), "percent": mirror.percent},
                }
            )
        if filters:
            rule["filters"] = filters
        else:
            rule.pop("filters", None)

    def _header_rule(self, base: dict[str, Any], header_route: HeaderRoute, suffix: str) -> dict[str, Any]:
        headers = []
        for match in header_route.matches:
            if match.prefix is not None:
                raise RouteProblem(
                    "Gateway API header matches are Exact or RegularExpression; prefix is Istio only"
                )
            kind, value = (
                ("Exact", match.exact) if match.exact is not None else ("RegularExpression", match.regex)
            )
            headers.append({"name": match.header, "type": kind, "value": value})
        matches = copy.deepcopy(base.get("matches") or [{}])
        for match in matches:
            match["headers"] = [*(match.get("headers") or []), *headers]
        rule: dict[str, Any] = {
            "name": managed_name(self.rollout, header_route.name) + suffix,
            "matches": matches,
            "backendRefs": [{**self._canary_ref(base), "weight": 1}],
        }
        filters = [copy.deepcopy(f) for f in base.get("filters") or [] if not self._is_managed_mirror(f)]
        if filters:
            rule["filters"] = filters
        return rule

    def applied(self, route: dict[str, Any]) -> TrafficState:
        rules = (route.get("spec") or {}).get("rules") or []
        bases = self._base_rules(rules)
        base = bases[0]
        weights = {"stable": 1, "canary": 1, "baseline": 0}  # an omitted weight counts as 1
        for ref in base["backendRefs"]:
            if _is_service(ref, self.stable_service):
                weights["stable"] = int(ref.get("weight", 1))
            elif _is_service(ref, self.canary_service):
                weights["canary"] = int(ref.get("weight", 1))
            elif self._is_baseline(ref):
                weights["baseline"] = int(ref.get("weight", 1))
        total = sum(weights.values())
        weight = round(100 * weights["canary"] / total) if total else 0
        baseline = round(100 * weights["baseline"] / total) if total else 0
        headers = managed_names(rules, self.rollout, len(bases))
        mirror = next(
            (
                Mirror(name="", percent=int(f["requestMirror"].get("percent", 100)))
                for f in base.get("filters") or []
                if self._is_managed_mirror(f)
            ),
            None,
        )
        return TrafficState(weight=weight, header_routes=headers, mirror=mirror, baseline=baseline)

    def explicit(self, route: dict[str, Any]) -> bool:
        """The weights are exactly what `desired` writes for the weight they apply (100 - w and w
        on every stable and canary backendRef). A weight's mere presence says nothing: a real API
        server defaults an omitted one to 1, so a route written with no weights reads 1 and 1
        (1:1), and one written with `weight: 0` on the canary only reads 1 and 0: that is 100/0
        in effect, but it is rewritten as 100/0 so that users see what the controller applied."""
        rules = self._base_rules((route.get("spec") or {}).get("rules") or [])
        applied = self.applied(route)
        weight, baseline = applied.weight, applied.baseline
        for rule in rules:
            if self.baseline_service:  # the baseline's backendRef is there exactly while it has a share
                refs = [r for r in rule["backendRefs"] if self._is_baseline(r)]
                if [r.get("weight") for r in refs] != ([baseline] if baseline else []):
                    return False
            for ref in rule["backendRefs"]:
                if _is_service(ref, self.stable_service) and ref.get("weight") != 100 - weight - baseline:
                    return False
                if _is_service(ref, self.canary_service) and ref.get("weight") != weight:
                    return False
        return True

    def weighted_rules(self, route: dict[str, Any]) -> tuple[str, ...]:
        rules = (route.get("spec") or {}).get("rules") or []
        bases = self._base_rules(rules)
        return tuple(
            str(rule.get("name") or f"rules[{index}]")
            for index, rule in enumerate(rules)
            if any(rule is base for base in bases)
        )

    def health(self, route: dict[str, Any]) -> RouteHealth:
        generation = (route.get("metadata") or {}).get("generation")
        parents = ((route.get("status") or {}).get("parents")) or []
        current = [
            c
            for p in parents
            for c in p.get("conditions") or []
            if generation is None or c.get("observedGeneration") in (None, generation)
        ]
        if not current:
            if any(p.get("conditions") for p in parents):
                return RouteHealth(
                    "pending",
                    "StatusPending",
                    f"waiting for the Gateway to report status for {self.kind} generation {generation}",
                )
            return RouteHealth("unknown", "NoRouteStatus", f"no Gateway reports status for this {self.kind}")
        for condition in current:
            if condition.get("type") in ("Accepted", "ResolvedRefs") and condition.get("status") == "False":
                return RouteHealth(
                    "blocked",
                    str(condition.get("reason", condition["type"])),
                    f"{self.kind} {condition['type']}=False ({condition.get('reason')}): "
                    f"{condition.get('message', '')}",
                )
        return RouteHealth("ok")


class GatewayAPIProvider:
    """`trafficRouting.gatewayAPI`: HTTPRoutes, GRPCRoutes and TCPRoutes by name."""

    field = "gatewayAPI"
    attribute = "gateway_api"
    resources = tuple(RESOURCES.values())

    @staticmethod
    def _refs(config: GatewayAPIRouting) -> list[tuple[str, str, list[RouteRef]]]:
        return [
            ("httproutes", "httpRoutes", config.http_routes),
            ("grpcroutes", "grpcRoutes", config.grpc_routes),
            ("tcproutes", "tcpRoutes", config.tcp_routes),
        ]

    def capabilities(self, config: GatewayAPIRouting) -> Capabilities:
        if config.tcp_routes:
            return Capabilities(
                header_matches=frozenset(),
                mirror=False,
                third_backend=True,
                why={"headers": WEIGHTS_ONLY, "mirror": WEIGHTS_ONLY},
            )
        return Capabilities(
            header_matches=frozenset({"exact", "regex"}),
            third_backend=True,
            why={"match": "Gateway API header matches are exact or regex; prefix is Istio only"},
        )

    def bindings(self, config: GatewayAPIRouting, routing: Routing) -> Bindings:
        out = []
        for plural, field_name, refs in self._refs(config):
            for index, ref in enumerate(refs):
                router = GatewayRouter(
                    plural,
                    routing.rollout,
                    routing.stable_service,
                    routing.canary_service,
                    ref.rule,
                    routing.baseline_service,
                )
                path = f"{routing.path}.{self.field}.{field_name}[{index}]"
                out.append(RouteBinding(RESOURCES[plural], ref.name, path, router))
        return Bindings(routes=tuple(out))

    def claims(self, config: GatewayAPIRouting, routing: Routing) -> RuleClaims:
        claims: RuleClaims = {}
        for plural, field_name, refs in self._refs(config):
            for index, ref in enumerate(refs):
                what = f"rule {ref.rule!r}" if ref.rule else routing.backend_pair
                claims[plural, ref.name, what] = f"{routing.path}.{self.field}.{field_name}[{index}]"
        return claims

    def config_errors(self, config: GatewayAPIRouting, routing: Routing) -> list[SpecError]:
        if config.http_routes or config.grpc_routes or config.tcp_routes:
            return []
        return [
            SpecError(f"{routing.path}.{self.field}", "list at least one httpRoute, grpcRoute or tcpRoute")
        ]


PROVIDER = GatewayAPIProvider()
