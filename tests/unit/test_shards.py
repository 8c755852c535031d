"""The shard manager (controller/shards.py) over an in-memory Lease store that refuses a write
guarded by a stale resourceVersion with 409, as the API server does; each replica has its own
clock, so a dead replica is one whose ticks stop."""

import asyncio
import contextlib
from datetime import UTC, datetime

import json_merge_patch
import pytest
from kubernetes.client.exceptions import ApiException

from rollout.controller.reconciler import Reconciler
from rollout.controller.shards import ShardCountMismatch, ShardManager, ShardSettings, shard_of
from rollout.kube import LEASES
from rollout.kube.guard import NotLeader

NS = "rollout-system"


class Leases:
    """The Lease part of Kube: get, list (by labels), create, merge patch, delete."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.version = 0

    def _stamp(self, obj):
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        return json_merge_patch.merge({}, obj)

    async def get(self, res, namespace, name):
        assert res == LEASES
        found = self.objects.get(name)
        return None if found is None else json_merge_patch.merge({}, found)

    async def list(self, res, namespace, label_selector=None):
        wanted = dict(part.split("=") for part in (label_selector or "").split(",") if part)
        return [
            json_merge_patch.merge({}, obj)
            for obj in self.objects.values()
            if all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]

    async def create(self, res, namespace, body):
        name = body["metadata"]["name"]
        if name in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.objects[name] = self._stamp(json_merge_patch.merge({}, body))
        return await self.get(res, namespace, name)

    async def patch(self, res, namespace, name, body, **_):
        current = self.objects.get(name)
        if current is None:
            raise ApiException(status=404, reason="NotFound")
        guard = (body.get("metadata") or {}).get("resourceVersion")
        if guard is not None and guard != current["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        self.objects[name] = self._stamp(json_merge_patch.merge(current, body))
        return await self.get(res, namespace, name)

    async def delete(self, res, namespace, name, **_):
        if self.objects.pop(name, None) is None:
            raise ApiException(status=404, reason="NotFound")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def replica(store, identity, count=6, clock=None):
    settings = ShardSettings(
        count=count, namespace=NS, identity=identity, lease_duration=15, renew_deadline=10, retry_period=2
    )
    clock = clock or Clock()
    # The wall clock (member Leases' renewTime) moves with the replica's monotonic one.
    return ShardManager(store, settings, clock=clock, wall=lambda: datetime.fromtimestamp(clock(), UTC))


def holders(store):
    return {
        name: obj["spec"].get("holderIdentity")
        for name, obj in sorted(store.objects.items())
        if obj["metadata"]["labels"]["rollout.dev/lease-role"] == "shard"
    }


async def test_the_shard_of_a_rollout_is_stable_and_spread():
    assert shard_of("shop", "web", 6) == shard_of("shop", "web", 6)
    counts = [0] * 6
    for i in range(600):
        counts[shard_of("shop", f"app-{i}", 6)] += 1
    assert min(counts) > 60, counts  # about 100 each


async def test_a_joining_replica_gets_a_fair_share_handed_over_cleanly():
    store = Leases()
    a = replica(store, "a")
    await a.tick()
    assert sorted(a.held) == [0, 1, 2, 3, 4, 5]  # alone: every shard
    b = replica(store, "b")
    await b.tick()  # sees a: fair share 3, but every shard is held
    assert b.held == {}
    # a reconcile of shard 5 is running on a: that shard is handed over only once it ends
    with a.reconciling(
        *next(("shop", f"app-{i}") for i in range(100) if shard_of("shop", f"app-{i}", 6) == 5)
    ):
        await a.tick()
        assert 5 in a.held and 5 in a.draining and not a.owns(*_rollout_in(5))
    await a.tick()
    assert sorted(a.held) == [0, 1, 2]
    await b.tick()
    assert sorted(b.held) == [3, 4, 5]
    assert set(holders(store).values()) == {"a", "b"}
    assert a.owns(*_rollout_in(0)) and not a.owns(*_rollout_in(4)) and b.owns(*_rollout_in(4))


def _rollout_in(shard):
    return next(("shop", f"app-{i}") for i in range(1000) if shard_of("shop", f"app-{i}", 6) == shard)


async def test_a_dead_replica_stops_writing_before_its_shards_are_taken():
    store = Leases()
    clock_a, clock_b = Clock(), Clock()
    a, b = replica(store, "a", clock=clock_a), replica(store, "b", clock=clock_b)
    await a.tick()
    await b.tick()
    await a.tick()
    await b.tick()
    assert sorted(a.held) == [0, 1, 2] and sorted(b.held) == [3, 4, 5]
    # a stops renewing (killed, or cut off from the API server)
    for _ in range(5):
        clock_a.now += 2.0
        clock_b.now += 2.0
        await b.tick()
    assert not a.may_write(0)  # 10 s: past its renew deadline, its writes are fenced
    assert 0 not in b.held  # yet not 15 s since b saw a's Lease change: not taken
    for _ in range(3):
        clock_b.now += 2.0
        await b.tick()
    assert sorted(b.held) == [0, 1, 2, 3, 4, 5]


async def test_a_lease_deleted_by_hand_is_recreated_by_its_holder_only():
    store = Leases()
    a, b = replica(store, "a"), replica(store, "b")
    for m in (a, b, a, b):
        await m.tick()
    held_by_a = sorted(a.held)
    del store.objects[f"rollout-controller-shard-{held_by_a[0]}"]
    await b.tick()  # missing, but others are alive: b waits
    assert held_by_a[0] not in b.held
    await a.tick()
    assert holders(store)[f"rollout-controller-shard-{held_by_a[0]}"] == "a"


async def test_a_different_shard_count_is_refused_at_start():
    store = Leases()
    await replica(store, "a", count=6).tick()
    with pytest.raises(ShardCountMismatch, match=r"--shards 4, but Lease .* says 6"):
        await replica(store, "b", count=4).check_count()


async def test_stop_hands_every_shard_over_at_once():
    store = Leases()
    a, b = replica(store, "a"), replica(store, "b")
    for m in (a, b, a, b):
        await m.tick()
    await a.stop()
    assert "a" not in holders(store).values()
    await b.tick()  # released shards are free at once, and a's member Lease is gone
    assert sorted(b.held) == [0, 1, 2, 3, 4, 5]


async def test_writes_outside_a_reconcile_are_refused():
    store = Leases()
    a = replica(store, "a")
    await a.tick()
    assert not a.may_write()  # no reconcile running: no shard to write for
    with a.reconciling(*_rollout_in(2)):
        assert a.may_write()
    await asyncio.sleep(0)


async def test_a_shard_being_handed_over_is_kept_when_the_fair_share_grows():
    store = Leases()
    clock_a, clock_b = Clock(), Clock()
    a, b = replica(store, "a", clock=clock_a), replica(store, "b", clock=clock_b)
    await a.tick()
    await b.tick()
    with a.reconciling(*_rollout_in(5)):  # shard 5 busy: its hand-over waits
        await a.tick()
        assert 5 in a.draining
        # b dies before it takes anything: a's fair share is all 6 again
        for _ in range(8):
            clock_a.now += 2.0
            await a.tick()
    assert 5 in a.held and 5 not in a.draining and a.owns(*_rollout_in(5))


class NoKube:
    def reads_for(self, key):
        return contextlib.nullcontext()


class RecordingReconciler(Reconciler):
    """The reconciler's triggering (Reconciler._run, the real code) around a reconcile that
    records which Rollouts ran, or fails once for each of `fenced` as a fenced write does."""

    def __init__(self, shards, fenced=()):
        super().__init__(NoKube(), shards=shards)
        self.fenced = set(fenced)
        self.ran = []

    async def reconcile(self, namespace, name, attempts=5):
        if (namespace, name) in self.fenced:
            self.fenced.discard((namespace, name))
            raise NotLeader("PATCH", f"/apis/rollout.dev/v1alpha1/namespaces/{namespace}/rollouts/{name}")
        self.ran.append((namespace, name))


async def test_a_late_renewal_delays_a_held_shards_reconciles_and_drops_none():
    store = Leases()
    clock = Clock()
    a = replica(store, "a", clock=clock)
    await a.tick()
    rollout = _rollout_in(3)
    # The API server is slow: the last renewal is older than the renew deadline, the shard held.
    clock.now += 11.0
    assert not a.owns(*rollout) and a.holds(*rollout)
    reconciler = RecordingReconciler(a)
    reconciler.trigger(*rollout)
    await asyncio.sleep(0.05)
    assert reconciler.ran == []  # not written while fenced
    assert rollout in reconciler._timers  # looked at again, not dropped until a resync
    await a.tick()  # the renewal lands
    await asyncio.sleep(1.2)
    assert reconciler.ran == [rollout]
    # A shard held elsewhere is left to its holder.
    b = replica(store, "b")
    other = RecordingReconciler(b)
    other.trigger(*rollout)
    await asyncio.sleep(0.05)
    assert other.ran == [] and rollout not in other._timers
    await reconciler.close()


async def test_a_write_fenced_mid_reconcile_is_tried_again_soon_without_a_growing_back_off():
    store = Leases()
    a = replica(store, "a")
    await a.tick()
    rollout = _rollout_in(1)
    reconciler = RecordingReconciler(a, fenced={rollout})
    reconciler.trigger(*rollout)
    await asyncio.sleep(0.05)
    assert reconciler.ran == [] and rollout not in reconciler._failures
    await asyncio.sleep(1.2)
    assert reconciler.ran == [rollout]
    await reconciler.close()
