"""ReplicaSets per revision: named `<rollout>-<revision>`, labelled and selected by the revision
hash, owned by the Rollout so that deleting the Rollout deletes them."""

from __future__ import annotations

import copy
import json
from typing import Any

from rollout import API_VERSION
from rollout.api.revision import BASELINE_LABEL, BASELINE_OF_LABEL, REVISION_LABEL, revision_hash
from rollout.api.rollout import Rollout
from rollout.engine.types import ReplicaSetState

ROLLOUT_NAME_LABEL = "rollout.dev/rollout"
TEMPLATE_ANNOTATION = "rollout.dev/template"
# The role metadata (canaryMetadata, stableMetadata, ...) last put on the template and the pods.
POD_METADATA_ANNOTATION = "rollout.dev/pod-metadata"
# The anti-affinity to another revision's pods (antiAffinity) in the template, as decided.
ANTI_AFFINITY_ANNOTATION = "rollout.dev/anti-affinity"
HOSTNAME = "kubernetes.io/hostname"
ANTI_KINDS = (
    "requiredDuringSchedulingIgnoredDuringExecution",
    "preferredDuringSchedulingIgnoredDuringExecution",
)


def _ours(term: dict[str, Any], against: str) -> bool:
    inner = term.get("podAffinityTerm", term)
    selector = ((inner.get("labelSelector") or {}).get("matchLabels")) or {}
    return selector == {REVISION_LABEL: against} and inner.get("topologyKey") == HOSTNAME


def with_anti_affinity(affinity: dict[str, Any] | None, applied: str, wanted: str) -> dict[str, Any] | None:
    """A pod template's `affinity` with the term for `applied` (canonical JSON of {against,
    required, weight}) taken out and the one for `wanted` put in; the user's own terms stay.
    None when nothing is left."""
    out = copy.deepcopy(affinity or {})
    anti = out.setdefault("podAntiAffinity", {})
    if applied:
        old = json.loads(applied)
        for kind in ANTI_KINDS:
            kept = [t for t in anti.get(kind) or [] if not _ours(t, old["against"])]
            if kept:
                anti[kind] = kept
            else:
                anti.pop(kind, None)
    if wanted:
        new = json.loads(wanted)
        term = {"labelSelector": {"matchLabels": {REVISION_LABEL: new["against"]}}, "topologyKey": HOSTNAME}
        if new["required"]:
            anti.setdefault(ANTI_KINDS[0], []).append(term)
        else:
            anti.setdefault(ANTI_KINDS[1], []).append({"weight": new["weight"], "podAffinityTerm": term})
    if not anti:
        out.pop("podAntiAffinity")
    return out or None


def role_metadata_patch(applied: str, wanted: str) -> dict[str, dict[str, str | None]]:
    """A merge patch of `metadata` taking a pod (or a pod template) from the role metadata
    `applied` to `wanted` (canonical JSON, "" for none): keys no longer wanted are removed."""
    before = json.loads(applied) if applied else {}
    after = json.loads(wanted) if wanted else {}
    patch: dict[str, dict[str, str | None]] = {}
    for part in ("labels", "annotations"):
        old, new = before.get(part) or {}, after.get(part) or {}
        change: dict[str, str | None] = {k: None for k in old if k not in new}
        change.update({k: v for k, v in new.items() if old.get(k) != v})
        if change:
            patch[part] = change
    return patch


