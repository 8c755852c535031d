"""Shards: with `--shards N` the Rollouts are split over the controller's replicas, each shard
owned through a `coordination.k8s.io/v1` Lease of its own. This replaces the single leader
(leader.py) when N > 1; every replica watches everything (the caches and the claims index stay
whole, so conflicts between Rollouts of different shards are still found) and reconciles and
writes only the Rollouts of the shards it holds.

Where it sits: process.py starts a ShardManager beside the operator. The reconciler asks
`owns(namespace, name)` before it runs a Rollout and marks the reconcile's shard (`reconciling`),
and the Kube write fence asks `may_write` for that shard. Each tick (retry_period) the manager:
1. renews this replica's member Lease (`<name>-member-<identity>`) and counts the live members;
   the fair share is ceil(N / live members);
2. renews the shard Leases it holds, guarded by their resourceVersion; one that someone else
   took, or that cannot be renewed, stops being written for renew_deadline after its last renewal
   (the same fence as the leader's), before any other replica may take it (lease_duration);
3. gives back shards above its fair share: it stops starting reconciles of the shard, waits for
   the running ones to end, then clears the holder (a clean hand-over, taken at once);
4. takes free shards up to its fair share: a Lease never created, released, or not renewed for
   lease_duration as seen from here (like client-go, by local observation, never by comparing
   clocks). A Lease deleted by hand is recreated by its holder at its next renewal; the others
   wait lease_duration before they create it, so the shard has one writer at a time.

Every shard Lease records the shard count; a replica started with another count stops at start
with one line (ShardCountMismatch)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from kubernetes.client.exceptions import ApiException

from rollout import GROUP
from rollout.api.vocabulary import LEASE_ROLE_LABEL, SHARD_OF_LABEL
from rollout.kube import LEASES, Kube

log = structlog.get_logger("rollout.shards")

SHARDS_ANNOTATION = f"{GROUP}/shards"  # the shard count every replica must agree on
STALE_MEMBERS = 10  # a member Lease not renewed for this many lease durations is deleted

# The shard of the reconcile running in this task (None outside a reconcile).
_current: contextvars.ContextVar[int | None] = contextvars.ContextVar("shard", default=None)


class ShardCountMismatch(Exception):
    """Replicas started with different shard counts: refused at start."""


def shard_of(namespace: str, name: str, count: int) -> int:
    """The stable shard of a Rollout: the same on every replica and across restarts."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class ShardSettings:
    count: int
    namespace: str  # of the Leases
    name: str = "rollout-controller"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    # The shards' ReplicaSets: one watch of every one, filtered here, instead of one per shard
    # selected by the API server (shard_caches.py).
    filter_after_watch: bool = False

    def problems(self) -> list[str]:
        found = []
        if self.count < 1:
            found.append(f"--shards must be at least 1 (got {self.count})")
        if self.lease_duration <= self.renew_deadline or self.renew_deadline <= self.retry_period:
            found.append("lease duration > renew deadline > retry period is required for shards")
        return found

    def lease_name(self, shard: int) -> str:
        return f"{self.name}-shard-{shard}"

    def member_name(self) -> str:
        return f"{self.name}-member-{self.identity}".lower().replace("_", "-")[:253]


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _holder(lease: dict[str, Any] | None) -> str:
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


def _record(lease: dict[str, Any] | None) -> tuple[str, str, str]:
    """What changes at each renewal: holder, renewTime and transitions."""
    spec = (lease or {}).get("spec") or {}
    return _holder(lease), str(spec.get("renewTime") or ""), str(spec.get("leaseTransitions") or 0)


