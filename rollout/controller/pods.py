"""Pods: the stable revision's, for a restart (rollout.dev/restart), read and evicted here; and
any revision's, relabelled in place when its role changes (SetPodMetadata).

Flow: the reconciler calls `observe_stable_pods` only while a restart runs or is asked for (a
fresh list from the API server; Pods are not cached, so the steady state reads none), the engine
plans (engine/restart.py), and `evict_pod` carries out its EvictPod through the Eviction API,
which honours PodDisruptionBudgets: a 429 means the budget allows no disruption now, and the
restart looks again on its next reconcile."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import jsonpatch
from kubernetes.client.exceptions import ApiException

from rollout.api.revision import REVISION_LABEL
from rollout.engine.types import Event, PodState, SetAntiAffinity, SetPodMetadata
from rollout.kube import JSON_PATCH, PODS, REPLICASETS, Kube
from rollout.kube.conflicts import guarded
from rollout.kube.objects import copied
from rollout.workload.replicasets import (
    ANTI_AFFINITY_ANNOTATION,
    POD_METADATA_ANNOTATION,
    is_owned_by,
    role_metadata_patch,
    with_anti_affinity,
)


def _timestamp(text: str | None) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def pod_state(pod: dict[str, Any]) -> PodState:
    meta = pod.get("metadata") or {}
    conditions = (pod.get("status") or {}).get("conditions") or []
    return PodState(
        name=str(meta.get("name")),
        started_at=_timestamp(meta.get("creationTimestamp")),
        ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        terminating=bool(meta.get("deletionTimestamp")),
    )


async def observe_stable_pods(
    kube: Kube, namespace: str, replicasets: Iterable[dict[str, Any]], stable: str | None
) -> tuple[PodState, ...]:
    """The Pods the stable revision's ReplicaSet controls (by its selector's labels, then by
    owner, as the ReplicaSet controller counts them); none without that ReplicaSet."""
    found = next(
        (rs for rs in replicasets if (rs["metadata"].get("labels") or {}).get(REVISION_LABEL) == stable),
        None,
    )
    if stable is None or found is None:
        return ()
    match = (((found.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
    pods = await kube.list(PODS, namespace, selector)
    uid = found["metadata"]["uid"]
    # A pod that has finished (Failed: evicted by a kubelet under pressure, a node shut down)
    # stays until it is garbage-collected; the ReplicaSet has already replaced it.
    return tuple(
        pod_state(p)
        for p in pods
        if is_owned_by(p, uid) and (p.get("status") or {}).get("phase") not in ("Failed", "Succeeded")
    )


async def evict_pod(kube: Kube, namespace: str, name: str, revision: str | None) -> Event | None:
    """Evict; the Event to post, or None when the pod was already gone. A 429 (a disruption
    budget) is raised for the caller to wait on."""
    try:
        await kube.evict(namespace, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return Event("Normal", "PodEvicted", f"Restart: evicted pod {name} of revision {revision}")


async def set_pod_metadata(kube: Kube, namespace: str, action: SetPodMetadata, guard: dict[str, str]) -> None:
    """A revision's role changed: its ReplicaSet's template first (pods it makes from now on have
    the new metadata), guarded by the version the decision saw, then each pod it has, patched in
    place (no restart). A pod gone meanwhile is skipped."""
    change = role_metadata_patch(action.applied, action.wanted)
    annotations: dict[str, str | None] = {POD_METADATA_ANNOTATION: action.wanted or None}
    body = {
        "metadata": {**guard, "annotations": annotations},
        "spec": {"template": {"metadata": change}},
    }
    try:
        replicaset = await kube.patch(REPLICASETS, namespace, action.name, body)
    except ApiException as exc:
        if exc.status == 404:  # deleted in the same decision (history) or by someone else
            return
        raise
    if not change:
        return
    uid = (replicaset.get("metadata") or {}).get("uid", "")
    for pod in await kube.list(PODS, namespace, f"{REVISION_LABEL}={action.revision}"):
        if uid and not is_owned_by(pod, uid):
            continue
        try:
            await kube.patch(PODS, namespace, pod["metadata"]["name"], {"metadata": change})
        except ApiException as exc:
            if exc.status != 404:
                raise


async def set_anti_affinity(kube: Kube, namespace: str, action: SetAntiAffinity) -> None:
    """The ReplicaSet template's anti-affinity term to another revision replaced (or dropped),
    the user's own terms kept; a JSON patch guarded by the version read. Running pods are not
    touched (the scheduler reads affinity only when it places a pod). Read from the API server:
    the same decision may just have scaled this ReplicaSet, and a cached copy behind that write
    would cost a 409 and a whole reconcile again (once per release, so the GET is cheap)."""
    replicaset = await kube.get_fresh(REPLICASETS, namespace, action.name)
    if replicaset is None:
        return
    new = copied(replicaset)
    pod_spec = new["spec"]["template"].setdefault("spec", {})
    affinity = with_anti_affinity(pod_spec.get("affinity"), action.applied, action.wanted)
    if affinity is None:
        pod_spec.pop("affinity", None)
    else:
        pod_spec["affinity"] = affinity
    annotations = new["metadata"].setdefault("annotations", {})
    if action.wanted:
        annotations[ANTI_AFFINITY_ANNOTATION] = action.wanted
    else:
        annotations.pop(ANTI_AFFINITY_ANNOTATION, None)
    operations = [
        {**op, "path": "/spec" + op["path"]}
        for op in jsonpatch.make_patch(replicaset["spec"], new["spec"]).patch
    ] + [
        {**op, "path": "/metadata" + op["path"]}
        for op in jsonpatch.make_patch(
            {"annotations": replicaset["metadata"].get("annotations") or {}}, {"annotations": annotations}
        ).patch
    ]
    if not operations:
        return
    try:
        await kube.patch(
            REPLICASETS, namespace, action.name, guarded(replicaset, operations), content_type=JSON_PATCH
        )
    except ApiException as exc:
        if exc.status != 404:
            raise
