"""The canary strategy: steps walked in order, traffic moved on the routes (or by replica
proportions without trafficRouting), completion and abort in the order the design fixes.
`STRATEGY` is its entry in the strategy registry (strategies.py).

decide() runs `CanaryPlan(...).run()` after the common bookkeeping (revisions, commands,
pauses). Three situations, one method each (SideBySide.run picks one):
- at rest (current == stable): stable at full scale, routes 100/0 with no managed rules, canary
  Service back on stable, other ReplicaSets down after scaleDownDelaySeconds;
- aborted: the same return to stable, with abortScaleDownDelaySeconds;
- progressing: (re)start with traffic on stable, then one step at a time; a step that moves
  traffic passes only once every route reads back what it asked for; completion scales the
  canary to full, re-pins the stable Service (and subset) to it, and only then calls it stable.

Weight only goes to a canary with enough available pods; with none available the canary gets no
traffic at all, and a route whose status says it is not accepted holds traffic on stable.

dynamicStableScale (with trafficRouting): the stable ReplicaSet is scaled to the share of traffic
the routes read back as its own, never below what the step being worked on will send it; traffic
returning to stable (abort, a new revision, a lower step) moves only as far as the stable's
available pods can carry it, unless the canary has no pod left to serve it."""

from __future__ import annotations

import math
from datetime import datetime

from rollout.api.base import parse_duration, resolve_int_or_percent
from rollout.api.rollout import Rollout, SpecError
from rollout.api.spec import CanaryStrategy
from rollout.api.status import CanaryStatus, RolloutStatus
from rollout.api.vocabulary import BACKGROUND, CANARY_PAUSE, step_run_name
from rollout.engine.baseline import BaselineMoves, baseline_errors
from rollout.engine.gates import Gate, reset_runs, step_gate
from rollout.engine.rolling import plan_replicas
from rollout.engine.status_conditions import add_pause, remove_pause
from rollout.engine.step_checks import step_errors
from rollout.engine.steps import StepProgress, StepTarget, canary_replicas, describe, steps_hash, target_at
from rollout.engine.types import (
    Command,
    CreateReplicaSet,
    Event,
    Observed,
    ReplicaSetState,
    ScaleReplicaSet,
    SetTraffic,
)
from rollout.traffic.base import STABLE_ONLY, TrafficState, at_rest, same_traffic
from rollout.traffic.routing import Routing


def promote(rollout: Rollout, status: RolloutStatus, command: Command, now: datetime) -> Event:
    """`promote: full` skips to completion; any other value passes the current pause step, or
    the next pause or inconclusive analysis the canary reaches (kept in `promote_pending`)."""
    steps = _strategy(rollout).steps
    index = status.current_step_index
    if status.aborted:
        return Event(
            "Normal", "PromoteIgnored", "Promote: the canary was aborted; rollout.dev/retry starts it again"
        )
    if status.current_revision == status.stable_revision:
        return Event(
            "Normal",
            "PromoteIgnored",
            f"Promote: nothing to promote, revision {status.stable_revision} is stable",
        )
    if command.value == "full":
        remove_pause(status, CANARY_PAUSE)
        status.current_step_index, status.step_started_at = len(steps), now
        status.skip_analysis, status.promote_pending = True, False
        return Event("Normal", "PromotedFull", "Promoted in full: skipping the remaining steps")
    if index is not None and index < len(steps) and steps[index].pause is not None:
        remove_pause(status, CANARY_PAUSE)
        status.current_step_index, status.step_started_at = index + 1, now
        return Event("Normal", "PromotedStep", f"Promoted past step {index + 1} ({describe(steps[index])})")
    if index is None:
        at = "before step 1"
    elif index < len(steps):
        at = f"at step {index + 1}/{len(steps)} ({describe(steps[index])})"
    else:
        at = "completing"
    if status.promote_pending:
        return Event(
            "Normal",
            "PromoteIgnored",
            f"Promote: one is already pending (canary {at}); promotes do not add up",
        )
    status.promote_pending = True
    return Event(
        "Normal",
        "PromotePending",
        f"Promote: nothing waits yet (canary {at}); it passes the next pause or inconclusive analysis",
    )


def _strategy(rollout: Rollout) -> CanaryStrategy:
    strategy = rollout.spec.strategy.canary
    assert strategy is not None
    return strategy


