"""Cross-field and reference checks of a Rollout that passed the schema: each problem becomes an
InvalidSpec with its field path, and nothing is scaled or routed until the spec is fixed.

decide() runs `validate` first. The checks every strategy shares are here (selector, the
Services its strategy names, its routes, conflicts with other Rollouts, Secrets); what only one
strategy asks is its own (`config_errors` in the strategy registry, rollout/engine/strategies.py)."""

from __future__ import annotations

from rollout.analysis.resolve import secret_refs
from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import Rollout, SpecError
from rollout.engine.pod_metadata import pod_metadata_errors
from rollout.engine.strategies import strategy_of
from rollout.engine.types import Claims, Observed
from rollout.traffic.bindings import capabilities, pin_bindings, route_bindings, rule_claims
from rollout.traffic.registry import configured, fields
from rollout.traffic.routing import Routing, routing_of


def referenced_services(rollout: Rollout) -> dict[str, str]:
    """Services the spec names: field path -> Service name (its strategy's pair)."""
    return rollout.spec.strategy.chosen.services().named()


def validate(
    rollout: Rollout,
    observed: Observed,
    routing: Routing | None = None,
    open_runs: frozenset[str] = frozenset(),
) -> list[SpecError]:
    """Every problem of the spec; `routing` is the Rollout's routing_of when the caller has worked
    it out already (decide() has), else it is worked out here. `open_runs`: the analyses running
    for the current revision (their missing Secrets are measured as errors instead)."""
    if routing is None:
        routing = routing_of(rollout)
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
    if observed.refused_template is not None:
        errors.append(
            SpecError("spec.template", f"the API server refused its ReplicaSet: {observed.refused_template}")
        )
    if REVISION_LABEL in labels:
        errors.append(
            SpecError(
                "spec.template.metadata.labels", f"{REVISION_LABEL} is set by the controller; remove it"
            )
        )

    services = spec.strategy.chosen.services()
    for path, name in services.named().items():
        if observed.services.get(name) is None:
            errors.append(SpecError(path, f"Service {rollout.metadata.namespace}/{name} not found"))
    if services.stable and services.stable == services.canary:
        errors.append(
            SpecError(f"{services.path}.{services.canary_field}", f"must differ from {services.stable_field}")
        )
    errors += strategy_of(rollout).config_errors(rollout, routing, observed)
    if routing is not None:
        errors += _routing_errors(rollout, routing, observed)
    errors += conflict_errors(rollout, observed.others)
    errors += secret_errors(rollout, observed, open_runs)
    errors += pod_metadata_errors(rollout, dict(observed.services))
    return errors


def secret_errors(
    rollout: Rollout, observed: Observed, open_runs: frozenset[str] = frozenset()
) -> list[SpecError]:
    """Analysis headers whose Secret or key is missing, or whose Secret may not be read: found
    before any query is sent (and before anything moves). A Secret that goes missing while its
    analysis runs is that run's measurement error instead, so the run fails rather than hangs.
    Only Secret and key names appear, never a value."""
    namespace = rollout.metadata.namespace
    errors: list[SpecError] = []
    for ref in secret_refs(rollout, observed.analysis_templates):
        keys = observed.secrets.get(ref.secret)
        where = f"{ref.template} {ref.field} (header {ref.header!r})"
        denied = observed.unreadable_secrets.get(ref.secret)
        if denied is not None:
            errors.append(
                SpecError(ref.path, f"{where}: Secret {namespace}/{ref.secret} cannot be read: {denied}")
            )
        elif ref.run in open_runs:
            continue
        elif keys is None:
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
