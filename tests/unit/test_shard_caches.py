"""A sharded replica's caches hold the ReplicaSets of its shards and the strays: a relabel moves
an object between scopes in either order of a real server's DELETED and ADDED, a shard given up
is forgotten quietly and comes back whole when taken again, reads are answered from memory only
once the Rollout's shard and the strays are listed, and a server that does not filter (the
emulator) changes nothing."""

import threading
from types import SimpleNamespace

from rollout.api.vocabulary import SHARD_LABEL
from rollout.controller.cache import CachedKind
from rollout.controller.shard_caches import ShardedCaches, Sharding
from rollout.controller.shards import shard_of
from rollout.kube import REPLICASETS, ROLLOUTS
from rollout.workload.replicasets import ROLLOUT_NAME_LABEL

COUNT = 3


def caches(filter_after_watch=False):
    sharding = Sharding(COUNT, ROLLOUT_NAME_LABEL, lambda ns, name: shard_of(ns, name, COUNT))
    kinds = [CachedKind(ROLLOUTS), CachedKind(REPLICASETS, label_selector=ROLLOUT_NAME_LABEL, sharded=True)]
    built = ShardedCaches(lambda: None, kinds, sharding=sharding, filter_after_watch=filter_after_watch)
    built.changes = []
    built.on_change = lambda res, key, old, new: built.changes.append((key[1], new is not None))
    return built


def rollout_in(shard, taken=()):
    name = next(f"app-{i}" for i in range(1000) if shard_of("shop", f"app-{i}", COUNT) == shard)
    assert name not in taken
    return name


def rs(name, version, owner, shard=None):
    labels = {ROLLOUT_NAME_LABEL: owner}
    if shard is not None:
        labels[SHARD_LABEL] = f"{shard}-of-{COUNT}"
    meta = {"namespace": "shop", "name": name, "resourceVersion": str(version), "labels": labels}
    return {"metadata": meta, "spec": {"replicas": 1}}


def reflector(keeps, resource=REPLICASETS):
    return SimpleNamespace(
        resource=resource, namespace=None, keeps=keeps, stop=threading.Event(), lists_handed_over=0
    )


def listed(built, shard, items, version):
    built.shard_listed(shard, reflector(built.keeps_shard(shard)), items, version)


def strays_listed(built, items, version):
    built._listed_scope(reflector(built._stray), items, version)
    built._listed_scope(reflector(None, ROLLOUTS), [], version)


def held(built):
    return {
        key[1]: obj["metadata"].get("labels", {}).get(SHARD_LABEL)
        for key, obj in built.stores[REPLICASETS].objects.items()
    }


def test_the_static_watch_selects_the_strays_and_each_shard_its_label():
    built = caches()
    selector = built.kinds[REPLICASETS].label_selector
    assert selector == f"{ROLLOUT_NAME_LABEL},{SHARD_LABEL} notin (0-of-3,1-of-3,2-of-3)"
    assert built.kinds[ROLLOUTS].label_selector is None  # the Rollouts stay whole
    assert built.shard_selector(REPLICASETS, 1) == f"{ROLLOUT_NAME_LABEL},{SHARD_LABEL}=1-of-3"


def test_a_relabelled_stray_stays_whatever_order_the_two_watches_tell_it():
    for deleted_first in (True, False):
        built = caches()
        built.watch_shard(1)
        owner = rollout_in(1)
        strays_listed(built, [rs("web-a", 5, owner)], 5)
        listed(built, 1, [], 5)
        from_strays = built._event_for(REPLICASETS, built._stray)
        from_shard = built._event_for(REPLICASETS, built.keeps_shard(1))
        # A real server: DELETED from the strays' watch with the object as it was, at the new
        # version; ADDED to the shard's watch.
        events = [
            (from_strays, "DELETED", rs("web-a", 9, owner)),
            (from_shard, "ADDED", rs("web-a", 9, owner, shard=1)),
        ]
        for apply, kind, obj in events if deleted_first else reversed(events):
            apply(kind, obj)
        assert held(built) == {"web-a": "1-of-3"}, deleted_first
        assert built.serves(REPLICASETS, "shop", selector=f"{ROLLOUT_NAME_LABEL}={owner}")


