"""Per-shard watches: with --shards, a replica lists and watches only the ReplicaSets of the
shards it holds, selected by the API server on their shard label, so each replica decodes and
keeps its share of them. The Rollouts stay watched whole: the claims index (conflicts between
Rollouts of different shards) and the shard of every Rollout need them, and they are few next to
their ReplicaSets' status changes.

Where it sits: operator.run_controller builds ShardedCaches instead of Caches on a sharded
replica; the ShardManager's on_gained / on_lost call `watch_shard` / `unwatch_shard`, and
`on_shard_listed` reconciles a shard's Rollouts once its ReplicaSets are in memory. The
reconciler labels every ReplicaSet it creates `rollout.dev/shard: <shard>-of-<count>` and
relabels one of its Rollout's that lacks that label (made before sharding, or under another
shard count). Such strays are watched by every replica through the kind's one static watch,
selecting `notin` every label of this count: empty once all are labelled.

Reads (CachedKube): a list of one Rollout's ReplicaSets is answered from memory once its
shard's watch and the strays' watch have listed; until then, or for a get that memory cannot
answer, from the API server. A relabelled object leaves one scope and enters another: a real
server tells it as a DELETED (the object as it was) on one watch and an ADDED on the other, in
either order, and the store keeps it (Caches._event_for, Store.put). A shard given up is
forgotten quietly, not as deletions: its new holder acts on them.

`filter_after_watch` (--shard-watch=filter, for comparison): one watch of every ReplicaSet per
scope, and the objects of shards not held here dropped as they are decoded. A shard taken cuts
that watch short, and the next listing, handed over after the shard was taken, lists it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from rollout.api.vocabulary import SHARD_LABEL
from rollout.controller.cache import CachedKind, Caches, Obj, Reflector, WatchExpired
from rollout.kube import Resource

log = structlog.get_logger("rollout.controller.cache")


def shard_label(shard: int, count: int) -> str:
    return f"{shard}-of-{count}"


def _label(obj: Obj) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(SHARD_LABEL)


@dataclass(frozen=True)
class Sharding:
    """How a sharded replica finds an object's shard."""

    count: int
    rollout_label: str  # names the owning Rollout on its ReplicaSets
    shard_of: Callable[[str, str], int]  # (namespace, Rollout name) -> shard

    def label(self, shard: int) -> str:
        return shard_label(shard, self.count)

    def labels(self) -> frozenset[str]:
        return frozenset(self.label(shard) for shard in range(self.count))

    def strays_selector(self) -> str:
        return f"{SHARD_LABEL} notin ({','.join(sorted(self.labels()))})"

    def expected(self, namespace: str, rollout: str) -> str:
        """The label a Rollout's ReplicaSets carry."""
        return self.label(self.shard_of(namespace, rollout))


@dataclass
class _ShardWatch:
    stop: threading.Event = field(default_factory=threading.Event)
    reflectors: list[Reflector] = field(default_factory=list)
    listed: set[tuple[Resource, str | None]] = field(default_factory=set)


