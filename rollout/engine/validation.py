"""Cross-field and reference checks of a Rollout that passed the schema: each problem becomes an
InvalidSpec with its field path, and nothing is scaled or routed until the spec is fixed."""

from __future__ import annotations

from rollout.analysis.resolve import secret_refs
from rollout.api.base import resolve_int_or_percent
from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import Rollout, SpecError
from rollout.api.spec import CanaryStep
from rollout.engine.types import Claims, Observed
from rollout.traffic.base import Capabilities
from rollout.traffic.bindings import (
    Routing,
    capabilities,
    pin_bindings,
    route_bindings,
    routing_of,
    rule_claims,
)
from rollout.traffic.registry import configured, fields

CANARY = "spec.strategy.canary"
BLUE_GREEN = "spec.strategy.blueGreen"


def referenced_services(rollout: Rollout) -> dict[str, str]:
    """Services the spec names: field path -> Service name (its strategy's pair)."""
    return rollout.spec.strategy.chosen.services().named()


def validate(rollout: Rollout, observed: Observed) -> list[SpecError]:
    spec = rollout.spec
    errors: list[SpecError] = []
    labels = spec.template.metadata.labels
    if not spec.selector.match_labels and not spec.selector.match_expressions:
        errors.append(SpecError("spec.selector", "selector is empty; it would select every pod"))
    elif not spec.selector.matches(labels):
        errors.append(
            SpecError(
                "spec.selector",
                f"selector {spec.selector.as_query()!r} does not match the template labels "
                f"{labels} (spec.template.metadata.labels)",
            )
        )
    if REVISION_LABEL in labels:
        errors.append(
            SpecError(
                "spec.template.metadata.labels", f"{REVISION_LABEL} is set by the controller; remove it"
            )
        )

    strategy = spec.strategy
    if strategy.rolling is not None:
        surge = resolve_int_or_percent(strategy.rolling.max_surge, spec.replicas, round_up=True)
        unavailable = resolve_int_or_percent(strategy.rolling.max_unavailable, spec.replicas, round_up=False)
        if surge == 0 and unavailable == 0 and spec.replicas > 0:
            errors.append(
                SpecError(
                    "spec.strategy.rolling.maxUnavailable",
                    "maxSurge and maxUnavailable are both 0: the update could never make progress",
                )
            )

    for path, name in referenced_services(rollout).items():
        if observed.services.get(name) is None:
            errors.append(SpecError(path, f"Service {rollout.metadata.namespace}/{name} not found"))
    if strategy.canary is not None:
        errors += _canary_errors(rollout, observed)
    if strategy.blue_green is not None:
        errors += _blue_green_errors(rollout)
    routing = routing_of(rollout)
    if routing is not None:
        errors += _routing_errors(rollout, routing, observed)
    errors += conflict_errors(rollout, observed.others)
    errors += secret_errors(rollout, observed)
    return errors


def secret_errors(rollout: Rollout, observed: Observed) -> list[SpecError]:
    """Analysis headers whose Secret or key is missing: found before any query is sent (and before
    anything moves). Only Secret and key names appear, never a value."""
    namespace = rollout.metadata.namespace
    errors: list[SpecError] = []
    for ref in secret_refs(rollout, observed.analysis_templates):
        keys = observed.secrets.get(ref.secret)
        where = f"{ref.template} {ref.field} (header {ref.header!r})"
        if keys is None:
            errors.append(SpecError(ref.path, f"{where}: Secret {namespace}/{ref.secret} not found"))
        elif ref.key not in keys:
            errors.append(
                SpecError(ref.path, f"{where}: Secret {namespace}/{ref.secret} has no key {ref.key!r}")
            )
    return errors


def claims_of(rollout: Rollout) -> Claims:
    """What `rollout` manages, as other Rollouts of its namespace compare against."""
    return Claims(
        name=rollout.metadata.name,
        created_at=rollout.metadata.creation_timestamp,
        services=frozenset(referenced_services(rollout).values()),
        rules=frozenset(rule_claims(rollout)),
        # None for a workloadRef not resolved yet (another Rollout read from the cache): its
        # Deployment's name is its claim then.
        selector=rollout.spec.selector,
        template_labels=dict(rollout.spec.template.metadata.labels) if rollout.spec.template else {},
        workload=rollout.spec.workload_ref.name if rollout.spec.workload_ref else "",
    )


def selectors_overlap(one: Claims, other: Claims) -> bool:
    """Either selector matches the other's pod template labels, or one's matchLabels is a subset
    of the other's: pods of one Rollout could be counted (and routed) as the other's."""
    if one.selector is None or other.selector is None:
        return False
    if one.selector.matches(dict(other.template_labels)) or other.selector.matches(dict(one.template_labels)):
        return True
    mine, theirs = one.selector.match_labels.items(), other.selector.match_labels.items()
    return bool(mine and theirs) and (mine <= theirs or theirs <= mine)


