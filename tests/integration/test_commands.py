"""Command annotations: removed before they act, never applied twice, never lost to a conflict or
to a process that dies before its status write; and a Rollout whose reconcile fails is tried
again with exponential backoff."""

import asyncio
import json

import pytest
from kubernetes.client.exceptions import ApiException
from structlog.testing import capture_logs

from rollout.controller.command_annotations import TAKEN_ANNOTATION as TAKEN
from rollout.controller.reconciler import Reconciler
from rollout.kube import ROLLOUTS, SERVICES, Kube
from tests.emulated import HTTPROUTES, NS, event_reasons, get_rollout, paused_at, promote, setup, weight_is
from tests.manifests import (
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
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


class Died(BaseException):
    """The process ends here (SIGKILL): nothing in it may catch this."""


class DyingKube(Kube):
    """A controller process that dies as it sends its status write (or, with `after_status`, the
    write after it, which clears the record of the applied commands): that write never lands."""

    def __init__(self, api, after_status=False):
        super().__init__(api)
        self.after_status = after_status

    async def patch(self, res, namespace, name, body, **kwargs):
        clearing = body.get("metadata", {}).get("annotations", {}).get(TAKEN, "") is None
        if clearing if self.after_status else kwargs.get("sub") == "status":
            raise Died("the process died here")
        return await super().patch(res, namespace, name, body, **kwargs)


async def healthy_and_pause_annotated(cluster, kube=None):
    """A Rollout brought to Healthy (by reconciles through `kube`), then given `rollout.dev/pause`."""
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=2))
    first = Reconciler(kube or cluster.kube)
    await reconciled_until(first, lambda s: s.get("phase") == "Healthy", "first deploy")
    await cluster.kube.patch(ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/pause": ""}}})


async def died_reconciling(cluster, after_status=False):
    """One reconcile by a process that dies at its status write (or at the write after it)."""
    with pytest.raises(Died):
        await Reconciler(DyingKube(cluster.kube.api, after_status=after_status)).reconcile(NS, "web")


async def test_a_command_taken_by_a_process_that_died_is_applied_by_the_next_one_once(cluster):
    await healthy_and_pause_annotated(cluster)

    await died_reconciling(cluster)
    rollout = await get_rollout(cluster)
    annotations = rollout["metadata"]["annotations"]
    assert "rollout.dev/pause" not in annotations  # taken off the Rollout ...
    taken = json.loads(annotations[TAKEN])
    assert taken["commands"] == [["pause", ""]]
    assert rollout["status"]["phase"] == "Healthy"  # ... and not applied
    assert not rollout["status"]["pauseConditions"]

    # Another process (no memory of the first) applies it, records that it did, and then takes
    # the record off the Rollout.
    applied = await Reconciler(cluster.kube).reconcile(NS, "web")
    assert [e.reason for e in applied.events] == ["RolloutPaused", "PhasePaused"]
    rollout = await get_rollout(cluster)
    assert [p["reason"] for p in rollout["status"]["pauseConditions"]] == ["UserPause"]
    assert rollout["status"]["commandsApplied"] == taken["id"]
    assert TAKEN not in rollout["metadata"]["annotations"]


async def test_a_process_that_died_after_applying_a_command_leaves_it_applied_once(cluster):
    await healthy_and_pause_annotated(cluster)
    await died_reconciling(cluster, after_status=True)
    rollout = await get_rollout(cluster)
    taken = json.loads(rollout["metadata"]["annotations"][TAKEN])
    assert rollout["status"]["commandsApplied"] == taken["id"]  # applied, the record still there
    # Resumed by hand meanwhile: the next process must not pause it again.
    await cluster.kube.patch(ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/resume": ""}}})
    resumed = await Reconciler(cluster.kube).reconcile(NS, "web")
    assert [e.reason for e in resumed.events if e.reason.startswith("Rollout")] == ["RolloutResumed"]
    rollout = await get_rollout(cluster)
    assert not rollout["status"]["pauseConditions"] and TAKEN not in rollout["metadata"]["annotations"]
    assert (await Reconciler(cluster.kube).reconcile(NS, "web")).events == []


class StaleKube(Kube):
    """A cache that still shows the Rollout as it was before its last writes (a shard's new
    holder whose watch is behind), once; get_fresh reads the API server."""

    def __init__(self, api, stale):
        super().__init__(api)
        self.stale, self.status_writes = stale, 0

    async def get(self, res, namespace, name):
        if res == ROLLOUTS and self.stale is not None:
            stale, self.stale = self.stale, None
            return stale
        return await super().get(res, namespace, name)

    async def patch(self, res, namespace, name, body, **kwargs):
        self.status_writes += kwargs.get("sub") == "status"
        return await super().patch(res, namespace, name, body, **kwargs)


async def test_taken_commands_seen_in_a_stale_cache_are_checked_with_the_api_server_first(cluster):
    await healthy_and_pause_annotated(cluster)
    await died_reconciling(cluster)
    stale = await get_rollout(cluster)  # taken, not applied yet
    assert (await Reconciler(cluster.kube).reconcile(NS, "web")).events[0].reason == "RolloutPaused"

    behind = StaleKube(cluster.kube.api, stale)
    again = await Reconciler(behind).reconcile(NS, "web")
    assert again.events == [] and behind.status_writes == 0  # nothing decided on the stale view


async def test_a_command_taken_while_the_spec_is_invalid_waits_for_a_valid_one(cluster):
    # A canary whose Services and route do not exist yet: InvalidSpec, nothing moves.
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=2, strategy=canary_strategy()))
    await cluster.kube.patch(ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/pause": ""}}})
    invalid = await Reconciler(cluster.kube).reconcile(NS, "web")
    assert [e.reason for e in invalid.events] == ["InvalidSpec"]
    rollout = await get_rollout(cluster)
    taken = json.loads(rollout["metadata"]["annotations"][TAKEN])  # taken, kept, not applied
    assert taken["commands"] == [["pause", ""]]
    assert rollout["status"]["commandsApplied"] == "" and not rollout["status"]["pauseConditions"]

    for name in ("web-stable", "web-canary"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
    valid = await Reconciler(cluster.kube).reconcile(NS, "web")
    assert "RolloutPaused" in [e.reason for e in valid.events]
    rollout = await get_rollout(cluster)
    assert [p["reason"] for p in rollout["status"]["pauseConditions"]] == ["UserPause"]
    assert (
        rollout["status"]["commandsApplied"] == taken["id"]
        and TAKEN not in rollout["metadata"]["annotations"]
    )


class OldCrdKube(Kube):
    """An API server whose Rollout CRD predates status.commandsApplied: the field is pruned."""

    async def patch(self, res, namespace, name, body, **kwargs):
        if kwargs.get("sub") == "status":
            body = {**body, "status": {k: v for k, v in body["status"].items() if k != "commandsApplied"}}
        return await super().patch(res, namespace, name, body, **kwargs)


async def test_a_crd_that_prunes_the_record_gets_each_command_applied_once_and_an_error_said(cluster):
    kube = OldCrdKube(cluster.kube.api)
    await healthy_and_pause_annotated(cluster, kube)
    with capture_logs() as logs:
        paused = await Reconciler(kube).reconcile(NS, "web")
    assert [e.reason for e in paused.events] == ["RolloutPaused", "PhasePaused"]
    assert any(
        "lacks status.commandsApplied" in entry["event"] for entry in logs if entry["log_level"] == "error"
    )
    rollout = await get_rollout(cluster)
    assert "commandsApplied" not in rollout["status"] and TAKEN not in rollout["metadata"]["annotations"]
    await cluster.kube.patch(ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/resume": ""}}})
    resumed = await Reconciler(kube).reconcile(NS, "web")
    assert [e.reason for e in resumed.events if e.reason.startswith("Rollout")] == ["RolloutResumed"]
    assert (await Reconciler(kube).reconcile(NS, "web")).events == []  # the pause not applied again


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
