"""The rolling update, and the replica arithmetic it shares with the canary without routes.
`STRATEGY` is its entry in the strategy registry (strategies.py).

decide() runs `RollingUpdate(...).run()` after the common bookkeeping (revisions, commands,
pauses): the current revision scaled up and the others down within maxSurge and maxUnavailable,
complete (current becomes stable) once it alone runs at full availability and the background
analysis, if any, has passed; aborted, the stable revision back to full scale first and only then
the rest down.

The arithmetic: how far to scale each revision toward its target count without going above
`replicas + maxSurge` pods or below `replicas - maxUnavailable` available. One algorithm
(`plan_replicas`) serves the rolling update (one target revision, every other one to zero; the
target is the stable revision on a revert) and the canary without trafficRouting, where the
weight is the share of pods (the stable and the canary revision each at a count)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rollout.api.base import resolve_int_or_percent
from rollout.api.rollout import Rollout, SpecError
from rollout.api.spec import RollingStrategy
from rollout.api.status import RolloutStatus
from rollout.api.vocabulary import BACKGROUND
from rollout.engine.gates import Gate
from rollout.engine.moves import Moves, Outcome
from rollout.engine.types import (
    Action,
    Command,
    CreateReplicaSet,
    Event,
    Observed,
    ReplicaSetState,
    ScaleReplicaSet,
)
from rollout.traffic.routing import Routing


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


class RollingUpdate(Moves):
    """`strategy.rolling`: no routes, no steps; the background analysis gates completion."""

    @property
    def strategy(self) -> RollingStrategy:
        strategy = self.rollout.spec.strategy.rolling
        assert strategy is not None
        return strategy

    def promote(self, command: Command) -> Event:
        """Only `full` has something to do: complete without the background analysis."""
        in_progress = self.current != self.status.stable_revision
        if command.value == "full" and in_progress:
            self.status.skip_analysis = True
            return Event("Normal", "PromotedFull", "Promoted in full: completing without analysis")
        if not in_progress:
            return Event(
                "Normal", "PromoteIgnored", f"Promote: nothing to promote, revision {self.current} is stable"
            )
        return Event("Normal", "PromoteIgnored", "Promote: nothing waits for promotion in a rolling update")

    def where(self, phase: str) -> str:
        if phase != "Paused":
            return ""  # the Progressing message says how many are updated already
        return f" at {self.status.updated_replicas}/{self.replicas} updated"

    def run(self) -> Outcome:
        gate = Gate("Successful", "")
        if (
            self.current != self.status.stable_revision
            and not self.status.aborted
            and BACKGROUND in self.analyses.resolved
            and not self.status.skip_analysis
        ):
            gate = self.analyses.background_passed()
            if gate.fails:
                self.analyses.abort(gate)
        self.update(hold=not gate.passed)
        self.out.progressed = bool(self.out.actions)
        self.out.requeue_after = gate.requeue_after
        self.out.waiting = "" if gate.passed or self.status.aborted else gate.message
        if self.out.at_rest:
            self.analyses.stop("the rollout completed")
        return self.out

    def update(self, *, hold: bool) -> None:
        """The scaling, and whether the update is complete (which makes the current revision
        stable); `hold`: the background analysis has not passed yet, so it may not complete."""
        target = self.status.stable_revision if self.status.aborted else self.current
        assert target is not None
        target_rs = self.by_revision.get(target)
        others = [rs for rs in self.observed.replicasets if rs.revision != target]
        if self.status.aborted:
            self.out.actions += self.back_to_stable(target, target_rs, others)
        elif not self.status.pause_conditions:
            self.out.actions += self.toward(target, target_rs, others)
        complete = (
            not self.status.aborted
            and not hold
            and not self.out.actions
            and target_rs is not None
            and target_rs.spec_replicas == self.replicas
            and target_rs.available >= self.replicas
            and all(rs.spec_replicas == 0 and rs.replicas == 0 for rs in others)
        )
        if complete and self.status.stable_revision != self.current:
            self.events.append(
                Event(
                    "Normal",
                    "RolloutCompleted",
                    f"Revision {self.current} is now stable (was {self.status.stable_revision})",
                )
            )
            self.status.stable_revision = self.current
        self.out.at_rest = complete

    def toward(
        self, target: str, target_rs: ReplicaSetState | None, others: list[ReplicaSetState]
    ) -> list[Action]:
        surge = resolve_int_or_percent(self.strategy.max_surge, self.replicas, round_up=True)
        unavailable = resolve_int_or_percent(self.strategy.max_unavailable, self.replicas, round_up=False)
        plan = plan_rolling(target_rs, others, self.replicas, surge, unavailable)
        # Scale-downs first: the pod count stays within replicas + maxSurge between the two writes.
        actions: list[Action] = [
            ScaleReplicaSet(name=name, replicas=n) for name, n in plan.scale_down.items()
        ]
        if target_rs is None:
            actions.append(CreateReplicaSet(revision=target, replicas=plan.target_replicas))
        elif plan.target_replicas != target_rs.spec_replicas:
            actions.append(ScaleReplicaSet(name=target_rs.name, replicas=plan.target_replicas))
        return actions

    def back_to_stable(
        self, stable: str, stable_rs: ReplicaSetState | None, others: list[ReplicaSetState]
    ) -> list[Action]:
        """Stable back to full scale first; only once it is fully available, the rest down to zero."""
        if stable_rs is None:
            self.events.append(
                Event(
                    "Warning",
                    "StableMissing",
                    f"The ReplicaSet of stable revision {stable} is gone; cannot scale it back up",
                )
            )
            return []
        if stable_rs.spec_replicas != self.replicas:
            return [ScaleReplicaSet(name=stable_rs.name, replicas=self.replicas)]
        if stable_rs.available < self.replicas:
            return []
        return [ScaleReplicaSet(name=rs.name, replicas=0) for rs in others if rs.spec_replicas != 0]


class Rolling:
    """The rolling update in the strategy registry (strategies.py): no pause of its own, no
    Services, no steps."""

    config = RollingStrategy
    pause_reasons: tuple[str, ...] = ()
    moves = RollingUpdate

    def config_errors(self, rollout: Rollout, routing: Routing | None, observed: Observed) -> list[SpecError]:
        rolling = rollout.spec.strategy.rolling
        assert rolling is not None
        replicas = rollout.spec.replicas
        surge = resolve_int_or_percent(rolling.max_surge, replicas, round_up=True)
        unavailable = resolve_int_or_percent(rolling.max_unavailable, replicas, round_up=False)
        if surge == 0 and unavailable == 0 and replicas > 0:
            return [
                SpecError(
                    f"{rolling.path}.maxUnavailable",
                    "maxSurge and maxUnavailable are both 0: the update could never make progress",
                )
            ]
        return []

    def moving_users(self, rollout: Rollout, status: RolloutStatus) -> bool:
        return False  # no Service to move users with: nothing recovery reads

    def forget_progress(self, status: RolloutStatus) -> None:
        return None  # its progress is the ReplicaSets' scale, read afresh each time

    def step_progress(self, rollout: Rollout, status: RolloutStatus) -> None:
        return None


STRATEGY = Rolling()
