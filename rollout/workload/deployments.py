"""The Deployment of spec.workloadRef as the engine reads it, and what giving it back means when
the Rollout is deleted (its scale before the Rollout's ReplicaSets go)."""

from __future__ import annotations

from typing import Any

from rollout.engine.types import WorkloadState


def deployment_state(obj: dict[str, Any]) -> WorkloadState:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return WorkloadState(
        name=obj["metadata"]["name"],
        template=spec.get("template") or {},
        selector=spec.get("selector") or {},
        spec_replicas=int(spec.get("replicas", 1)),
        available=int(status.get("availableReplicas", 0)),
    )


def give_back_replicas(raw_rollout: dict[str, Any], deployment: dict[str, Any]) -> int:
    """The scale a Deployment goes back to when its Rollout is deleted: the Rollout's replicas (the
    capacity users had), or more if the Deployment kept more; with scaleDown: never it was not
    touched, and keeps its own scale unless that is 0."""
    spec = raw_rollout.get("spec") or {}
    wanted = int(spec.get("replicas", 1))
    own = int((deployment.get("spec") or {}).get("replicas", 1))
    if (spec.get("workloadRef") or {}).get("scaleDown") == "never" and own > 0:
        return own
    return max(own, wanted)


def available_of(deployment: dict[str, Any]) -> int:
    """Available pods of the Deployment, counted only once its controller saw the newest spec."""
    status = deployment.get("status") or {}
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    if int(status.get("observedGeneration") or 0) < generation:
        return 0
    return int(status.get("availableReplicas", 0))
