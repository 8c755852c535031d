"""ingress-nginx router: a canary Ingress beside the user's stable Ingress (networking.k8s.io/v1).

The stable Ingress is only read. The controller owns a second Ingress, `<stable>-<rollout>-canary`,
with the stable one's class, hosts and the paths that send to the stable Service, sending to the
canary Service instead, and ingress-nginx's canary annotations: `canary: "true"`,
`canary-weight` out of `canary-weight-total: "100"`, and for a header route `canary-by-header`
with `canary-by-header-value` (exact) or `canary-by-header-pattern` (regex). ingress-nginx reads
one header per canary Ingress, so one header route (of one match) can be active at a time, and it
cannot mirror. At rest (100% stable, no header route) the canary Ingress is deleted."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from rollout.api.rollout import SpecError
from rollout.api.spec import NginxRouting
from rollout.kube.resources import Resource
from rollout.traffic.base import (
    Capabilities,
    HeaderRoute,
    RouteHealth,
    RouteProblem,
    TrafficState,
    at_rest,
)
from rollout.traffic.binding import Bindings, OwnedRouteBinding
from rollout.traffic.routing import Routing, RuleClaims

INGRESSES = Resource("networking.k8s.io", "v1", "ingresses", "Ingress")
PREFIX = "nginx.ingress.kubernetes.io/"
CANARY, WEIGHT, TOTAL = f"{PREFIX}canary", f"{PREFIX}canary-weight", f"{PREFIX}canary-weight-total"
BY_HEADER, BY_VALUE, BY_PATTERN = (
    f"{PREFIX}canary-by-header",
    f"{PREFIX}canary-by-header-value",
    f"{PREFIX}canary-by-header-pattern",
)
# The name of the header route the canary Ingress carries (ingress-nginx keeps no name of its own).
HEADER_ROUTE = "rollout.dev/header-route"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
ONE_AT_A_TIME = "ingress-nginx carries one header route at a time (canary-by-header); remove the other first"


def canary_ingress_name(stable_ingress: str, rollout: str) -> str:
    return f"{stable_ingress}-{rollout}-canary"


@dataclass(frozen=True)
class NginxRouter:
    kind = "Ingress"

    rollout: str
    stable_service: str
    canary_service: str
    stable_ingress: str

    def _canary_rules(self, source: dict[str, Any]) -> list[dict[str, Any]]:
        """The stable Ingress's rules, keeping the paths to the stable Service, sent to canary."""
        rules = []
        for rule in (source.get("spec") or {}).get("rules") or []:
            paths = []
            for path in (rule.get("http") or {}).get("paths") or []:
                service = (path.get("backend") or {}).get("service") or {}
                if service.get("name") == self.stable_service:
                    backend = {"service": {**copy.deepcopy(service), "name": self.canary_service}}
                    paths.append({**copy.deepcopy(path), "backend": backend})
            if paths:
                rules.append({**({"host": rule["host"]} if "host" in rule else {}), "http": {"paths": paths}})
        return rules

    def check(self, source: dict[str, Any]) -> None:
        if not self._canary_rules(source):
            raise RouteProblem(
                f"no path of Ingress {self.stable_ingress} sends to Service {self.stable_service}"
            )

    def desired(self, source: dict[str, Any], state: TrafficState) -> dict[str, Any] | None:
        self.check(source)
        if at_rest(state):
            return None
        if state.mirror is not None and state.mirror.percent > 0:
            raise RouteProblem("ingress-nginx cannot mirror traffic")
        annotations = {CANARY: "true", WEIGHT: str(state.weight), TOTAL: "100"}
        if len(state.header_routes) > 1:
            raise RouteProblem(ONE_AT_A_TIME)
        for header_route in state.header_routes:
            annotations.update(self._header_annotations(header_route))
        stable_annotations = (source.get("metadata") or {}).get("annotations") or {}
        if CLASS_ANNOTATION in stable_annotations:
            annotations[CLASS_ANNOTATION] = stable_annotations[CLASS_ANNOTATION]
        spec: dict[str, Any] = {"rules": self._canary_rules(source)}
        ingress_class = (source.get("spec") or {}).get("ingressClassName")
        if ingress_class:
            spec["ingressClassName"] = ingress_class
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"annotations": annotations},
            "spec": spec,
        }

    @staticmethod
    def _header_annotations(header_route: HeaderRoute) -> dict[str, str]:
        if len(header_route.matches) != 1:
            raise RouteProblem("an ingress-nginx header route matches exactly one header")
        match = header_route.matches[0]
        if match.prefix is not None:
            raise RouteProblem("ingress-nginx header matches are exact or regex")
        value = (BY_VALUE, match.exact) if match.exact is not None else (BY_PATTERN, match.regex)
        return {BY_HEADER: match.header, value[0]: str(value[1]), HEADER_ROUTE: header_route.name}

    def applied(self, owned: dict[str, Any] | None) -> TrafficState:
        if owned is None:
            return TrafficState()
        annotations = (owned.get("metadata") or {}).get("annotations") or {}
        try:
            weight = int(annotations.get(WEIGHT, "0"))
        except ValueError:
            weight = 0  # unreadable: rewritten, as explicit() says
        headers = ()
        if BY_HEADER in annotations:
            headers = (HeaderRoute(annotations.get(HEADER_ROUTE, ""), ()),)
        return TrafficState(weight=weight, header_routes=headers)

    def explicit(self, source: dict[str, Any], owned: dict[str, Any] | None) -> bool:
        if owned is None:
            return True
        annotations = (owned.get("metadata") or {}).get("annotations") or {}
        wanted = self.desired(source, TrafficState(weight=self.applied(owned).weight, header_routes=()))
        if wanted is None:  # weight 0: the header route alone keeps it
            wanted = self.desired(source, TrafficState(weight=1))
            assert wanted is not None
            wanted["metadata"]["annotations"][WEIGHT] = "0"
        same = all(annotations.get(k) == v for k, v in wanted["metadata"]["annotations"].items())
        return same and owned.get("spec") == wanted["spec"]

    def health(self, source: dict[str, Any], owned: dict[str, Any] | None) -> RouteHealth:
        return RouteHealth(
            "unknown", "NoRouteStatus", "ingress-nginx reports no acceptance status for Ingresses"
        )


