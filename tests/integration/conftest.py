"""Fixtures for tests of the real controller against the emulated cluster (kmock)."""

import asyncio
import time

import pytest

from rollout.controller.kube import EVENTS, REPLICASETS, ROLLOUTS
from rollout.sandbox.cluster import emulated_cluster
from rollout.sandbox.kubelet import image_matches

NS = "shop"


@pytest.fixture
async def cluster():
    # Pods of an image with "broken" in it never become ready: a release that crash-loops.
    async with emulated_cluster(startup_seconds=0.2, never_ready=image_matches("broken")) as c:
        c.create_namespace(NS)
        yield c


async def wait_for(probe, timeout=20.0, interval=0.05, what="condition"):
    """Poll an async probe until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


async def get_rollout(cluster, name="web"):
    """The Rollout as stored; `cluster` is the emulated cluster or any object with a `kube`."""
    return await cluster.kube.get(ROLLOUTS, NS, name)


async def status_of(cluster, name="web"):
    return (await get_rollout(cluster, name) or {}).get("status") or {}


async def replicasets(cluster):
    items = await cluster.kube.list(REPLICASETS, NS)
    return {rs["metadata"]["labels"]["rollout.dev/revision"]: rs for rs in items}


async def event_reasons(cluster, name="web"):
    events = await cluster.kube.list(EVENTS, NS)
    return [e["reason"] for e in events if e["involvedObject"]["name"] == name]


def healthy_at(cluster, revision=None, name="web"):
    async def probe():
        status = await status_of(cluster, name)
        ok = status.get("phase") == "Healthy" and status.get("stableRevision") == status.get(
            "currentRevision"
        )
        if revision is not None:
            ok = ok and status.get("stableRevision") == revision
        elif revision is None and ok:
            return status
        return status if ok else None

    return probe