def test_a_deletion_in_a_shard_is_not_undone_by_a_late_event():
    built = caches()
    built.watch_shard(0)
    owner = rollout_in(0)
    apply = built._event_for(REPLICASETS, built.keeps_shard(0))
    apply("ADDED", rs("web-a", 5, owner, shard=0))
    apply("DELETED", rs("web-a", 8, owner, shard=0))
    built.note(REPLICASETS, rs("web-a", 6, owner, shard=0))  # an older write answer, late
    assert held(built) == {}


def test_a_shard_given_up_is_forgotten_quietly_and_comes_back_when_taken_again():
    built = caches()
    mine, theirs = rollout_in(0), rollout_in(2)
    built.watch_shard(0)
    built.watch_shard(2)
    strays_listed(built, [], 3)
    listed(built, 0, [rs("a-1", 3, mine, shard=0)], 3)
    listed(built, 2, [rs("b-1", 3, theirs, shard=2)], 3)
    before = len(built.changes)
    built.unwatch_shard(2)
    assert held(built) == {"a-1": "0-of-3"}
    assert len(built.changes) == before  # not a deletion to reconcile on
    assert not built.serves(REPLICASETS, "shop", selector=f"{ROLLOUT_NAME_LABEL}={theirs}")
    built.note(REPLICASETS, rs("b-1", 4, theirs, shard=2))  # no watch here would keep it fresh
    assert "b-1" not in held(built)
    built.watch_shard(2)
    listed(built, 2, [rs("b-1", 3, theirs, shard=2)], 5)  # the same version as before
    assert held(built) == {"a-1": "0-of-3", "b-1": "2-of-3"}


def test_reads_are_answered_from_memory_once_the_strays_and_the_rollouts_shard_are_listed():
    built = caches()
    owner = rollout_in(1)
    selector = f"{ROLLOUT_NAME_LABEL}={owner}"
    built.watch_shard(1)
    assert not built.serves(REPLICASETS, "shop", selector=selector)
    listed(built, 1, [rs("web-a", 3, owner, shard=1)], 3)
    assert not built.serves(REPLICASETS, "shop", selector=selector)  # the strays not yet
    assert not built.synced()
    strays_listed(built, [rs("old-x", 2, owner)], 3)
    assert built.serves(REPLICASETS, "shop", selector=selector)
    assert built.synced()
    assert built.serves(REPLICASETS, "shop", name="web-a")
    assert built.serves(REPLICASETS, "shop", name="old-x")  # a stray: every replica has it
    assert not built.serves(REPLICASETS, "shop", name="unknown")  # perhaps another shard's
    assert not built.serves(REPLICASETS, "shop")  # all ReplicaSets: never from memory here
    other = rollout_in(2)
    assert not built.serves(REPLICASETS, "shop", selector=f"{ROLLOUT_NAME_LABEL}={other}")


def test_a_server_that_does_not_filter_changes_nothing():
    built = caches()
    mine, theirs = rollout_in(0), rollout_in(1)
    built.watch_shard(0)
    strays_listed(built, [rs("s-1", 2, mine), rs("a-1", 2, mine, shard=0), rs("b-1", 2, theirs, shard=1)], 2)
    listed(built, 0, [rs("s-1", 2, mine), rs("a-1", 2, mine, shard=0), rs("b-1", 2, theirs, shard=1)], 2)
    assert held(built) == {"s-1": None, "a-1": "0-of-3"}
    # Every watch here gets every event: each keeps its own, and nobody the other shard's.
    for apply in (
        built._event_for(REPLICASETS, built._stray),
        built._event_for(REPLICASETS, built.keeps_shard(0)),
    ):
        apply("MODIFIED", rs("a-1", 4, mine, shard=0))
        apply("MODIFIED", rs("b-1", 4, theirs, shard=1))
        apply("MODIFIED", rs("s-1", 5, mine, shard=0))  # the stray relabelled into shard 0
    assert held(built) == {"s-1": "0-of-3", "a-1": "0-of-3"}
    assert built.stores[REPLICASETS].get("shop", "s-1")["metadata"]["resourceVersion"] == "5"


