"""The Rollout's finalizer: held while its routes carry canary traffic or managed rules, so that
deleting the Rollout mid-canary first restores them, and for as long as the Rollout has a
spec.workloadRef, so that deleting it first gives the Deployment its pods back
(reconciler._finalize)."""

from __future__ import annotations

from typing import Any

from rollout.engine.types import Decision, Observed, SetTraffic
from rollout.traffic.base import at_rest

FINALIZER = "rollout.dev/traffic"


def finalizers(raw: dict[str, Any]) -> list[str]:
    return list((raw.get("metadata") or {}).get("finalizers") or [])


def holds_traffic(decision: Decision) -> bool:
    """The decision moves traffic away from 100% stable."""
    return any(isinstance(a, SetTraffic) and not at_rest(a.state) for a in decision.actions)


def holds_workload(raw: dict[str, Any]) -> bool:
    """The Rollout took over a Deployment (spec.workloadRef): read off the raw spec, so that a
    spec made invalid later still keeps the Deployment to be given back."""
    spec = raw.get("spec")
    return isinstance(spec, dict) and bool(spec.get("workloadRef"))


def routes_at_rest(observed: Observed, decision: Decision) -> bool:
    """Every route read 100/0 without managed rules, and this decision does not change that."""
    return not holds_traffic(decision) and all(
        route is None or route.traffic is None or at_rest(route.traffic) for route in observed.routes
    )


def finalizer_patch(raw: dict[str, Any], *, add: bool) -> list[dict[str, Any]]:
    """JSON patch adding or removing FINALIZER, with the resourceVersion as a precondition."""
    current = finalizers(raw)
    guard = {
        "op": "replace",
        "path": "/metadata/resourceVersion",
        "value": raw["metadata"]["resourceVersion"],
    }
    if add:
        if not current:
            return [guard, {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]
        return [guard, {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]
    return [guard, {"op": "remove", "path": f"/metadata/finalizers/{current.index(FINALIZER)}"}]
