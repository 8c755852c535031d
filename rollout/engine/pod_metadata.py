"""What a revision's pods carry for the role it holds, beside the template it was made from:
role metadata and anti-affinity.

Role metadata (canaryMetadata/stableMetadata, activeMetadata/previewMetadata): after a
strategy's moves, decide() asks which role each revision holds now (stable or canary, active or
preview; the strategy's spec model says) and brings every ReplicaSet's recorded role metadata to
it: a ReplicaSet created in this decision is created with it, an existing one whose role changed
gets a SetPodMetadata, which the controller applies to its template and to its running pods in
place. The labels never enter the revision hash, and no Service selects on them (validated here).

Anti-affinity (antiAffinity): the new revision's pods (the canary, the preview) are kept off the
nodes of the stable (active) revision's pods while both run; once the revision is alone the term
leaves its template (SetAntiAffinity). Pure: no I/O."""

from __future__ import annotations

import dataclasses
import json

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import Rollout, SpecError
from rollout.api.spec import PodMetadata
from rollout.api.status import RolloutStatus
from rollout.engine.types import Action, CreateReplicaSet, ReplicaSetState, SetAntiAffinity, SetPodMetadata


def canonical(metadata: PodMetadata | None) -> str:
    """The form recorded on a ReplicaSet and compared: "" for no metadata at all."""
    if metadata is None or not (metadata.labels or metadata.annotations):
        return ""
    return json.dumps(
        {"labels": metadata.labels, "annotations": metadata.annotations},
        sort_keys=True,
        separators=(",", ":"),
    )


def wanted_by_revision(rollout: Rollout, status: RolloutStatus, current: str) -> dict[str, str]:
    """Revision -> the canonical metadata of the role it holds now."""
    active = status.blue_green.active_revision if status.blue_green is not None else None
    roles = rollout.spec.strategy.chosen.role_metadata(status.stable_revision, current, active)
    return {revision: canonical(role.metadata) for revision, role in roles.items()}


def role_labels(rollout: Rollout, status: RolloutStatus, current: str) -> str:
    """The role labels the pods carry now, for people (status.roles, a printer column):
    "stable role=stable; canary role=canary"; roles without labels are left out."""
    active = status.blue_green.active_revision if status.blue_green is not None else None
    roles = rollout.spec.strategy.chosen.role_metadata(status.stable_revision, current, active)
    said = []
    for role in roles.values():
        if role.metadata.labels:
            name = role.path.rsplit(".", 1)[-1].removesuffix("Metadata")
            labels = ",".join(f"{k}={v}" for k, v in sorted(role.metadata.labels.items()))
            said.append(f"{name} {labels}")
    return "; ".join(said)


def separation_by_revision(rollout: Rollout, status: RolloutStatus, current: str) -> dict[str, str]:
    """Revision -> its anti-affinity (canonical JSON): the current revision's, against the stable
    (active) one, while the two differ."""
    separation = rollout.spec.strategy.chosen.separation()
    active = status.blue_green.active_revision if status.blue_green is not None else None
    other = active or status.stable_revision
    if separation is None or not other or other == current:
        return {}
    preferred = separation.preferred_during_scheduling_ignored_during_execution
    term = {"against": other, "required": separation.required, "weight": preferred.weight if preferred else 0}
    return {current: json.dumps(term, sort_keys=True, separators=(",", ":"))}


def pod_metadata_actions(
    rollout: Rollout,
    status: RolloutStatus,
    current: str,
    replicasets: tuple[ReplicaSetState, ...],
    actions: list[Action],
) -> list[Action]:
    """`actions` with each ReplicaSet created carrying its role's metadata and anti-affinity, and
    a SetPodMetadata (SetAntiAffinity) for each existing ReplicaSet whose role metadata
    (anti-affinity) is not what it should be now."""
    wanted = wanted_by_revision(rollout, status, current)
    apart = separation_by_revision(rollout, status, current)
    out: list[Action] = [
        dataclasses.replace(
            a, pod_metadata=wanted.get(a.revision, ""), anti_affinity=apart.get(a.revision, "")
        )
        if isinstance(a, CreateReplicaSet)
        else a
        for a in actions
    ]
    for rs in replicasets:
        target = wanted.get(rs.revision, "")
        if rs.pod_metadata != target:
            out.append(
                SetPodMetadata(name=rs.name, revision=rs.revision, applied=rs.pod_metadata, wanted=target)
            )
        separated = apart.get(rs.revision, "")
        if rs.anti_affinity != separated:
            out.append(SetAntiAffinity(name=rs.name, applied=rs.anti_affinity, wanted=separated))
    return out


def pod_metadata_errors(
    rollout: Rollout, service_selectors: dict[str, dict[str, str] | None]
) -> list[SpecError]:
    """A role label that a Service, the Rollout's selector or the revision hash uses: it would move
    pods in and out of a Service as roles change, or break the ReplicaSets' selection."""
    errors: list[SpecError] = []
    spec = rollout.spec
    owners = {REVISION_LABEL: "the revision hash the controller sets"}
    for key in spec.selector.match_labels:
        owners.setdefault(key, "spec.selector")
    for name, selector in sorted(service_selectors.items()):
        for key in selector or {}:
            owners.setdefault(key, f"the selector of Service {rollout.metadata.namespace}/{name}")
    for path, metadata in spec.strategy.chosen.role_fields().items():
        for key in sorted(metadata.labels):
            if key in owners:
                errors.append(
                    SpecError(
                        f"{path}.labels.{key}", f"label {key!r} is used by {owners[key]}; choose another"
                    )
                )
    return errors