def filtering_caches():
    """--shard-watch=filter: one watch of every ReplicaSet; `relisted` counts its relists."""
    built = caches(filter_after_watch=True)
    built.synced_shards = []
    built.on_shard_listed = built.synced_shards.append
    whole = SimpleNamespace(
        resource=REPLICASETS, namespace=None, stop=threading.Event(), relisted=0, lists_begun=0
    )
    whole.lists_handed_over = 0
    whole.keeps = built._keeps(built.kinds[REPLICASETS])
    whole.relist = lambda: setattr(whole, "relisted", whole.relisted + 1)
    built._reflectors.append(whole)
    built._started = True  # as after start(): a shard taken now asks for a relist
    return built, whole


def test_filtering_after_the_watch_keeps_the_held_shards_and_the_strays():
    built, whole = filtering_caches()
    assert built.kinds[REPLICASETS].label_selector == ROLLOUT_NAME_LABEL  # every ReplicaSet
    mine, theirs = rollout_in(0), rollout_in(1)
    built.watch_shard(0)
    assert whole.relisted == 1  # no listing under way: the watch is cut and lists again
    everything = [rs("s-1", 2, mine), rs("a-1", 2, mine, shard=0), rs("b-1", 2, theirs, shard=1)]
    built._listed_scope(whole, everything, 2)
    built._listed_scope(reflector(None, ROLLOUTS), [], 2)
    assert held(built) == {"s-1": None, "a-1": "0-of-3"}
    assert built.synced_shards == [0] and built.synced()
    assert built.serves(REPLICASETS, "shop", selector=f"{ROLLOUT_NAME_LABEL}={mine}")
    apply = built._event_for(REPLICASETS, whole.keeps)
    apply("MODIFIED", rs("b-1", 3, theirs, shard=1))
    apply("MODIFIED", rs("a-1", 3, mine, shard=0))
    assert held(built) == {"s-1": None, "a-1": "0-of-3"}
    assert built.stores[REPLICASETS].get("shop", "a-1")["metadata"]["resourceVersion"] == "3"


def test_a_shard_taken_while_filtering_is_read_from_memory_only_after_the_next_listing():
    built, whole = filtering_caches()
    mine, theirs = rollout_in(0), rollout_in(1)
    built.watch_shard(0)
    built._listed_scope(whole, [rs("a-1", 2, mine, shard=0), rs("b-1", 2, theirs, shard=1)], 2)
    built._listed_scope(reflector(None, ROLLOUTS), [], 2)
    apply = built._event_for(REPLICASETS, whole.keeps)
    apply("MODIFIED", rs("b-1", 3, theirs, shard=1))  # dropped: shard 1 not held yet
    built.watch_shard(1)
    assert whole.relisted == 2  # shard 0's, then shard 1's
    theirs_selector = f"{ROLLOUT_NAME_LABEL}={theirs}"
    assert not built.serves(REPLICASETS, "shop", selector=theirs_selector)  # b-1 at 3 was missed
    assert not built.synced()
    built._listed_scope(whole, [rs("a-1", 2, mine, shard=0), rs("b-1", 3, theirs, shard=1)], 3)
    assert built.synced_shards == [0, 1]
    assert built.serves(REPLICASETS, "shop", selector=theirs_selector)
    assert built.stores[REPLICASETS].get("shop", "b-1")["metadata"]["resourceVersion"] == "3"
    built.unwatch_shard(1)
    assert held(built) == {"a-1": "0-of-3"}
    apply("MODIFIED", rs("b-1", 4, theirs, shard=1))
    assert held(built) == {"a-1": "0-of-3"}
    # Taken while a listing is under way: that listing, handed over after, covers it.
    whole.lists_begun = whole.lists_handed_over + 1
    built.watch_shard(1)
    assert whole.relisted == 2
    built._listed_scope(whole, [rs("a-1", 2, mine, shard=0), rs("b-1", 5, theirs, shard=1)], 5)
    assert built.synced_shards == [0, 1, 1] and built.synced()
    assert held(built) == {"a-1": "0-of-3", "b-1": "1-of-3"}
