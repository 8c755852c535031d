"""The `rollout controller` process: the health and metrics endpoints, leader election or shards
when asked for, and the operator (operator.py) inside them.

Readiness: without leader election, the caches are listed; with it, a leader whose caches are
listed, or a follower that has read the Lease (it reaches the API server and can take
over); with shards, the caches are listed. Liveness: the event loop answers, and the election
thread or the shard loop, when there is one, runs."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubernetes import client

from rollout.controller.leader import ElectionSettings, LeaderElector, default_identity, run_as_leader
from rollout.controller.operator import run_controller
from rollout.controller.shards import ShardManager, ShardSettings
from rollout.kube import USER_AGENT, Kube
from rollout.notify.delivery import NotifySettings
from rollout.observability import metrics
from rollout.observability.health import HealthServer


@dataclass(frozen=True)
class ProcessSettings:
    namespaces: Sequence[str] = ()
    resync_seconds: float = 30.0
    prometheus_address: str | None = None
    http_host: str = "0.0.0.0"
    http_port: int = 8080  # 0: no HTTP endpoints
    election: ElectionSettings | None = None  # None: no leader election (one replica)
    shards: ShardSettings | None = None  # with --shards N > 1: instead of leader election
    workers: int = 64  # Rollouts reconciled at the same time
    notifications: NotifySettings = field(default_factory=NotifySettings)


async def run_process(kube: Kube, settings: ProcessSettings) -> None:
    if settings.shards is not None:
        await _run_sharded(kube, settings, settings.shards)
        return
    operator_ready = threading.Event()
    elector = LeaderElector(kube.api, settings.election) if settings.election is not None else None
    # The identity in the user agent tells the replicas' requests apart in the API server's audit.
    kube.api.user_agent = f"{USER_AGENT} ({elector.identity})" if elector is not None else USER_AGENT

    def ready() -> bool:
        if elector is None or elector.leading():
            return operator_ready.is_set()
        return elector.seen_lease()

    def alive() -> bool:
        return elector is None or elector.thread_alive()

    async def operate() -> None:
        await _operate(kube, settings, operator_ready)

    server = HealthServer(settings.http_host, settings.http_port, alive=alive, ready=ready)
    if settings.http_port:
        await server.start()
    try:
        if elector is None:
            metrics.set_leader(True)
            await operate()
        else:
            kube.fence = elector.may_write  # set before the first write can be attempted
            await run_as_leader(elector, operate)
    finally:
        await asyncio.shield(server.stop())


async def _operate(
    kube: Kube, settings: ProcessSettings, ready: threading.Event, shards: ShardManager | None = None
) -> None:
    await run_controller(
        kube,
        settings.namespaces,
        resync_seconds=settings.resync_seconds,
        prometheus_address=settings.prometheus_address,
        ready_flag=ready,
        workers=settings.workers,
        notifications=settings.notifications,
        shards=shards,
    )


async def _run_sharded(kube: Kube, settings: ProcessSettings, shard_settings: ShardSettings) -> None:
    """One replica of several, each reconciling the Rollouts of the shards it holds."""
    if not shard_settings.identity:
        shard_settings = ShardSettings(**{**shard_settings.__dict__, "identity": default_identity()})
    kube.api.user_agent = f"{USER_AGENT} ({shard_settings.identity})"
    # The Leases' own client: no fence, one attempt per tick, a timeout within the retry period.
    lease_api = client.ApiClient(kube.api.configuration)
    lease_api.user_agent = kube.api.user_agent
    lease_kube = Kube(
        lease_api,
        threads=shard_settings.count + 4,  # every held shard renewed at once
        attempts=1,
        timeout=max(
            2.0, shard_settings.renew_deadline / 2
        ),  # a slow renewal still counts from when it was sent
    )
    manager = ShardManager(lease_kube, shard_settings)
    await manager.check_count()  # refused at start, before any Lease is written
    kube.fence = manager.may_write  # a write only for a shard held, renewed within the deadline
    operator_ready = threading.Event()
    server = HealthServer(
        settings.http_host, settings.http_port, alive=lambda: thread.is_alive(), ready=operator_ready.is_set
    )
    operator = asyncio.get_running_loop().create_task(_operate(kube, settings, operator_ready, manager))
    thread = manager.start_thread(asyncio.get_running_loop())
    if settings.http_port:
        await server.start()
    metrics.set_leader(True)
    try:
        while not operator.done() and thread.is_alive():
            await asyncio.sleep(0.5)
        if manager.failure is not None:
            raise manager.failure  # a shard count mismatch found later ends the process with its line
        operator.result()
    finally:
        # Hand the shards over first (running reconciles end, then the Leases are cleared), so
        # the others take them at once; then stop reconciling.
        await asyncio.shield(manager.stop_thread())
        operator.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await operator
        await asyncio.shield(server.stop())
