"""Replica arithmetic of a rolling update: how far to scale the target revision up and the others
down without going above `replicas + maxSurge` pods or below `replicas - maxUnavailable` available.

The same plan serves a normal update (target = current revision) and a revert to the stable
template (target = stable revision)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rollout.engine.types import ReplicaSetState


@dataclass(frozen=True)
class RollingPlan:
    target_replicas: int
    # name -> new spec.replicas, only for the other ReplicaSets that change
    scale_down: dict[str, int]


def oldest_first(replicasets: Sequence[ReplicaSetState]) -> list[ReplicaSetState]:
    return sorted(replicasets, key=lambda rs: (rs.created_at, rs.name))


def plan_rolling(
    target: ReplicaSetState | None,
    others: Sequence[ReplicaSetState],
    desired: int,
    max_surge: int,
    max_unavailable: int,
) -> RollingPlan:
    others = oldest_first(others)
    target_spec = target.spec_replicas if target else 0
    target_healthy = target.healthy if target else 0
    total_spec = target_spec + sum(rs.spec_replicas for rs in others)

    # Scale-down first, from what is observed now: pods that are not yet available are never
    # counted on.
    min_available = desired - max_unavailable
    target_unavailable = target_spec - target_healthy
    budget = total_spec - min_available - target_unavailable
    new_spec = {rs.name: rs.spec_replicas for rs in others}
    if budget > 0:
        # Pods that are not available cost no availability: remove them first.
        for rs in others:
            cut = min(rs.spec_replicas - rs.healthy, budget)
            new_spec[rs.name] -= cut
            budget -= cut
        available = target_healthy + sum(rs.healthy for rs in others)
        removable = min(budget, available - min_available)
        for rs in others:
            if removable <= 0:
                break
            cut = min(new_spec[rs.name], removable)
            new_spec[rs.name] -= cut
            removable -= cut

    # Then scale-up into the room the scale-down left, so that one reconcile does both halves
    # of a step without ever exceeding replicas + maxSurge pods.
    total_after = target_spec + sum(new_spec.values())
    if target_spec > desired:
        target_replicas = desired
    elif target_spec < desired:
        room = desired + max_surge - total_after
        target_replicas = min(desired, target_spec + max(0, room))
    else:
        target_replicas = target_spec
    changed = {rs.name: new_spec[rs.name] for rs in others if new_spec[rs.name] != rs.spec_replicas}
    return RollingPlan(target_replicas=target_replicas, scale_down=changed)
