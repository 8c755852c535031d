"""What a canary's steps ask for once `steps[0..index]` have run: the traffic (weight, header
routes, mirror) and the canary's replica count, and how far they got (`StepProgress`, for
notifications). Pure arithmetic used by the canary strategy."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256

from rollout.api.spec import CanaryStep, SetCanaryScale
from rollout.traffic.base import HeaderRoute, Mirror, TrafficState


@dataclass(frozen=True)
class StepProgress:
    """Where a strategy's steps stand, as notifications tell it."""

    step: int | None  # status.currentStepIndex: the steps done (None: not started)
    steps: int
    weight: int  # the traffic weight the steps done set


@dataclass(frozen=True)
class StepTarget:
    traffic: TrafficState
    scale: SetCanaryScale | None = None  # the last explicit setCanaryScale; None follows the weight


def target_at(steps: Sequence[CanaryStep], index: int) -> StepTarget:
    """The state after steps[0..index] (inclusive); pause and analysis steps change nothing."""
    weight = 0
    scale: SetCanaryScale | None = None
    headers: dict[str, HeaderRoute] = {}
    mirror: Mirror | None = None
    for step in steps[: index + 1]:
        if step.set_weight is not None:
            weight = step.set_weight
        elif step.set_canary_scale is not None:
            scale = None if step.set_canary_scale.match_traffic_weight else step.set_canary_scale
        elif step.set_header_route is not None:
            route = step.set_header_route
            if route.match:
                headers[route.name] = HeaderRoute(route.name, tuple(route.match))
            else:
                headers.pop(route.name, None)
        elif step.set_mirror_route is not None:
            percent = 100 if step.set_mirror_route.percent is None else step.set_mirror_route.percent
            if percent > 0:
                mirror = Mirror(step.set_mirror_route.name, percent)
            elif mirror is not None and mirror.name == step.set_mirror_route.name:
                mirror = None
    return StepTarget(TrafficState(weight, tuple(headers.values()), mirror), scale)


def canary_replicas(target: StepTarget, replicas: int) -> int:
    """ceil(replicas x weight / 100) unless setCanaryScale says otherwise; at least one pod while a
    header route or mirror sends requests to the canary."""
    if target.scale is not None and target.scale.replicas is not None:
        count = target.scale.replicas
    else:
        percent = target.traffic.weight
        if target.scale is not None and target.scale.weight is not None:
            percent = target.scale.weight
        count = math.ceil(replicas * percent / 100)
    if target.traffic.header_routes or target.traffic.mirror is not None:
        count = max(count, 1)
    return count


def steps_hash(steps: Sequence[CanaryStep]) -> str:
    document = [s.model_dump(by_alias=True, exclude_none=True, mode="json") for s in steps]
    return sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:10]


def describe(step: CanaryStep) -> str:
    """A step as a person wrote it, for Events and messages."""
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration is not None else "pause"
    if step.set_canary_scale is not None:
        return "setCanaryScale " + json.dumps(
            step.set_canary_scale.model_dump(by_alias=True, exclude_none=True)
        )
    if step.set_header_route is not None:
        return f"setHeaderRoute {step.set_header_route.name}"
    if step.set_mirror_route is not None:
        return f"setMirrorRoute {step.set_mirror_route.name}"
    return "analysis"
