"""`rollout.dev/restart` on a real API server: its ReplicaSet controller replaces each evicted pod
(the Eviction API, policy/v1), and the stable pods are all new afterwards with no new revision.
On a cluster without nodes, ROLLOUT_E2E_MARK_PODS_READY=1 makes the replacements Ready."""

import asyncio

import pytest

from rollout.kube import PODS, REPLICASETS, ROLLOUTS
from tests.e2e.helpers import annotate, wait_for
from tests.manifests import rollout_manifest

pytestmark = pytest.mark.e2e


def ready_pods(kube, namespace, revision):
    async def probe():
        pods = await kube.list(PODS, namespace, f"rollout.dev/revision={revision}")
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = [
            p["metadata"]["name"]
            for p in live
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        ]
        return set(ready) if len(live) == len(ready) == 3 else None

    return probe


async def test_restart_replaces_every_stable_pod(kube, namespace, pods_made_ready, start_controller):
    start_controller()
    await kube.create(ROLLOUTS, namespace, rollout_manifest(namespace=namespace, replicas=3))

    async def healthy():
        status = ((await kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
        done = status.get("phase") == "Healthy" and "restartedAt" not in status
        return status if done and status.get("stableRevision") == status.get("currentRevision") else None

    v1 = (await wait_for(healthy, what="first deploy"))["stableRevision"]
    before = await wait_for(ready_pods(kube, namespace, v1), what="3 Ready pods")
    await asyncio.sleep(1.1)  # creationTimestamp has whole seconds: the pods must be older than the restart
    await annotate(kube, namespace, "rollout.dev/restart", "true")

    async def replaced():
        pods = await ready_pods(kube, namespace, v1)()
        status = await healthy()
        return pods if pods and status and not pods & before else None

    await wait_for(replaced, timeout=180, what="every stable pod replaced and Ready")
    revisions = {
        rs["metadata"]["labels"]["rollout.dev/revision"] for rs in await kube.list(REPLICASETS, namespace)
    }
    assert revisions == {v1}