def conflict_errors(rollout: Rollout, others: tuple[Claims, ...]) -> list[SpecError]:
    """What this Rollout shares with an older Rollout of its namespace: the younger one (by
    creationTimestamp, ties by name) stops with InvalidSpec; the older one keeps working."""
    mine = claims_of(rollout)
    namespace = rollout.metadata.namespace
    services = referenced_services(rollout)
    rules = rule_claims(rollout)
    errors: list[SpecError] = []
    for other in sorted(others, key=lambda c: (c.created_at, c.name)):
        if other.name == mine.name or not other.older_than(mine):
            continue
        owner = f"Rollout {namespace}/{other.name} (older)"
        for path, service in services.items():
            if service in other.services:
                errors.append(SpecError(path, f"Service {namespace}/{service} is already managed by {owner}"))
        for key, path in rules.items():
            if key in other.rules:
                plural, route, what = key
                errors.append(
                    SpecError(path, f"{what} of {plural} {namespace}/{route} is already managed by {owner}")
                )
        if mine.workload and mine.workload == other.workload:
            errors.append(
                SpecError(
                    "spec.workloadRef.name",
                    f"Deployment {namespace}/{mine.workload} is already taken over by {owner}",
                )
            )
        elif selectors_overlap(mine, other):
            assert other.selector is not None and mine.selector is not None
            if mine.workload:
                path = "spec.workloadRef.name"
                whose = f"the selector {mine.selector.as_query()!r} of Deployment {namespace}/{mine.workload}"
            else:
                path, whose = "spec.selector", f"selector {mine.selector.as_query()!r}"
            errors.append(
                SpecError(
                    path,
                    f"{whose} overlaps the selector {other.selector.as_query()!r} of {owner}: "
                    "their pods would be mixed up",
                )
            )
    return errors


def _blue_green_errors(rollout: Rollout) -> list[SpecError]:
    blue_green = rollout.spec.strategy.blue_green
    assert blue_green is not None
    errors: list[SpecError] = []
    if blue_green.preview_service == blue_green.active_service:
        errors.append(SpecError(f"{BLUE_GREEN}.previewService", "must differ from activeService"))
    for binding in pin_bindings(rollout):
        errors.append(
            SpecError(
                binding.path,
                f"a blue/green switch routes to the active and preview Services; {binding.pinner.kind} "
                "subsets are for canaries (remove it)",
            )
        )
    return errors


def _canary_errors(rollout: Rollout, observed: Observed) -> list[SpecError]:
    canary = rollout.spec.strategy.canary
    assert canary is not None
    errors: list[SpecError] = []
    if canary.stable_service and canary.stable_service == canary.canary_service:
        errors.append(SpecError(f"{CANARY}.canaryService", "must differ from stableService"))
    replicas = rollout.spec.replicas
    surge = resolve_int_or_percent(canary.max_surge, replicas, round_up=True)
    unavailable = resolve_int_or_percent(canary.max_unavailable, replicas, round_up=False)
    if canary.traffic_routing is None and surge == 0 and unavailable == 0 and replicas > 0:
        errors.append(
            SpecError(
                f"{CANARY}.maxSurge",
                "maxSurge and maxUnavailable are both 0: without trafficRouting no pod could move",
            )
        )
    errors += _step_errors(rollout)
    return errors


def _step_errors(rollout: Rollout) -> list[SpecError]:
    """Steps asking for what a router cannot carry, each router asked for its capabilities."""
    canary = rollout.spec.strategy.canary
    assert canary is not None
    spec = routing_of(rollout)
    caps = [c for _, c in capabilities(spec)] if spec is not None else []
    errors: list[SpecError] = []
    active: list[str] = []  # header routes in place after each step
    for index, step in enumerate(canary.steps):
        path = f"{CANARY}.steps[{index}]"
        header = step.set_header_route
        if header is not None:
            if header.name in active:
                active.remove(header.name)
            if header.match:
                active.append(header.name)
        routed_step = "setHeaderRoute" if header else "setMirrorRoute" if step.set_mirror_route else ""
        if routed_step and spec is None:
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


def _routing_errors(rollout: Rollout, spec: Routing, observed: Observed) -> list[SpecError]:
    path = spec.path
    errors: list[SpecError] = []
    namespace = rollout.metadata.namespace
    providers = configured(spec)
    if not providers:
        errors.append(SpecError(path, f"name the routes: one of {', '.join(fields())}"))
    for provider, config in providers:
        errors += provider.config_errors(config, spec)
    by_subset = bool(providers) and all(c.subsets for _, c in capabilities(spec))
    if not by_subset and not (spec.stable_service and spec.canary_service):
        missing = spec.stable_field if not spec.stable_service else spec.canary_field
        errors.append(
            SpecError(
                f"{spec.strategy_path}.{missing}", "required with trafficRouting (the routes send to it)"
            )
        )
    for binding, route in zip(route_bindings(rollout), observed.routes, strict=False):
        if route is None:
            errors.append(SpecError(binding.path, f"{binding.plural} {namespace}/{binding.name} not found"))
        elif route.problem:
            errors.append(
                SpecError(binding.path, f"{route.kind} {namespace}/{binding.name}: {route.problem}")
            )
    for pin_binding, pins in zip(pin_bindings(rollout), observed.pins, strict=False):
        kind = pin_binding.pinner.kind
        if pins is None:
            errors.append(SpecError(pin_binding.path, f"{kind} {namespace}/{pin_binding.name} not found"))
        elif pins.problem:
            errors.append(
                SpecError(pin_binding.path, f"{kind} {namespace}/{pin_binding.name}: {pins.problem}")
            )
    return errors