class ShardedCaches(Caches):
    def __init__(
        self,
        api_factory: Any,
        kinds: Iterable[CachedKind],
        namespaces: Sequence[str] = (),
        *,
        sharding: Sharding,
        filter_after_watch: bool = False,
        **options: Any,
    ) -> None:
        self.sharding = sharding
        self.filter_after_watch = filter_after_watch
        self._all_labels = sharding.labels()
        self._held_labels: set[str] = set()
        # The kinds' own selectors, to which each shard's watch adds its label.
        self._own_selectors = {kind.resource: kind.label_selector for kind in kinds if kind.sharded}
        strays = sharding.strays_selector()
        # The static watch of a sharded kind holds its strays only (filtering after the watch:
        # every object, the held shards' kept).
        kinds = [
            replace(kind, label_selector=",".join(filter(None, (kind.label_selector, strays))))
            if kind.sharded and not filter_after_watch
            else kind
            for kind in kinds
        ]
        super().__init__(api_factory, kinds, namespaces, **options)
        self.sharded = {kind.resource for kind in kinds if kind.sharded}
        # What each held shard lists: every sharded kind in every scope (asked on each read).
        self._shard_scopes = {(res, scope) for res in self.sharded for scope in self._scopes(self.kinds[res])}
        self.watches: dict[int, _ShardWatch] = {}  # by shard, the ones held here
        self._started = False
        self.on_shard_listed: Callable[[int], None] = lambda shard: None

    # --- scopes --------------------------------------------------------------------------------

    def _stray(self, obj: Obj) -> bool:
        return _label(obj) not in self._all_labels

    def _stray_or_held(self, obj: Obj) -> bool:
        """A stray (every replica watches those) or an object of a shard held here."""
        label = _label(obj)
        return label not in self._all_labels or label in self._held_labels

    def _keeps(self, kind: CachedKind) -> Callable[[Obj], bool] | None:
        if not kind.sharded:
            return None
        return self._stray_or_held if self.filter_after_watch else self._stray

    def watched_here(self, res: Resource, obj: Obj) -> bool:
        return res not in self.sharded or self._stray_or_held(obj)

    def start(self) -> None:
        super().start()
        self._started = True
        for shard, watch in self.watches.items():
            self._start_watch(shard, watch)

    def watch_shard(self, shard: int) -> None:
        """A shard taken here: list and watch its objects of every sharded kind."""
        if shard in self.watches:
            return
        watch = self.watches[shard] = _ShardWatch()
        self._held_labels.add(self.sharding.label(shard))
        if self._started:
            self._start_watch(shard, watch)

    def keeps_shard(self, shard: int) -> Callable[[Obj], bool]:
        """A shard's objects, while the shard is held (events a stopped watch had already sent
        are dropped)."""
        label = self.sharding.label(shard)
        return lambda obj: _label(obj) == label and shard in self.watches

    def _start_watch(self, shard: int, watch: _ShardWatch) -> None:
        if self.filter_after_watch:
            # The shard's objects were dropped until now: the whole watch lists again, unless a
            # listing is under way (handed over after this, it keeps them, and so do the events
            # that follow it).
            for reflector in self._reflectors:  # the static ones: no shard has its own here
                if (
                    reflector.resource in self.sharded
                    and reflector.lists_handed_over >= reflector.lists_begun
                ):
                    reflector.relist()
            return
        for res in sorted(self.sharded, key=lambda r: r.plural):
            kind = self.kinds[res]
            for scope in self._scopes(kind):
                watch.reflectors.append(
                    self._run_reflector(
                        kind,
                        scope,
                        label_selector=self.shard_selector(res, shard),
                        keeps=self.keeps_shard(shard),
                        stop=watch.stop,
                        on_listed=lambda r, items, version, s=shard: self.shard_listed(s, r, items, version),
                        on_failure=lambda r, exc, s=shard: self._shard_failed(s, r, exc),
                        name=f"watch-{res.plural}-{scope or 'all'}-shard-{shard}",
                    )
                )

    def shard_selector(self, res: Resource, shard: int) -> str:
        """The kind's own selector and the shard's label."""
        own = self._own_selectors.get(res)
        return ",".join(filter(None, (own, f"{SHARD_LABEL}={self.sharding.label(shard)}")))

    def shard_listed(self, shard: int, reflector: Reflector, items: list[Obj], version: int | None) -> None:
        watch = self.watches.get(shard)
        if watch is None or reflector.stop.is_set():
            return  # given up meanwhile
        self._replace(reflector, items, version)
        watch.listed.add((reflector.resource, reflector.namespace))
        if self._shard_synced(shard):
            self.on_shard_listed(shard)

    def _listed_scope(self, reflector: Reflector, items: list[Obj], version: int | None) -> None:
        super()._listed_scope(reflector, items, version)
        if not self.filter_after_watch or reflector.resource not in self.sharded:
            return
        for shard, watch in list(self.watches.items()):  # every held shard is in this listing
            synced = self._shard_synced(shard)
            watch.listed.add((reflector.resource, reflector.namespace))
            if not synced and self._shard_synced(shard):
                self.on_shard_listed(shard)

    def _shard_failed(self, shard: int, reflector: Reflector, exc: BaseException | None) -> None:
        if isinstance(exc, WatchExpired):  # served from memory while it lists again, as Caches._failed
            return
        watch = self.watches.get(shard)
        if watch is not None:
            watch.listed.discard((reflector.resource, reflector.namespace))
        log.warning("shard watch failed; listing again", shard=shard, error=str(exc))

    def unwatch_shard(self, shard: int) -> None:
        """A shard given up or lost: stop its watches and forget its objects (its new holder
        has them)."""
        watch = self.watches.pop(shard, None)
        if watch is None:
            return
        self._held_labels.discard(self.sharding.label(shard))
        watch.stop.set()
        for reflector in watch.reflectors:
            reflector.interrupt()
            self._reflectors.remove(reflector)
        label = self.sharding.label(shard)
        for res in self.sharded:
            self.stores[res].drop(lambda obj: _label(obj) == label)

    def _shard_synced(self, shard: int) -> bool:
        watch = self.watches.get(shard)
        return watch is not None and self._shard_scopes <= watch.listed

    # --- what may be answered from memory -------------------------------------------------------

    def serves(
        self, res: Resource, namespace: str | None, *, selector: str | None = None, name: str | None = None
    ) -> bool:
        """For a sharded kind: a list of one Rollout's objects (`selector` names it), or a get
        of one object held here (`name`), once the strays and that shard are listed."""
        if not super().serves(res, namespace):
            return False
        if res not in self.sharded:
            return True
        if namespace is None:
            return False
        rollout = self._rollout_in(selector)
        if rollout is not None:
            return self._shard_synced(self.sharding.shard_of(namespace, rollout))
        found = self.stores[res].get(namespace, name) if name is not None else None
        if found is None:
            return False  # not here: perhaps another shard's, or not listed yet
        label = _label(found)
        if label not in self._all_labels:
            return True
        return any(self.sharding.label(s) == label and self._shard_synced(s) for s in self.watches)

    def _rollout_in(self, selector: str | None) -> str | None:
        for part in (selector or "").split(","):
            key, sep, value = part.partition("=")
            if sep and key.strip() == self.sharding.rollout_label and not value.startswith("="):
                return value.strip()
        return None

    def synced(self) -> bool:
        """The static watches, and every held shard's."""
        return super().synced() and all(self._shard_synced(shard) for shard in self.watches)
