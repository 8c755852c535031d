"""ReplicaSets per revision: named `<rollout>-<revision>`, labelled and selected by the revision
hash, owned by the Rollout so that deleting the Rollout deletes them."""

from __future__ import annotations

import copy
import json
from typing import Any

from rollout import API_VERSION
from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import Rollout
from rollout.engine.types import ReplicaSetState

ROLLOUT_NAME_LABEL = "rollout.dev/rollout"
TEMPLATE_ANNOTATION = "rollout.dev/template"


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


def build_replicaset(rollout: Rollout, revision: str, replicas: int) -> dict[str, Any]:
    meta = rollout.metadata
    written = rollout.spec.template.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    template = copy.deepcopy(written)
    template.setdefault("metadata", {}).setdefault("labels", {})[REVISION_LABEL] = revision
    selector = rollout.spec.selector.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    selector.setdefault("matchLabels", {})[REVISION_LABEL] = revision
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": replicaset_name(meta.name, revision),
            "namespace": meta.namespace,
            "labels": {
                **rollout.spec.template.metadata.labels,
                REVISION_LABEL: revision,
                ROLLOUT_NAME_LABEL: meta.name,
            },
            # The template as the Rollout had it, the one its revision hashes: a real API server
            # fills in defaults in the ReplicaSet's own copy (imagePullPolicy, dnsPolicy, ...),
            # so an undo that wrote that copy back would make a new revision.
            "annotations": {TEMPLATE_ANNOTATION: json.dumps(written, sort_keys=True, separators=(",", ":"))},
            "ownerReferences": [owner_reference(rollout)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": rollout.spec.min_ready_seconds,
            "selector": selector,
            "template": template,
        },
    }


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
    )
