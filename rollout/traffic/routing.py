"""The trafficRouting of a Rollout as the routers see it (`Routing`), from which each router
provider (gatewayapi.py, istio.py, ...) makes its bindings (binding.py): which object of which
resource, at which spec path, handled by which router. The registry lists the providers;
bindings.py and the controller use them."""

from __future__ import annotations

from dataclasses import dataclass

from rollout.api.rollout import Rollout
from rollout.api.spec import TrafficRouting


@dataclass(frozen=True)
class Routing:
    """The trafficRouting of a canary or a blue/green Rollout and the two Services its routes send
    to: stable and canary, or for blue/green active and preview (and a canary's baseline, when
    it has one)."""

    strategy_path: str  # spec.strategy.canary or spec.strategy.blueGreen, for errors
    routing: TrafficRouting
    stable_service: str
    canary_service: str
    stable_field: str  # the spec fields naming the two Services, for errors
    canary_field: str
    rollout: str = ""  # the Rollout's name: managed rules and owned objects are named after it
    baseline_service: str = ""  # a canary's baselineService: the third backend of its routes

    @property
    def path(self) -> str:
        return f"{self.strategy_path}.trafficRouting"

    @property
    def backend_pair(self) -> str:
        return f"backends {self.stable_service},{self.canary_service}"


def routing_of(rollout: Rollout) -> Routing | None:
    """The trafficRouting its strategy declares, with the strategy's two Services (None: none)."""
    strategy = rollout.spec.strategy.chosen
    routing = strategy.routing()
    if routing is None:
        return None
    services = strategy.services()
    return Routing(
        services.path,
        routing,
        services.stable,
        services.canary,
        services.stable_field,
        services.canary_field,
        rollout.metadata.name,
        services.baseline,
    )


# The route rules a Rollout writes, for conflicts between Rollouts: (plural, route, what) -> path.
RuleClaims = dict[tuple[str, str, str], str]
