"""The caches' store keeps the newest version of each object whatever order the watch and the
controller's own write answers arrive in; the reconciler runs at most `workers` Rollouts at once,
and each Rollout one reconcile at a time."""

import asyncio

from rollout.controller.cache import Store, newer
from rollout.controller.reconciler import Reconciler
from rollout.kube import SERVICES


def obj(name, version, **spec):
    return {"metadata": {"namespace": "shop", "name": name, "resourceVersion": str(version)}, "spec": spec}


def recording_store():
    changes = []
    store = Store(
        SERVICES,
        lambda res, key, old, new: changes.append((key[1], old and old["spec"], new and new["spec"])),
    )
    return store, changes


def test_an_older_event_never_replaces_a_newer_write_answer():
    store, changes = recording_store()
    store.put(obj("web", 5, selector="a"))
    store.put(obj("web", 7, selector="b"))  # the answer to our own write
    store.put(obj("web", 6, selector="x"))  # the watch catching up, late
    store.put(obj("web", 7, selector="b"))  # the watch delivering our write: nothing new
    assert store.get("shop", "web")["spec"] == {"selector": "b"}
    assert [c[2] for c in changes] == [{"selector": "a"}, {"selector": "b"}]


def test_the_store_keeps_no_managed_fields():
    store, _ = recording_store()
    listed = obj("web", 3, selector="a")
    listed["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    store.replace("shop", [listed], 3)
    kept = store.get("shop", "web")
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["resourceVersion"] == "3" and kept["spec"] == {"selector": "a"}


def test_a_late_event_does_not_bring_a_deleted_object_back():
    store, changes = recording_store()
    store.put(obj("web", 5))
    store.remove(("shop", "web"), obj("web", 8))
    store.put(obj("web", 6))  # a MODIFIED from before the deletion
    assert store.get("shop", "web") is None
    store.put(obj("web", 9, selector="new"))  # created again
    assert store.get("shop", "web")["spec"] == {"selector": "new"}
    assert [(c[1] is not None, c[2] is not None) for c in changes] == [
        (False, True),
        (True, False),
        (False, True),
    ]


def test_a_relist_drops_what_is_gone_but_keeps_what_was_written_after_it():
    store, changes = recording_store()
    store.put(obj("old", 3))
    store.put(obj("mine", 12))  # written after the list below was taken
    store.replace("shop", [obj("kept", 9)], list_version=10)
    assert store.get("shop", "old") is None
    assert ("old", {}, None) in changes  # its readers are told it is gone
    assert store.get("shop", "mine") is not None and store.get("shop", "kept") is not None


def test_versions_that_are_not_numbers_compare_by_content():
    a = {"metadata": {"name": "x", "resourceVersion": "abc"}, "spec": 1}
    assert not newer(a, dict(a))
    assert newer({**a, "spec": 2}, a)


class CountingReconciler(Reconciler):
    def __init__(self, workers):
        super().__init__(kube=_NoKube(), workers=workers)
        self.running = 0
        self.most = 0
        self.per_key: dict[tuple[str, str], int] = {}
        self.overlap = False

    async def reconcile(self, namespace, name, attempts=5):
        key = (namespace, name)
        self.running += 1
        self.per_key[key] = self.per_key.get(key, 0) + 1
        self.overlap |= self.per_key[key] > 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.05)
        self.running -= 1
        self.per_key[key] -= 1


class _NoKube:
    def reads_for(self, key):
        import contextlib

        return contextlib.nullcontext()

    def forget_reads(self, key):
        pass


async def test_parallel_reconciles_are_bounded_by_workers_and_one_per_rollout():
    reconciler = CountingReconciler(workers=3)
    for i in range(10):
        reconciler.trigger("shop", f"r{i}")
    for _ in range(5):
        reconciler.trigger("shop", "r0")  # absorbed, or one follow-up: never concurrent
        await asyncio.sleep(0.01)
    while reconciler._tasks:
        await asyncio.sleep(0.02)
    assert reconciler.most == 3
    assert not reconciler.overlap


def test_a_reflector_backs_off_over_its_failures_since_the_last_list_not_over_its_life():
    from tenacity import RetryCallState

    from rollout.controller.cache import KindAbsent, WatchEnded, WatchExpired, _AfterFailure

    def after(exc, failures):
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
        state.set_exception((type(exc), exc, None))
        return _AfterFailure(lambda: failures)(state)

    assert after(ConnectionError("cut"), 0) == 0.5
    assert after(ConnectionError("cut"), 3) == 4.0
    assert after(ConnectionError("cut"), 12) == 30.0
    assert after(WatchExpired("410"), 12) == 0.0  # list again at once
    assert after(WatchEnded(5, 0.2), 12) == 0.0  # ended early having told something: watch again
    assert after(WatchEnded(0, 60.0), 12) == 0.0  # a quiet watch a proxy cut at its idle limit
    assert after(WatchEnded(0, 0.1), 0) == 0.5  # ended at once: a server doing so again is not hammered
    assert after(WatchEnded(0, 0.1), 3) == 4.0
    assert after(KindAbsent("istio"), 0) == 30.0  # not installed: look again later


