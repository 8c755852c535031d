"""API writes and wall time of a rolling update, measured on the emulated cluster.

Runs the real controller (kopf, in its own thread) against the kmock-based API server with the
kubelet stand-in (pods ready 0.2 s after they are created), rolls out one image update per row, and
counts the requests the controller made (its User-Agent tells them apart). Prints a table.

    python -m bench.rolling_writes
"""

from __future__ import annotations

import asyncio
import collections
import time

from bench.common import classify, print_table, wait_healthy
from rollout.kube import ROLLOUTS, USER_AGENT
from rollout.observability.logging import configure_logging
from rollout.sandbox.cluster import emulated_cluster
from tests.manifests import image_patch, rollout_manifest

CASES = [(4, 1, 0), (10, 1, 0), (10, "25%", "25%"), (30, "10%", 0)]


async def one(replicas, surge, unavailable):
    async with emulated_cluster(startup_seconds=0.2) as cluster:
        cluster.create_namespace("shop")
        async with cluster.controller():
            strategy = {"rolling": {"maxSurge": surge, "maxUnavailable": unavailable}}
            await cluster.kube.create(
                ROLLOUTS, "shop", rollout_manifest(replicas=replicas, strategy=strategy)
            )
            first = await wait_healthy(cluster, None)
            before = cluster.api.request_count
            started = time.monotonic()
            await cluster.kube.patch(ROLLOUTS, "shop", "web", image_patch("web:2"))
            await wait_healthy(cluster, first)
            took = time.monotonic() - started
            requests = cluster.api.requests_since(before)
    writes = collections.Counter(c for r in requests if (c := classify(r)))
    reads = sum(1 for r in requests if r.headers.get("User-Agent") == USER_AGENT) - sum(writes.values())
    scale_steps = writes["PATCH replicasets"] + writes["POST replicasets"]
    return {
        "replicas": replicas,
        "maxSurge": surge,
        "maxUnavailable": unavailable,
        "seconds": took,
        "scale writes": scale_steps,
        "status writes": writes["PATCH rollouts/status"],
        "events": writes["POST events"],
        "reads": reads,
        "reconciles": sum(
            1
            for r in requests
            if r.headers.get("User-Agent") == USER_AGENT and r.method.value == "GET" and r.name == "web"
        ),
        "writes/scale step": (scale_steps + writes["PATCH rollouts/status"]) / max(1, scale_steps),
    }


async def main():
    configure_logging("ERROR", json=False)
    rows = [await one(*case) for case in CASES]
    print_table(rows, width=15)


if __name__ == "__main__":
    asyncio.run(main())
