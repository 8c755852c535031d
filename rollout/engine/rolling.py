"""Replica arithmetic: how far to scale each revision toward its target count without going above
`replicas + maxSurge` pods or below `replicas - maxUnavailable` available.

One algorithm (`plan_replicas`) serves the rolling update (one target revision, every other one
to zero; the target is the stable revision on a revert) and the canary without trafficRouting,
where the weight is the share of pods (the stable and the canary revision each at a count)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rollout.engine.types import ReplicaSetState


@dataclass(frozen=True)
class RollingPlan:
    target_replicas: int
    # name -> new spec.replicas, only for the other ReplicaSets that change
    scale_down: dict[str, int]


def oldest_first(replicasets: Sequence[ReplicaSetState]) -> list[ReplicaSetState]:
    return sorted(replicasets, key=lambda rs: (rs.created_at, rs.name))


def plan_replicas(
    sets: Sequence[ReplicaSetState],
    targets: Mapping[str, int],
    desired: int,
    max_surge: int,
    max_unavailable: int,
) -> dict[str, int]:
    """revision -> its new spec.replicas: every ReplicaSet in `sets`, and each revision of
    `targets` (revision -> count; the ones carrying users first) that has none yet. Revisions
    not in `targets` go to zero."""
    # Scale-down first, from what is observed now: pods that are not yet available are never
    # counted on. Revisions that are going away, oldest first, before targets above their count.
    new = {rs.revision: rs.spec_replicas for rs in sets}
    going = [rs for rs in oldest_first(sets) if rs.revision not in targets]
    over = [
        rs for rs in oldest_first(sets) if rs.revision in targets and rs.spec_replicas > targets[rs.revision]
    ]
    cuts = going + over
    min_available = desired - max_unavailable
    available = sum(rs.healthy for rs in sets)
    # Unavailable pods cost no availability, but those of a revision that stays may be about to
    # become available: below the minimum they are waited for, so the budget counts only the
    # unavailable pods of what is cut.
    budget = available - min_available + sum(rs.spec_replicas - rs.healthy for rs in cuts)
    for rs in cuts:
        excess = new[rs.revision] - targets.get(rs.revision, 0)
        cut = min(rs.spec_replicas - rs.healthy, excess, max(0, budget))
        new[rs.revision] -= cut
        budget -= cut
    removable = min(budget, available - min_available)
    for rs in cuts:
        cut = min(new[rs.revision] - targets.get(rs.revision, 0), max(0, removable))
        new[rs.revision] -= cut
        removable -= cut

    # Then scale-up into the room the scale-down left, so that one reconcile does both halves
    # of a step without ever exceeding replicas + maxSurge pods.
    room = desired + max_surge - sum(new.values())
    for revision, count in targets.items():
        grow = min(count - new.get(revision, 0), max(0, room))
        if grow > 0 or revision not in new:
            new[revision] = new.get(revision, 0) + max(0, grow)
            room -= max(0, grow)
    return new


_NEW = "\0new"  # the target revision when it has no ReplicaSet yet (no revision is named so)


def plan_rolling(
    target: ReplicaSetState | None,
    others: Sequence[ReplicaSetState],
    desired: int,
    max_surge: int,
    max_unavailable: int,
) -> RollingPlan:
    """The rolling update: `target` (None: not created yet) to `desired`, `others` to zero."""
    revision = target.revision if target is not None else _NEW
    sets = [*others, *([target] if target is not None else [])]
    new = plan_replicas(sets, {revision: desired}, desired, max_surge, max_unavailable)
    changed = {
        rs.name: new[rs.revision] for rs in oldest_first(others) if new[rs.revision] != rs.spec_replicas
    }
    return RollingPlan(target_replicas=new[revision], scale_down=changed)
