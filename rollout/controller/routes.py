"""Routes and the objects routers pin or own, on the API server: the adapter between the pure
routers and the cluster. The reconciler observes through here before the engine decides, and
carries out the engine's SetTraffic / PinRevision actions and the restore on deletion through
here (the simulator of tests/sim.py drives the same code). Each object is handled by its binding
(rollout/traffic/binding.py), whatever its router: a user's route edited in place, or an object
the router owns (the ingress-nginx canary Ingress), created with the Rollout as its controller
owner and deleted when the router wants none. Every write is guarded by resourceVersion and, on
a conflict, read again from the API server and retried."""

from __future__ import annotations

import functools

from rollout.api.rollout import Rollout
from rollout.engine.types import ObservedPins, ObservedRoute
from rollout.kube import Kube
from rollout.traffic.base import RouteProblem, TrafficState
from rollout.traffic.binding import Owner, Seen
from rollout.traffic.bindings import pin_bindings, probe_state, route_bindings
from rollout.workload.replicasets import ROLLOUT_NAME_LABEL, is_owned_by, owner_reference

__all__ = ["Seen", "observe_pinned", "observe_routes", "pin_revision", "restore_routes", "write_traffic"]


def route_owner(rollout: Rollout) -> Owner:
    """The Rollout as the objects its routers own name it."""
    meta = rollout.metadata
    return Owner(
        meta.namespace,
        owns=functools.partial(is_owned_by, rollout_uid=meta.uid),
        reference=owner_reference(rollout),
        labels={ROLLOUT_NAME_LABEL: meta.name},
    )


async def observe_routes(kube: Kube, rollout: Rollout, seen: Seen) -> tuple[ObservedRoute | None, ...]:
    """What each route applies, in spec order; the routes read are kept in `seen`."""
    probe, owner = probe_state(rollout), route_owner(rollout)
    return tuple([await binding.observe(kube, owner, probe, seen) for binding in route_bindings(rollout)])


async def observe_pinned(kube: Kube, rollout: Rollout) -> tuple[ObservedPins | None, ...]:
    """Which revision each role selects in the objects the routers pin (DestinationRule subsets)."""
    owner = route_owner(rollout)
    return tuple([await binding.observe(kube, owner) for binding in pin_bindings(rollout)])


async def write_traffic(kube: Kube, rollout: Rollout, state: TrafficState, seen: Seen) -> int:
    """Apply `state` to every route of the Rollout; returns how many routes were written."""
    owner = route_owner(rollout)
    return sum([await binding.write(kube, owner, state, seen) for binding in route_bindings(rollout)])


async def restore_routes(kube: Kube, rollout: Rollout) -> list[str]:
    """100% stable and no managed rules on every route, owned objects deleted; returns the
    problems of routes that could not be restored (they are left as they are)."""
    owner = route_owner(rollout)
    problems = []
    for binding in route_bindings(rollout):
        try:
            await binding.restore(kube, owner)
        except RouteProblem as exc:
            problems.append(f"{binding.kind} {binding.name}: {exc}")
    return problems


async def pin_revision(kube: Kube, rollout: Rollout, role: str, revision: str) -> None:
    """`role` on `revision` in every object the routers pin by revision."""
    owner = route_owner(rollout)
    for binding in pin_bindings(rollout):
        await binding.pin(kube, owner, role, revision)
