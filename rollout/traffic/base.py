"""The router interface and the traffic state it applies."""

from __future__ import annotations

from dataclasses import dataclass
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


STABLE_ONLY = TrafficState()


@dataclass(frozen=True)
class RouteHealth:
    """What the route's own status says: `ok`, `blocked` (Accepted/ResolvedRefs False at the
    current generation) or `unknown` (no status at all, as with meshes that write none)."""

    state: Literal["ok", "blocked", "unknown"]
    reason: str = ""
    message: str = ""


class RouteProblem(Exception):
    """The route cannot carry the Rollout's traffic as asked (no rule names both Services, too
    many rules, a match the provider does not have); reported on the Rollout, nothing written."""


class Router(Protocol):
    def desired(self, route: dict[str, Any], state: TrafficState) -> dict[str, Any]: ...

    def applied(self, route: dict[str, Any]) -> TrafficState: ...

    def health(self, route: dict[str, Any]) -> RouteHealth: ...


def managed_name(rollout: str, name: str) -> str:
    """Name of a rule the controller adds and owns (a DNS subdomain, as rule names must be)."""
    return f"{MANAGED_PREFIX}{rollout}.{name}"
