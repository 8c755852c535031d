"""Leader election on a `coordination.k8s.io/v1` Lease, around the operator: only the leader runs
kopf and reconciles; the others wait, ready to take over.

It uses the `kubernetes` package's `leaderelection` (a Lease lock with client-go's rules: a
candidate takes a Lease whose holder has not renewed it within its lease duration, every write
guarded by the Lease's resourceVersion), run in a thread of its own as that module expects. Two
things are added here:
- the lock is bound to the controller's own API client (the library's uses the global
  configuration), and each successful renewal is timed;
- a write fence (`may_write`, installed as `Kube.fence`): writes are allowed only while the last
  renewal is younger than the renew deadline, which is shorter than the lease duration. So a
  leader that cannot renew stops writing before any other candidate may acquire the Lease, even
  while its election thread has not noticed yet. When the library gives up the lease, the operator
  is cancelled and the process ends (`LeadershipLost`): it starts again as a follower (the Pod's
  restart), which is simpler and safer than reusing a half-stopped kopf.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from rollout.observability import metrics

log = structlog.get_logger("rollout.leader")
# The library logs every retry of a follower at INFO ("yet to finish lease_duration"): too chatty.
logging.getLogger("leaderelection").setLevel(logging.WARNING)


class LeadershipLost(Exception):
    """The Lease could not be renewed within the renew deadline: this process stops leading."""


@dataclass(frozen=True)
class ElectionSettings:
    namespace: str
    name: str = "rollout-controller"
    identity: str = ""
    lease_duration: int = 15  # seconds a Lease stays valid after its last renewal
    renew_deadline: float = 10.0  # a leader that has not renewed for this long stops writing
    retry_period: float = 2.0  # seconds between attempts to acquire or renew

    def problems(self) -> list[str]:
        """What is wrong with these durations (the library would exit the process instead)."""
        found = []
        if self.retry_period < 1:
            found.append(f"--leader-election-retry-period must be at least 1 s (got {self.retry_period})")
        if self.renew_deadline <= 1.2 * self.retry_period:
            found.append(
                f"--leader-election-renew-deadline ({self.renew_deadline}) must be more than 1.2 times "
                f"--leader-election-retry-period ({self.retry_period})"
            )
        if self.lease_duration <= self.renew_deadline:
            found.append(
                f"--leader-election-lease-duration ({self.lease_duration}) must be more than "
                f"--leader-election-renew-deadline ({self.renew_deadline})"
            )
        return found


def default_identity() -> str:
    """The Pod's name when the chart passes it (POD_NAME), else the host name, made unique."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


class _TimedLeaseLock(LeaseLock):  # type: ignore[misc]
    """The library's Lease lock on our API client, reporting when a write of the Lease landed."""

    def __init__(
        self,
        settings: ElectionSettings,
        api: client.ApiClient,
        on_written: Callable[[float], None],
        on_read: Callable[[], None],
    ) -> None:
        super().__init__(settings.name, settings.namespace, settings.identity)
        self.api_instance = client.CoordinationV1Api(api)
        self._on_written = on_written
        self._on_read = on_read

    def get(self, name: str, namespace: str) -> Any:
        found, record = super().get(name, namespace)
        status = getattr(record, "status", None)
        if found or status == 404:
            self._on_read()
        return found, record

    def create(self, name: str, namespace: str, election_record: Any) -> bool:
        sent = time.monotonic()  # the lease counts from when it was asked for, to be safe
        created = bool(super().create(name, namespace, election_record))
        if created:
            self._on_written(sent)
        return created

    def update(self, name: str, namespace: str, updated_record: Any) -> bool:
        sent = time.monotonic()
        updated = bool(super().update(name, namespace, updated_record))
        if updated:
            self._on_written(sent)
        return updated


class LeaderElector:
    def __init__(self, api: client.ApiClient, settings: ElectionSettings) -> None:
        if not settings.identity:
            settings = ElectionSettings(**{**settings.__dict__, "identity": default_identity()})
        self.settings = settings
        self.api = api
        self._renewed_at: float | None = None
        self._leading = threading.Event()
        self._seen_lease = threading.Event()  # the Lease was read once: the API server answers
        self._thread: threading.Thread | None = None

    @property
    def identity(self) -> str:
        return self.settings.identity

    def may_write(self) -> bool:
        """The write fence: leading, and the last renewal younger than the renew deadline."""
        renewed = self._renewed_at
        return (
            self._leading.is_set()
            and renewed is not None
            and time.monotonic() - renewed < self.settings.renew_deadline
        )

    def leading(self) -> bool:
        return self._leading.is_set()

    def seen_lease(self) -> bool:
        return self._seen_lease.is_set()

    def thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _written(self, sent: float) -> None:
        self._renewed_at = sent

    def start(self, on_started: Callable[[], None], on_stopped: Callable[[], None]) -> None:
        """Campaign in a daemon thread; `on_started`/`on_stopped` are called from that thread."""
        s = self.settings

        def started() -> None:
            self._leading.set()
            metrics.set_leader(True)
            log.info("became the leader", identity=s.identity, lease=f"{s.namespace}/{s.name}")
            on_started()

        def stopped() -> None:
            self._leading.clear()
            metrics.set_leader(False)
            log.error("lost the leader lease: stopping", identity=s.identity, lease=f"{s.namespace}/{s.name}")
            on_stopped()

        lock = _TimedLeaseLock(s, self.api, self._written, self._seen_lease.set)
        config = electionconfig.Config(
            lock,
            lease_duration=s.lease_duration,
            renew_deadline=s.renew_deadline,
            retry_period=s.retry_period,
            onstarted_leading=started,
            onstopped_leading=stopped,
        )
        metrics.set_leader(False)
        log.info("waiting to lead", identity=s.identity, lease=f"{s.namespace}/{s.name}")
        self._thread = threading.Thread(
            target=leaderelection.LeaderElection(config).run, name="leader-election", daemon=True
        )
        self._thread.start()


async def run_as_leader(elector: LeaderElector, run: Callable[[], Awaitable[None]]) -> None:
    """Wait for the Lease, then run the operator until it ends or the Lease is lost (then the
    operator's tasks are cancelled and `LeadershipLost` raised)."""
    loop = asyncio.get_running_loop()
    elected, lost = asyncio.Event(), asyncio.Event()
    elector.start(
        on_started=lambda: loop.call_soon_threadsafe(elected.set),
        on_stopped=lambda: loop.call_soon_threadsafe(lost.set),
    )
    lost_waiter = loop.create_task(lost.wait())
    elected_waiter = loop.create_task(elected.wait())
    await asyncio.wait({lost_waiter, elected_waiter}, return_when=asyncio.FIRST_COMPLETED)
    elected_waiter.cancel()
    if lost.is_set():
        raise LeadershipLost(f"{elector.identity} lost the lease before it started leading")
    operator = loop.create_task(run())
    await asyncio.wait({operator, lost_waiter}, return_when=asyncio.FIRST_COMPLETED)
    if not operator.done():  # the Lease is lost: stop every reconcile now
        operator.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await operator
        raise LeadershipLost(f"{elector.identity} lost the leader lease")
    lost_waiter.cancel()
    operator.result()
