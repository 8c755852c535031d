"""Every file in examples/ is applied to the emulated cluster (routes under their real Gateway API
and Istio schemas, analysis templates under theirs) and its Rollouts reach Healthy; canary
examples are then updated and driven through their steps with promotes, traffic shown at each
pause, and routes back as written; blue/green examples are updated, promoted when they wait for
it, and switched. Canaries gated on analysis are driven against a real Prometheus in
test_analysis_prometheus.py, which also runs the built-in templates."""

import pytest
import yaml

from rollout.kube import (
    CLUSTER_ANALYSIS_TEMPLATES,
)
from tests.integration.example_files import (
    BUILTIN_TEMPLATES,
    KINDS,
    drive_blue_green,
    drive_canary,
    healthy_status,
)
from tests.waiting import wait_for

EXAMPLES = sorted(p for p in BUILTIN_TEMPLATES.parent.glob("*.yaml") if p != BUILTIN_TEMPLATES)
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TCPRoute", "VirtualService", "Ingress")


async def route_specs(cluster, documents):
    specs = {}
    for doc in documents:
        if doc["kind"] in ROUTE_KINDS:
            meta = doc["metadata"]
            specs[doc["kind"], meta["name"]] = (
                await cluster.kube.get(KINDS[doc["kind"]], meta["namespace"], meta["name"])
            )["spec"]
    return specs


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
async def test_example_applies_and_becomes_healthy(cluster, path):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    cluster_scoped = ("ClusterAnalysisTemplate",)
    namespaces = {
        d["metadata"].setdefault("namespace", "default") for d in documents if d["kind"] not in cluster_scoped
    }
    for namespace in namespaces - {"shop"}:
        cluster.create_namespace(namespace)
    rollouts = [d for d in documents if d["kind"] == "Rollout"]
    assert rollouts, f"{path.name} has no Rollout"
    async with cluster.controller():
        for template in yaml.safe_load_all(BUILTIN_TEMPLATES.read_text()):
            await cluster.kube.create(CLUSTER_ANALYSIS_TEMPLATES, None, template)
        for doc in documents:
            await cluster.kube.create(KINDS[doc["kind"]], doc["metadata"].get("namespace"), doc)
        for doc in rollouts:
            namespace, name = doc["metadata"]["namespace"], doc["metadata"]["name"]
            status = await wait_for(
                lambda ns=namespace, n=name: healthy_status(cluster, ns, n),
                timeout=30,
                what=f"{name} Healthy",
            )
            assert status["stableRevision"] == status["currentRevision"]
            assert status["availableReplicas"] == doc["spec"]["replicas"]
        at_rest = await route_specs(cluster, documents)
        for doc in rollouts:
            if "blueGreen" in doc["spec"]["strategy"]:
                await drive_blue_green(cluster, doc)
                continue
            canary = doc["spec"]["strategy"].get("canary")
            if canary is None or canary.get("analysis") or any("analysis" in s for s in canary["steps"]):
                continue
            workload = (doc["spec"].get("workloadRef") or {}).get("name")
            holder = doc if workload is None else deployment_of(documents, workload)
            container = holder["spec"]["template"]["spec"]["containers"][0]
            meta = doc["metadata"]
            pauses = await drive_canary(
                cluster, meta["namespace"], meta["name"], (container["name"], container["image"]), workload
            )
            assert pauses, f"{meta['name']} never paused"
            # At some pause the canary carried traffic: a weight, a header route or a mirror.
            assert any(
                p["canary"]["weight"] > 0 or p["canary"]["headerRoutes"] or p["canary"]["mirrorRoutes"]
                for p in pauses
            ), pauses

            async def back_at_rest(ns=meta["namespace"], n=meta["name"]):
                status = await healthy_status(cluster, ns, n)
                return status if status and status["canary"]["weight"] == 0 else None

            await wait_for(back_at_rest, timeout=30, what=f"{meta['name']} back at 100/0")
        assert await route_specs(cluster, documents) == at_rest  # routes exactly as written


def deployment_of(documents, name):
    return next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == name)