class CanaryPlan(BaselineMoves):
    @property
    def strategy(self) -> CanaryStrategy:
        return _strategy(self.rollout)

    def promote(self, command: Command) -> Event:
        return promote(self.rollout, self.status, command, self.now)

    def where(self, phase: str) -> str:
        """The step and the weight the routes carry."""
        weight = self.status.canary.weight if self.status.canary else 0
        if self.status.current_step_index is None:
            return f", canary weight {weight}%"
        steps = len(self.strategy.steps)
        return f" at step {min(self.status.current_step_index + 1, steps)}/{steps}, canary weight {weight}%"

    @property
    def cs(self) -> CanaryStatus:
        if self.status.canary is None:
            self.status.canary = CanaryStatus()
        return self.status.canary

    # --- what the routes say --------------------------------------------------------------

    def record_applied(self) -> None:
        """status.canary from what the routes (or the replica counts) say now."""
        if self.routed:
            states = [r.traffic for r in self.routes if r.traffic is not None]
            self.cs.weight = max((s.weight for s in states), default=0)
            self.cs.header_routes = sorted({h.name for s in states for h in s.header_routes})
            mirrored = any(s.mirror is not None for s in states)
            self.cs.mirror_routes = [self._mirror_name()] if mirrored else []
            self.record_baseline()
        else:
            canary = self.by_revision.get(self.current)
            total = sum(rs.healthy for rs in self.observed.replicasets)
            in_progress = self.current != self.status.stable_revision and canary is not None
            self.cs.weight = round(100 * canary.healthy / total) if in_progress and canary and total else 0

    def _mirror_name(self) -> str:
        index = self.status.current_step_index
        if index is None:
            return "mirror"
        mirror = target_at(self.strategy.steps, index).traffic.mirror
        return mirror.name if mirror is not None else "mirror"

    # --- writes -----------------------------------------------------------------------------

    def pin(self, role: str, revision: str) -> bool:
        """Stable or canary Service (and what the routers pin by revision, such as DestinationRule
        subsets) on `revision`; True once observed."""
        services = self.strategy.services()
        service = services.stable if role == "stable" else services.canary
        service_done = self.pin_service(service, revision)
        return self.pin_routers(role, revision) and service_done  # both asked for in one decision

    # --- the three situations (SideBySide.run picks one) ------------------------------------

    def return_to(self, stable: str, delay: int) -> bool:
        """Stable at full scale, traffic 100/0 and managed rules gone, canary Service back on
        stable; then the other ReplicaSets down once `delay` has passed. True when at rest."""
        self.status.current_step_index = None
        remove_pause(self.status, CANARY_PAUSE)
        self.cs.stable_replicas = None
        stable_ready = self.scale(stable, self.replicas)
        self.pin("stable", stable)
        toward = self.toward_stable(stable)
        at_rest_now = self.set_traffic(toward) and toward == STABLE_ONLY and self.pin("canary", stable)
        if toward != STABLE_ONLY:
            self.out.waiting = (
                f"moving traffic back to stable as its pods become available: "
                f"{self.healthy(stable)}/{self.replicas}, canary weight {toward.weight}%"
            )
        others = [rs for rs in self.observed.replicasets if rs.revision != stable and rs.spec_replicas > 0]
        if not others:
            self.cs.scale_down_at = None
        elif at_rest_now and stable_ready:
            self.scale_old_down(others, delay)
        return at_rest_now and stable_ready

    def scale_old_down(self, others: list[ReplicaSetState], delay: int) -> None:
        # Proxies and endpoints take a moment to follow a route or selector change; without any
        # (no routes, no Services) there is nothing to wait for.
        if not (self.routed or self.strategy.services().named()):
            delay = 0
        self.scale_down_later(others, delay, self.cs)

    def progress(self, stable: str) -> None:
        self.cs.scale_down_at = None
        steps = self.strategy.steps
        digest = steps_hash(steps)
        if self.cs.steps_hash != digest:
            if self.cs.steps_hash is not None and self.status.current_step_index is not None:
                self.events.append(Event("Normal", "StepsChanged", "The steps changed: restarting at step 1"))
                self.status.current_step_index = None
                remove_pause(self.status, CANARY_PAUSE)
                reset_runs(self.status, keep_background=True)
            self.cs.steps_hash = digest
        self.check_step_evidence()
        if self.routed:
            self.scale(stable, self.stable_count())
        if self.status.current_step_index is None and not self.restart():
            return
        if not self.background_allows_progress(stable):
            return
        held = [p.reason for p in self.status.pause_conditions if p.reason != CANARY_PAUSE]
        for _ in range(len(steps) + 1):
            index = self.status.current_step_index
            assert index is not None
            if index >= len(steps):
                self.complete(stable, held)
                return
            if not self.run_step(index, held):
                return

    def check_step_evidence(self) -> None:
        """A step index past an analysis step is believed only with that step's run Successful
        for this revision in status (the nearest one: older runs may have been trimmed). A status
        restored from a backup or written by hand starts again at step 1 instead."""
        index = self.status.current_step_index
        if index is None or self.status.skip_analysis:
            return
        steps = self.strategy.steps
        gates = [j for j in range(min(index, len(steps))) if steps[j].analysis is not None]
        if not gates:
            return
        run = self.status.analysis_run(step_run_name(gates[-1]), self.current)
        if run is not None and run.phase == "Successful":
            return
        self.events.append(
            Event(
                "Warning",
                "StepsRestarted",
                f"Status says step {min(index, len(steps)) + 1}, but the analysis of step {gates[-1] + 1} "
                f"has no successful run for revision {self.current}: starting again at step 1",
            )
        )
        self.status.current_step_index = None
        remove_pause(self.status, CANARY_PAUSE)
        reset_runs(self.status, keep_background=True)

    def act_on_analysis(self, gate: Gate, stable: str) -> bool:
        """False when the analysis fails: aborted, and back to stable right now."""
        if gate.fails:
            self.analyses.abort(gate)
            self.return_to(stable, self.strategy.abort_scale_down_delay_seconds)
            return False
        self.wake(gate.requeue_after)
        return True

    def background_allows_progress(self, stable: str) -> bool:
        """The background analysis runs from its startingStep (a step index) until completion."""
        index = self.status.current_step_index or 0
        ref = self.strategy.analysis
        if (
            ref is None
            or self.status.skip_analysis
            or index < min(ref.starting_step or 0, len(self.strategy.steps))
        ):
            return True
        gate = self.analyses.gate(BACKGROUND)
        if gate.phase == "Inconclusive":
            self.out.waiting = f"background {gate.message}"
        return self.act_on_analysis(gate, stable)

    def restart(self) -> bool:
        """Before step 1: traffic on stable (the stable Service too, should it select another
        revision), then the canary Service on the new revision."""
        toward = self.toward_stable(self.status.stable_revision or "")
        if not self.set_traffic(toward) or toward != STABLE_ONLY:
            self.out.waiting = "moving traffic back to stable before the canary starts"
            return False
        stable = self.status.stable_revision or ""
        if self.pinned(self.strategy.stable_service) not in (None, stable):
            if self.healthy(stable) == 0:  # never point users at a revision with no available pod
                self.out.waiting = f"waiting for stable revision {stable} to have available pods"
                return False
            if not self.pin("stable", stable):
                self.out.waiting = f"pointing the stable Service back at revision {stable}"
                return False
        if not self.pin("canary", self.current):
            self.out.waiting = f"pointing the canary at revision {self.current}"
            return False
        self.status.current_step_index, self.status.step_started_at = 0, self.now
        self.out.progressed = True
        return True

    def run_step(self, index: int, held: list[str]) -> bool:
        """Work on step `index`; True when it is done and the next one may start."""
        steps = self.strategy.steps
        step = steps[index]
        target = target_at(steps, index)
        wanted = self.with_baseline(target.traffic)
        count = self.canary_count(target)
        if held:  # a user pause holds the canary where it is, except to take traffic off it
            self.hold(wanted, count)
            return False
        canary_ready = self.scale_canary(count, self.status.stable_revision or "", target.traffic.weight)
        allowed = self.allowed_traffic(wanted, count)
        if not self.health_allows_progress():
            if self.out.blocked:
                self.set_traffic(self.toward_stable(self.status.stable_revision or ""))
            return False
        if not self.set_traffic(allowed):
            if (
                canary_ready
                and step.pause is None
                and step.analysis is None
                and same_traffic(allowed, wanted)
            ):
                # Written now: the step is done once the write lands. Whatever comes next reads
                # the routes back before it moves traffic again or starts a pause, so a lost
                # write is simply written again. Saves a reconcile and a status write per step.
                self.advance(index)
                self.prepare(index + 1)
            return False
        if not canary_ready or not same_traffic(allowed, wanted):
            rs = self.by_revision.get(self.current)
            healthy = rs.healthy if rs else 0
            waits = [f"canary pods: {healthy}/{count} available"] if healthy < count else []
            if self.baseline_waiting:
                waits.append(self.baseline_waiting)
                self.out.stuck_baseline = self.baseline_waiting
            # Pods available and none missing: the traffic is still moving (read back next time).
            what = "; ".join(waits) or f"canary pods: {healthy}/{count} available"
            self.out.waiting = f"step {index + 1} ({describe(step)}) waits for {what}"
            return False
        if step.pause is not None and self.status.promote_pending:
            self.status.promote_pending = False
            remove_pause(self.status, CANARY_PAUSE)
            self.events.append(
                Event(
                    "Normal",
                    "PromotedStep",
                    f"The pending rollout.dev/promote passed step {index + 1} ({describe(step)})",
                )
            )
        elif step.pause is not None:
            added = add_pause(self.status, CANARY_PAUSE, self.now)
            if step.pause.duration is None:
                self.out.waiting = f"paused at step {index + 1} until rollout.dev/promote"
                if added:  # once per pause step reached (notifications' Paused trigger)
                    self.events.append(
                        Event(
                            "Normal",
                            "AwaitingPromotion",
                            f"Paused at step {index + 1}/{len(steps)} until rollout.dev/promote",
                        )
                    )
                return False
            started = next(p.start_time for p in self.status.pause_conditions if p.reason == CANARY_PAUSE)
            left = parse_duration(step.pause.duration) - (self.now - started).total_seconds()
            if left > 0:
                self.wake(left)
                self.out.waiting = f"paused at step {index + 1} for another {left:.0f}s"
                return False
            remove_pause(self.status, CANARY_PAUSE)
        if step.analysis is not None:
            gate = step_gate(self.analyses, index)
            if not self.act_on_analysis(gate, self.status.stable_revision or ""):
                return False
            if not gate.passed:
                self.out.waiting = f"step {index + 1}: {gate.message}"
                return False
        self.advance(index)
        return True

    def prepare(self, index: int) -> None:
        """Scale the canary for step `index` already (its traffic waits for the next reconcile)."""
        steps = self.strategy.steps
        if index < len(steps) and self.routed:
            target = target_at(steps, index)
            self.scale_canary(
                self.canary_count(target), self.status.stable_revision or "", target.traffic.weight
            )

    def advance(self, index: int) -> None:
        steps = self.strategy.steps
        self.events.append(
            Event("Normal", "StepCompleted", f"Step {index + 1}/{len(steps)} done: {describe(steps[index])}")
        )
        self.status.current_step_index, self.status.step_started_at = index + 1, self.now
        self.out.progressed = True

    def allowed_traffic(self, wanted: TrafficState, count: int) -> TrafficState:
        """Never more traffic than the canary's available pods can take: none with no pods,
        the step's weight only once `count` pods are available (until then what is applied)."""
        rs = self.by_revision.get(self.current)
        healthy = rs.healthy if rs else 0
        if healthy == 0:
            return STABLE_ONLY
        allowed = wanted
        if healthy < count:
            allowed = TrafficState(min(self.cs.weight, wanted.weight), wanted.header_routes, wanted.mirror)
        if self.dynamic:  # nor more to stable than its available pods can carry
            floor = min(self.cs.weight, self.least_canary_weight(self.status.stable_revision or ""))
            if allowed.weight < floor:
                allowed = TrafficState(floor, allowed.header_routes, allowed.mirror)
        return self.baseline_share(allowed, wanted, count)

    # --- dynamicStableScale and minPodsPerReplicaSet ---------------------------------------

    @property
    def dynamic(self) -> bool:
        return self.routed and self.strategy.dynamic_stable_scale

    def canary_count(self, target: StepTarget) -> int:
        """The step's canary pods; with trafficRouting at least minPodsPerReplicaSet once any."""
        count = canary_replicas(target, self.replicas)
        floor = self.strategy.min_pods_per_replica_set
        return max(count, floor) if self.routed and floor and count > 0 else count

    def stable_pods_for(self, canary_weight: int) -> int:
        """Stable pods that carry 100 - `canary_weight` percent (rounded up), at least
        minPodsPerReplicaSet (1 by default), at most spec.replicas."""
        need = math.ceil(self.replicas * (100 - canary_weight) / 100)
        return min(self.replicas, max(need, self.strategy.min_pods_per_replica_set or 1))

    def least_canary_weight(self, stable: str) -> int:
        """The canary weight below which stable's available pods could not carry the rest (its
        pods as this decision leaves them: a scale-down asked for counts already)."""
        if self.replicas <= 0:
            return 0
        pods = self.healthy(stable)
        if self.cs.stable_replicas is not None and stable == self.status.stable_revision:
            pods = min(pods, self.cs.stable_replicas)
        return 100 - min(100, 100 * pods // self.replicas)

    def stable_count(self) -> int:
        """The stable ReplicaSet's scale while a routed canary runs: full, or with
        dynamicStableScale what the traffic on stable needs now (the routes as read back, the
        most any of them sends it) and at the step being worked on, whichever is more."""
        if not self.dynamic:
            return self.replicas
        index = self.status.current_step_index
        if index is None:
            self.cs.stable_replicas = None
            return self.replicas  # before step 1 every user is on stable
        states = [r.traffic for r in self.routes if r.traffic is not None]
        weight = min((s.weight for s in states), default=0)
        steps = self.strategy.steps
        if index < len(steps):
            weight = min(weight, target_at(steps, index).traffic.weight)
        count = self.stable_pods_for(weight)
        self.cs.stable_replicas = count
        return count

    def toward_stable(self, stable: str) -> TrafficState:
        """Every user back on stable; with dynamicStableScale only as many as its available
        pods can carry, the canary keeping the rest (never more than it has now) until they
        can, unless it has no pod available to serve them. The canary is the revision the canary
        Service (or a router's canary subset) selects: after a new revision, still the old one."""
        if not self.dynamic:
            return STABLE_ONLY
        pinned = [p.pinned.get("canary") for p in self.observed.pins if p is not None]
        canary = self.pinned(self.strategy.canary_service) or next((r for r in pinned if r), self.current)
        if canary == stable or self.healthy(canary) == 0:
            return STABLE_ONLY
        keep = min(self.cs.weight, self.least_canary_weight(stable))
        return TrafficState(keep) if keep > 0 else STABLE_ONLY

    def hold(self, wanted: TrafficState, count: int) -> None:
        allowed = self.allowed_traffic(wanted, count)
        if allowed.weight < self.cs.weight or (at_rest(allowed) and not self.traffic_is(STABLE_ONLY)):
            self.set_traffic(allowed)

    def scale_canary(self, count: int, stable: str, weight: int = 100) -> bool:
        if self.routed:
            rs = self.by_revision.get(self.current)
            # What the routes carry, or will once this decision's write lands (a step done on its
            # write prepares the next one in the same decision).
            writes = [a.state.weight for a in self.out.actions if isinstance(a, SetTraffic)]
            carried = max([self.cs.weight, *writes])
            if rs is not None and weight < carried:
                # Traffic leaves the canary only once the routes read back less: until then it
                # keeps the pods for what it carries (never more traffic than its pods can take).
                count = max(count, min(rs.spec_replicas, math.ceil(self.replicas * carried / 100)))
            ready = self.scale(self.current, count)
            # The baseline, created with the canary, at its size: kept up like it while the routes
            # still carry more (its share never exceeds the canary's).
            baseline_ready = self.scale_baseline(count)
            self.scale_down_abandoned(stable)  # earlier canaries, abandoned for this one
            return ready and baseline_ready
        return self.scale_by_proportion(count, stable, weight)

    def scale_by_proportion(self, count: int, stable: str, weight: int = 100) -> bool:
        """Without trafficRouting the weight is the share of pods: the canary grows to `count`
        and stable shrinks to the rest, within maxSurge and maxUnavailable (the rolling update's
        arithmetic, rolling.plan_replicas, with two targets). Below a weight of 100 stable keeps
        at least one pod: when spec.replicas is so low (an autoscaler scaled it down mid-canary)
        that the canary's rounded-up share takes every pod, users stay partly on stable rather
        than all moved to the canary by rounding."""
        surge = resolve_int_or_percent(self.strategy.max_surge, self.replicas, round_up=True)
        unavailable = resolve_int_or_percent(self.strategy.max_unavailable, self.replicas, round_up=False)
        stable_count = self.replicas - count
        if weight < 100 and self.replicas > 0:
            stable_count = max(stable_count, 1)
        targets = {stable: stable_count, self.current: count}  # stable first: it carries the users
        sets = self.observed.replicasets
        new = plan_replicas(sets, targets, self.replicas, surge, unavailable)
        for rs in sets:
            if new[rs.revision] != rs.spec_replicas:
                self.out.actions.append(ScaleReplicaSet(name=rs.name, replicas=new[rs.revision]))
                self.out.progressed = True
        if self.current not in self.by_revision and new.get(self.current, 0) > 0:
            self.out.actions.append(CreateReplicaSet(revision=self.current, replicas=new[self.current]))
            self.out.progressed = True

        def settled(revision: str, count: int) -> bool:
            rs = self.by_revision.get(revision)
            if rs is None:
                return count == 0
            return rs.spec_replicas == count and rs.healthy >= count

        return all(settled(rev, n) for rev, n in targets.items()) and all(
            rs.spec_replicas == 0 for rs in sets if rs.revision not in targets
        )

    def complete(self, stable: str, held: list[str]) -> None:
        """The canary to full scale, the stable Service (and subset) re-pinned to it, and only
        then the new revision is stable; traffic returns to 100/0 from there (at rest)."""
        if held:
            return
        if self.routed:
            ready = self.scale(self.current, self.replicas)
        else:
            self.pin("stable", self.current)  # before stable's pods go away
            ready = self.scale_by_proportion(self.replicas, stable)
        if not ready:
            rs = self.by_revision.get(self.current)
            self.out.waiting = f"promoting: canary {rs.healthy if rs else 0}/{self.replicas} available"
            return
        if not self.health_allows_progress():
            if self.out.blocked:
                self.set_traffic(self.toward_stable(self.status.stable_revision or ""))
            return
        if not self.pin("stable", self.current):
            self.out.waiting = f"pointing the stable Service at revision {self.current}"
            return
        background = self.analyses.background_passed() if not self.status.skip_analysis else None
        if background is not None and not background.passed:
            if self.act_on_analysis(background, stable):
                self.out.waiting = f"promoting once the background analysis passes: {background.message}"
            return
        self.analyses.stop("the rollout completed")
        self.events.append(
            Event("Normal", "RolloutCompleted", f"Revision {self.current} is now stable (was {stable})")
        )
        self.status.stable_revision = self.current
        self.out.progressed = True
        self.out.at_rest = self.return_to(self.current, self.strategy.scale_down_delay_seconds)


class Canary:
    """The canary in the strategy registry (strategies.py)."""

    config = CanaryStrategy
    pause_reasons = (CANARY_PAUSE,)
    moves = CanaryPlan

    def config_errors(self, rollout: Rollout, routing: Routing | None, observed: Observed) -> list[SpecError]:
        canary = _strategy(rollout)
        errors: list[SpecError] = []
        replicas = rollout.spec.replicas
        surge = resolve_int_or_percent(canary.max_surge, replicas, round_up=True)
        unavailable = resolve_int_or_percent(canary.max_unavailable, replicas, round_up=False)
        if canary.traffic_routing is None and surge == 0 and unavailable == 0 and replicas > 0:
            errors.append(
                SpecError(
                    f"{canary.path}.maxSurge",
                    "maxSurge and maxUnavailable are both 0: without trafficRouting no pod could move",
                )
            )
        if canary.traffic_routing is None:
            for field, set_ in (
                ("dynamicStableScale", canary.dynamic_stable_scale),
                ("minPodsPerReplicaSet", canary.min_pods_per_replica_set is not None),
            ):
                if set_:
                    errors.append(
                        SpecError(
                            f"{canary.path}.{field}",
                            f"{field} needs trafficRouting: without it the weight is the share of "
                            "pods, and stable already shrinks as the canary grows",
                        )
                    )
        return errors + step_errors(canary, routing) + baseline_errors(canary, routing)

    def moving_users(self, rollout: Rollout, status: RolloutStatus) -> bool:
        """Completing: every step done, users moving onto the current revision."""
        index = status.current_step_index
        return index is not None and index >= len(_strategy(rollout).steps)

    def forget_progress(self, status: RolloutStatus) -> None:
        status.current_step_index = None  # a canary starts again from step 1

    def step_progress(self, rollout: Rollout, status: RolloutStatus) -> StepProgress:
        """The steps done and the weight they set: 0 while aborted or before step 1, 100 once
        the revision is stable."""
        steps = _strategy(rollout).steps
        index = status.current_step_index
        if status.aborted:
            weight = 0
        elif status.current_revision == status.stable_revision:
            weight = 100
        elif index is None:
            weight = 0
        else:
            done = min(index, len(steps))
            weight = target_at(steps, done - 1).traffic.weight if done else 0
        return StepProgress(step=index, steps=len(steps), weight=weight)


STRATEGY = Canary()
