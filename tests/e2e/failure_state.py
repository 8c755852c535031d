"""What a failed e2e test leaves on the server, added to its report: its namespace's Rollouts
(phase and message), ReplicaSets (wanted, ready, available) and Pods (phase, Ready), read with the
synchronous client after the failure and before the namespace is deleted. A timeout such as
"v1 Healthy never came" then says whether the pods, the ReplicaSet controller or our controller
stood still."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from rollout.kube import load_api_client


def _ready(pod: Any) -> str:
    conditions = pod.status.conditions or []
    return next((c.status for c in conditions if c.type == "Ready"), "-")


def namespace_state(kubeconfig: str, namespace: str) -> str:
    api = load_api_client(kubeconfig)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    rollouts = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "rollout.dev", "v1alpha1", namespace, "rollouts"
    )["items"]
    lines = [f"namespace {namespace}:"]
    for r in rollouts:
        status = r.get("status") or {}
        lines.append(
            f"  Rollout {r['metadata']['name']}: phase={status.get('phase')} "
            f"stable={status.get('stableRevision')} current={status.get('currentRevision')} "
            f"message={status.get('message')!r}"
        )
    for rs in apps.list_namespaced_replica_set(namespace).items:
        s = rs.status
        lines.append(
            f"  ReplicaSet {rs.metadata.name}: spec={rs.spec.replicas} status={s.replicas} "
            f"ready={s.ready_replicas} available={s.available_replicas}"
        )
    for pod in core.list_namespaced_pod(namespace).items:
        lines.append(f"  Pod {pod.metadata.name}: phase={pod.status.phase} ready={_ready(pod)}")
    return "\n".join(lines)
