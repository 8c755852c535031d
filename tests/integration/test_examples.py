"""Every file in examples/ is applied to the emulated cluster (routes under their real Gateway API
and Istio schemas, analysis templates under theirs) and its Rollouts reach Healthy; canary
examples are then updated and driven through their steps with promotes, traffic shown at each
pause, and routes back as written; blue/green examples are updated, promoted when they wait for
it, and switched. Canaries gated on analysis are driven against a real Prometheus in
test_analysis_prometheus.py, which also runs the built-in templates."""

from pathlib import Path

import pytest
import yaml

from rollout.kube import (
    ANALYSIS_TEMPLATES,
    CLUSTER_ANALYSIS_TEMPLATES,
    CONFIGMAPS,
    DEPLOYMENTS,
    ROLLOUTS,
    SECRETS,
    SERVICES,
    Resource,
)
from tests.waiting import wait_for

# The built-in ClusterAnalysisTemplates, applied first as the examples' instructions say.
BUILTIN_TEMPLATES = Path(__file__).resolve().parents[2] / "examples" / "analysis-templates.yaml"
EXAMPLES = sorted(p for p in BUILTIN_TEMPLATES.parent.glob("*.yaml") if p != BUILTIN_TEMPLATES)
KINDS = {
    "Rollout": ROLLOUTS,
    "Service": SERVICES,
    "Secret": SECRETS,
    "ConfigMap": CONFIGMAPS,
    "Deployment": DEPLOYMENTS,
    "AnalysisTemplate": ANALYSIS_TEMPLATES,
    "ClusterAnalysisTemplate": CLUSTER_ANALYSIS_TEMPLATES,
    "HTTPRoute": Resource("gateway.networking.k8s.io", "v1", "httproutes"),
    "GRPCRoute": Resource("gateway.networking.k8s.io", "v1", "grpcroutes"),
    "TCPRoute": Resource("gateway.networking.k8s.io", "v1", "tcproutes"),
    "VirtualService": Resource("networking.istio.io", "v1", "virtualservices"),
    "DestinationRule": Resource("networking.istio.io", "v1", "destinationrules"),
    "Ingress": Resource("networking.k8s.io", "v1", "ingresses"),
}
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TCPRoute", "VirtualService", "Ingress")


def rollout_status(cluster, namespace, name):
    async def probe():
        return (await cluster.kube.get(ROLLOUTS, namespace, name) or {}).get("status") or {}

    return probe


async def route_specs(cluster, documents):
    specs = {}
    for doc in documents:
        if doc["kind"] in ROUTE_KINDS:
            meta = doc["metadata"]
            specs[doc["kind"], meta["name"]] = (
                await cluster.kube.get(KINDS[doc["kind"]], meta["namespace"], meta["name"])
            )["spec"]
    return specs


async def drive_canary(cluster, namespace, name, image, workload=None):
    """Update the image (in the Deployment `workload` for a Rollout that took one over) and
    promote at every pause until the new revision is stable; returns the status seen at each
    pause."""
    await cluster.kube.patch(
        ROLLOUTS if workload is None else DEPLOYMENTS,
        namespace,
        name if workload is None else workload,
        {"spec": {"template": {"spec": {"containers": [{"name": image[0], "image": image[1] + "-next"}]}}}},
    )
    status_now = rollout_status(cluster, namespace, name)
    start = await status_now()
    pauses = []
    for _ in range(10):
        previous = pauses[-1]["currentStepIndex"] if pauses else None

        async def paused_or_done(previous=previous):
            status = await status_now()
            done = (
                status.get("phase") == "Healthy" and status.get("stableRevision") != start["stableRevision"]
            )
            paused = status.get("phase") == "Paused" and status.get("currentStepIndex") != previous
            return status if done or paused else None

        status = await wait_for(paused_or_done, timeout=30, what=f"{name} paused or done")
        if status["phase"] == "Healthy":
            return pauses
        pauses.append(status)
        await cluster.kube.patch(
            ROLLOUTS, namespace, name, {"metadata": {"annotations": {"rollout.dev/promote": "step"}}}
        )
    raise AssertionError(f"{name} did not complete: {pauses}")


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
                lambda ns=namespace, n=name: _healthy(cluster, ns, n), timeout=30, what=f"{name} Healthy"
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
                status = await _healthy(cluster, ns, n)
                return status if status and status["canary"]["weight"] == 0 else None

            await wait_for(back_at_rest, timeout=30, what=f"{meta['name']} back at 100/0")
        assert await route_specs(cluster, documents) == at_rest  # routes exactly as written


def deployment_of(documents, name):
    return next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


async def drive_blue_green(cluster, doc):
    """Update the image; where the Rollout waits for promotion, check the preview and promote;
    then the active Service selects the new revision and the old pods go."""
    meta, strategy = doc["metadata"], doc["spec"]["strategy"]["blueGreen"]
    namespace, name = meta["namespace"], meta["name"]
    container = doc["spec"]["template"]["spec"]["containers"][0]
    status_now = rollout_status(cluster, namespace, name)
    old = (await status_now())["stableRevision"]
    await cluster.kube.patch(
        ROLLOUTS,
        namespace,
        name,
        {
            "spec": {
                "template": {"spec": {"containers": [{**container, "image": container["image"] + "-next"}]}}
            }
        },
    )
    if strategy.get("autoPromotionEnabled") is False:

        async def waiting_for_promotion():
            status = await status_now()
            return status if status.get("phase") == "Paused" else None

        paused = await wait_for(waiting_for_promotion, timeout=30, what=f"{name} waiting for promotion")
        assert paused["blueGreen"]["activeRevision"] == old
        assert paused["blueGreen"]["previewRevision"] == paused["currentRevision"] != old
        assert "rollout.dev/promote" in paused["message"]
        await cluster.kube.patch(
            ROLLOUTS, namespace, name, {"metadata": {"annotations": {"rollout.dev/promote": "step"}}}
        )

    async def switched():
        status = await _healthy(cluster, namespace, name)
        return status if status and status["stableRevision"] != old else None

    status = await wait_for(switched, timeout=30, what=f"{name} switched")
    active = await cluster.kube.get(SERVICES, namespace, strategy["activeService"])
    assert active["spec"]["selector"]["rollout.dev/revision"] == status["currentRevision"]
    assert status["blueGreen"]["activeRevision"] == status["currentRevision"]


async def _healthy(cluster, namespace, name):
    status = await rollout_status(cluster, namespace, name)()
    return status if status.get("phase") == "Healthy" else None
