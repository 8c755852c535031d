"""spec.workloadRef: a Rollout that takes its pod template and selector from a Deployment, and
scales that Deployment down as spec.workloadRef.scaleDown says.

Pure: `with_workload` runs before anything reads the template (the reconciler after its read of
the Deployment, `decide` again, idempotently); `workload_actions` runs after the phase is known.
Giving the Deployment back when the Rollout is deleted is the finalizer's (reconciler._finalize)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from rollout.api.rollout import ParsedRollout, Rollout, SpecError
from rollout.api.spec import LabelSelector, PodTemplate
from rollout.api.status import RolloutStatus
from rollout.engine.types import Action, Event, ReplicaSetState, ScaleDeployment, WorkloadState

WORKLOAD_REF = "spec.workloadRef"


def with_workload(parsed: ParsedRollout, workload: WorkloadState | None) -> ParsedRollout:
    """The Rollout with the template and selector of its Deployment; InvalidSpec (at
    spec.workloadRef.name) when the Deployment does not exist or cannot be used. A Rollout without
    workloadRef, or already resolved, is returned as it is."""
    rollout = parsed.rollout
    if rollout is None or rollout.spec.workload_ref is None or rollout.spec.template is not None:
        return parsed
    ref = rollout.spec.workload_ref
    where = f"Deployment {rollout.metadata.namespace}/{ref.name}"
    if workload is None or workload.name != ref.name:
        return _invalid(parsed, SpecError(f"{WORKLOAD_REF}.name", f"{where} not found"))
    template = dict(workload.template)
    metadata = template.get("metadata") or {}
    assert isinstance(metadata, dict)
    try:
        pod_template = PodTemplate.model_validate(
            {
                "metadata": {
                    "labels": metadata.get("labels") or {},
                    "annotations": metadata.get("annotations") or {},
                },
                "spec": template.get("spec") or {},
            }
        )
        selector = LabelSelector.model_validate(dict(workload.selector))
    except ValidationError as exc:
        problem = "; ".join(e["msg"] for e in exc.errors())
        return _invalid(parsed, SpecError(f"{WORKLOAD_REF}.name", f"{where} cannot be taken over: {problem}"))
    spec = rollout.spec.model_copy(update={"template": pod_template, "selector": selector})
    resolved = rollout.model_copy(update={"spec": spec})  # not validated again: the raw spec was
    return ParsedRollout(
        parsed.meta, parsed.status, resolved, parsed.errors, parsed.status_errors, parsed.conditions
    )


def _invalid(parsed: ParsedRollout, error: SpecError) -> ParsedRollout:
    return ParsedRollout(
        parsed.meta, parsed.status, None, (*parsed.errors, error), parsed.status_errors, parsed.conditions
    )


def workload_actions(
    rollout: Rollout,
    status: RolloutStatus,
    replicasets: Sequence[ReplicaSetState],
    workload: WorkloadState | None,
) -> tuple[list[Action], list[Event]]:
    """Scale the Deployment down as scaleDown says; it is only ever scaled down here (up again
    only when the Rollout is deleted), and never deleted.

    progressively: the Deployment keeps `replicas - available pods of the Rollout`, so that the two
    together never have fewer available pods than the Rollout wants; onsuccess: to 0 once the
    Rollout is Healthy with all its replicas available; never: left as it is."""
    ref = rollout.spec.workload_ref
    if ref is None or workload is None or ref.scale_down == "never" or workload.spec_replicas == 0:
        return [], []
    desired = rollout.spec.replicas
    if ref.scale_down == "onsuccess":
        if status.phase != "Healthy" or status.available_replicas < desired:
            return [], []
        target = 0
        why = (
            f"the Rollout is Healthy with {status.available_replicas}/{desired} available "
            "(scaleDown: onsuccess)"
        )
    else:
        available = sum(rs.healthy for rs in replicasets)
        target = min(workload.spec_replicas, max(0, desired - available))
        why = f"the Rollout has {available}/{desired} available (scaleDown: progressively)"
    if target >= workload.spec_replicas:
        return [], []
    event = Event(
        "Normal",
        "WorkloadScaledDown",
        f"Deployment {workload.name} scaled down from {workload.spec_replicas} to {target}: {why}",
    )
    return [ScaleDeployment(workload.name, target)], [event]
