"""The files of examples/ on the emulated cluster: the kinds they hold, the built-in
ClusterAnalysisTemplates they rely on, and a canary or blue/green example driven from one image
to the next, for test_examples.py and test_gitops_drift.py."""

from pathlib import Path

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


def rollout_status(cluster, namespace, name):
    async def probe():
        return (await cluster.kube.get(ROLLOUTS, namespace, name) or {}).get("status") or {}

    return probe


async def each_pause(cluster, namespace, name, stable_before):
    """After an update: the status at each pause, in turn (promoted when the caller takes the
    next), until a revision other than `stable_before` is stable."""
    status_now = rollout_status(cluster, namespace, name)
    previous = None
    for _ in range(10):

        async def paused_or_done(previous=previous):
            status = await status_now()
            done = status.get("phase") == "Healthy" and status.get("stableRevision") != stable_before
            paused = status.get("phase") == "Paused" and status.get("currentStepIndex") != previous
            return status if done or paused else None

        status = await wait_for(paused_or_done, timeout=30, what=f"{name} paused or done")
        if status["phase"] == "Healthy":
            return
        previous = status["currentStepIndex"]
        yield status
        await cluster.kube.patch(
            ROLLOUTS, namespace, name, {"metadata": {"annotations": {"rollout.dev/promote": "step"}}}
        )
    raise AssertionError(f"{name} did not complete after 10 pauses")


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
    start = await rollout_status(cluster, namespace, name)()
    return [status async for status in each_pause(cluster, namespace, name, start["stableRevision"])]


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
        status = await healthy_status(cluster, namespace, name)
        return status if status and status["stableRevision"] != old else None

    status = await wait_for(switched, timeout=30, what=f"{name} switched")
    active = await cluster.kube.get(SERVICES, namespace, strategy["activeService"])
    assert active["spec"]["selector"]["rollout.dev/revision"] == status["currentRevision"]
    assert status["blueGreen"]["activeRevision"] == status["currentRevision"]


async def healthy_status(cluster, namespace, name):
    """The Rollout's status if it is Healthy, else None."""
    status = await rollout_status(cluster, namespace, name)()
    return status if status.get("phase") == "Healthy" else None