def test_objects_are_found_by_label_through_relabels_deletions_and_relists():
    store, _ = recording_store()

    def labelled(name, version, **labels):
        found = obj(name, version)
        found["metadata"]["labels"] = labels
        return found

    store.put(labelled("web-1", 1, **{"rollout.dev/rollout": "web"}))
    store.put(labelled("web-2", 2, **{"rollout.dev/rollout": "web"}))
    store.put(labelled("api-1", 3, **{"rollout.dev/rollout": "api"}))

    def names(value):
        return [o["metadata"]["name"] for o in store.labelled("shop", "rollout.dev/rollout", value)]

    assert names("web") == ["web-1", "web-2"]
    store.put(labelled("web-2", 4, **{"rollout.dev/rollout": "api"}))  # relabelled
    assert (names("web"), names("api")) == (["web-1"], ["api-1", "web-2"])
    store.remove(("shop", "web-1"))
    assert names("web") == []
    store.replace("shop", [labelled("api-1", 3, **{"rollout.dev/rollout": "api"})], 5)  # web-2 gone
    assert names("api") == ["api-1"]
    assert store.labelled("elsewhere", "rollout.dev/rollout", "api") == []
    assert [o["metadata"]["name"] for o in store.labelled(None, "rollout.dev/rollout", "api")] == ["api-1"]


def test_our_own_delete_is_not_undone_by_the_watch_delivering_the_version_we_had():
    store, _ = recording_store()
    store.put(obj("web", 5))  # the answer to our own write, before the watch tells it
    store.remove(("shop", "web"))  # our delete: the last version known here is 5
    store.put(obj("web", 5))  # the watch's MODIFIED of that write, late
    assert store.get("shop", "web") is None
    # A watch's DELETED at a revision: only a twin entering another scope has that revision.
    store.put(obj("api", 5))
    store.remove(("shop", "api"), obj("api", 9))
    store.put(obj("api", 8))
    assert store.get("shop", "api") is None
    store.put(obj("api", 9, selector="relabelled"))
    assert store.get("shop", "api")["spec"] == {"selector": "relabelled"}


async def test_a_relist_asked_of_a_reflector_cuts_its_watch_and_lists_again_without_a_failure():
    """What a sharded replica filtering after the watch asks when it takes a shard: the watch is
    cut and the kind listed again at once, counted as an expiry (memory keeps serving), not as an
    error that would send reads to the API server and back off."""
    import threading

    from urllib3.exceptions import ProtocolError

    from rollout.controller.cache import Reflector, WatchExpired

    class OpenWatch:
        """A watch stream that sends nothing until it is cut."""

        def __init__(self):
            self.cut = threading.Event()

        def stream(self, amt=None, decode_content=False):
            self.cut.wait(10)
            raise ProtocolError("connection cut")
            yield b""  # a generator

        def shutdown(self):
            self.cut.set()

        def release_conn(self):
            pass

    loop = asyncio.get_running_loop()
    listings, failures = asyncio.Queue(), []
    stop = threading.Event()
    reflector = Reflector(
        api=None,
        resource=SERVICES,
        namespace="shop",
        label_selector=None,
        loop=loop,
        on_listed=lambda r, items, version: listings.put_nowait(version),
        on_event=lambda kind, obj: None,
        on_failure=lambda r, exc: failures.append(exc),
        stop=stop,
    )
    versions = iter(range(1, 100))
    reflector._list = lambda: ([], {"resourceVersion": str(next(versions))})
    reflector._request = lambda query, stream: type("Answer", (), {"response": OpenWatch()})()
    running = asyncio.create_task(asyncio.to_thread(reflector.run))
    try:
        assert await asyncio.wait_for(listings.get(), 5) == 1
        while reflector._open is None:  # the watch is open
            await asyncio.sleep(0.01)
        reflector.relist()
        assert await asyncio.wait_for(listings.get(), 5) == 2
        assert [type(exc) for exc in failures] == [WatchExpired]
    finally:
        stop.set()
        reflector.interrupt()
        await asyncio.wait_for(running, 15)
