"""A referenced_only kind keeps whole only the objects some Rollout reads, and of the rest a stub
(name, namespace, resourceVersion) that still says a change happened; nothing stored keeps
managedFields or kubectl's last-applied-configuration (controller/cache.py)."""

from rollout.controller.cache import LAST_APPLIED, CachedKind, Caches, Store, is_stub, slim
from rollout.kube import DEPLOYMENTS, SERVICES


def service(name, version, selector="a", **annotations):
    return {
        "metadata": {
            "namespace": "shop",
            "name": name,
            "resourceVersion": str(version),
            "annotations": {LAST_APPLIED: '{"big": "manifest"}', **annotations},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"selector": {"app": selector}},
    }


def store_reading(*names):
    read = set(names)
    changes = []
    store = Store(
        SERVICES,
        lambda res, key, old, new: changes.append((key[1], new)),
        wanted=lambda key: key[1] in read,
    )
    return store, read, changes


def test_an_object_no_rollout_reads_is_a_stub_and_still_announces_its_changes():
    store, _, changes = store_reading("web-stable")
    store.replace("shop", [store.shrink(service("unrelated", 3)), store.shrink(service("web-stable", 4))], 4)
    assert store.get("shop", "unrelated") == {
        "metadata": {"namespace": "shop", "name": "unrelated", "resourceVersion": "3"},
        "__stub__": True,
    }
    whole = store.get("shop", "web-stable")
    assert whole["spec"] == {"selector": {"app": "a"}}
    assert LAST_APPLIED not in whole["metadata"]["annotations"] and "managedFields" not in whole["metadata"]
    store.put(store.shrink(service("unrelated", 9, selector="b")))
    assert changes[-1][0] == "unrelated" and is_stub(changes[-1][1])  # a change: its readers run


def test_the_whole_object_replaces_its_stub_and_a_stub_never_replaces_it():
    store, read, _ = store_reading()
    store.put(store.shrink(service("web", 5)))
    assert is_stub(store.get("shop", "web"))
    # A Rollout reads it: the GET's answer, of the same version, is kept whole.
    store.put(store.shrink(service("web", 5), whole=True))
    assert store.get("shop", "web")["spec"] == {"selector": {"app": "a"}}
    store.put(store.shrink(service("web", 5)))  # the watch repeating that version, as a stub
    assert not is_stub(store.get("shop", "web"))
    read.add("web")
    store.put(store.shrink(service("web", 6, selector="b")))  # a change, read by a Rollout
    assert store.get("shop", "web")["spec"] == {"selector": {"app": "b"}}
    read.discard("web")
    store.forget_whole(("shop", "web"))  # no Rollout reads it any more
    assert is_stub(store.get("shop", "web"))


def test_slim_keeps_the_other_annotations():
    kept = slim(service("web", 1, owner="team-a"))
    assert kept["metadata"]["annotations"] == {"owner": "team-a"}


def test_only_kinds_marked_referenced_only_keep_stubs():
    caches = Caches(lambda: None, [CachedKind(SERVICES, referenced_only=True), CachedKind(DEPLOYMENTS)])
    caches.wants = lambda res, key: False
    assert is_stub(caches.stores[SERVICES].shrink(service("web", 1)))
    assert not is_stub(caches.stores[DEPLOYMENTS].shrink(service("web", 1)))
