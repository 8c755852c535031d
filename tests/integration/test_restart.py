"""The controller as a separate process, killed with SIGKILL mid-update and started again: it
continues from the Rollout's status alone and finishes the update."""

import asyncio
import signal

from rollout.kube import ROLLOUTS
from tests.emulated import NS, events_once, healthy_at, replicasets
from tests.manifests import image_patch, rollout_manifest
from tests.waiting import wait_for


async def test_killed_mid_update_and_restarted_finishes_the_same_way(cluster, start_controller):
    await cluster.kube.create(
        ROLLOUTS, NS, rollout_manifest(replicas=6, strategy={"rolling": {"maxSurge": 1, "maxUnavailable": 0}})
    )
    first = start_controller()
    v1 = (await wait_for(healthy_at(cluster), timeout=30, what="first deploy"))["stableRevision"]
    await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

    async def midway():
        rs = await replicasets(cluster)
        new = [r["spec"]["replicas"] for rev, r in rs.items() if rev != v1]
        return bool(new) and new[0] >= 2 and 0 < rs[v1]["spec"]["replicas"] < 6

    await wait_for(midway, what="the update half done")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    frozen = {rev: r["spec"]["replicas"] for rev, r in (await replicasets(cluster)).items()}
    await asyncio.sleep(1.0)
    assert {rev: r["spec"]["replicas"] for rev, r in (await replicasets(cluster)).items()} == frozen

    start_controller()
    final = await wait_for(healthy_at(cluster), timeout=30, what="Healthy after the restart")
    assert final["stableRevision"] != v1
    rs = await replicasets(cluster)
    assert rs[final["stableRevision"]]["spec"]["replicas"] == 6 and rs[v1]["spec"]["replicas"] == 0
    reasons = [e["reason"] for e in await events_once(cluster, "RolloutCompleted")]
    assert reasons.count("RolloutCompleted") == 1 and reasons.count("NewRevision") == 1
