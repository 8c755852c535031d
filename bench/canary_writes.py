"""API writes and wall time per canary weight step, measured on the emulated cluster.

Runs the real controller against the kmock-based API server (HTTPRoute CRD from ../shared
installed, so every route write is schema-checked), with pods ready 0.2 s after creation, and
takes one canary through N setWeight steps (no pauses) to completion. Counts the controller's
requests by resource (its User-Agent tells them apart) and prints a table.

    python -m bench.canary_writes
"""

from __future__ import annotations

import asyncio
import collections
import time

from bench.common import classify, print_table, wait_healthy
from rollout.kube import ROLLOUTS, SERVICES, Resource
from rollout.observability.logging import configure_logging
from rollout.sandbox.cluster import emulated_cluster
from tests.manifests import http_route_manifest, image_patch, rollout_manifest, service_manifest
from tests.thirdparty import routing_crds

HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
CASES = [(10, [20, 50]), (10, [10, 20, 30, 40, 50, 60, 70, 80, 90]), (30, [5, 10, 25, 50, 75])]


async def one(replicas: int, weights: list[int]) -> dict[str, object]:
    async with emulated_cluster(startup_seconds=0.2) as cluster:
        cluster.create_namespace("shop")
        for crd in routing_crds():
            cluster.api.install_crd(crd)
        for name in ("web-stable", "web-canary"):
            await cluster.kube.create(SERVICES, "shop", service_manifest(name))
        await cluster.kube.create(HTTPROUTES, "shop", http_route_manifest())
        strategy = {
            "canary": {
                "stableService": "web-stable",
                "canaryService": "web-canary",
                "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
                "steps": [{"setWeight": w} for w in weights],
                "scaleDownDelaySeconds": 0,
            }
        }
        async with cluster.controller():
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
    steps = len(weights)
    route = writes["PATCH httproutes"]
    status = writes["PATCH rollouts/status"]
    scale = writes["PATCH replicasets"] + writes["POST replicasets"]
    other = sum(writes.values()) - route - status - scale - writes["POST events"]
    return {
        "replicas": replicas,
        "weight steps": steps,
        "seconds": took,
        "s/step": took / steps,
        "route writes": route,
        "scale writes": scale,
        "status writes": status,
        "other writes": other,
        "writes/step": (route + scale + status) / steps,
    }


async def main():
    configure_logging("ERROR", json=False)
    rows = [await one(*case) for case in CASES]
    print_table(rows, width=13)


if __name__ == "__main__":
    asyncio.run(main())
