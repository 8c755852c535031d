"""Time from a canary's error ratio rising to the route's stable weight being 100 again.

The real controller on the emulated cluster, a real Prometheus scraping one workload process per
revision every second, and a load generator following the route's weights (the set-up of
tests/integration/test_analysis_prometheus.py). The canary sits at 20% in an analysis step of the
built-in `http-success-rate` template (window 5 s); at t0 its error ratio goes from 0 to 20%.
Columns: the analysis interval; when the failing value was first visible in Prometheus (polled
every 50 ms with the template's own query); when the route's stable weight was 100; the
difference; and the design's target (rollback within one interval + 1 s of the value being
available).

    python -m bench.rollback            # needs the prometheus binary
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from contextlib import ExitStack

import yaml

from bench.common import print_table
from rollout.analysis.prometheus import Prometheus
from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import parse_rollout
from rollout.engine.decide import current_revision
from rollout.kube import CLUSTER_ANALYSIS_TEMPLATES, ROLLOUTS, SERVICES, Kube, Resource
from rollout.observability.logging import configure_logging
from rollout.sandbox.cluster import emulated_cluster
from tests.manifests import http_route_manifest, image_patch, rollout_manifest, service_manifest
from tests.prom.stack import (
    BUILTIN_TEMPLATES,
    LoadGenerator,
    PrometheusServer,
    Workload,
    first_query,
    route_revision_weights,
)
from tests.thirdparty import routing_crds

NS = "shop"
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
INTERVALS = ["1s", "2s", "5s"]
# "canary in a pause": background analysis while a 5-minute timed pause holds the canary at 20%
# (each due measurement schedules its own reconcile; the controller's resync is 30 s).
STRATEGIES = ["canary", "canary in a pause", "blue/green"]


def canary_weight(route: dict) -> int:
    rule = next(r for r in route["spec"]["rules"] if r.get("name") == "app")
    return next(ref["weight"] for ref in rule["backendRefs"] if ref["name"] == "web-canary")


def strategy_of(kind: str, interval: str) -> dict[str, object]:
    args = {"interval": interval, "count": "1000", "window": "5s", "initial-delay": "5s"}
    analysis = {
        "templates": [{"name": "http-success-rate", "clusterScope": True}],
        "args": [{"name": k, "value": v} for k, v in args.items()],
    }
    if kind == "blue/green":
        return {
            "blueGreen": {
                "activeService": "web-active",
                "previewService": "web-preview",
                "postPromotionAnalysis": analysis,
            }
        }
    canary: dict[str, object] = {
        "stableService": "web-stable",
        "canaryService": "web-canary",
        "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
        "steps": [{"setWeight": 20}, {"analysis": analysis}],
    }
    if kind == "canary in a pause":
        canary["steps"] = [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 60}]
        canary["analysis"] = analysis
    return {"canary": canary}


async def active_weights(kube: Kube, unpinned: str) -> dict[str, int]:
    """Users on whichever revision the active Service selects (`unpinned` before it is pinned)."""
    selector = (await kube.get(SERVICES, NS, "web-active"))["spec"]["selector"]
    return {selector.get(REVISION_LABEL, unpinned): 100}


async def one(interval: str, kind: str) -> dict[str, object]:
    blue_green = kind == "blue/green"
    manifest = rollout_manifest(replicas=2, strategy=strategy_of(kind, interval))
    run_name = {"blue/green": "post-promotion", "canary in a pause": "background"}.get(kind, "step-2")
    v1 = current_revision(parse_rollout(manifest).rollout)
    updated = {**manifest, "spec": {**manifest["spec"], "template": image_patch("web:2")["spec"]["template"]}}
    v2 = current_revision(parse_rollout(updated).rollout)
    with ExitStack() as stop:
        stable, canary = Workload(v1), Workload(v2)
        stop.callback(stable.stop)
        stop.callback(canary.stop)
        prometheus = PrometheusServer([stable, canary], NS)
        stop.callback(prometheus.stop)
        async with emulated_cluster(startup_seconds=0.2) as cluster:
            cluster.create_namespace(NS)
            for crd in routing_crds():
                cluster.api.install_crd(crd)
            for template in yaml.safe_load_all(BUILTIN_TEMPLATES.read_text()):
                await cluster.kube.create(CLUSTER_ANALYSIS_TEMPLATES, None, template)
            services = ("web-active", "web-preview") if blue_green else ("web-stable", "web-canary")
            for name in services:
                await cluster.kube.create(SERVICES, NS, service_manifest(name))
            if not blue_green:
                await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
            async with cluster.controller(prometheus_address=prometheus.url, resync_seconds=30):
                await cluster.kube.create(ROLLOUTS, NS, manifest)
                await _until(cluster, lambda s: s.get("phase") == "Healthy")

                def weights() -> Awaitable[dict[str, int]]:
                    if blue_green:
                        return active_weights(cluster.kube, v1)
                    return route_revision_weights(cluster.kube, NS, "web")

                async with LoadGenerator([stable, canary], weights):
                    await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
                    # Healthy measurements first, so the failure is a change, not a start-up state.
                    await _until(cluster, lambda s: _successes(s, run_name) >= 2, timeout=60)
                    parsed = parse_rollout(updated).rollout
                    strategy = parsed.spec.strategy
                    if strategy.blue_green is not None:
                        ref = strategy.blue_green.post_promotion_analysis
                    else:
                        assert strategy.canary is not None
                        ref = strategy.canary.analysis or strategy.canary.steps[1].analysis
                    assert ref is not None
                    query = first_query(parsed, ref, v1, v2)
                    client = Prometheus(prometheus.url)
                    t0 = time.monotonic()
                    canary.configure(error_ratio=0.2)
                    visible = None
                    while True:
                        if visible is None:
                            value = await asyncio.to_thread(client.query, query)
                            if value and value[0] < 0.99:
                                visible = time.monotonic() - t0
                        if blue_green:
                            users = await active_weights(cluster.kube, v1)
                            back = users == {v1: 100}
                        else:
                            back = canary_weight(await cluster.kube.get(HTTPROUTES, NS, "web")) == 0
                        if back:
                            restored = time.monotonic() - t0
                            break
                        if time.monotonic() - t0 > 120:
                            raise TimeoutError("no rollback within 120 s")
                        await asyncio.sleep(0.05)
    seconds = float(interval.rstrip("s"))
    visible = visible if visible is not None else restored
    return {
        "strategy": kind,
        "interval s": seconds,
        "visible s": visible,
        "on stable s": restored,
        "after visible": restored - visible,
        "target": seconds + 1.0,
        "met": "yes" if restored - visible <= seconds + 1.0 else "no",
    }


def _successes(status: dict, run_name: str) -> int:
    run = next((r for r in status.get("analysisRuns", []) if r["name"] == run_name), None)
    return run["metrics"][0]["successful"] if run and run["metrics"] else 0


async def _until(cluster, predicate, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = ((await cluster.kube.get(ROLLOUTS, NS, "web")) or {}).get("status") or {}
        if predicate(status):
            return status
        await asyncio.sleep(0.05)
    raise TimeoutError(f"waited {timeout}s; status {status}")


async def main() -> None:
    configure_logging("ERROR", json=False)
    rows = [await one(interval, kind) for kind in STRATEGIES for interval in INTERVALS]
    print_table(rows)


if __name__ == "__main__":
    asyncio.run(main())
