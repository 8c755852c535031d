"""Command annotations: removed before they act, never applied twice, never lost to a conflict;
and a Rollout whose reconcile fails is tried again with exponential backoff."""

import asyncio

from kubernetes.client.exceptions import ApiException

from rollout.controller.reconciler import Reconciler
from rollout.kube import ROLLOUTS, Kube
from tests.emulated import NS, event_reasons, get_rollout, paused_at, promote, setup, weight_is
from tests.manifests import image_patch, rollout_manifest
from tests.waiting import wait_for


class MeddlingKube(Kube):
    """A user edits the Rollout between the controller's read and its status write, once."""

    meddled = False

    async def patch(self, res, namespace, name, body, **kwargs):
        if kwargs.get("sub") == "status" and not self.meddled:
            self.meddled = True
            await super().patch(ROLLOUTS, namespace, name, {"metadata": {"labels": {"team": "checkout"}}})
        return await super().patch(res, namespace, name, body, **kwargs)


async def reconciled_until(reconciler, predicate, what):
    async def probe():
        await reconciler.reconcile(NS, "web")
        status = (await get_rollout(reconciler)).get("status") or {}
        return status if predicate(status) else None

    return await wait_for(probe, what=what)


async def test_a_conflict_after_consuming_a_command_does_not_lose_it(cluster):
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=2))
    plain = Reconciler(cluster.kube)
    await reconciled_until(plain, lambda s: s.get("phase") == "Healthy", "first deploy")
    await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:broken"))
    await plain.reconcile(NS, "web")
    await cluster.kube.patch(ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/abort": ""}}})

    meddling = MeddlingKube(cluster.kube.api)
    decision = await Reconciler(meddling).reconcile(NS, "web")

    assert meddling.meddled, "the status write should have met a changed Rollout"
    rollout = await get_rollout(cluster)
    assert rollout["metadata"]["labels"] == {"team": "checkout"}
    assert "rollout.dev/abort" not in rollout["metadata"].get("annotations", {})
    assert rollout["status"]["aborted"] is True and rollout["status"]["phase"] == "Degraded"
    assert [e.reason for e in decision.events if e.reason == "RolloutAborted"] == ["RolloutAborted"]


async def test_a_command_is_applied_once(cluster):
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=2))
    reconciler = Reconciler(cluster.kube)
    await reconciled_until(reconciler, lambda s: s.get("phase") == "Healthy", "first deploy")
    await cluster.kube.patch(ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/pause": ""}}})
    first = await reconciler.reconcile(NS, "web")
    second = await reconciler.reconcile(NS, "web")
    assert [e.reason for e in first.events] == ["RolloutPaused", "PhasePaused"]
    assert second.events == []
    status = (await get_rollout(cluster))["status"]
    assert [p["reason"] for p in status["pauseConditions"]] == ["UserPause"]


async def test_a_promote_annotated_as_soon_as_the_weight_shows_passes_the_pause(cluster):
    """The user sees 80/20 and promotes at once: the controller may consume the annotation before
    the pause step has begun; the promote must still pass exactly that pause."""
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    async with cluster.controller((NS,), resync_seconds=60):
        await setup(cluster, steps)
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(weight_is(cluster, 20), timeout=20, interval=0.01, what="canary at 20%")
        await promote(cluster)
        await wait_for(weight_is(cluster, 50), timeout=20, what="promoted past the first pause")
        await wait_for(paused_at(cluster, 3), timeout=20, what="paused at the second pause")
        await wait_for(lambda: event_seen(cluster, "PromotedStep"), what="the PromotedStep Event")
    assert (await event_reasons(cluster)).count("PromotedStep") == 1
    rollout = await get_rollout(cluster)
    assert "rollout.dev/promote" not in rollout["metadata"].get("annotations", {})
    assert not rollout["status"].get("promotePending")


async def event_seen(cluster, reason):
    return reason in await event_reasons(cluster)


class BrokenKube(Kube):
    """An API server that fails every read of the Rollout until `healed`."""

    healed = False

    async def get(self, res, namespace, name):
        if res == ROLLOUTS and not self.healed:
            raise ApiException(status=500, reason="Internal Server Error")
        return await super().get(res, namespace, name)


async def test_a_failing_rollout_is_retried_with_exponential_backoff(cluster):
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=2))
    kube = BrokenKube(cluster.kube.api, attempts=1)
    reconciler = Reconciler(kube, retry_seconds=0.5, max_retry_seconds=3.0)
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(5):
        await reconciler._run((NS, "web"))
        delays.append(round(reconciler._timers[(NS, "web")].when() - loop.time(), 1))
        reconciler._timers.pop((NS, "web")).cancel()
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]
    kube.healed = True
    await reconciler._run((NS, "web"))
    assert (NS, "web") not in reconciler._failures  # a success starts the backoff again
    await reconciler.close()