def written_template(replicaset: dict[str, Any]) -> dict[str, Any]:
    """The pod template of a revision as its Rollout had it: from the annotation when the
    ReplicaSet carries one, else its own template less the revision label (as defaulted)."""
    recorded = ((replicaset.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_ANNOTATION)
    if recorded:
        return dict(json.loads(recorded))
    template = copy.deepcopy(replicaset["spec"]["template"])
    ((template.get("metadata") or {}).get("labels") or {}).pop(REVISION_LABEL, None)
    return dict(template)


def replicaset_name(rollout_name: str, revision: str) -> str:
    return f"{rollout_name}-{revision}"


def owner_reference(rollout: Rollout) -> dict[str, Any]:
    """The Rollout as the controller owner of an object it creates (garbage-collected with it)."""
    meta = rollout.metadata
    return {
        "apiVersion": API_VERSION,
        "kind": "Rollout",
        "name": meta.name,
        "uid": meta.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_replicaset(
    rollout: Rollout,
    revision: str,
    replicas: int,
    pod_metadata: str = "",
    anti_affinity: str = "",
    written: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`pod_metadata`: its role's labels and annotations, on every pod it makes; `anti_affinity`:
    its pods kept off another revision's nodes (both canonical JSON); neither in the written
    template that its revision hashes. `written`: that template, when it is not the Rollout's
    own (a baseline runs the stable revision's)."""
    meta = rollout.metadata
    if written is None:
        written = rollout.spec.template.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    template = copy.deepcopy(written)
    role = role_metadata_patch("", pod_metadata)
    template.setdefault("metadata", {}).setdefault("labels", {}).update(role.get("labels") or {})
    if role.get("annotations"):
        template["metadata"].setdefault("annotations", {}).update(role["annotations"])
    template["metadata"]["labels"][REVISION_LABEL] = revision
    if anti_affinity:
        pod_spec = template.setdefault("spec", {})
        pod_spec["affinity"] = with_anti_affinity(pod_spec.get("affinity"), "", anti_affinity)
    selector = rollout.spec.selector.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    selector.setdefault("matchLabels", {})[REVISION_LABEL] = revision
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": replicaset_name(meta.name, revision),
            "namespace": meta.namespace,
            "labels": {
                **((written.get("metadata") or {}).get("labels") or {}),
                REVISION_LABEL: revision,
                ROLLOUT_NAME_LABEL: meta.name,
            },
            # The template as the Rollout had it, the one its revision hashes: a real API server
            # fills in defaults in the ReplicaSet's own copy (imagePullPolicy, dnsPolicy, ...),
            # so an undo that wrote that copy back would make a new revision.
            "annotations": {
                TEMPLATE_ANNOTATION: json.dumps(written, sort_keys=True, separators=(",", ":")),
                **({POD_METADATA_ANNOTATION: pod_metadata} if pod_metadata else {}),
                **({ANTI_AFFINITY_ANNOTATION: anti_affinity} if anti_affinity else {}),
            },
            "ownerReferences": [owner_reference(rollout)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": rollout.spec.min_ready_seconds,
            "selector": selector,
            "template": template,
        },
    }


def baseline_template(stable_replicaset: dict[str, Any]) -> dict[str, Any]:
    """The baseline's pod template: the stable revision's as its Rollout had it, plus the
    baseline label (which gives it a revision hash of its own)."""
    written = copy.deepcopy(written_template(stable_replicaset))
    written.setdefault("metadata", {}).setdefault("labels", {})[BASELINE_LABEL] = "true"
    return written


def build_baseline(rollout: Rollout, stable_replicaset: dict[str, Any], replicas: int) -> dict[str, Any]:
    """The canary's baseline ReplicaSet: the stable revision's template (baseline_template) at
    `replicas`, labelled with the stable revision it copies."""
    written = baseline_template(stable_replicaset)
    stable = stable_replicaset["metadata"]["labels"][REVISION_LABEL]
    body = build_replicaset(rollout, revision_hash(written), replicas, written=written)
    body["metadata"]["labels"][BASELINE_OF_LABEL] = stable
    return body


def is_owned_by(obj: dict[str, Any], rollout_uid: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == rollout_uid and ref.get("controller") for ref in refs)


def replicaset_state(obj: dict[str, Any]) -> ReplicaSetState | None:
    """The engine's view of a ReplicaSet; None for one without a revision label."""
    meta = obj.get("metadata", {})
    revision = (meta.get("labels") or {}).get(REVISION_LABEL)
    if not revision:
        return None
    status = obj.get("status") or {}
    return ReplicaSetState(
        name=meta["name"],
        revision=revision,
        spec_replicas=int((obj.get("spec") or {}).get("replicas", 1)),
        replicas=int(status.get("replicas", 0)),
        ready=int(status.get("readyReplicas", 0)),
        available=int(status.get("availableReplicas", 0)),
        created_at=str(meta.get("creationTimestamp", "")),
        pod_metadata=str((meta.get("annotations") or {}).get(POD_METADATA_ANNOTATION, "")),
        anti_affinity=str((meta.get("annotations") or {}).get(ANTI_AFFINITY_ANNOTATION, "")),
        baseline_of=str((meta.get("labels") or {}).get(BASELINE_OF_LABEL, "")),
    )
