"""Events leave the reconcile's path here (reconciler.py hands each decision's Events over once
its status write has landed).

A reconcile queues its Events under its Rollout and goes on; a task per Rollout with Events
waiting posts them one after another, so one Rollout's Events keep the order its decisions gave
them, and at most `in_flight` POSTs run at once over all Rollouts. On a busy API server the
Events are a third of the controller's requests (9 per canary update); posted within the
reconcile they held every reconcile behind them, and posted side by side they lost their order.
The queue is bounded: a reconcile that finds `backlog` Events waiting waits for room, so none is
dropped. Each sender runs inside `around(key)` (the shard's hand-over count, with --shards), so
a hand-over waits for the Events already decided. The write fence lets Event creates through
(kube/guard.py): a replica whose shard's renewal fell behind, or that lost the shard, still posts
the Events of the decisions it wrote, which no other replica would post.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from rollout.kube import EVENTS, Kube

log = structlog.get_logger("rollout.controller")
Key = tuple[str, str]


def _no_context(_key: Key) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


class EventQueue:
    def __init__(
        self,
        kube: Kube,
        *,
        in_flight: int = 16,
        backlog: int = 10_000,
        around: Callable[[Key], contextlib.AbstractContextManager[None]] = _no_context,
    ) -> None:
        self.kube = kube
        self.in_flight = in_flight
        self.backlog = backlog
        self.around = around
        self._waiting: dict[Key, collections.deque[dict[str, Any]]] = {}
        self._senders: dict[Key, asyncio.Task[None]] = {}
        # Created on first use, inside the running loop (the reconciler may be built outside one).
        self._slots: asyncio.Semaphore | None = None
        self._room: asyncio.Semaphore | None = None

    def __len__(self) -> int:
        """Events queued and not yet posted (or given up)."""
        return sum(len(queue) for queue in self._waiting.values())

    async def put(self, key: Key, bodies: list[dict[str, Any]]) -> None:
        """Queue `bodies` (Event objects, in order) for the Rollout `key`; returns once they are
        queued, which waits only while `backlog` Events are already waiting."""
        if self._room is None:
            self._room = asyncio.Semaphore(self.backlog)
        for body in bodies:
            await self._room.acquire()
            self._waiting.setdefault(key, collections.deque()).append(body)
            if key not in self._senders:
                task = asyncio.get_running_loop().create_task(self._send(key))
                self._senders[key] = task

    async def _send(self, key: Key) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.in_flight)
        queue = self._waiting[key]
        try:
            with self.around(key):
                while queue:
                    body = queue[0]
                    async with self._slots:
                        try:
                            await self.kube.create(EVENTS, key[0], body)
                        except Exception as exc:  # an Event is information, never a reason to fail
                            if getattr(exc, "status", None) == 409:
                                # The name is ours alone (a random suffix): a retried create whose
                                # answer was lost finds the Event its first attempt posted.
                                log.debug("event already posted", namespace=key[0], name=key[1])
                            else:
                                log.warning(
                                    "event not posted",
                                    namespace=key[0],
                                    name=key[1],
                                    reason=body.get("reason"),
                                    error=str(exc) or type(exc).__name__,
                                )
                    queue.popleft()
                    assert self._room is not None
                    self._room.release()
        finally:
            # No await between the last look at the queue and here: a put() after this starts
            # a new sender, which finds the Events of this one all posted.
            if self._waiting.get(key) is queue and not queue:
                del self._waiting[key]
            self._senders.pop(key, None)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued Event is posted (or given up); False if `timeout` passed
        first. For shutdown, and for tests that read Events right after a reconcile."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._senders:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(list(self._senders.values()), timeout=left)
        return True

    async def close(self, timeout: float = 5.0) -> None:
        """Post what is queued for up to `timeout` seconds, then give the rest up (logged)."""
        if await self.drain(timeout):
            return
        lost = len(self)
        for task in list(self._senders.values()):
            task.cancel()
        await asyncio.gather(*self._senders.values(), return_exceptions=True)
        log.warning("events not posted at shutdown", count=lost)
