"""What webhook notifications cost a rollout, and how late a healthy webhook hears of it.

The real controller on the emulated cluster runs the same canary (steps `setWeight 50`, `pause 1s`;
4 pods Ready 0.2 s after creation) once per case: no webhooks; one healthy webhook; the healthy
one beside a webhook that is down (connection refused) and one that is slow (answers after 1.5 s,
past the 0.4 s timeout; 3 attempts, 0.5 s then 1 s apart). The webhooks are a real HTTP server on
127.0.0.1. Columns: the case; the update's time to Healthy on the new revision; the healthy
webhook's notices (Started, 2 x StepCompleted, Completed) and when the last one arrived, in
seconds after the update was seen Healthy (negative: before); the slow webhook's attempts; and
when the failing webhooks' last notice was given up, after Healthy.

    python -m bench.notify
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from aiohttp import web

from bench.common import print_table, wait_healthy
from rollout.kube import ROLLOUTS, SECRETS, SERVICES, Resource
from rollout.notify.delivery import NotifySettings
from rollout.observability.logging import configure_logging
from rollout.observability.metrics import NOTIFICATIONS
from rollout.sandbox.cluster import EmulatedCluster, emulated_cluster
from tests.local_http import serving
from tests.manifests import (
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.processes import free_port
from tests.thirdparty import routing_crds

NS = "shop"
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
STEPS = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]
SETTINGS = NotifySettings(timeout=0.4, attempts=3, backoff=0.5, max_backoff=2.0)
CASES = ["no webhooks", "healthy", "healthy + dead + slow"]


class Hooks:
    """Arrival times of each POST, by hook name; the `slow` hook answers after 1.5 s."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        hook = request.match_info["hook"]
        self.arrivals.setdefault(hook, []).append(time.monotonic())
        await request.read()
        if hook == "slow":
            await asyncio.sleep(1.5)
        return web.json_response({"ok": True})


def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}/dead"


def secret(name: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": {"url": base64.b64encode(url.encode()).decode()},
    }


def webhook(name: str) -> dict[str, Any]:
    return {"name": name, "urlFrom": {"secretKeyRef": {"name": f"{name}-hook", "key": "url"}}}


async def run_case(case: str, base: str, hooks: Hooks) -> dict[str, Any]:
    async with emulated_cluster(startup_seconds=0.2) as cluster:
        cluster.create_namespace(NS)
        for crd in routing_crds():
            cluster.api.install_crd(crd)
        urls = {"healthy": f"{base}/healthy", "dead": refused_url(), "slow": f"{base}/slow"}
        wanted = {"no webhooks": [], "healthy": ["healthy"], "healthy + dead + slow": list(urls)}[case]
        for name in wanted:
            await cluster.kube.create(SECRETS, NS, secret(f"{name}-hook", urls[name]))
        async with cluster.controller((NS,), notifications=SETTINGS):
            v1 = await set_up(cluster, [webhook(n) for n in wanted])  # a first deploy notifies nothing
            hooks.arrivals.clear()
            failed_before = given_up()
            began = time.monotonic()
            await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
            await wait_healthy(cluster, v1)
            done = time.monotonic()
            failing = [n for n in wanted if n != "healthy"]
            # 4 notices (Started, 2 x StepCompleted, Completed), each given up by each failing hook
            await until(lambda: given_up() - failed_before >= 4 * len(failing))
            await until(lambda: len(hooks.arrivals.get("healthy", [])) >= 4 * ("healthy" in wanted))
            drained_at = time.monotonic()
        healthy = hooks.arrivals.get("healthy", [])
        return {
            "case": case,
            "update s": done - began,
            "healthy notices": len(healthy),
            "last notice after Healthy s": (healthy[-1] - done) if healthy else "-",
            "slow hook attempts": len(hooks.arrivals.get("slow", [])) if failing else "-",
            "all given up after s": (drained_at - done) if failing else "-",
        }


async def set_up(cluster: EmulatedCluster, webhooks: list[dict[str, Any]]) -> str | None:
    for name in ("web-stable", "web-canary"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
    manifest = rollout_manifest(replicas=4, strategy=canary_strategy(STEPS, scale_down_delay=1))
    if webhooks:
        manifest["spec"]["notifications"] = {"webhooks": webhooks}
    await cluster.kube.create(ROLLOUTS, NS, manifest)
    return await wait_healthy(cluster, None)


def given_up() -> float:
    """Notifications given up so far (retries spent), over every trigger."""
    return sum(
        sample.value
        for metric in NOTIFICATIONS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("outcome") == "failed"
    )


async def until(probe: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("the webhooks' lanes did not drain")
        await asyncio.sleep(0.02)


async def main() -> None:
    configure_logging("ERROR", json=False)
    hooks = Hooks()
    app = web.Application()
    app.router.add_post("/{hook}", hooks.handle)
    rows = []
    async with serving(app) as base:
        for case in CASES:
            rows.append(await run_case(case, base, hooks))
    print_table(rows, width=14)


if __name__ == "__main__":
    asyncio.run(main())
