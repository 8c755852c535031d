"""The controller's API facade backed by the watch-fed caches (`cache.py`): reads are served from
memory once a kind is listed, writes go to the API server and their answers go into the cache.

It also keeps which objects each Rollout's last reconcile read, so that a change to any of them
(a Service, a route, a template, a Secret, even one that was missing) triggers that Rollout at
once. After a conflict, `fresh_reads()` makes the next attempt read from the API server.

Secrets are the exception: never listed or watched (that would hold every Secret of the cluster,
Helm's release records among them, and need `list` on Secrets). Those a Rollout or notification
names are read with a GET and kept for SECRET_TTL seconds, at most SECRET_CACHE_SIZE of them, so a
burst of reconciles reads each once and a rotated token is used within seconds. A missing Secret
is not kept: it is read again at once by the next reconcile, which comes a second later
(reconciler.py)."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from typing import Any

from cachetools import TTLCache
from kubernetes import client

from rollout.controller.cache import Caches, Obj, is_stub
from rollout.controller.claims import ClaimsIndex
from rollout.kube import API_THREADS, ROLLOUTS, SECRETS, Kube, Resource
from rollout.kube.objects import copied

RolloutKey = tuple[str, str]
ReadKey = tuple[Resource, str | None, str]  # (kind, namespace, name) of an object read

SECRET_TTL = 5.0  # seconds a Secret read is reused
SECRET_CACHE_SIZE = 1024  # Secrets kept at most: an analysis names one or two per template

_reads: contextvars.ContextVar[set[ReadKey] | None] = contextvars.ContextVar("reads", default=None)
_fresh: contextvars.ContextVar[bool] = contextvars.ContextVar("fresh", default=False)


@contextlib.contextmanager
def fresh_reads() -> Iterator[None]:
    """Reads inside the block go to the API server (the cache may be behind after a 409)."""
    token = _fresh.set(True)
    try:
        yield
    finally:
        _fresh.reset(token)


def _labels_match(obj: Obj, selector: str | None) -> bool | None:
    """Whether `obj` matches an equality selector `k=v[,k=v]`; None for any other form (then the
    API server answers instead)."""
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for part in selector.split(","):
        key, sep, value = part.partition("=")
        if not sep or value.startswith("=") or key.endswith("!") or not key:
            return None
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def _first_equality(selector: str | None) -> tuple[str, str] | None:
    """The first `k=v` of an equality selector, to look its candidates up by label; None for no
    selector or any other form."""
    if not selector:
        return None
    key, sep, value = selector.split(",", 1)[0].partition("=")
    if not sep or value.startswith("=") or key.endswith("!") or not key.strip():
        return None
    return key.strip(), value.strip()


class CachedKube(Kube):
    def __init__(
        self,
        api: client.ApiClient,
        caches: Caches,
        *,
        threads: int = API_THREADS,
        clock: Callable[[], float] = time.monotonic,
        **options: Any,
    ) -> None:
        super().__init__(api, threads=threads, **options)
        self.caches = caches
        self.secrets: TTLCache[tuple[str | None, str], Obj] = TTLCache(
            SECRET_CACHE_SIZE, SECRET_TTL, timer=clock
        )
        self.claims = ClaimsIndex()  # fed by the Rollout cache's changes (operator.Triggers)
        self.readers: dict[ReadKey, set[RolloutKey]] = {}  # object -> Rollouts that read it
        self._read_by: dict[RolloutKey, set[ReadKey]] = {}
        # The caches keep whole only the objects some Rollout reads (referenced_only kinds).
        caches.wants = lambda res, key: (res, key[0], key[1]) in self.readers

    # --- dependencies -----------------------------------------------------------------------

    @contextlib.contextmanager
    def reads_for(self, rollout: RolloutKey) -> Iterator[None]:
        reads: set[ReadKey] = set()
        token = _reads.set(reads)
        try:
            yield
        finally:
            _reads.reset(token)
            self._depend(rollout, reads)

    def _depend(self, rollout: RolloutKey, reads: set[ReadKey]) -> None:
        for read in self._read_by.pop(rollout, set()) - reads:
            readers = self.readers.get(read)
            if readers is not None:
                readers.discard(rollout)
                if not readers:
                    del self.readers[read]
                    store = self.caches.stores.get(read[0])
                    if store is not None:
                        store.forget_whole((read[1], read[2]))
        for read in reads:
            self.readers.setdefault(read, set()).add(rollout)
        if reads:
            self._read_by[rollout] = reads

    def forget_reads(self, rollout: RolloutKey) -> None:
        self._depend(rollout, set())

    def known_version(self, res: Resource, namespace: str | None, name: str) -> str | None:
        if res not in self.caches.stores:
            return None
        found = self.caches.stores[res].get(namespace, name)
        version = ((found or {}).get("metadata") or {}).get("resourceVersion")
        return str(version) if version else None

    def readers_of(self, res: Resource, namespace: str | None, name: str) -> set[RolloutKey]:
        return set(self.readers.get((res, namespace, name), ()))

    # --- reads ------------------------------------------------------------------------------

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        reads = _reads.get()
        if reads is not None:
            reads.add((res, namespace, name))
        if res == SECRETS:
            return await self._secret(namespace, name)
        if _fresh.get() or not self.caches.serves(res, namespace, name=name):
            return await self.get_fresh(res, namespace, name)
        found = self.caches.stores[res].get(namespace, name)
        if is_stub(found):  # it exists, but no Rollout read it until now: read it whole once
            return await self.get_fresh(res, namespace, name)
        return copied(found) if found is not None else None

    async def _secret(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (namespace, name)
        kept = None if _fresh.get() else self.secrets.get(key)
        if kept is None:
            kept = await Kube.get(self, SECRETS, namespace, name)
            if kept is None:
                self.secrets.pop(key, None)
                return None
            kept.get("metadata", {}).pop("managedFields", None)
            self.secrets[key] = kept
        return copied(kept)

    async def get_fresh(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        if res == SECRETS:
            with fresh_reads():
                return await self._secret(namespace, name)
        found = await Kube.get(self, res, namespace, name)
        if found is not None:
            self.caches.note(res, found)
        return found

    async def list(
        self, res: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        if _fresh.get() or not self._whole(res, namespace, label_selector):
            return await self._list_fresh(res, namespace, label_selector)
        store = self.caches.stores[res]
        first = _first_equality(label_selector)
        candidates = store.labelled(namespace, *first) if first else store.values(namespace)
        found = []
        for obj in candidates:
            match = _labels_match(obj, label_selector)
            if match is None:
                return await self._list_fresh(res, namespace, label_selector)
            if match:
                found.append(copied(obj))
        return found

    async def _list_fresh(
        self, res: Resource, namespace: str | None, label_selector: str | None
    ) -> list[dict[str, Any]]:
        found = await super().list(res, namespace, label_selector)
        for obj in found:
            self.caches.note(res, obj)
        return found

    def _whole(self, res: Resource, namespace: str | None, label_selector: str | None = None) -> bool:
        """Whether every object of the kind the selector selects is in memory whole, so a list
        can be answered."""
        return (
            self.caches.serves(res, namespace, selector=label_selector)
            and self.caches.stores[res].wanted is None
        )

    def claims_index(self, namespace: str) -> ClaimsIndex | None:
        # Served from the cache even in a retry after a conflict: what conflicted was this
        # Rollout's own write, not another Rollout's claims, and reading every Rollout of the
        # namespace again on each conflict had cost O(N) per conflict under load.
        if not self.caches.serves(ROLLOUTS, namespace):
            return None
        return self.claims

    async def peek_all(self, res: Resource, namespace: str | None) -> list[dict[str, Any]]:
        if _fresh.get() or not self._whole(res, namespace):
            return await super().list(res, namespace)
        return list(self.caches.stores[res].values(namespace))

    # --- writes: the answer is the newest version there is ----------------------------------

    async def create(self, res: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        created = await super().create(res, namespace, body)
        self.caches.note(res, created)
        return created

    async def patch(
        self, res: Resource, namespace: str | None, name: str, body: Any, **options: Any
    ) -> dict[str, Any]:
        patched = await super().patch(res, namespace, name, body, **options)
        self.caches.note(res, patched)
        return patched

    async def delete(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        *,
        resource_version: str | None = None,
        propagation: str | None = None,
    ) -> None:
        await super().delete(res, namespace, name, resource_version=resource_version, propagation=propagation)
        self.caches.note_deleted(res, namespace, name)
