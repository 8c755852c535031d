"""The moves of the strategies that keep the stable revision running beside the new one (canary.py,
bluegreen.py): `SideBySide.run()` returns users to stable at rest or on abort, and otherwise lets
the strategy progress; the moves scale a revision's ReplicaSet, pin a Service to a revision,
write a traffic state to the routes, wait on the routes' own status, and scale old ReplicaSets
down.

A move that writes asks for a look again right away (routes and Services are not watched)."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from rollout.api.revision import REVISION_LABEL
from rollout.api.spec import BlueGreenStrategy, CanaryStrategy
from rollout.api.status import BlueGreenStatus, CanaryStatus
from rollout.api.vocabulary import ROUTE_STATUS
from rollout.engine.moves import Moves, Outcome
from rollout.engine.status_conditions import remove_condition, set_condition
from rollout.engine.types import (
    CreateReplicaSet,
    Event,
    ObservedRoute,
    PinRevision,
    PinService,
    ReplicaSetState,
    ScaleReplicaSet,
    SetTraffic,
)
from rollout.traffic.base import TrafficState, same_traffic

# How often a route whose status is pending or blocked is read again (routes are not watched).
ROUTE_POLL_SECONDS = 1.0
BLOCKED_POLL_SECONDS = 5.0


class SideBySide(Moves):
    """A canary or a blue/green decision: the three situations, and the moves they make."""

    @cached_property
    def routes(self) -> list[ObservedRoute]:
        """The routes as observed (a missing one is InvalidSpec, so nothing runs without it)."""
        return [r for r in self.observed.routes if r is not None]

    # --- what a side-by-side strategy provides ----------------------------------------------

    @property
    def strategy(self) -> CanaryStrategy | BlueGreenStrategy:
        raise NotImplementedError

    def record_applied(self) -> None:
        """Status fields read back from the cluster (weights, active revision)."""
        raise NotImplementedError

    def return_to(self, stable: str, delay: int) -> bool:
        """Users back on `stable`, the rest scaled down after `delay`; True when at rest."""
        raise NotImplementedError

    def progress(self, stable: str) -> None:
        raise NotImplementedError

    def run(self) -> Outcome:
        """At rest (current is stable) or aborted: back to stable; otherwise progress."""
        strategy = self.strategy
        self.record_applied()
        stable = self.status.stable_revision
        assert stable is not None
        if self.current == stable:
            self.out.at_rest = self.return_to(stable, strategy.scale_down_delay_seconds)
        elif self.status.aborted:
            self.return_to(stable, strategy.abort_scale_down_delay_seconds)
        else:
            self.progress(stable)
        return self.out

    # --- routes -----------------------------------------------------------------------------

    def traffic_is(self, state: TrafficState) -> bool:
        return all(
            r.traffic is not None and r.explicit and same_traffic(r.traffic, state) for r in self.routes
        )

    def set_traffic(self, state: TrafficState) -> bool:
        """True when every route already applies `state`; otherwise asks for the write."""
        if not self.routed or self.traffic_is(state):
            return True
        self.out.actions.append(SetTraffic(state))
        self.look_again()
        return False

    def health_allows_progress(self) -> bool:
        """Route status gate for any forward move; sets the RouteStatus condition."""
        if not self.routed:
            remove_condition(self.status, ROUTE_STATUS)
            return True
        # The worst state any route is in decides: blocked, then pending, then unknown.
        route = next(
            (
                r
                for state in ("blocked", "pending", "unknown")
                for r in self.routes
                if r.health.state == state
            ),
            None,
        )
        if route is None:
            set_condition(self.status, ROUTE_STATUS, "True", "Accepted", "every route is accepted", self.now)
            return True
        message = f"{route.kind} {route.name}: {route.health.message}"
        state = route.health.state
        if state == "unknown":
            message += "; proceeding without it"
        changed = set_condition(
            self.status,
            ROUTE_STATUS,
            "False" if state == "blocked" else "Unknown",
            route.health.reason,
            message,
            self.now,
        )
        if state == "blocked":
            if changed:
                self.events.append(
                    Event("Warning", "RouteNotAccepted", f"{message}; traffic stays on stable")
                )
            self.out.blocked = message
            self.wake(BLOCKED_POLL_SECONDS)
        elif state == "pending":
            self.out.waiting = message
            self.wake(ROUTE_POLL_SECONDS)
        return state == "unknown"

    # --- Services and ReplicaSets -----------------------------------------------------------

    def pinned(self, service: str | None) -> str | None:
        """The revision a Service selects, as observed (None: not pinned, or no such Service)."""
        if not service:
            return None
        return (self.observed.services.get(service) or {}).get(REVISION_LABEL)

    def pin_service(self, service: str | None, revision: str) -> bool:
        """The Service on `revision`; True once observed (or when there is no Service to pin)."""
        if not service or self.pinned(service) == revision:
            return True
        if self.taking_over(service, revision):
            return False
        self.out.actions.append(PinService(service, revision))
        self.look_again()
        return False

    def taking_over(self, service: str, revision: str) -> bool:
        """A Service not pinned yet selects the pods of the Deployment being taken over
        (spec.workloadRef) as well: it is pinned only once the revision alone has every replica
        available, so that the pods behind it never fall below what users had."""
        if self.rollout.spec.workload_ref is None or self.pinned(service) is not None:
            return False
        if self.healthy(revision) >= self.replicas:
            return False
        self.out.waiting = (
            f"Service {service} stays on the Deployment's pods and the Rollout's until revision "
            f"{revision} has {self.replicas} available"
        )
        self.look_again()
        return True

    def pin_routers(self, role: str, revision: str) -> bool:
        """`role` on `revision` in every object the routers pin by revision; True once observed."""
        pins = [p for p in self.observed.pins if p is not None]
        if all(p.pinned.get(role) == revision for p in pins):
            return True
        self.out.actions.append(PinRevision(role, revision))
        self.look_again()
        return False

    def scale(self, revision: str, count: int) -> bool:
        """The revision's ReplicaSet at `count`; True once that many pods are available."""
        rs = self.by_revision.get(revision)
        if rs is None:
            if revision != self.current:
                self.events.append(
                    Event(
                        "Warning",
                        "StableMissing",
                        f"The ReplicaSet of stable revision {revision} is gone; cannot scale it back up",
                    )
                )
                return False
            if count > 0:
                self.out.actions.append(CreateReplicaSet(revision=revision, replicas=count))
                self.out.progressed = True
            return count == 0
        if rs.spec_replicas != count:
            action = ScaleReplicaSet(name=rs.name, replicas=count)
            if action not in self.out.actions:  # asked for twice on one path (abort mid-step)
                self.out.actions.append(action)
            self.out.progressed = True
            return count == 0 or (rs.healthy >= count and rs.spec_replicas > count)
        return rs.healthy >= count

    def keeps(self, rs: ReplicaSetState, stable: str) -> bool:
        """A ReplicaSet of neither revision that runs beside them on purpose (a canary's baseline)."""
        return False

    def scale_down_abandoned(self, stable: str) -> None:
        """ReplicaSets of neither the stable nor the current revision (earlier attempts, replaced
        by the current one) down to zero at once: no user is sent to them."""
        for rs in self.observed.replicasets:
            abandoned = rs.revision not in (stable, self.current) and not self.keeps(rs, stable)
            if abandoned and rs.spec_replicas > 0:
                self.out.actions.append(ScaleReplicaSet(name=rs.name, replicas=0))
                self.out.progressed = True

    def scale_down_later(
        self, others: list[ReplicaSetState], delay: int, timer: CanaryStatus | BlueGreenStatus
    ) -> None:
        """`others` down to zero once `delay` seconds have passed since the first call (the time
        is kept in `timer.scale_down_at`, so a restart does not start the wait again)."""
        if timer.scale_down_at is None:
            timer.scale_down_at = self.now + timedelta(seconds=delay)
        wait = (timer.scale_down_at - self.now).total_seconds()
        if wait > 0:
            self.wake(wait)
            self.out.waiting = f"scaling down {', '.join(rs.name for rs in others)} in {wait:.0f}s"
            return
        for rs in others:
            self.out.actions.append(ScaleReplicaSet(name=rs.name, replicas=0))
        self.out.progressed = True
