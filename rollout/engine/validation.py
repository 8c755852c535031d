"""Cross-field and reference checks of a Rollout that passed the schema: each problem becomes an
InvalidSpec with its field path, and nothing is scaled or routed until the spec is fixed."""

from __future__ import annotations

from rollout.api.base import resolve_int_or_percent
from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import Rollout, SpecError
from rollout.engine.types import Observed

CONTROLLER_VERSION_NOTE = "this controller version does not implement it yet; nothing was changed"


def referenced_services(rollout: Rollout) -> dict[str, str]:
    """Services the spec names: field path -> Service name."""
    strategy = rollout.spec.strategy
    refs: dict[str, str] = {}
    if strategy.canary is not None:
        if strategy.canary.stable_service:
            refs["spec.strategy.canary.stableService"] = strategy.canary.stable_service
        if strategy.canary.canary_service:
            refs["spec.strategy.canary.canaryService"] = strategy.canary.canary_service
    if strategy.blue_green is not None:
        refs["spec.strategy.blueGreen.activeService"] = strategy.blue_green.active_service
        if strategy.blue_green.preview_service:
            refs["spec.strategy.blueGreen.previewService"] = strategy.blue_green.preview_service
    return refs


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
        if strategy.rolling.analysis is not None:
            errors.append(SpecError("spec.strategy.rolling.analysis", f"analysis: {CONTROLLER_VERSION_NOTE}"))

    for path, name in referenced_services(rollout).items():
        if observed.services.get(name) is None:
            errors.append(SpecError(path, f"Service {rollout.metadata.namespace}/{name} not found"))
    canary = strategy.canary
    if canary is not None:
        if canary.stable_service and canary.stable_service == canary.canary_service:
            errors.append(SpecError("spec.strategy.canary.canaryService", "must differ from stableService"))
        errors.append(SpecError("spec.strategy.canary", f"the canary strategy: {CONTROLLER_VERSION_NOTE}"))
    if strategy.blue_green is not None:
        errors.append(
            SpecError("spec.strategy.blueGreen", f"the blueGreen strategy: {CONTROLLER_VERSION_NOTE}")
        )
    return errors
