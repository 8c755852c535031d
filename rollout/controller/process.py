"""The `rollout controller` process: the health and metrics endpoints, leader election when
asked for, and the operator (operator.py) inside them.

Readiness: without leader election, the caches are listed; with it, a leader whose caches are
listed, or a follower that has read the Lease (it reaches the API server and can take
over). Liveness: the event loop answers, and the election thread, when there is one, runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from rollout.controller.leader import ElectionSettings, LeaderElector, run_as_leader
from rollout.controller.operator import run_controller
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
    workers: int = 64  # Rollouts reconciled at the same time
    notifications: NotifySettings = field(default_factory=NotifySettings)


async def run_process(kube: Kube, settings: ProcessSettings) -> None:
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
        await run_controller(
            kube,
            settings.namespaces,
            resync_seconds=settings.resync_seconds,
            prometheus_address=settings.prometheus_address,
            ready_flag=operator_ready,
            workers=settings.workers,
            notifications=settings.notifications,
        )

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
