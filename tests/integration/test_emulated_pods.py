"""The emulator's Pods (pod_cluster: FakeKubelet with pods=True) and its pods/eviction, as a
cluster's ReplicaSet controller, kubelet and API server would have them; no rollout controller."""

import pytest
from kubernetes.client.exceptions import ApiException

from rollout.kube import PODS, REPLICASETS, Resource
from tests.emulated import NS
from tests.waiting import wait_for

PDBS = Resource("policy", "v1", "poddisruptionbudgets")


def replicaset(replicas=2):
    labels = {"app": "shop-api", "tier": "api"}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "api-7f9c", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "api", "image": "api:1"}]},
            },
        },
    }


def is_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def ready_pods(kube, count):
    async def probe():
        pods = await kube.list(PODS, NS, "app=shop-api")
        rs = await kube.get(REPLICASETS, NS, "api-7f9c")
        settled = (rs.get("status") or {}).get("readyReplicas") == count
        return pods if settled and len(pods) == count and all(is_ready(p) for p in pods) else None

    return probe


async def test_pods_are_made_ready_replaced_when_evicted_and_collected_with_their_replicaset(pod_cluster):
    kube = pod_cluster.kube
    rs = await kube.create(REPLICASETS, NS, replicaset())
    pods = await wait_for(ready_pods(kube, 2), what="2 Ready pods")
    for pod in pods:
        meta = pod["metadata"]
        assert meta["name"].startswith("api-7f9c-") and len(meta["name"]) == len("api-7f9c-") + 5
        assert meta["labels"] == {"app": "shop-api", "tier": "api"} and meta["creationTimestamp"]
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "api-7f9c",
                "uid": rs["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert pod["spec"]["containers"] == [{"name": "api", "image": "api:1"}]

    with pytest.raises(ApiException) as missing:
        await kube.evict(NS, "api-7f9c-nope0")
    assert missing.value.status == 404

    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "api", "namespace": NS},
        "spec": {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": "shop-api"}}},
    }
    await kube.create(PDBS, NS, budget)
    first, second = (p["metadata"]["name"] for p in pods)
    await kube.evict(NS, first)  # 1 of 2 may be down
    assert await kube.get(PODS, NS, first) is None
    with pytest.raises(ApiException) as refused:  # the replacement is not Ready yet
        await kube.evict(NS, second)
    assert refused.value.status == 429
    assert "disruption budget" in refused.value.body
    assert await kube.get(PODS, NS, second) is not None

    after = await wait_for(ready_pods(kube, 2), what="a Ready replacement")
    assert second in {p["metadata"]["name"] for p in after} and first not in {
        p["metadata"]["name"] for p in after
    }

    await kube.patch(REPLICASETS, NS, "api-7f9c", {"spec": {"replicas": 1}})
    await wait_for(ready_pods(kube, 1), what="scaled down to 1 pod")
    await kube.delete(REPLICASETS, NS, "api-7f9c")
    assert await kube.list(PODS, NS, "app=shop-api") == []
