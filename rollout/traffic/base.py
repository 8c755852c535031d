"""The router interface and the traffic state it applies, and what the engine reads back from a
route (ObservedRoute, ObservedPins): both the engine and the routers import from here, the
routers never from the engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from rollout.api.spec import HeaderMatch

MANAGED_PREFIX = "rollout.dev."


@dataclass(frozen=True)
class HeaderRoute:
    """A dark-launch rule: requests matching all `matches` go to the canary only."""

    name: str
    matches: tuple[HeaderMatch, ...]


@dataclass(frozen=True)
class Mirror:
    """A copy of `percent`% of the traffic goes to the canary; responses are discarded."""

    name: str
    percent: int


@dataclass(frozen=True)
class TrafficState:
    weight: int = 0  # percent of traffic to the canary; stable gets the rest
    header_routes: tuple[HeaderRoute, ...] = ()
    mirror: Mirror | None = None
    baseline: int = 0  # percent to the baseline (baselineService), taken from stable's share


STABLE_ONLY = TrafficState()


def same_traffic(a: TrafficState, b: TrafficState) -> bool:
    """Equal as far as a route can tell: weights, header route names, mirror percent (a route does
    not keep the mirror's name or the header matches in a form worth comparing)."""
    return (
        a.weight == b.weight
        and a.baseline == b.baseline
        and sorted(h.name for h in a.header_routes) == sorted(h.name for h in b.header_routes)
        and (a.mirror.percent if a.mirror else 0) == (b.mirror.percent if b.mirror else 0)
    )


def at_rest(state: TrafficState) -> bool:
    return same_traffic(state, STABLE_ONLY)


@dataclass(frozen=True)
class RouteHealth:
    """What the route's own status says: `ok`, `blocked` (Accepted/ResolvedRefs False at the
    current generation), `pending` (a Gateway writes status but has not caught up with the
    current generation yet) or `unknown` (no status at all, as with meshes that write none)."""

    state: Literal["ok", "blocked", "pending", "unknown"]
    reason: str = ""
    message: str = ""


UNKNOWN_HEALTH = RouteHealth("unknown")


MatchKind = Literal["exact", "regex", "prefix"]
ALL_MATCHES: frozenset[str] = frozenset({"exact", "regex", "prefix"})


@dataclass(frozen=True)
class Capabilities:
    """What a router can carry for one trafficRouting, asked by validation before any traffic
    moves. A capability it lacks comes with the sentence that tells the user why (`why`, keyed
    by `headers`, `match`, `matches`, `at_once`, `mirror`, `mirror_percent`, `weights`,
    `third_backend`)."""

    weights: bool = True
    header_matches: frozenset[str] = ALL_MATCHES  # match kinds a header route may use; empty: none
    header_routes_at_once: int | None = None  # header routes active together; None: any number
    matches_per_header_route: int | None = None
    mirror: bool = True
    mirror_percent: bool = True  # a mirror of less than 100%
    subsets: bool = False  # selects pods by revision itself (the Services are then not needed)
    third_backend: bool = False  # a baseline backend beside stable and canary (baselineService)
    why: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedRoute:
    """One route of the Rollout's trafficRouting as read back: what it applies and its health, or
    `problem` when the router cannot manage it (no rule naming both Services, ...)."""

    kind: str  # HTTPRoute, GRPCRoute, TCPRoute, VirtualService, Ingress
    name: str
    path: str  # field path in the Rollout spec, for errors
    traffic: TrafficState | None = None
    health: RouteHealth = UNKNOWN_HEALTH
    explicit: bool = True  # weights written as the router writes them; else rewritten even if equivalent
    problem: str = ""
    # The rules (Istio: entries) whose weights `traffic` reads, by name or place, for people (the
    # CLI); the engine does not read it.
    weighted_rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObservedPins:
    """An object that selects the pods of each role by revision (Istio DestinationRule subsets):
    role (`stable`, `canary`) -> the revision it selects (None: not pinned), or `problem` when the
    router cannot pin through it (a subset missing)."""

    kind: str
    name: str
    path: str
    pinned: Mapping[str, str | None] = field(default_factory=dict)
    problem: str = ""


class RouteProblem(Exception):
    """The route cannot carry the Rollout's traffic as asked (no rule names both Services, too
    many rules, a match the provider does not have); reported on the Rollout, nothing written."""


class Router(Protocol):
    """Apply a traffic state (weight, header routes, mirror) to a route document, read back what
    a document applies, report the route's health, and restore it (100% stable, no managed
    rules)."""

    kind: str

    def desired(self, route: dict[str, Any], state: TrafficState) -> dict[str, Any]: ...

    def applied(self, route: dict[str, Any]) -> TrafficState: ...

    def health(self, route: dict[str, Any]) -> RouteHealth: ...

    def explicit(self, route: dict[str, Any]) -> bool:
        """Both weights are written out (an omitted one means something else to each provider)."""
        ...

    def weighted_rules(self, route: dict[str, Any]) -> tuple[str, ...]:
        """The rules (entries) of the route whose weights it sets, by name, else by place
        (`rules[1]`, `http[0]`): what a person looks for in the route."""
        ...

    def restore(self, route: dict[str, Any]) -> dict[str, Any]: ...


class OwningRouter(Protocol):
    """A router that writes an object of its own beside the route the user names (ingress-nginx's
    canary Ingress): built from the user's route (`source`, never modified) for a traffic state,
    created, updated and deleted by the controller. `desired` is None when no object should exist
    (traffic at rest)."""

    kind: str

    def check(self, source: dict[str, Any]) -> None:
        """Raise RouteProblem when no object can be built from `source` (what a route's probe
        finds for an edited route; what a step may ask for is validation's, by capabilities)."""
        ...

    def desired(self, source: dict[str, Any], state: TrafficState) -> dict[str, Any] | None: ...

    def applied(self, owned: dict[str, Any] | None) -> TrafficState: ...

    def health(self, source: dict[str, Any], owned: dict[str, Any] | None) -> RouteHealth: ...

    def explicit(self, source: dict[str, Any], owned: dict[str, Any] | None) -> bool:
        """The owned object is exactly what `desired` builds for the state it applies."""
        ...


class Pinner(Protocol):
    """Pins the pods of a role to a revision in an object other than a Service (Istio
    DestinationRule subsets): reads which revision each role selects, and writes one."""

    kind: str

    def pinned(self, document: dict[str, Any]) -> dict[str, str | None]: ...

    def pin(self, document: dict[str, Any], role: str, revision: str) -> dict[str, Any]: ...


class Restoring:
    """`restore` for every router: the desired document for stable only."""

    def restore(self: Router, route: dict[str, Any]) -> dict[str, Any]:
        return self.desired(route, STABLE_ONLY)


def managed_names(rules: list[dict[str, Any]], rollout: str, base_count: int) -> tuple[HeaderRoute, ...]:
    """Header routes named by the managed rules/entries of a route. With several base rules each
    header route has one copy per base rule, suffixed `-<index>`; the suffix is dropped."""
    prefix = f"{MANAGED_PREFIX}{rollout}."
    names: list[str] = []
    for rule in rules:
        name = str(rule.get("name", ""))
        if not name.startswith(prefix):
            continue
        name = name[len(prefix) :]
        if base_count > 1:
            name = name.rsplit("-", 1)[0]
        if name not in names:
            names.append(name)
    return tuple(HeaderRoute(name=n, matches=()) for n in names)


def managed_name(rollout: str, name: str) -> str:
    """Name of a rule the controller adds and owns (a DNS subdomain, as rule names must be)."""
    return f"{MANAGED_PREFIX}{rollout}.{name}"
