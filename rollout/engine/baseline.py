"""A canary's baseline (canary.baselineService): a ReplicaSet of the stable template, started with
the canary at the canary's size, on the canary's share of traffic, so that the judge (provider
`compare`, against: baseline) compares pods of the same age. The route then carries three
backends: stable 100 - 2w, baseline w, canary w.

Pure, like the rest of the engine: CanaryPlan (canary.py) inherits these moves; `baseline_errors`
is the canary's validation of the field. The baseline gets traffic only while it has available
pods and its Service selects it; it leaves with the canary (at completion, abort, a new revision),
traffic first, its ReplicaSet scaled down after the same delay as the canary's, then deleted
(decide._history_actions)."""

from __future__ import annotations

import dataclasses

from rollout.api.rollout import Rollout, SpecError
from rollout.api.spec import CanaryStrategy
from rollout.api.status import RolloutStatus
from rollout.engine.side_by_side import SideBySide
from rollout.engine.types import CreateBaseline, ReplicaSetState
from rollout.traffic.base import TrafficState
from rollout.traffic.bindings import capabilities
from rollout.traffic.routing import Routing

# Each share fits: stable 100 - 2w, baseline w, canary w.
MAX_WEIGHT_WITH_BASELINE = 50


class BaselineMoves(SideBySide):
    """The baseline's part of a canary decision."""

    baseline_waiting: str = ""  # what the baseline lacks for the step, in the status message

    @property
    def strategy(self) -> CanaryStrategy:
        raise NotImplementedError

    @property
    def baseline_on(self) -> bool:
        return self.routed and bool(self.strategy.baseline_service)

    def baseline(self) -> ReplicaSetState | None:
        """The baseline ReplicaSet of the stable revision, as observed (None: not created yet)."""
        stable = self.status.stable_revision
        return next((rs for rs in self.observed.replicasets if stable and rs.baseline_of == stable), None)

    def keeps(self, rs: ReplicaSetState, stable: str) -> bool:
        """The baseline of `stable` stays up while the canary runs (not an abandoned attempt)."""
        return self.baseline_on and rs.baseline_of == stable

    def with_baseline(self, traffic: TrafficState) -> TrafficState:
        """A step's traffic with the baseline on the canary's weight (when there is a baseline)."""
        return dataclasses.replace(traffic, baseline=traffic.weight if self.baseline_on else 0)

    def scale_baseline(self, count: int) -> bool:
        """The baseline at the canary's `count` and its Service pinned to it; True once both are
        observed (always True without a baseline). Says what it waits for in `baseline_waiting`."""
        self.baseline_waiting = ""
        if not self.baseline_on:
            return True
        rs = self.baseline()
        stable = self.status.stable_revision or ""
        if rs is None:
            source = self.by_revision.get(stable)
            if count > 0 and source is not None:  # no stable ReplicaSet: scale() says so
                self.out.actions.append(CreateBaseline(stable=stable, source=source.name, replicas=count))
                self.look_again()
            if count > 0:
                self.baseline_waiting = f"the baseline of stable revision {stable}: 0/{count} available"
            return count == 0
        ready = self.scale(rs.revision, count)
        pinned = self.pin_service(self.strategy.baseline_service, rs.revision)
        if not ready:
            self.baseline_waiting = f"baseline ReplicaSet {rs.name}: {rs.healthy}/{count} available"
        elif not pinned:
            self.baseline_waiting = (
                f"pointing Service {self.strategy.baseline_service} at the baseline (revision {rs.revision})"
            )
        return ready and pinned

    def baseline_share(self, allowed: TrafficState, wanted: TrafficState, count: int) -> TrafficState:
        """`allowed` with the baseline's share: none while it has no available pod or its Service
        does not select it yet, never more than the canary gets, and the step's share only once
        `count` pods are available (until then at most what the routes carry)."""
        rs = self.baseline()
        share = min(allowed.weight, wanted.baseline)
        if (
            rs is None
            or rs.healthy == 0
            or self.pinned(self.strategy.baseline_service) != rs.revision
            or not self.baseline_on
        ):
            share = 0
        elif rs.healthy < count:
            applied = self.status.canary.baseline_weight if self.status.canary else 0
            share = min(share, applied)
        return dataclasses.replace(allowed, baseline=share)

    def record_baseline(self) -> None:
        """status.canary's baseline fields: what the routes give it, and its revision while it runs."""
        assert self.status.canary is not None
        states = [r.traffic for r in self.routes if r.traffic is not None]
        self.status.canary.baseline_weight = max((s.baseline for s in states), default=0)
        rs = self.baseline()
        running = rs is not None and (rs.spec_replicas > 0 or self.status.canary.baseline_weight > 0)
        self.status.canary.baseline_revision = rs.revision if running and rs is not None else None
        carried = self.status.canary.baseline_weight > 0
        self.status.canary.baseline_service = self.strategy.baseline_service if carried else None


def baseline_change_errors(rollout: Rollout, status: RolloutStatus) -> list[SpecError]:
    """A baselineService changed or removed while the routes still send the baseline a share:
    the routers know the baseline's backend by that Service only, so the old one would stay on
    the route. Nothing moves until it is put back (then abort or complete, then change it)."""
    recorded = status.canary
    if recorded is None or not recorded.baseline_service or recorded.baseline_weight == 0:
        return []
    canary = rollout.spec.strategy.canary
    if canary is not None and canary.baseline_service == recorded.baseline_service:
        return []
    path = f"{canary.path}.baselineService" if canary is not None else "spec.strategy"
    return [
        SpecError(
            path,
            f"the routes still send {recorded.baseline_weight}% to the baseline through Service "
            f"{recorded.baseline_service}: set baselineService back to {recorded.baseline_service} "
            "until the canary completes or is aborted, then change it",
        )
    ]


def baseline_errors(canary: CanaryStrategy, routing: Routing | None) -> list[SpecError]:
    """baselineService needs a router that carries a third backend, steps whose three shares fit
    in 100, and full-size stable (no dynamicStableScale)."""
    service = canary.baseline_service
    if not service:
        return []
    path = f"{canary.path}.baselineService"
    errors: list[SpecError] = []
    if routing is None:
        errors.append(
            SpecError(
                path,
                "needs trafficRouting (gatewayAPI or istio): without a route the baseline gets "
                "no share of traffic",
            )
        )
    else:
        for at, cap in capabilities(routing):
            if not cap.third_backend:
                why = cap.why.get("third_backend", "the router carries two backends only")
                errors.append(SpecError(path, f"{at}: {why}"))
    if service in (canary.stable_service, canary.canary_service):
        errors.append(SpecError(path, "must differ from stableService and canaryService"))
    if canary.dynamic_stable_scale:
        errors.append(
            SpecError(
                f"{canary.path}.dynamicStableScale",
                "cannot be used with baselineService: stable keeps full scale beside a baseline",
            )
        )
    for index, step in enumerate(canary.steps):
        if step.set_weight is not None and step.set_weight > MAX_WEIGHT_WITH_BASELINE:
            errors.append(
                SpecError(
                    f"{canary.path}.steps[{index}].setWeight",
                    f"{step.set_weight} is over {MAX_WEIGHT_WITH_BASELINE}: with baselineService the "
                    "baseline and the canary each get the weight and stable 100 - 2 x weight",
                )
            )
    return errors
