"""Runs the controller: kopf for the lifecycle (log-in, start-up, clean-up, signals), the
watch-fed caches (`cache.py`) for every read, the triggers that turn a cache change into the
reconciles it concerns, and the periodic resync.

kopf gets no resource handlers: it stores nothing on a Rollout (no progress, diff-base or
finalizer of its own), and its watch streams would only repeat the caches'."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import kopf
import structlog
from kubernetes import client

from rollout import GROUP
from rollout.analysis.prometheus import Prometheus
from rollout.controller.cache import CachedKind, Caches, Obj, ObjKey
from rollout.controller.cached import CachedKube
from rollout.controller.claims import claims_for, overlapping
from rollout.controller.reconciler import Reconciler
from rollout.controller.shard_caches import ShardedCaches, Sharding
from rollout.controller.shards import ShardManager
from rollout.kube import (
    ANALYSIS_TEMPLATES,
    API_THREADS,
    CLUSTER_ANALYSIS_TEMPLATES,
    DEPLOYMENTS,
    REPLICASETS,
    ROLLOUTS,
    SERVICES,
    USER_AGENT,
    Kube,
    Resource,
    connection_info,
)
from rollout.notify.delivery import Notifier, NotifySettings
from rollout.observability import metrics
from rollout.traffic.registry import watched_resources
from rollout.workload.replicasets import ROLLOUT_NAME_LABEL

log = structlog.get_logger("rollout.controller")


def build_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # If kopf ever stores anything on a Rollout, it lives under our own prefix.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    return settings


def _owner_rollout(body: Any) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "Rollout" and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/"):
            return str(ref.get("name"))
    return None


def cached_kinds() -> list[CachedKind]:
    """Every kind a reconcile reads, so that in the steady state it reads nothing from the API
    server."""
    return [
        CachedKind(ROLLOUTS),
        CachedKind(REPLICASETS, label_selector=ROLLOUT_NAME_LABEL, sharded=True),
        # Of these, only what Rollouts read is kept whole; the rest are stubs that say a change
        # happened (a cluster has thousands of Services and Deployments no Rollout names).
        CachedKind(SERVICES, referenced_only=True),
        CachedKind(DEPLOYMENTS, referenced_only=True),  # of spec.workloadRef
        # Whatever the routers read or own: routes, VirtualServices, DestinationRules, Ingresses.
        *(CachedKind(resource, referenced_only=True) for resource in watched_resources()),
        CachedKind(ANALYSIS_TEMPLATES),
        CachedKind(CLUSTER_ANALYSIS_TEMPLATES, namespaced=False),
        # Not Secrets: never listed or watched (a cluster's Helm release Secrets alone would
        # outweigh everything else); CachedKube reads the few that Rollouts name, through a
        # short-lived cache.
    ]


class Triggers:
    """Turns cache changes into reconciles: a Rollout's own changes, its ReplicaSets', anything
    its last reconcile read, and another Rollout's claims that overlap its own."""

    def __init__(self, reconciler: Reconciler, kube: CachedKube) -> None:
        self.reconciler = reconciler
        self.kube = kube
        self.started = False
        self._held: set[tuple[str, str]] = set()  # changes before the caches were first listed

    def _trigger(self, namespace: str, name: str) -> None:
        if self.started:
            self.reconciler.trigger(namespace, name)
        else:
            self._held.add((namespace, name))

    def release(self) -> None:
        """The caches are listed: reconcile everything that changed meanwhile."""
        self.started = True
        for key in sorted(self._held):
            self.reconciler.trigger(*key)
        self._held.clear()

    def changed(self, res: Resource, key: ObjKey, old: Obj | None, new: Obj | None) -> None:
        namespace, name = key
        if res == ROLLOUTS:
            assert namespace is not None
            self.kube.claims.changed(namespace, name, new)
            if new is None:
                self.reconciler.forget(namespace, name)
            else:
                self._trigger(namespace, name)
            if self.started:
                self._claims_changed(namespace, name, old, new)
            return
        if res == REPLICASETS:
            owner = _owner_rollout(new or old or {})
            if owner and namespace is not None:
                self._trigger(namespace, owner)
        for reader in self.kube.readers_of(res, namespace, name):
            self._trigger(*reader)

    def _claims_changed(self, namespace: str, name: str, old: Obj | None, new: Obj | None) -> None:
        before, after = claims_for(old), claims_for(new)
        if before == after:
            return
        for mine in (before, after):
            if mine is None:
                continue
            for theirs in self.kube.claims.sharing(namespace, mine, besides=name):
                if overlapping(mine, theirs):
                    self._trigger(namespace, theirs.name)


