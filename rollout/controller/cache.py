"""Watch-fed caches of everything a reconcile reads: one list+watch stream per kind and namespace
scope, and the answers to the controller's own writes (so that a reconcile never reads back
anything older than what it wrote).

Flow: `Caches.start()` runs one `Reflector` thread per (kind, scope). A reflector lists, then
watches from the list's resourceVersion, and hands each change to the event loop, where the
kind's `Store` keeps the newest version of every object (by resourceVersion) and `on_change`
tells the controller which object changed. A kind that cannot be listed (its CRD is not
installed, or RBAC forbids it) is not served from the cache: `CachedKube` reads it from the API
server until a later attempt lists it.

Memory follows what Rollouts reference, not the cluster: a kind marked `referenced_only`
(Services, Deployments, routes, Ingresses) keeps whole objects only for the keys its `wanted`
predicate names (what some Rollout's last reconcile read); of the rest it keeps a stub of name
and resourceVersion, enough to know the object exists and to trigger on a change. Lists come in
pages, each shrunk as it arrives, and no stored object keeps managedFields or kubectl's
last-applied-configuration."""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_when_event_set
from tenacity.wait import wait_base
from urllib3.exceptions import ReadTimeoutError

from rollout.kube import Resource

log = structlog.get_logger("rollout.controller.cache")
Obj = dict[str, Any]
ObjKey = tuple[str | None, str]  # (namespace, name); namespace None for cluster-scoped kinds


def resource_version(obj: Obj | None) -> int | None:
    """The resourceVersion as a number: etcd's revision on a real API server, a counter on the
    emulator. None when absent or not a number (then nothing is compared by it)."""
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion"))
    except (TypeError, ValueError):
        return None


def newer(incoming: Obj, stored: Obj | None) -> bool:
    """Whether `incoming` should replace `stored`: a watch can deliver an event older than the
    answer to a write that was already noted."""
    if stored is None:
        return True
    mine, theirs = resource_version(incoming), resource_version(stored)
    if mine is None or theirs is None:
        return incoming != stored
    if is_stub(stored) and not is_stub(incoming):
        return mine >= theirs  # the whole object of the version a stub stands for
    return mine > theirs


def key_of(obj: Obj) -> ObjKey:
    meta = obj.get("metadata") or {}
    return meta.get("namespace"), str(meta.get("name"))


Change = Callable[[Resource, ObjKey, Obj | None, Obj | None], None]  # (kind, key, old, new)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
LIST_PAGE = 500  # objects per page of a list: bounds what one list holds before it is shrunk
GONE_KEPT = 10_000  # deleted objects' versions kept against late events


