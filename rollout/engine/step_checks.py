"""A canary's steps against its routers (the canary's part of validation, which decide() runs
before anything moves): a step asking for what a router cannot carry (a header route on a
TCPRoute, a mirror where the router has none, a prefix match on Gateway API) is InvalidSpec at
the step's field path, each router asked for its capabilities through the registry."""

from __future__ import annotations

from rollout.api.rollout import SpecError
from rollout.api.spec import CanaryStep, CanaryStrategy
from rollout.traffic.base import Capabilities
from rollout.traffic.bindings import capabilities
from rollout.traffic.routing import Routing


def step_errors(canary: CanaryStrategy, routing: Routing | None) -> list[SpecError]:
    """Steps asking for what a router cannot carry, each router asked for its capabilities."""
    caps = [c for _, c in capabilities(routing)] if routing is not None else []
    errors: list[SpecError] = []
    active: list[str] = []  # header routes in place after each step
    for index, step in enumerate(canary.steps):
        path = f"{canary.path}.steps[{index}]"
        header = step.set_header_route
        if header is not None:
            if header.name in active:
                active.remove(header.name)
            if header.match:
                active.append(header.name)
        routed_step = "setHeaderRoute" if header else "setMirrorRoute" if step.set_mirror_route else ""
        if routed_step and routing is None:
            errors.append(
                SpecError(f"{path}.{routed_step}", "needs trafficRouting (a route to add rules to)")
            )
            continue
        for cap in caps:
            errors += _capability_errors(cap, step, path, active)
    return list(dict.fromkeys(errors))  # one provider's reason once, though several say it


def _capability_errors(cap: Capabilities, step: CanaryStep, path: str, active: list[str]) -> list[SpecError]:
    errors: list[SpecError] = []
    if step.set_weight is not None and not cap.weights:
        errors.append(SpecError(f"{path}.setWeight", cap.why.get("weights", "the router has no weights")))
    header = step.set_header_route
    if header is not None and header.match:
        if not cap.header_matches:
            why = cap.why.get("headers", "the router has no header routes")
            return [*errors, SpecError(f"{path}.setHeaderRoute", why)]
        for k, match in enumerate(header.match):
            kind = "exact" if match.exact is not None else "regex" if match.regex is not None else "prefix"
            if kind not in cap.header_matches:
                allowed = " or ".join(sorted(cap.header_matches))
                why = cap.why.get("match", f"header matches here are {allowed}")
                errors.append(SpecError(f"{path}.setHeaderRoute.match[{k}].{kind}", why))
        limit = cap.matches_per_header_route
        if limit is not None and len(header.match) > limit:
            why = cap.why.get("matches", f"at most {limit} header match(es) per header route")
            errors.append(SpecError(f"{path}.setHeaderRoute.match", why))
        limit = cap.header_routes_at_once
        if limit is not None and len(active) > limit:
            why = cap.why.get("at_once", f"at most {limit} header route(s) at a time")
            errors.append(SpecError(f"{path}.setHeaderRoute", f"{why}; active here: {', '.join(active)}"))
    mirror = step.set_mirror_route
    if mirror is not None and (mirror.percent is None or mirror.percent > 0):
        if not cap.mirror:
            errors.append(
                SpecError(f"{path}.setMirrorRoute", cap.why.get("mirror", "the router cannot mirror"))
            )
        elif not cap.mirror_percent and mirror.percent not in (None, 100):
            why = cap.why.get("mirror_percent", "the router mirrors all requests or none")
            errors.append(SpecError(f"{path}.setMirrorRoute.percent", why))
    return errors
