"""The blue/green strategy: the new revision comes up beside the old one, reachable on the preview
Service, and one switch moves every user to it; a rollback is the same switch back. `STRATEGY`
is its entry in the strategy registry (strategies.py).

decide() runs `BlueGreenPlan(...).run()` after the common bookkeeping (revisions, commands, pauses):
- at rest (current == stable) or aborted: `return_to(stable)`: stable at full scale, the active
  Service (then, with trafficRouting, the routes) on stable, the preview Service on stable too,
  and only then the other ReplicaSets down after scaleDownDelaySeconds (or the abort delay);
- before the switch: users on stable first (an abandoned attempt may still hold them), the new
  ReplicaSet at previewReplicaCount (default: full), the preview Service pinned to it, wait until
  available, pre-promotion analysis, wait for rollout.dev/promote unless auto-promotion (after
  autoPromotionSeconds), scale to full and wait for full availability, then the switch: the
  active Service's selector, or with trafficRouting the routes' weight 0 -> 100 in one write;
- after the switch: post-promotion analysis; a failure aborts, which switches back to the old
  revision (kept at full scale until completion); success makes the new revision stable.

Users never move to a revision without available pods (unless the one they are on has none
either), and nothing is scaled down before users have left it."""

from __future__ import annotations

from datetime import datetime, timedelta

from rollout.api.rollout import Rollout, SpecError
from rollout.api.spec import BlueGreenStrategy, RolloutAnalysis
from rollout.api.status import BlueGreenStatus, RolloutStatus
from rollout.api.vocabulary import BLUE_GREEN_PAUSE, POST_PROMOTION, PRE_PROMOTION
from rollout.engine.side_by_side import SideBySide
from rollout.engine.status_conditions import add_pause, remove_pause
from rollout.engine.types import Command, Event, Observed
from rollout.traffic.base import STABLE_ONLY, TrafficState
from rollout.traffic.bindings import pin_bindings
from rollout.traffic.routing import Routing

SWITCHED = TrafficState(weight=100)  # with trafficRouting: everything to the preview Service


def _strategy(rollout: Rollout) -> BlueGreenStrategy:
    strategy = rollout.spec.strategy.blue_green
    assert strategy is not None
    return strategy


def blue_green_status(status: RolloutStatus) -> BlueGreenStatus:
    if status.blue_green is None:
        status.blue_green = BlueGreenStatus()
    return status.blue_green


def promote(rollout: Rollout, status: RolloutStatus, command: Command, now: datetime) -> Event:
    """Any value lets the switch happen (once the preview is available and its pre-promotion
    analysis has passed); `full` also skips the pre- and post-promotion analysis."""
    current = status.current_revision
    if status.aborted or current == status.stable_revision:
        return Event("Normal", "PromoteIgnored", "Promote: no blue/green update in progress")
    bg = blue_green_status(status)
    full = command.value == "full"
    if full:
        status.skip_analysis = True
    status.last_progress_at = now
    if bg.switched_at is not None:
        if full:
            return Event(
                "Normal", "PromotedFull", f"Promoted in full: {current} completes without further analysis"
            )
        return Event(
            "Normal", "PromoteIgnored", f"Promote: {current} is already active; nothing waits for promotion"
        )
    remove_pause(status, BLUE_GREEN_PAUSE)
    bg.promoted = True
    service = _strategy(rollout).active_service
    if full:
        return Event(
            "Normal",
            "PromotedFull",
            f"Promoted in full: {current} goes active on {service} once all its pods are available, "
            "without analysis",
        )
    return Event(
        "Normal",
        "Promoted",
        f"Promoted: {current} goes active on {service} once all its pods are available",
    )