class ShardManager:
    def __init__(
        self,
        kube: Kube,
        settings: ShardSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _now,
    ) -> None:
        self.kube = kube  # its own Kube: Lease writes pass no fence
        self.settings = settings
        self.clock = clock
        self.wall = wall
        self.held: dict[int, float] = {}  # shard -> when the last successful write was sent
        self.draining: set[int] = set()  # held shards being handed over: no new reconciles
        self.in_flight: collections.Counter[int] = collections.Counter()
        self.members = 1
        self._seen: dict[str, tuple[tuple[str, str, str] | None, float]] = {}  # lease -> (record, since)
        self.on_gained: Callable[[int], None] = lambda shard: None
        self.on_lost: Callable[[int], None] = lambda shard: None
        self._stopped = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the manager's, in its thread
        self._main: asyncio.AbstractEventLoop | None = None  # the reconciler's, for callbacks
        self.failure: Exception | None = None  # what ended the thread (ShardCountMismatch)

    # --- what the reconciler and the fence ask -------------------------------------------------

    def shard(self, namespace: str, name: str) -> int:
        return shard_of(namespace, name, self.settings.count)

    def owns(self, namespace: str, name: str) -> bool:
        """Whether a reconcile of this Rollout may start here now."""
        shard = self.shard(namespace, name)
        return shard not in self.draining and self.may_write(shard)

    def holds(self, namespace: str, name: str) -> bool:
        """Whether this Rollout's shard is held here and not being handed over, even while its
        last renewal is older than the renew deadline (a busy API server): its reconciles wait
        for the renewal, where a shard held elsewhere leaves them to its holder."""
        shard = self.shard(namespace, name)
        return shard in self.held and shard not in self.draining

    def may_write(self, shard: int | None = None) -> bool:
        """The write fence: the shard (default: the running reconcile's) is held, and its Lease
        was renewed less than renew_deadline ago."""
        shard = _current.get() if shard is None else shard
        renewed = None if shard is None else self.held.get(shard)
        return renewed is not None and self.clock() - renewed < self.settings.renew_deadline

    @contextlib.contextmanager
    def reconciling(self, namespace: str, name: str) -> Iterator[None]:
        """Around one reconcile: its writes are fenced by its shard, and a hand-over of the
        shard waits for it to end."""
        shard = self.shard(namespace, name)
        token = _current.set(shard)
        self.in_flight[shard] += 1
        try:
            yield
        finally:
            self.in_flight[shard] -= 1
            _current.reset(token)

    # --- the loop ------------------------------------------------------------------------------

    async def check_count(self) -> None:
        """Refuse to start beside replicas that split the Rollouts another way."""
        for lease in await self._shard_leases():
            theirs = ((lease.get("metadata") or {}).get("annotations") or {}).get(SHARDS_ANNOTATION)
            if theirs is not None and str(theirs) != str(self.settings.count):
                raise ShardCountMismatch(
                    f"this replica has --shards {self.settings.count}, but Lease "
                    f"{self.settings.namespace}/{lease['metadata']['name']} says {theirs}: every "
                    "replica needs the same count (the chart's `shards` value sets it for all)"
                )

    async def run(self) -> None:
        while not self._stopped.is_set():
            try:
                await self.tick()
            except ShardCountMismatch:
                raise
            except Exception as exc:  # the API server unreachable: the fence stops the writes
                log.warning("shard leases not renewed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.settings.retry_period)

    def start_thread(self, main: asyncio.AbstractEventLoop) -> threading.Thread:
        """Run the loop in a thread of its own with its own event loop, as leader election does:
        a controller busy reconciling must not delay the renewals (its writes would be fenced
        in the middle of reconciles). The callbacks run on `main`, the reconciler's loop."""
        self._main = main
        ready = threading.Event()

        def serve() -> None:
            async def loop_until_stopped() -> None:
                self._loop = asyncio.get_running_loop()
                self._stopped = asyncio.Event()
                ready.set()
                await self.run()

            try:
                asyncio.run(loop_until_stopped())
            except Exception as exc:
                self.failure = exc
            finally:
                ready.set()

        thread = threading.Thread(target=serve, name="shard-leases", daemon=True)
        thread.start()
        ready.wait(10)
        return thread

    async def stop_thread(self) -> None:
        """From the reconciler's loop: hand the shards over (in the manager's own loop), wait."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.stop(), loop))

    async def stop(self) -> None:
        """Give every shard back and leave (a clean shutdown: the others take over at once)."""
        self._stopped.set()
        for shard in sorted(self.held):
            self.draining.add(shard)
        await self._drain_and_release(set(self.held), wait=5.0)
        with contextlib.suppress(ApiException):
            await self.kube.delete(LEASES, self.settings.namespace, self.settings.member_name())

    async def tick(self) -> None:
        s = self.settings
        # The held shards' renewals first, side by side: on a busy API server one after another
        # had taken past the renew deadline with 6 shards held, fencing the replica's own writes.
        leases = {lease["metadata"]["name"]: lease for lease in await self._shard_leases()}
        renewals = [self._renew(shard, leases.get(s.lease_name(shard))) for shard in sorted(self.held)]
        for failed in await asyncio.gather(*renewals, return_exceptions=True):
            if isinstance(failed, Exception):
                log.warning("shard lease not renewed", error=str(failed))
        self.members = await self._renew_membership()
        fair = math.ceil(s.count / max(self.members, 1))
        extra = set(sorted(self.held, reverse=True)[: max(0, len(self.held) - fair)])
        # A shard drained for a fair share that has since grown (a replica died) is kept.
        self.draining &= extra
        if extra:
            await self._drain_and_release(extra, wait=0.0)
        for shard in range(s.count):
            if len(self.held) >= fair:
                break
            if shard not in self.held and self._free(s.lease_name(shard), leases.get(s.lease_name(shard))):
                await self._acquire(shard, leases.get(s.lease_name(shard)))

    def _tell(self, callback: Callable[[int], None], shard: int) -> None:
        """Run a callback on the reconciler's loop (the manager may run in a thread of its own)."""
        if self._main is None:
            callback(shard)
        else:
            self._main.call_soon_threadsafe(callback, shard)

    # --- Leases --------------------------------------------------------------------------------

    def _labels(self, role: str) -> dict[str, str]:
        return {SHARD_OF_LABEL: self.settings.name, LEASE_ROLE_LABEL: role}

    async def _shard_leases(self) -> list[dict[str, Any]]:
        selector = f"{SHARD_OF_LABEL}={self.settings.name},{LEASE_ROLE_LABEL}=shard"
        return await self.kube.list(LEASES, self.settings.namespace, selector)

    def _spec(self, transitions: int) -> dict[str, Any]:
        now = _micro(self.wall())
        return {
            "holderIdentity": self.settings.identity,
            "leaseDurationSeconds": math.ceil(self.settings.lease_duration),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def _free(self, name: str, lease: dict[str, Any] | None) -> bool:
        """Free to take: released, or unchanged for lease_duration as seen from here (a Lease
        that is missing counts from when it was first seen missing, unless no other replica is
        alive to have held it)."""
        record = None if lease is None else _record(lease)
        seen = self._seen.get(name)
        if seen is None or seen[0] != record:
            seen = self._seen[name] = (record, self.clock())
        if lease is not None and not _holder(lease):
            return True
        if lease is None and self.members <= 1:
            return True
        return self.clock() - seen[1] >= self.settings.lease_duration

    async def _create_shard_lease(self, shard: int) -> None:
        """The shard's Lease, held by this replica (409 when another created it first)."""
        s = self.settings
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": s.lease_name(shard),
                "labels": self._labels("shard"),
                "annotations": {SHARDS_ANNOTATION: str(s.count)},
            },
            "spec": self._spec(0),
        }
        await self.kube.create(LEASES, s.namespace, body)

    async def _acquire(self, shard: int, lease: dict[str, Any] | None) -> None:
        s = self.settings
        name = s.lease_name(shard)
        sent = self.clock()
        try:
            if lease is None:
                await self._create_shard_lease(shard)
            else:
                transitions = int(((lease.get("spec") or {}).get("leaseTransitions")) or 0) + 1
                patch = {
                    "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                    "spec": self._spec(transitions),
                }
                await self.kube.patch(LEASES, s.namespace, name, patch)
        except ApiException as exc:
            if exc.status in (404, 409):  # another replica was first
                return
            raise
        self.held[shard] = sent
        self.draining.discard(shard)
        log.info("shard acquired", shard=shard, of=s.count, identity=s.identity)
        self._tell(self.on_gained, shard)

    async def _renew(self, shard: int, lease: dict[str, Any] | None) -> None:
        s = self.settings
        name = s.lease_name(shard)
        if lease is not None and _holder(lease) != s.identity:
            self._lose(shard, f"held by {_holder(lease) or 'nobody'} now")
            return
        sent = self.clock()
        try:
            if lease is None:  # deleted by hand: its holder recreates it
                await self._create_shard_lease(shard)
            else:
                patch = {
                    "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                    "spec": {"renewTime": _micro(self.wall()), "holderIdentity": s.identity},
                }
                await self.kube.patch(LEASES, s.namespace, name, patch)
        except ApiException as exc:
            if exc.status in (404, 409):
                self._lose(shard, "taken by another replica")
                return
            raise  # not renewed: the fence ends this shard's writes at the renew deadline
        self.held[shard] = sent

    def _lose(self, shard: int, why: str) -> None:
        if self.held.pop(shard, None) is not None:
            self.draining.discard(shard)
            log.warning("shard lost", shard=shard, why=why, identity=self.settings.identity)
            self._tell(self.on_lost, shard)

    async def _drain_and_release(self, shards: set[int], *, wait: float) -> None:
        """Stop starting reconciles of `shards`; release each whose running reconciles ended
        (waiting up to `wait` seconds for them); the rest are released at a later tick."""
        self.draining |= shards
        deadline = self.clock() + wait
        while any(self.in_flight[s] for s in shards) and self.clock() < deadline:
            await asyncio.sleep(0.05)
        s = self.settings
        for shard in sorted(shards):
            if self.in_flight[shard]:
                continue
            name = s.lease_name(shard)
            try:
                lease = await self.kube.get(LEASES, s.namespace, name)
                if lease is not None and _holder(lease) == s.identity:
                    patch = {
                        "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                        "spec": {"holderIdentity": None, "renewTime": _micro(self.wall())},
                    }
                    await self.kube.patch(LEASES, s.namespace, name, patch)
            except ApiException as exc:
                log.warning("shard not released; it expires instead", shard=shard, error=str(exc))
            if self.held.pop(shard, None) is not None:
                log.info("shard released", shard=shard, identity=s.identity)
                self._tell(self.on_lost, shard)
            self.draining.discard(shard)

    async def _renew_membership(self) -> int:
        """Renew this replica's member Lease; the number of replicas alive (this one included),
        by the member Leases renewed within lease_duration (wall clocks: only fairness depends
        on it, never who may write). Long-dead members' Leases are deleted."""
        s = self.settings
        name = s.member_name()
        now = self.wall()
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "labels": self._labels("member")},
            "spec": {
                "holderIdentity": s.identity,
                "leaseDurationSeconds": math.ceil(s.lease_duration),
                "renewTime": _micro(now),
            },
        }
        try:
            await self.kube.patch(LEASES, s.namespace, name, {"spec": body["spec"]})
        except ApiException as exc:
            if exc.status != 404:
                raise
            await self.kube.create(LEASES, s.namespace, body)
        selector = f"{SHARD_OF_LABEL}={s.name},{LEASE_ROLE_LABEL}=member"
        alive = 0
        for lease in await self.kube.list(LEASES, s.namespace, selector):
            renewed = _parse_time((lease.get("spec") or {}).get("renewTime"))
            age = (now - renewed).total_seconds() if renewed else math.inf
            if age < s.lease_duration or lease["metadata"]["name"] == name:
                alive += 1
            elif age > STALE_MEMBERS * s.lease_duration:
                with contextlib.suppress(ApiException):
                    await self.kube.delete(LEASES, s.namespace, lease["metadata"]["name"])
        return max(alive, 1)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
