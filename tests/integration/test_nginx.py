"""ingress-nginx canaries by the real controller on the emulated cluster: the canary Ingress is
created beside the stable one (checked against the networking.k8s.io/v1 Ingress schema by
kubernetes-validate), follows the steps, and is deleted at completion, on abort and when the
Rollout is deleted; the stable Ingress is never modified."""

import kubernetes_validate

from rollout.kube import ROLLOUTS, SERVICES, Resource
from rollout.sandbox.faults import FaultPlan
from tests.emulated import NS, controller_requests, get_rollout, healthy_at, status_of
from tests.manifests import (
    NGINX_ROUTING,
    canary_strategy,
    image_patch,
    ingress_manifest,
    rollout_manifest,
    service_manifest,
)
from tests.waiting import wait_for

INGRESSES = Resource("networking.k8s.io", "v1", "ingresses")
CANARY = "web-web-canary"
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


async def setup(cluster, steps):
    for name in ("web-stable", "web-canary"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    await cluster.kube.create(INGRESSES, NS, ingress_manifest())
    await cluster.kube.create(
        ROLLOUTS,
        NS,
        rollout_manifest(replicas=4, strategy=canary_strategy(steps, NGINX_ROUTING, scale_down_delay=1)),
    )
    await wait_for(healthy_at(cluster), what="first deploy Healthy")
    return await cluster.kube.get(INGRESSES, NS, "web")


def canary_weight(cluster, weight):
    async def probe():
        canary = await cluster.kube.get(INGRESSES, NS, CANARY)
        return canary if canary and canary["metadata"]["annotations"].get(WEIGHT) == weight else None

    return probe


def no_canary_ingress(cluster):
    async def probe():
        return await cluster.kube.get(INGRESSES, NS, CANARY) is None

    return probe


def spec_and_annotations(ingress):
    return ingress["spec"], ingress["metadata"].get("annotations")


async def test_canary_ingress_follows_the_steps_and_goes_at_completion(cluster):
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": 1}}]
    async with cluster.controller():
        stable = await setup(cluster, steps)
        assert await cluster.kube.get(INGRESSES, NS, CANARY) is None
        # The update meets conflicting writes: the retries read the Ingresses (and everything
        # else) from the API server, not from a cache that may be behind.
        since = cluster.api.request_count
        cluster.api.faults = FaultPlan(conflict=1.0)
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        async def ingresses_read_again():
            return any(
                r.method.value == "GET" and r.resource and r.resource.plural == "ingresses"
                for r in controller_requests(cluster, since)
                if r.params.get("watch") not in ("true", "1")
            )

        await wait_for(ingresses_read_again, timeout=10, what="Ingresses read from the API server")
        cluster.api.faults = None
        canary = await wait_for(canary_weight(cluster, "20"), what="canary Ingress at 20%")
        rollout = await get_rollout(cluster)
        assert canary["metadata"]["ownerReferences"][0]["uid"] == rollout["metadata"]["uid"]
        assert {
            p["backend"]["service"]["name"] for r in canary["spec"]["rules"] for p in r["http"]["paths"]
        } == {"web-canary"}
        kubernetes_validate.validate(canary, kubernetes_validate.latest_version(), strict=True)
        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/promote": "step"}}}
        )
        await wait_for(canary_weight(cluster, "50"), what="canary Ingress at 50%")
        await wait_for(healthy_at(cluster, (await status_of(cluster))["currentRevision"]), what="v2 stable")
        await wait_for(no_canary_ingress(cluster), what="canary Ingress deleted at completion")
    final = await cluster.kube.get(INGRESSES, NS, "web")
    assert spec_and_annotations(final) == spec_and_annotations(stable)


async def test_abort_and_deletion_remove_the_canary_ingress(cluster):
    async with cluster.controller():
        stable = await setup(cluster, [{"setWeight": 30}, {"pause": {}}])
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(canary_weight(cluster, "30"), what="canary Ingress at 30%")
        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/abort": "x"}}}
        )
        await wait_for(no_canary_ingress(cluster), what="canary Ingress deleted on abort")

        async def aborted():
            return (await status_of(cluster)).get("aborted") is True

        # The route is restored before the status that records the abort is written.
        await wait_for(aborted, timeout=5, what="status.aborted after the route was restored")
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:3"))
        await wait_for(canary_weight(cluster, "30"), what="canary Ingress back at 30% for web:3")
        await cluster.kube.delete(ROLLOUTS, NS, "web")

        async def rollout_gone():
            return await get_rollout(cluster) is None

        await wait_for(rollout_gone, what="Rollout deleted")
        await wait_for(no_canary_ingress(cluster), what="canary Ingress deleted with the Rollout")
    final = await cluster.kube.get(INGRESSES, NS, "web")
    assert spec_and_annotations(final) == spec_and_annotations(stable)
