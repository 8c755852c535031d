"""An HPA-like writer changing the Rollout's scale (through the scale subresource, as an HPA does)
in the middle of a canary, with the real controller: the canary's share follows, the route keeps
the step's weight, and neither revision ever has no available pods while users are on it."""

import asyncio
import contextlib

from rollout.kube import ROLLOUTS
from tests.emulated import HTTPROUTES, NS, app_weights, paused_at, replicasets, setup
from tests.manifests import image_patch
from tests.waiting import wait_for


async def scale_to(cluster, replicas):
    await cluster.kube.patch(ROLLOUTS, NS, "web", {"spec": {"replicas": replicas}}, sub="scale")


def scaled(cluster, stable, canary, counts):
    async def probe():
        rs = await replicasets(cluster)
        got = (rs[stable]["spec"]["replicas"], rs[canary]["spec"]["replicas"])
        ready = all(
            (rs[r].get("status") or {}).get("availableReplicas", 0) == n
            for r, n in zip((stable, canary), counts, strict=True)
        )
        return got == counts and ready

    return probe


async def test_an_autoscaler_mid_canary(cluster):
    samples: list[tuple[int, int, int]] = []  # (canary weight on the route, stable, canary available)

    async def sample():
        while True:
            route = await cluster.kube.get(HTTPROUTES, NS, "web")
            rs = await replicasets(cluster)
            available = {r: (o.get("status") or {}).get("availableReplicas", 0) for r, o in rs.items()}
            if len(available) == 2:
                stable_rs, canary_rs = sorted(rs, key=lambda r: rs[r]["metadata"]["creationTimestamp"])
                samples.append((app_weights(route)["web-canary"], available[stable_rs], available[canary_rs]))
            await asyncio.sleep(0.02)

    async with cluster.controller():
        v1 = (await setup(cluster, [{"setWeight": 40}, {"pause": {}}], replicas=5))["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        v2 = (await wait_for(paused_at(cluster, 1), what="paused at 40%"))["currentRevision"]
        task = asyncio.get_running_loop().create_task(sample())
        try:
            await wait_for(scaled(cluster, v1, v2, (5, 2)), what="5 stable, 2 canary")
            await scale_to(cluster, 10)
            await wait_for(scaled(cluster, v1, v2, (10, 4)), what="scaled up: 10 stable, 4 canary")
            await scale_to(cluster, 2)
            await wait_for(scaled(cluster, v1, v2, (2, 1)), what="scaled down: 2 stable, 1 canary")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 60, "web-canary": 40}  # the step's weight, throughout
    assert samples and all(weight == 40 for weight, _, _ in samples)
    assert all(stable > 0 and canary > 0 for _, stable, canary in samples), samples
