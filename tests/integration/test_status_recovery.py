"""The real controller on the emulated cluster with a status it cannot read (held: a condition and
an Event, commands kept, nothing moved) and with a status deleted mid-canary (recovered from the
stable Service, the canary started again with traffic on stable, never promoted)."""

import asyncio
import copy

import kmock

from rollout.api.revision import REVISION_LABEL
from rollout.kube import ROLLOUTS, SERVICES
from tests.emulated import (
    HTTPROUTES,
    NS,
    app_weights,
    controller_requests,
    event_reasons,
    get_rollout,
    paused_at,
    promote,
    setup,
    status_of,
    weight_is,
)
from tests.manifests import image_patch
from tests.waiting import wait_for

STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


async def paused_at_twenty(cluster):
    first = await setup(cluster, STEPS)
    await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
    await wait_for(paused_at(cluster, 1), what="paused at 20%")
    return first["stableRevision"]


async def stored_as_by_a_newer_version(cluster, **status):
    resource = kmock.resource("rollout.dev/v1alpha1/rollouts")
    obj = copy.deepcopy(cluster.api.objects[resource, NS, "web"].raw)
    obj["status"].update(status)
    await cluster.api.store_as_is(resource, NS, "web", obj)


async def stable_pin(cluster):
    return (await cluster.kube.get(SERVICES, NS, "web-stable"))["spec"]["selector"][REVISION_LABEL]


async def test_an_unreadable_status_holds_the_rollout_until_it_is_fixed(cluster):
    async with cluster.controller((NS,), resync_seconds=0.5):
        old = await paused_at_twenty(cluster)
        # A newer controller (and CRD) wrote a phase this one does not know; the API server does
        # not validate stored objects again after a downgrade, so it goes straight into the store.
        await stored_as_by_a_newer_version(cluster, phase="Suspended")
        await promote(cluster)

        async def held():
            status = await status_of(cluster)
            found = [c for c in status.get("conditions", []) if c["type"] == "InvalidStatus"]
            return found[0] if found else None

        condition = await wait_for(held, what="the InvalidStatus condition")
        assert condition["reason"] == "StatusUnreadable" and "status.phase" in condition["message"]
        await asyncio.sleep(1.5)  # several resyncs: still nothing moves, the promote still waits
        rollout = await get_rollout(cluster)
        assert rollout["metadata"]["annotations"]["rollout.dev/promote"] == "step"
        assert rollout["status"]["phase"] == "Suspended" and rollout["status"]["currentStepIndex"] == 1
        assert app_weights(await cluster.kube.get(HTTPROUTES, NS, "web"))["web-canary"] == 20
        assert await stable_pin(cluster) == old
        assert (await event_reasons(cluster)).count("StatusUnreadable") == 1

        await stored_as_by_a_newer_version(cluster, phase="Paused")  # the fix
        await wait_for(weight_is(cluster, 50), what="the kept promote passing the pause")
        await wait_for(paused_at(cluster, 3), what="paused at the second pause")
    assert "StatusReadable" in await event_reasons(cluster)


async def test_a_status_deleted_mid_canary_is_recovered_and_the_canary_starts_again(cluster):
    async with cluster.controller((NS,), resync_seconds=0.5):
        old = await paused_at_twenty(cluster)
        mark = cluster.api.request_count
        await cluster.kube.patch(ROLLOUTS, NS, "web", {"status": None}, sub="status")
        pins, weights = set(), []

        async def recovered():
            # The status first: the route is written before it, so once the status says step 1
            # again, the route read after it must be at step 1's weight.
            status = await status_of(cluster)
            pins.add(await stable_pin(cluster))
            weights.append(app_weights(await cluster.kube.get(HTTPROUTES, NS, "web"))["web-canary"])
            again = status.get("phase") == "Paused" and status.get("currentStepIndex") == 1
            return status if again and "StableRecovered" in await event_reasons(cluster) else None

        status = await wait_for(recovered, what="the canary paused at step 2 again", interval=0.01)
        # The route's writes, not samples of it: one reconcile may write 0 and then 20 (passes.py).
        # The route was at 20 before and is at 20 after, so two writes went back to stable and
        # then to step 1 again (a route write is never sent unchanged).
        route_writes = [
            r
            for r in controller_requests(cluster, mark)
            if r.method.value == "PATCH" and r.resource is not None and r.resource.plural == "httproutes"
        ]
    assert status["stableRevision"] == old and pins == {old}
    # Back on stable first, then step 1 again.
    assert weights[-1] == 20 and (0 in weights or len(route_writes) >= 2), (weights, len(route_writes))