class BlueGreenPlan(SideBySide):
    @property
    def strategy(self) -> BlueGreenStrategy:
        return _strategy(self.rollout)

    def promote(self, command: Command) -> Event:
        return promote(self.rollout, self.status, command, self.now)

    def where(self, phase: str) -> str:
        """Which revision is active and which is preview."""
        return f", active {self.bg.active_revision or '-'}, preview {self.bg.preview_revision or '-'}"

    def waiting_when_paused(self, waiting: str) -> str:
        return waiting  # paused for promotion: what the preview is ready for, and until when

    @property
    def bg(self) -> BlueGreenStatus:
        return blue_green_status(self.status)

    @property
    def active(self) -> str:
        return self.strategy.active_service

    @property
    def preview(self) -> str | None:
        return self.strategy.preview_service

    # --- what the Services and routes say ---------------------------------------------------

    def active_revision(self) -> str | None:
        """The revision users reach: the preview Service's when every route has been switched
        to it, else the active Service's."""
        if self.routed and self.routes and self.traffic_is(SWITCHED):
            return self.pinned(self.preview)
        return self.pinned(self.active)

    def record_applied(self) -> None:
        in_progress = self.current != self.status.stable_revision and not self.status.aborted
        self.bg.active_revision = self.active_revision()
        if self.preview:
            self.bg.preview_revision = self.pinned(self.preview)
        else:
            self.bg.preview_revision = self.current if in_progress else None

    def switched(self) -> bool:
        """Users are on the current revision (switched by this or an earlier reconcile)."""
        if self.routed:
            return self.traffic_is(SWITCHED) and self.pinned(self.preview) == self.current
        return self.pinned(self.active) == self.current

    def may_receive(self, revision: str) -> bool:
        """Users move to `revision` only when it has available pods, or when the revision they
        are on has none either."""
        return self.healthy(revision) > 0 or self.healthy(self.active_revision()) == 0

    # --- moves ------------------------------------------------------------------------------

    def users_to(self, revision: str) -> bool:
        """Without routes: the active Service on `revision`. With routes, which send to the
        active and preview Services: the active Service on `revision`, then the weight back to
        the active Service. True once observed."""
        if self.active_revision() != revision and not self.may_receive(revision):
            self.out.waiting = (
                f"revision {revision} has no available pods; users stay on {self.active_revision()}"
            )
            return False
        if not self.pin_service(self.active, revision):
            return False
        return self.set_traffic(STABLE_ONLY)

    def switch(self) -> None:
        """One write moves every user to the current revision."""
        was = self.active_revision()
        if self.routed:
            self.set_traffic(SWITCHED)
            how = f"routes now send 100% to {self.preview}"
        else:
            self.pin_service(self.active, self.current)
            how = f"{self.active} now selects it"
        self.events.append(
            Event("Normal", "Switched", f"Revision {self.current} is active ({how}; was {was})")
        )
        self.bg.switched_at = self.now

    # --- the situations (SideBySide.run picks one) -----------------------------------------

    def return_to(self, stable: str, delay: int) -> bool:
        """Stable at full scale, users and the preview Service on it, then the other ReplicaSets
        down once `delay` has passed. True when at rest."""
        remove_pause(self.status, BLUE_GREEN_PAUSE)
        stable_ready = self.scale(stable, self.replicas)
        rest = self.users_to(stable) and self.pin_service(self.preview, stable)
        others = [rs for rs in self.observed.replicasets if rs.revision != stable and rs.spec_replicas > 0]
        if not others:
            self.bg.scale_down_at = None
        elif rest and stable_ready:
            self.scale_down_later(others, delay, self.bg)
        elif not self.out.waiting:
            self.out.waiting = f"moving users to revision {stable}"
        return rest and stable_ready

    def progress(self, stable: str) -> None:
        self.bg.scale_down_at = None
        self.scale(stable, self.replicas)  # the old revision keeps full scale until completion
        if self.switched():
            self.after_switch(stable)
            return
        # Before the switch everyone is on stable: an abandoned revision, or this one before a
        # retry, may still hold the active Service or the routes.
        if not self.users_to(stable):
            self.out.waiting = self.out.waiting or f"returning users to revision {stable} first"
            return
        self.scale_down_abandoned(stable)
        self.before_switch(stable)

    def held(self) -> bool:
        """A user pause or an inconclusive analysis holds the update where it is."""
        return any(p.reason != BLUE_GREEN_PAUSE for p in self.status.pause_conditions)

    def analysis(self, name: str, ref: RolloutAnalysis | None, stable: str) -> bool:
        """True when the analysis passed (or there is none); a failure aborts and returns users
        to `stable` in this same decision."""
        if ref is None or self.status.skip_analysis:
            return True
        gate = self.analyses.gate(name)
        if gate.fails:
            self.analyses.abort(gate)
            self.return_to(stable, self.strategy.abort_scale_down_delay_seconds)
            return False
        self.wake(gate.requeue_after)
        if not gate.passed:
            self.out.waiting = f"{name} {gate.message}"
        return gate.passed

    def before_switch(self, stable: str) -> None:
        count = self.replicas
        if self.strategy.preview_replica_count is not None:
            count = min(self.strategy.preview_replica_count, self.replicas)
        if self.held():
            self.out.waiting = f"held; users stay on {stable}"
            return
        self.scale(self.current, self.replicas if self.bg.promoted else count)
        if not self.pin_service(self.preview, self.current):
            self.out.waiting = f"pointing the preview Service at revision {self.current}"
            return
        if self.healthy(self.current) < count:
            self.out.waiting = (
                f"preview revision {self.current}: {self.healthy(self.current)}/{count} available"
            )
            return
        if not self.analysis(PRE_PROMOTION, self.strategy.pre_promotion_analysis, stable):
            return
        if not self.bg.promoted and not self.auto_promote():
            return
        if not self.scale(self.current, self.replicas):
            self.out.waiting = (
                f"promoting: revision {self.current} {self.healthy(self.current)}/{self.replicas} "
                "available; switching once all are"
            )
            return
        if not self.health_allows_progress():
            return
        self.switch()

    def auto_promote(self) -> bool:
        """Promotion without a person: at once, or autoPromotionSeconds after the preview was
        ready; with autoPromotionEnabled: false, paused until rollout.dev/promote."""
        if self.bg.preview_ready_at is None:
            self.bg.preview_ready_at = self.now
            self.out.progressed = True
        where = f" on {self.preview}" if self.preview else ""
        seconds = self.strategy.auto_promotion_seconds
        if not self.strategy.auto_promotion_enabled:
            if add_pause(self.status, BLUE_GREEN_PAUSE, self.now):
                self.events.append(
                    Event(
                        "Normal",
                        "PreviewReady",
                        f"Revision {self.current} is ready{where}; waiting for rollout.dev/promote",
                    )
                )
            self.out.waiting = f"revision {self.current} ready{where}; waiting for rollout.dev/promote"
            return False
        if seconds:
            left = (self.bg.preview_ready_at + timedelta(seconds=seconds) - self.now).total_seconds()
            if left > 0:
                if add_pause(self.status, BLUE_GREEN_PAUSE, self.now):
                    self.events.append(
                        Event(
                            "Normal",
                            "PreviewReady",
                            f"Revision {self.current} is ready{where}; promoting in {seconds}s",
                        )
                    )
                self.wake(left)
                self.out.waiting = f"revision {self.current} ready{where}; auto-promotion in {left:.0f}s"
                return False
        remove_pause(self.status, BLUE_GREEN_PAUSE)
        self.bg.promoted = True
        self.events.append(Event("Normal", "AutoPromoted", f"Revision {self.current} promoted automatically"))
        return True

    def after_switch(self, stable: str) -> None:
        if self.bg.switched_at is None:  # switched before a status write was lost
            self.bg.switched_at = self.now
        if self.healthy(self.current) == 0 and self.healthy(stable) > 0:
            reason = f"revision {self.current} has no available pods after the switch"
            self.status.aborted, self.status.abort_reason = True, reason
            self.events.append(
                Event("Warning", "RolloutAborted", f"Aborted: {reason}; switching back to {stable}")
            )
            self.analyses.stop("the rollout was aborted")
            self.return_to(stable, self.strategy.abort_scale_down_delay_seconds)
            return
        if self.held():
            self.out.waiting = f"held; users stay on {self.current}, {stable} keeps running"
            return
        if not self.analysis(POST_PROMOTION, self.strategy.post_promotion_analysis, stable):
            return
        self.analyses.stop("the rollout completed")
        self.events.append(
            Event("Normal", "RolloutCompleted", f"Revision {self.current} is now stable (was {stable})")
        )
        self.status.stable_revision = self.current
        self.out.progressed = True
        self.bg.scale_down_at = self.bg.switched_at + timedelta(
            seconds=self.strategy.scale_down_delay_seconds
        )
        self.out.at_rest = self.return_to(self.current, self.strategy.scale_down_delay_seconds)


class BlueGreen:
    """Blue/green in the strategy registry (strategies.py)."""

    config = BlueGreenStrategy
    pause_reasons = (BLUE_GREEN_PAUSE,)
    moves = BlueGreenPlan

    def config_errors(self, rollout: Rollout, routing: Routing | None, observed: Observed) -> list[SpecError]:
        """Objects that pin pods by revision (DestinationRule subsets) have no place in a switch."""
        return [
            SpecError(
                binding.path,
                f"a blue/green switch routes to the active and preview Services; {binding.pinner.kind} "
                "subsets are for canaries (remove it)",
            )
            for binding in pin_bindings(rollout)
        ]

    def moving_users(self, rollout: Rollout, status: RolloutStatus) -> bool:
        """Switched: users are being moved onto the current revision (the switch time is in status)."""
        return status.blue_green is not None and status.blue_green.switched_at is not None

    def forget_progress(self, status: RolloutStatus) -> None:
        if status.blue_green is not None:
            status.blue_green.restart()  # promotion starts again

    def step_progress(self, rollout: Rollout, status: RolloutStatus) -> None:
        return None  # no steps


STRATEGY = BlueGreen()
