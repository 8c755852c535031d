"""The controller's watch-fed caches on a real API server, where watches end before the controller
asked them to: the reflector watches again from the last resourceVersion it saw, and the real
server replays what came after it, so nothing is listed twice and nothing is missed (the
emulator's replay is checked against the same contract in tests/integration/test_faults.py)."""

import asyncio

import pytest

from rollout.controller.cache import CachedKind, Caches, Reflector
from rollout.kube import SERVICES, load_api_client
from tests.manifests import service_manifest
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


async def test_watches_ended_early_resume_from_their_version(kubeconfig, kube, namespace, monkeypatch):
    """The server ends each watch after 2 s where the reflector asked for 60 (as a server ends a
    watch whose reader falls behind): every end is early to the reflector. Creates, a label
    change and deletes spread over several such ends are all seen, after one list."""
    queries = []
    asked = Reflector._request

    def ended_early(self, query, *, stream):
        if stream:
            query = [(k, "2" if k == "timeoutSeconds" else v) for k, v in query]
        if self.namespace == namespace:
            queries.append(dict(query))
        return asked(self, query, stream=stream)

    monkeypatch.setattr(Reflector, "_request", ended_early)
    caches = Caches(
        lambda: load_api_client(kubeconfig),
        [CachedKind(SERVICES)],
        [namespace],
        on_change=lambda *_: None,
        watch_seconds=60,
    )
    caches.start()
    try:
        assert await caches.wait_started(30)
        names = [f"svc-{i}" for i in range(6)]
        for name in names:  # over some 6 s: across about three ends
            await kube.create(SERVICES, namespace, service_manifest(name, namespace))
            await asyncio.sleep(1.0)
        await kube.patch(SERVICES, namespace, names[0], {"metadata": {"labels": {"tier": "front"}}})
        await asyncio.sleep(2.5)
        for name in names[-2:]:
            await kube.delete(SERVICES, namespace, name)
        store = caches.stores[SERVICES]

        async def all_seen():
            held = sorted(key[1] for key in store.objects)
            labels = (store.get(namespace, names[0]) or {}).get("metadata", {}).get("labels") or {}
            return held == names[:-2] and labels.get("tier") == "front"

        await wait_for(all_seen, timeout=20, what="every change seen")
    finally:
        caches.stop()
    watches = [q for q in queries if q.get("watch") == "true"]
    lists = [q for q in queries if q.get("watch") != "true"]
    assert len(lists) == 1, lists
    assert len(watches) >= 4, watches  # ended every 2 s over 9 s or more
    from_versions = [q.get("resourceVersion", "") for q in watches]
    assert all(version.isdigit() for version in from_versions), from_versions
    # Each watch starts where the last one's events ended: the versions only move forward.
    assert [int(v) for v in from_versions] == sorted(int(v) for v in from_versions)
    assert caches.serves(SERVICES, namespace)