def slim(obj: Obj) -> Obj:
    """`obj` without what no reconcile reads and a real server's objects often carry more of than
    anything else: managedFields and kubectl's copy of the last applied manifest."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            del annotations[LAST_APPLIED]
    return obj


def stub(obj: Obj) -> Obj:
    """What is kept of an object no Rollout reads: that it exists, and its version."""
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "resourceVersion") if k in meta}
    return {"metadata": kept, STUB: True}


STUB = "__stub__"  # marks a stub: the whole object must be read from the API server


def is_stub(obj: Obj | None) -> bool:
    return bool(obj) and STUB in obj  # type: ignore[operator]


@dataclass
class Store:
    """The newest known version of each object of one kind, in the scopes that are listed."""

    resource: Resource
    on_change: Change
    # For a referenced_only kind: which keys to keep whole (None: keep every object whole).
    wanted: Callable[[ObjKey], bool] | None = None
    objects: dict[ObjKey, Obj] = field(default_factory=dict)
    # Deleted objects' last resourceVersion, and whether it is the deletion's own (a watch's
    # DELETED) rather than the last version known here (our own delete): a late event from
    # before the deletion is ignored. Bounded (the oldest go first): a listing of part of a
    # scope cannot clear it.
    _gone: collections.OrderedDict[ObjKey, tuple[int, bool]] = field(default_factory=collections.OrderedDict)
    # (namespace, label key, label value) -> the objects carrying it: a reconcile's list of its
    # own ReplicaSets by label is a look-up, not a scan of every ReplicaSet the cache holds.
    _labelled: dict[tuple[str | None, str, str], set[ObjKey]] = field(default_factory=dict)

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self.objects.get((namespace, name))

    def labelled(self, namespace: str | None, key: str, value: str) -> list[Obj]:
        """The objects of the namespace (every namespace: None) whose label `key` is `value`,
        in the order of their keys."""
        if namespace is None:
            return [
                obj
                for obj in self.values()
                if ((obj.get("metadata") or {}).get("labels") or {}).get(key) == value
            ]
        return [self.objects[k] for k in sorted(self._labelled.get((namespace, key, value), ()), key=str)]

    def _index(self, key: ObjKey, obj: Obj | None, add: bool) -> None:
        labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
        for label, value in labels.items():
            slot = (key[0], str(label), str(value))
            if add:
                self._labelled.setdefault(slot, set()).add(key)
            else:
                keys = self._labelled.get(slot)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._labelled[slot]

    def values(self, namespace: str | None = None) -> Iterator[Obj]:
        for (ns, _), obj in list(self.objects.items()):
            if namespace is None or ns == namespace:
                yield obj

    def put(self, obj: Obj) -> None:
        key = key_of(obj)
        old = self.objects.get(key)
        if not newer(obj, old):
            return
        gone = self._gone.get(key)
        version = resource_version(obj)
        # At the very revision a watch gave a deletion, only its twin exists: the object entering
        # another scope's watch as it left this one's (relabelled), which a real server tells as
        # a DELETED here and an ADDED there.
        if (
            gone is not None
            and version is not None
            and (version < gone[0] or (version == gone[0] and not gone[1]))
        ):
            return
        self._gone.pop(key, None)
        obj = slim(obj)  # also what reaches put() without the reflector's or note()'s shrinking
        self._index(key, old, add=False)
        self.objects[key] = obj
        self._index(key, obj, add=True)
        self.on_change(self.resource, key, old, obj)

    def shrink(self, obj: Obj, *, whole: bool = False) -> Obj:
        """What to keep of `obj`: all of it (slimmed), or a stub when no Rollout reads it."""
        if self.wanted is None or whole or is_stub(obj) or self.wanted(key_of(obj)):
            return slim(obj)
        return stub(obj)

    def forget_whole(self, key: ObjKey) -> None:
        """No Rollout reads the object any more: keep a stub of it."""
        found = self.objects.get(key)
        if found is not None and self.wanted is not None and not is_stub(found):
            self.objects[key] = stub(found)

    def remove(self, key: ObjKey, last: Obj | None = None, *, deleted: bool = True) -> None:
        """The object is gone: deleted, or (`deleted` False) no longer in any watched scope, so a
        later listing of a scope it enters may bring the same version back."""
        old = self.objects.pop(key, None)
        self._index(key, old, add=False)
        version = resource_version(last) or resource_version(old)
        if deleted and version is not None:
            self._gone[key] = (version, resource_version(last) is not None)
            self._gone.move_to_end(key)
            while len(self._gone) > GONE_KEPT:
                self._gone.popitem(last=False)
        if old is not None:
            self.on_change(self.resource, key, old, None)

    def drop(self, within: Callable[[Obj], bool]) -> int:
        """Forget the objects `within` selects, quietly: a scope no longer watched here (their
        Rollouts are another replica's now), not a change to act on."""
        dropped = [key for key, obj in self.objects.items() if within(obj)]
        for key in dropped:
            self._index(key, self.objects.pop(key), add=False)
        return len(dropped)

    def replace(
        self,
        namespace: str | None,
        items: Sequence[Obj],
        list_version: int | None,
        within: Callable[[Obj], bool] | None = None,
    ) -> None:
        """A fresh listing of one scope: what it lacks is gone, unless noted after the list.
        `within`: the listing covers only the objects it selects (one shard's); the others stay."""
        listed = {key_of(obj) for obj in items}
        for key, obj in list(self.objects.items()):
            if (namespace is None or key[0] == namespace) and key not in listed:
                if within is not None and not within(obj):
                    continue
                version = resource_version(obj)
                if list_version is None or version is None or version <= list_version:
                    self.remove(key)
        if within is None:
            for key in [k for k in self._gone if namespace is None or k[0] == namespace]:
                del self._gone[key]
        for obj in items:
            self.put(obj)


def _ended_at_timeout(lines: Iterator[Any]) -> Iterator[Any]:
    """The watch's lines; a read that times out (silence for longer than the watch's own
    timeoutSeconds) is its end, not a failure: nothing was cut, so a new watch from the last
    version follows, not a list of the whole kind. kmock's emulator, unlike a real server, never
    closes a watch at timeoutSeconds."""
    try:
        yield from lines
    except ReadTimeoutError:
        return


class KindAbsent(Exception):
    """The API server does not serve this kind (its CRD is not installed)."""


class WatchExpired(Exception):
    """410 Gone: the watch's resourceVersion is too old; list again. Not an error: the cache
    keeps serving meanwhile."""


class WatchEnded(WatchExpired):
    """The server ended a watch before its timeout (a real one does when the watcher falls
    behind; a proxy may at an idle limit): watch again from the last version seen, which a real
    server replays from or answers 410 (then list again). Not an error either. `at_once`: it
    ended within a second having told nothing, which a server may do again and again."""

    def __init__(self, events: int, seconds: float) -> None:
        super().__init__(f"watch ended early, after {seconds:.1f} s and {events} events")
        self.at_once = events == 0 and seconds < 1.0


class _AfterFailure(wait_base):
    """No wait before listing again after 410 or a cut watch, nor before watching again after a
    watch that ended early, unless at once; half a minute for a kind that is not installed (it
    may be installed later); after an error, or a watch that ended at once, 0.5 s doubling up
    to 30 s over the failures since the last successful list or watched event (a reflector lives
    for days: its attempts do not add up)."""

    def __init__(self, failures: Callable[[], int]) -> None:
        self.failures = failures

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        ended_at_once = isinstance(exc, WatchEnded) and exc.at_once
        if isinstance(exc, WatchExpired) and not ended_at_once:
            return 0.0
        if isinstance(exc, KindAbsent):
            return 30.0
        return float(min(30.0, 0.5 * 2 ** self.failures()))


@dataclass
class Reflector:
    """List and watch one kind in one scope, in a thread of its own (a watch is a long blocking
    read); every result is handed to the event loop."""

    api: client.ApiClient
    resource: Resource
    namespace: str | None
    label_selector: str | None
    loop: asyncio.AbstractEventLoop
    on_listed: Callable[[Reflector, list[Obj], int | None], None]
    on_event: Callable[[str, Obj], None]
    on_failure: Callable[[Reflector, BaseException], None]
    stop: threading.Event
    shrink: Callable[[Obj], Obj] = slim  # applied as objects arrive, before they pile up
    # The objects this reflector's scope holds, when its label selector selects part of a kind
    # (one shard's ReplicaSets): also checked here, since a server may not filter (the emulator).
    keeps: Callable[[Obj], bool] | None = None
    watch_seconds: int = 300  # the server ends each watch after this (timeoutSeconds)
    read_grace: float = 30.0  # seconds past it before a silent stream is taken for dead
    _open: Any = None  # the watch response being read, so that `interrupt` can cut it
    _failures: int = 0  # errors since the last successful list or watched event
    _relist_asked: bool = False
    # The last resourceVersion seen, to watch again from; None: list first (at the start, after
    # 410, an error, or a relist asked).
    _version: str | None = None
    # Listings begun (here) and handed over (counted by the event loop): while one is begun and
    # not yet handed over, whatever the loop decides now is in force when it arrives.
    lists_begun: int = 0
    lists_handed_over: int = 0

    def relist(self) -> None:
        """List again (from another thread): the open watch is cut, and its end is taken for an
        expiry, not an error, so memory keeps serving meanwhile."""
        self._relist_asked = True
        self.interrupt()

    def interrupt(self) -> None:
        """Cut the open watch from another thread (its blocking read fails at once), so that a
        stopped controller leaves no connection behind."""
        stream = self._open
        if stream is not None:
            stream.shutdown()

    def _request(self, query: list[tuple[str, str]], *, stream: bool) -> Any:
        params = self.api.param_serialize(
            "GET",
            self.resource.path(self.namespace),
            query_params=query + ([("labelSelector", self.label_selector)] if self.label_selector else []),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        timeout = (10, self.watch_seconds + self.read_grace) if stream else 30
        response = self.api.call_api(*params, _request_timeout=timeout)
        if response.status == 404:
            response.read()
            raise KindAbsent(self.resource.path(self.namespace))
        if response.status == 410:  # a watch's version too old, told as the answer's status
            raise WatchExpired(response.read().decode(errors="replace"))
        if not 200 <= response.status < 300:
            body = response.read()
            raise ApiException(status=response.status, reason=response.reason, body=body)
        return response

    def _hand_over(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the controller has stopped
            self.stop.set()

    def _list(self) -> tuple[list[Obj], dict[str, Any]]:
        """Every object, a page at a time, each shrunk as its page arrives; and the list's
        metadata (its resourceVersion)."""
        items: list[Obj] = []
        query = [("limit", str(LIST_PAGE))]
        while True:
            listing = json.loads(self._request(query, stream=False).read() or b"{}")
            items += [self.shrink(obj) for obj in listing.get("items") or []]
            meta = listing.get("metadata") or {}
            if not meta.get("continue"):
                return items, meta
            query = [("limit", str(LIST_PAGE)), ("continue", str(meta["continue"]))]

    def _list_and_watch(self) -> None:
        if self._version is None or self._relist_asked:
            self.lists_begun += 1
            self._relist_asked = False
            items, listed = self._list()
            self._failures = 0
            self._version = str(listed.get("resourceVersion") or "")
            self._hand_over(self.on_listed, self, items, resource_version({"metadata": listed}))
        while not self.stop.is_set():
            query = [("watch", "true"), ("allowWatchBookmarks", "true")]
            query.append(("timeoutSeconds", str(self.watch_seconds)))
            if self._version:
                query.append(("resourceVersion", self._version))
            stream = self._open = self._request(query, stream=True).response
            if self.stop.is_set() or self._relist_asked:  # asked while no watch was open to cut
                stream.shutdown()
            opened, told = time.monotonic(), 0
            try:
                lines = iter_resp_lines(stream)
                for line in _ended_at_timeout(lines):
                    if self.stop.is_set():
                        return
                    if not line:
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise WatchExpired(obj.get("message", ""))
                        raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                    self._version = str((obj.get("metadata") or {}).get("resourceVersion") or self._version)
                    told += 1
                    self._failures = 0
                    if kind != "BOOKMARK":
                        self._hand_over(self.on_event, str(kind), self.shrink(obj))
            except Exception as exc:
                if self._relist_asked:
                    raise WatchExpired("listing again, as asked") from exc
                raise
            finally:
                self._open = None
                stream.release_conn()
            lasted = time.monotonic() - opened
            if lasted < self.watch_seconds - 5:
                raise WatchEnded(told, lasted)  # cut short, not timed out: watch again from _version

    def _failed(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, WatchEnded):
            self._version = None  # 410, an error or a relist asked: list again
        self._failures += 1
        self._hand_over(self.on_failure, self, exc)

    def run(self) -> None:
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: not self.stop.is_set()),
            wait=_AfterFailure(lambda: self._failures),
            stop=stop_when_event_set(self.stop),
            sleep=self.stop.wait,
            before_sleep=self._failed,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._list_and_watch()
        except Exception as exc:  # only once stopping: errors are retried until then
            log.debug("reflector stopped", kind=self.resource.plural, error=str(exc))


@dataclass(frozen=True)
class CachedKind:
    resource: Resource
    namespaced: bool = True
    label_selector: str | None = None  # only objects with these labels are watched
    # Whole objects only for the keys some Rollout reads; stubs of the rest (see the docstring).
    referenced_only: bool = False
    # With --shards: watched per shard held here, by the shard label its objects carry
    # (shard_caches.py); with one replica, watched whole like the rest.
    sharded: bool = False


class Caches:
    """The stores of every cached kind, the reflectors that feed them, and which (kind, scope)
    is listed and may be served from memory."""

    def __init__(
        self,
        api_factory: Callable[[], client.ApiClient],
        kinds: Iterable[CachedKind],
        namespaces: Sequence[str] = (),
        *,
        on_change: Change | None = None,
        watch_seconds: int = 300,
        read_grace: float = 30.0,
    ) -> None:
        self.api_factory = api_factory
        self.watch_seconds = watch_seconds
        self.read_grace = read_grace
        self.kinds = {kind.resource: kind for kind in kinds}
        self.namespaces = tuple(namespaces)
        self.on_change: Change = on_change or (lambda *_: None)
        # Which objects some Rollout reads (CachedKube sets it); until then, every one is.
        self.wants: Callable[[Resource, ObjKey], bool] = lambda res, key: True
        self.stores = {
            res: Store(res, self._changed, wanted=self._wanted_of(res) if kind.referenced_only else None)
            for res, kind in self.kinds.items()
        }
        self._listed: set[tuple[Resource, str | None]] = set()  # scopes served from memory
        self._tried: set[tuple[Resource, str | None]] = set()  # scopes with a first attempt done
        self._absent: set[tuple[Resource, str | None]] = set()  # kinds the API server does not serve
        self._all_tried = asyncio.Event()
        self._stop = threading.Event()
        self._reflectors: list[Reflector] = []
        self._forbidden: set[tuple[Resource, str | None]] = set()  # told once

    def _wanted_of(self, res: Resource) -> Callable[[ObjKey], bool]:
        return lambda key: self.wants(res, key)

    def _changed(self, res: Resource, key: ObjKey, old: Obj | None, new: Obj | None) -> None:
        self.on_change(res, key, old, new)

    def _scopes(self, kind: CachedKind) -> list[str | None]:
        return list(self.namespaces) if kind.namespaced and self.namespaces else [None]

    def start(self) -> None:
        for kind in self.kinds.values():
            for scope in self._scopes(kind):
                self._run_reflector(
                    kind,
                    scope,
                    label_selector=kind.label_selector,
                    keeps=self._keeps(kind),
                    stop=self._stop,
                    on_listed=self._listed_scope,
                    on_failure=self._failed,
                )

    def _keeps(self, kind: CachedKind) -> Callable[[Obj], bool] | None:
        """What the kind's one watch per scope holds: everything it lists (the sharded caches
        narrow it)."""
        return None

    def _run_reflector(
        self,
        kind: CachedKind,
        scope: str | None,
        *,
        label_selector: str | None,
        keeps: Callable[[Obj], bool] | None,
        stop: threading.Event,
        on_listed: Callable[[Reflector, list[Obj], int | None], None],
        on_failure: Callable[[Reflector, BaseException | None], None],
        name: str = "",
    ) -> Reflector:
        reflector = Reflector(
            api=self.api_factory(),
            resource=kind.resource,
            namespace=scope,
            label_selector=label_selector,
            loop=asyncio.get_running_loop(),
            on_listed=on_listed,
            on_event=self._event_for(kind.resource, keeps),
            on_failure=on_failure,
            stop=stop,
            shrink=self.stores[kind.resource].shrink,
            watch_seconds=self.watch_seconds,
            read_grace=self.read_grace,
            keeps=keeps,
        )
        name = name or f"watch-{kind.resource.plural}-{scope or 'all'}"
        threading.Thread(target=reflector.run, name=name, daemon=True).start()
        self._reflectors.append(reflector)
        return reflector

    def _event_for(
        self, res: Resource, keeps: Callable[[Obj], bool] | None = None
    ) -> Callable[[str, Obj], None]:
        store = self.stores[res]

        def apply(kind: str, obj: Obj) -> None:
            if keeps is not None and not keeps(obj):
                # Not this scope's (a server that does not filter sends it): forgotten here only
                # if no other scope watched here holds it.
                if not self.watched_here(res, obj):
                    store.remove(key_of(obj), obj, deleted=False)
            elif kind == "DELETED":
                # A real server says DELETED, with the object as it was, also when a change of
                # labels takes it out of this scope: if what is stored has already entered
                # another scope here, it stays.
                stored = store.get(*key_of(obj))
                if keeps is not None and stored is not None and not keeps(stored):
                    return
                store.remove(key_of(obj), obj)
            else:
                store.put(obj)

        return apply

    def watched_here(self, res: Resource, obj: Obj) -> bool:
        """Whether some scope watched here holds `obj` (every object, unless sharded)."""
        return True

    def _mark_tried(self, scope: tuple[Resource, str | None]) -> None:
        self._tried.add(scope)
        expected = sum(len(self._scopes(kind)) for kind in self.kinds.values())
        if len(self._tried) >= expected:
            self._all_tried.set()

    def _listed_scope(self, reflector: Reflector, items: list[Obj], version: int | None) -> None:
        reflector.lists_handed_over += 1
        scope = (reflector.resource, reflector.namespace)
        self._replace(reflector, items, version)
        self._listed.add(scope)
        self._absent.discard(scope)
        self._forbidden.discard(scope)
        self._mark_tried(scope)

    def _replace(self, reflector: Reflector, items: list[Obj], version: int | None) -> None:
        """A reflector's listing into its kind's store: only what its scope holds."""
        keeps = reflector.keeps
        if keeps is not None:
            items = [obj for obj in items if keeps(obj)]
        self.stores[reflector.resource].replace(reflector.namespace, items, version, within=keeps)

    def _failed(self, reflector: Reflector, exc: BaseException | None) -> None:
        scope = (reflector.resource, reflector.namespace)
        if not isinstance(exc, WatchExpired):
            # Until listed again, reads of this kind go to the API server. A watch that expired
            # or was cut keeps serving from memory while it lists again, as an informer does:
            # its store is a moment behind at worst, which a guarded write turns into a conflict,
            # while sending every reconcile to the server meanwhile had meant hundreds of lists
            # of 1,000 Rollouts each at N = 1,000 and an API server timing out.
            self._listed.discard(scope)
        self._mark_tried(scope)
        if isinstance(exc, KindAbsent):
            self._absent.add(scope)
            log.debug("kind not served; read from the API server", kind=reflector.resource.plural)
        elif isinstance(exc, ApiException) and exc.status == 403:
            if scope in self._forbidden:
                return
            self._forbidden.add(scope)
            log.error(
                "permission missing: cannot list/watch",
                resource=f"{reflector.resource.plural}.{reflector.resource.group or 'core'}",
                namespace=reflector.namespace or "(all)",
            )
        elif not isinstance(exc, WatchExpired):
            log.warning("watch failed; listing again", kind=reflector.resource.plural, error=str(exc))

    async def wait_started(self, timeout: float = 60.0) -> bool:
        """Until every (kind, scope) was listed or failed once; False after `timeout`."""
        if not self.kinds:
            return True
        try:
            await asyncio.wait_for(self._all_tried.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def synced(self) -> bool:
        """Every kind that the API server serves is listed in every scope."""
        expected = sum(len(self._scopes(kind)) for kind in self.kinds.values())
        return len(self._listed | self._absent) >= expected

    def serves(
        self, res: Resource, namespace: str | None, *, selector: str | None = None, name: str | None = None
    ) -> bool:
        """Whether a read of the kind in the namespace may be answered from memory (`selector`
        and `name` say which objects it reads: the sharded caches hold only some)."""
        kind = self.kinds.get(res)
        if kind is None:
            return False
        scope = namespace if kind.namespaced and self.namespaces else None
        if kind.namespaced and self.namespaces and namespace not in self.namespaces:
            return False
        return (res, scope) in self._listed

    def note(self, res: Resource, obj: Obj, *, whole: bool = True) -> None:
        """The answer to the controller's own write or read: newer than anything the watch gave
        yet, kept whole (it is being read) unless `whole` is False."""
        if res in self.stores and isinstance(obj, dict) and obj.get("metadata"):
            if not self.watched_here(res, obj):
                return  # no watch here would keep it up to date
            store = self.stores[res]
            store.put(store.shrink(obj, whole=whole))

    def note_deleted(self, res: Resource, namespace: str | None, name: str) -> None:
        if res in self.stores:
            self.stores[res].remove((namespace, name))

    def stop(self) -> None:
        self._stop.set()
        for reflector in self._reflectors:
            reflector.stop.set()  # the shards' reflectors have stops of their own
            reflector.interrupt()
