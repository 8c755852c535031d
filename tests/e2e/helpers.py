"""Helpers shared by the e2e test files (fixtures live in conftest.py)."""

import asyncio
import contextlib
import copy
import time

from kubernetes.client.exceptions import ApiException

from rollout.kube import PODS, ROLLOUTS, Resource
from tests import waiting

HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
VIRTUALSERVICES = Resource("networking.istio.io", "v1", "virtualservices")


async def wait_for(probe, timeout=120.0, what="condition"):
    return await waiting.wait_for(probe, timeout=timeout, interval=0.3, what=what)


def phase_is(kube, ns, phase, index=None):
    async def probe():
        status = ((await kube.get(ROLLOUTS, ns, "web")) or {}).get("status") or {}
        ok = status.get("phase") == phase and (index is None or status.get("currentStepIndex") == index)
        return status if ok else None

    return probe


async def annotate(kube, ns, key, value="yes"):
    await kube.patch(ROLLOUTS, ns, "web", {"metadata": {"annotations": {key: value}}})


def spec_of(route):
    return route["spec"]


def app_rule(route):
    return next(r for r in route["spec"]["rules"] if r.get("name") == "app")


def app_weights(route):
    return {ref["name"]: ref.get("weight") for ref in app_rule(route)["backendRefs"]}


def with_app_weights(route, weights):
    """A copy of `route` whose `app` rule has these weights: what the controller owns in it."""
    out = copy.deepcopy(route)
    for ref in app_rule(out)["backendRefs"]:
        if ref["name"] in weights:
            ref["weight"] = weights[ref["name"]]
    return out


async def mark_pods_ready(kube, namespace, period=0.3):
    """Plays the kubelet on a cluster without nodes, forever: the namespace's Pods become Ready,
    unless their image is broken."""
    while True:
        for pod in await kube.list(PODS, namespace):
            images = [c.get("image", "") for c in pod["spec"].get("containers", [])]
            conditions = (pod.get("status") or {}).get("conditions") or []
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            broken = any("broken" in image for image in images)
            if ready or broken or pod["metadata"].get("deletionTimestamp"):
                continue
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            status = {
                "phase": "Running",
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": now}
                    for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                ],
            }
            with contextlib.suppress(ApiException):
                await kube.patch(PODS, namespace, pod["metadata"]["name"], {"status": status}, sub="status")
        await asyncio.sleep(period)
