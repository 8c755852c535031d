"""spec.workloadRef with the real controller on the emulated cluster: a Deployment with 5 ready
replicas becomes a Rollout and is given back when the Rollout is deleted, without a moment with
fewer than 5 available pods."""

import asyncio
import contextlib

import kmock

from rollout.kube import DEPLOYMENTS, REPLICASETS, ROLLOUTS
from tests.emulated import NS, event_reasons, get_rollout, healthy_at, status_of
from tests.manifests import adopting_manifest, deployment_manifest
from tests.waiting import in_background, wait_for

_DEPLOYMENTS = kmock.resource("apps/v1/deployments")
_REPLICASETS = kmock.resource("apps/v1/replicasets")


def available_now(cluster):
    """Available pods of the namespace this instant, as the emulator's store has them: the
    Deployment's and every ReplicaSet's (the Rollout's)."""
    total = 0
    for (resource, namespace, _), obj in list(cluster.api.objects.items()):
        if namespace == NS and resource in (_DEPLOYMENTS, _REPLICASETS) and not obj.deleted:
            total += int((obj.raw.get("status") or {}).get("availableReplicas", 0))
    return total


@contextlib.asynccontextmanager
async def sampling(cluster, every=0.01):
    """Record the available pods every `every` seconds for the duration of the block."""
    samples: list[int] = []

    async def sample():
        while True:
            samples.append(available_now(cluster))
            await asyncio.sleep(every)

    async with in_background(sample()):
        yield samples


async def deployment_available(cluster, replicas):
    found = await cluster.kube.get(DEPLOYMENTS, NS, "web")
    status = found.get("status") or {}
    return found if status.get("availableReplicas") == replicas == found["spec"]["replicas"] else None


async def test_a_deployment_with_5_ready_replicas_becomes_a_rollout_and_is_given_back(cluster):
    await cluster.kube.create(DEPLOYMENTS, NS, deployment_manifest(replicas=5))
    await wait_for(lambda: deployment_available(cluster, 5), what="the Deployment's 5 pods available")
    async with cluster.controller(), sampling(cluster) as samples:
        await cluster.kube.create(ROLLOUTS, NS, adopting_manifest(replicas=5, scale_down="progressively"))
        status = await wait_for(healthy_at(cluster), what="the Rollout Healthy")

        async def scaled_to_zero():
            found = await cluster.kube.get(DEPLOYMENTS, NS, "web")
            return found if found["spec"]["replicas"] == 0 else None

        await wait_for(scaled_to_zero, what="the Deployment scaled to 0")
        migrated = len(samples)
        assert status["availableReplicas"] == 5 and status["selector"] == "app=web"
        rollout = await get_rollout(cluster)
        assert rollout["metadata"]["finalizers"] == ["rollout.dev/traffic"]
        [rs] = await cluster.kube.list(REPLICASETS, NS)
        assert rs["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"  # the Deployment's
        assert "WorkloadScaledDown" in await event_reasons(cluster)

        # Deleting the Rollout: the Deployment comes back before the Rollout's pods go.
        await cluster.kube.delete(ROLLOUTS, NS, "web")

        async def rollout_gone():
            return await get_rollout(cluster) is None and not await cluster.kube.list(REPLICASETS, NS)

        await wait_for(rollout_gone, what="the Rollout and its ReplicaSet gone")
        back = await wait_for(lambda: deployment_available(cluster, 5), what="the Deployment back at 5")
    assert back["metadata"]["uid"]  # never deleted: the same object, scaled back up
    assert 0 < migrated < len(samples)  # sampled through both moves (how often depends on the load)
    assert min(samples) >= 5, f"available pods fell to {min(samples)} (samples: {samples})"
    assert max(samples) >= 10  # the Rollout's pods were up beside the Deployment's for a while


async def test_a_missing_deployment_is_invalid_until_it_exists(cluster):
    async with cluster.controller():
        await cluster.kube.create(ROLLOUTS, NS, adopting_manifest(deployment="web", scale_down="onsuccess"))

        async def invalid():
            status = await status_of(cluster)
            conditions = {c["type"]: c for c in status.get("conditions", [])}
            return conditions.get("InvalidSpec")

        condition = await wait_for(invalid, what="InvalidSpec")
        assert condition["message"] == "spec.workloadRef.name: Deployment shop/web not found"
        assert not await cluster.kube.list(REPLICASETS, NS)  # nothing moves on a spec not understood

        # The Deployment appearing is a change the Rollout read (even as missing): it goes on.
        await cluster.kube.create(DEPLOYMENTS, NS, deployment_manifest(replicas=3))
        await wait_for(healthy_at(cluster), what="Healthy once the Deployment exists")

        async def scaled_to_zero():
            found = await cluster.kube.get(DEPLOYMENTS, NS, "web")
            return found if found["spec"]["replicas"] == 0 else None

        await wait_for(scaled_to_zero, what="onsuccess: the Deployment scaled to 0 once Healthy")
    assert "SpecValid" in await event_reasons(cluster)