def build_registry(
    reconciler: Reconciler,
    namespaces: Sequence[str] = (),
    *,
    resync_seconds: float = 30.0,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> kopf.OperatorRegistry:
    """kopf runs the controller's lifecycle (log-in, start-up, clean-up, signals); the watching
    is the caches' (they serve the reads, which kopf's watches would not, and say when they are
    listed)."""
    registry = kopf.OperatorRegistry()
    kube = reconciler.kube
    assert isinstance(kube, CachedKube)
    triggers = Triggers(reconciler, kube)
    kube.caches.on_change = triggers.changed
    background: dict[str, asyncio.Task[None]] = {}

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(kube.api.configuration)

    async def ready_once_synced() -> None:
        # Ready once every kind the API server serves is listed: also when a first list failed
        # (a 429 while the API server initialises a new CRD's storage) and a later one succeeds.
        while not kube.caches.synced():
            await asyncio.sleep(0.5)
        if ready_flag is not None:
            ready_flag.set()

    async def start_then_resync() -> None:
        if not await kube.caches.wait_started():
            log.warning("caches not listed after 60 s; reconciling with reads from the API server")
        triggers.release()
        readiness = asyncio.get_running_loop().create_task(ready_once_synced())
        try:
            # Catches what no event announces: a deadline passed while down, a lost event.
            while True:
                await asyncio.sleep(resync_seconds)
                for item in list(kube.caches.stores[ROLLOUTS].values()):
                    meta = item.get("metadata") or {}
                    reconciler.trigger(meta["namespace"], meta["name"])
        finally:
            readiness.cancel()

    @kopf.on.startup(registry=registry)
    async def start(**_: Any) -> None:
        background["task"] = asyncio.get_running_loop().create_task(start_then_resync())
        if reconciler.notifier is not None:
            reconciler.notifier.start()

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        kube.caches.stop()
        task = background.pop("task", None)
        if task is not None:
            task.cancel()
        await reconciler.close()
        if reconciler.notifier is not None:
            await reconciler.notifier.stop()

    return registry


def _each_in_shard(caches: Caches, shards: ShardManager, shard: int, act: Callable[[str, str], None]) -> None:
    """`act(namespace, name)` for every cached Rollout of `shard`: reconcile the Rollouts of a
    shard just taken; forget the metric series of one given up (its new holder exports them)."""
    for item in list(caches.stores[ROLLOUTS].values()):
        meta = item.get("metadata") or {}
        if shards.shard(meta["namespace"], meta["name"]) == shard:
            act(meta["namespace"], meta["name"])


async def run_controller(
    kube: Kube,
    namespaces: Sequence[str] = (),
    *,
    resync_seconds: float = 30.0,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    prometheus_address: str | None = None,
    workers: int = 64,
    notifications: NotifySettings | None = None,
    shards: ShardManager | None = None,
) -> None:
    """Run the controller until `stop_flag` is set (or forever); `prometheus_address` is the
    default for analysis templates that name none; up to `workers` Rollouts reconcile at once.
    `ready_flag` is set once the caches are listed. `notifications`: how webhooks are told (the
    controller-wide ConfigMap, timeouts, retries). `shards`: reconcile only the Rollouts of the
    shards this replica holds (shards.py)."""
    configuration = kube.api.configuration
    # A suffix naming the process (leader election) may follow the controller's user agent.
    agent = kube.api.user_agent if kube.api.user_agent.startswith(USER_AGENT) else USER_AGENT

    def api_client() -> client.ApiClient:
        api = client.ApiClient(configuration)
        api.user_agent = agent  # its requests are told apart in audit logs and benchmarks
        return api

    threads = max(workers + 4, API_THREADS)
    # A connection per API thread: a smaller pool discards (and re-handshakes) the extra ones.
    configuration.connection_pool_maxsize = threads
    caches: Caches
    if shards is None:
        caches = Caches(api_client, cached_kinds(), namespaces)
    else:
        sharding = Sharding(shards.settings.count, ROLLOUT_NAME_LABEL, shards.shard)
        caches = ShardedCaches(
            api_client,
            cached_kinds(),
            namespaces,
            sharding=sharding,
            filter_after_watch=shards.settings.filter_after_watch,
        )
    cached = CachedKube(api_client(), caches, threads=threads)
    cached.fence = kube.fence  # leader election: a follower, or a leader that lost its lease, writes nothing
    notifier = Notifier(cached, notifications)
    reconciler = Reconciler(
        cached, prometheus=Prometheus(prometheus_address), workers=workers, notifier=notifier, shards=shards
    )
    if isinstance(caches, ShardedCaches) and shards is not None:
        sharded = caches
        # A shard's Rollouts are reconciled once its ReplicaSets are in memory (before that,
        # each reconcile would list them from the API server).
        sharded.on_shard_listed = lambda shard: _each_in_shard(sharded, shards, shard, reconciler.trigger)
        shards.on_gained = sharded.watch_shard

        def lost(shard: int) -> None:
            sharded.unwatch_shard(shard)
            _each_in_shard(sharded, shards, shard, metrics.forget_rollout)

        shards.on_lost = lost
    registry = build_registry(reconciler, namespaces, resync_seconds=resync_seconds, ready_flag=ready_flag)
    caches.start()  # listing runs while kopf starts up
    try:
        await kopf.operator(
            registry=registry,
            settings=build_settings(),
            standalone=True,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            stop_flag=stop_flag,
        )
    finally:
        caches.stop()  # also when cancelled, when kopf's clean-up does not run
        await asyncio.shield(reconciler.events.close())  # the Events decided, posted for up to 5 s
        await asyncio.shield(notifier.stop())
