"""What the dashboard watches: Rollouts, ReplicaSets and Events in its scope (every namespace, or
one), each through the controller's list+watch `Reflector` (rollout/controller/cache.py) on the
user's own API client. A change wakes every open page (`changed`); the Rollouts' watch also says
whether the API server is reachable (`connection`) and feeds the traffic history, which lives in
this process's memory only: it starts empty when the dashboard starts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollout.controller.cache import Obj, ObjKey, Reflector, Store, WatchEnded, WatchExpired, key_of
from rollout.kube import EVENTS, REPLICASETS, ROLLOUTS, Resource, api_message
from rollout.workload.replicasets import ROLLOUT_NAME_LABEL

HISTORY_POINTS = 500  # per Rollout: the traffic history is bounded
RECENT_CHANGES = 2000  # what changed lately, for a page to tell whether it is concerned


@dataclass
class Connection:
    """Whether the Rollouts' watch is open; `problem` says why not, in the server's words."""

    listed: bool = False
    problem: str | None = None
    since: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        return {"listed": self.listed, "problem": self.problem, "since": self.since}


@dataclass
class Point:
    at: float  # seconds since the epoch
    canary: int  # the canary's weight (percent); the stable revision has the rest


@dataclass
class History:
    """Per Rollout, what watch events showed over time: the canary weight, and when each step
    was entered (status.stepStartedAt, else when the watch first saw the step)."""

    weights: dict[ObjKey, list[Point]] = field(default_factory=dict)
    steps: dict[ObjKey, dict[str, dict[int, float]]] = field(default_factory=dict)

    def note(self, obj: Obj, now: float) -> None:
        key = key_of(obj)
        status = obj.get("status") or {}
        weight = (status.get("canary") or {}).get("weight")
        if weight is not None:
            points = self.weights.setdefault(key, [])
            if not points or points[-1].canary != weight:
                points.append(Point(now, int(weight)))
                del points[:-HISTORY_POINTS]
        index = status.get("currentStepIndex")
        revision = str(status.get("currentRevision") or "")
        if index is not None and revision:
            entered = self.steps.setdefault(key, {}).setdefault(revision, {})
            entered.setdefault(int(index), now)

    def forget(self, key: ObjKey) -> None:
        self.weights.pop(key, None)
        self.steps.pop(key, None)


def _problem(exc: BaseException | None) -> str:
    if isinstance(exc, ApiException):
        return f"the API server answered {exc.status} {exc.reason}: {api_message(exc)}"
    if isinstance(exc, WatchExpired):
        return f"the watch was cut ({exc}); listing again"
    return f"cannot reach the API server: {type(exc).__name__}: {exc}"


class Watches:
    """The stores of the watched kinds in one scope, and who to wake on a change."""

    KINDS: tuple[Resource, ...] = (ROLLOUTS, REPLICASETS, EVENTS)

    def __init__(
        self,
        api_factory: Callable[[], client.ApiClient],
        namespace: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_factory = api_factory
        self.namespace = namespace  # None: every namespace
        self.clock = clock
        self.stores = {res.plural: Store(res, self._on_change) for res in self.KINDS}
        self.connection = Connection()
        self.history = History()
        self.generation = 0  # counts changes; pages wait for it to move
        # (generation, namespace, what it is about: a Rollout's name, an owned ReplicaSet's
        # Rollout, an Event's object; None: everything, as a change of the connection)
        self.recent: deque[tuple[int, str | None, str | None]] = deque(maxlen=RECENT_CHANGES)
        self._changed = asyncio.Event()
        self._stop = threading.Event()
        self._reflectors: list[Reflector] = []
        self._threads: list[threading.Thread] = []

    @property
    def rollouts(self) -> Store:
        return self.stores[ROLLOUTS.plural]

    def _wake(self, namespace: str | None = None, about: str | None = None) -> None:
        self.generation += 1
        self.recent.append((self.generation, namespace, about))
        self._changed.set()
        self._changed = asyncio.Event()

    def concerns(self, after: int, namespace: str, name: str) -> bool:
        """Whether a change after generation `after` may change Rollout namespace/name's page."""
        if not self.recent or self.recent[0][0] > after + 1:
            return True  # older changes were dropped from the record: assume so
        for generation, ns, about in reversed(self.recent):
            if generation <= after:
                return False
            if about is None or (ns == namespace and (about == name or about.startswith(f"{name}-"))):
                return True
        return False

    async def changed(self, after: int, timeout: float) -> bool:
        """Wait until the generation moves past `after` (False on timeout)."""
        if self.generation != after:
            return True
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _on_change(self, res: Resource, key: ObjKey, old: Obj | None, new: Obj | None) -> None:
        obj = new or old or {}
        about: str | None = key[1]
        if res is ROLLOUTS:
            if new is None:
                self.history.forget(key)
            else:
                self.history.note(new, self.clock())
        elif res is REPLICASETS:
            about = ((obj.get("metadata") or {}).get("labels") or {}).get(ROLLOUT_NAME_LABEL, "")
        elif res is EVENTS:
            about = str((obj.get("involvedObject") or {}).get("name") or "")
        self._wake(key[0], about)

    def _listed(self, reflector: Reflector, items: list[Obj], version: int | None) -> None:
        self.stores[reflector.resource.plural].replace(reflector.namespace, items, version)
        if reflector.resource is ROLLOUTS:
            self.connection = Connection(listed=True)
        self._wake()

    def _event(self, store: Store, kind: str, obj: Obj) -> None:
        if kind == "DELETED":
            store.remove(key_of(obj), obj)
        else:
            store.put(obj)

    def _failed(self, reflector: Reflector, exc: BaseException) -> None:
        if isinstance(exc, WatchEnded):  # watched again from where it ended: nothing missed
            return
        if reflector.resource is ROLLOUTS:
            self.connection = Connection(listed=False, problem=_problem(exc))
            self._wake()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for res in self.KINDS:
            store = self.stores[res.plural]
            reflector = Reflector(
                api=self.api_factory(),
                resource=res,
                namespace=self.namespace,
                label_selector=None,
                loop=loop,
                on_listed=self._listed,
                on_event=lambda kind, obj, store=store: self._event(store, kind, obj),
                on_failure=self._failed,
                stop=self._stop,
                # Short watches: a cut that no error reveals (a proxy that went silent) is
                # noticed within a minute rather than five.
                watch_seconds=50,
                read_grace=10.0,
            )
            thread = threading.Thread(target=reflector.run, name=f"dashboard-{res.plural}", daemon=True)
            self._reflectors.append(reflector)
            self._threads.append(thread)
            thread.start()

    async def stop(self) -> None:
        self._stop.set()
        for reflector in self._reflectors:
            reflector.interrupt()
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 5)
