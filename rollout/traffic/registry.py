"""The router registry: every traffic provider the controller knows, each in its own module
under rollout/traffic/ exporting `PROVIDER`. Adding a provider is its module, one entry in
MODULES, and its field in the API model (TrafficRouting).

Validation, the bindings and the controller ask a provider about its resources, capabilities,
bindings and claims; none of them names a provider. `watched_resources()` is the plain list of
every (group, version, kind, plural) a router reads or writes, owned objects included."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Protocol

from rollout.api.rollout import SpecError
from rollout.kube.resources import Resource
from rollout.traffic.base import Capabilities
from rollout.traffic.binding import Bindings
from rollout.traffic.routing import Routing, RuleClaims

MODULES = ("gatewayapi", "istio", "nginx")


class RouterProvider(Protocol):
    """One traffic provider: `trafficRouting.<field>` in the spec."""

    field: str  # the spec field (alias): gatewayAPI, istio, ...
    attribute: str  # the TrafficRouting model attribute holding its config
    resources: tuple[Resource, ...]  # every kind it reads or writes, owned objects included

    def capabilities(self, config: Any) -> Capabilities: ...

    def bindings(self, config: Any, routing: Routing) -> Bindings: ...

    def claims(self, config: Any, routing: Routing) -> RuleClaims: ...

    def config_errors(self, config: Any, routing: Routing) -> list[SpecError]:
        """What is wrong with the provider's config on its own (no route listed, ...)."""
        ...


PROVIDERS: tuple[RouterProvider, ...] = tuple(
    import_module(f"rollout.traffic.{module}").PROVIDER for module in MODULES
)


def configured(routing: Routing) -> list[tuple[RouterProvider, Any]]:
    """The providers a trafficRouting names, with their config, in registry order."""
    found = []
    for provider in PROVIDERS:
        config = getattr(routing.routing, provider.attribute)
        if config is not None:
            found.append((provider, config))
    return found


def fields() -> list[str]:
    return [p.field for p in PROVIDERS]


def watched_resources() -> list[Resource]:
    """Every resource any router reads or writes, once each, for the controller's caches."""
    seen: dict[tuple[str, str, str], Resource] = {}
    for provider in PROVIDERS:
        for resource in provider.resources:
            seen.setdefault((resource.group, resource.version, resource.plural), resource)
    return list(seen.values())