class NginxProvider:
    """`trafficRouting.nginx`: the stable Ingress by name; the canary Ingress is the controller's."""

    field = "nginx"
    attribute = "nginx"
    resources = (INGRESSES,)  # the stable Ingress (read) and the canary Ingress (owned)

    def capabilities(self, config: NginxRouting) -> Capabilities:
        return Capabilities(
            header_matches=frozenset({"exact", "regex"}),
            header_routes_at_once=1,
            matches_per_header_route=1,
            mirror=False,
            mirror_percent=False,
            why={
                "match": "ingress-nginx header matches are exact (canary-by-header-value) or regex "
                "(canary-by-header-pattern)",
                "matches": "ingress-nginx matches one header per canary (canary-by-header)",
                "at_once": ONE_AT_A_TIME,
                "mirror": "ingress-nginx cannot mirror traffic; remove setMirrorRoute",
                "third_backend": "ingress-nginx splits traffic between two Services only (the "
                "Ingress and its canary Ingress): a baseline needs gatewayAPI or istio",
            },
        )

    def bindings(self, config: NginxRouting, routing: Routing) -> Bindings:
        router = NginxRouter(
            routing.rollout, routing.stable_service, routing.canary_service, config.stable_ingress
        )
        owned = canary_ingress_name(config.stable_ingress, routing.rollout)
        path = f"{routing.path}.{self.field}.stableIngress"
        return Bindings(routes=(OwnedRouteBinding(INGRESSES, config.stable_ingress, owned, path, router),))

    def claims(self, config: NginxRouting, routing: Routing) -> RuleClaims:
        return {("ingresses", config.stable_ingress, "canary"): f"{routing.path}.{self.field}.stableIngress"}

    def config_errors(self, config: NginxRouting, routing: Routing) -> list[SpecError]:
        return []


PROVIDER = NginxProvider()
