"""Blue/green on a real API server: preview first, promotion by annotation, the switch of the
active Service's selector, an aborted next revision that leaves users where they are and goes
away, and the route-level switch under the full Gateway API schema (CEL rules included)."""

from rollout.api.revision import REVISION_LABEL
from rollout.kube import REPLICASETS, ROLLOUTS, SERVICES
from tests.e2e.helpers import HTTPROUTES, annotate, phase_is, spec_of, wait_for, with_app_weights
from tests.manifests import (
    blue_green_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)


async def deploy(kube, ns, **extra):
    for name in ("web-active", "web-preview"):
        await kube.create(SERVICES, ns, service_manifest(name, namespace=ns))
    strategy = blue_green_strategy(
        autoPromotionEnabled=False, previewReplicaCount=1, scale_down_delay=2, **extra
    )
    await kube.create(ROLLOUTS, ns, rollout_manifest(namespace=ns, replicas=2, strategy=strategy))
    return (await wait_for(phase_is(kube, ns, "Healthy"), what="first deploy"))["stableRevision"]


async def selects(kube, ns, service):
    return (await kube.get(SERVICES, ns, service))["spec"]["selector"].get(REVISION_LABEL)


async def spec_replicas(kube, ns):
    return {
        rs["metadata"]["labels"][REVISION_LABEL]: rs["spec"]["replicas"]
        for rs in await kube.list(REPLICASETS, ns)
    }


async def test_blue_green_promote_switch_and_abort(kube, namespace, pods_made_ready, start_controller):
    start_controller()
    v1 = await deploy(kube, namespace)
    assert await selects(kube, namespace, "web-active") == v1
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    paused = await wait_for(phase_is(kube, namespace, "Paused"), what="preview up, waiting for promotion")
    v2 = paused["currentRevision"]
    assert await selects(kube, namespace, "web-preview") == v2
    assert await selects(kube, namespace, "web-active") == v1
    assert (await spec_replicas(kube, namespace))[v2] == 1
    await annotate(kube, namespace, "rollout.dev/promote", "step")

    async def v2_active():
        status = await phase_is(kube, namespace, "Healthy")()
        return status if status and status["stableRevision"] == v2 else None

    await wait_for(v2_active, what="v2 switched and stable")
    assert await selects(kube, namespace, "web-active") == v2

    # A third revision waits for promotion and is aborted: users stay on v2, v3 goes.
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:3"))
    paused = await wait_for(phase_is(kube, namespace, "Paused"), what="v3 waiting for promotion")
    v3 = paused["currentRevision"]
    await annotate(kube, namespace, "rollout.dev/abort")
    degraded = await wait_for(phase_is(kube, namespace, "Degraded"), what="aborted")
    assert degraded["stableRevision"] == v2
    assert await selects(kube, namespace, "web-active") == v2

    async def v3_gone():
        replicas = await spec_replicas(kube, namespace)
        return replicas if replicas[v3] == 0 else None

    replicas = await wait_for(v3_gone, what="v3 scaled down after the abort")
    assert replicas[v2] == 2
    assert await selects(kube, namespace, "web-preview") == v2


async def test_blue_green_route_level_switch(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    route = http_route_manifest(namespace=namespace, backends=("web-active", "web-preview"))
    route["metadata"] = {"name": "web", "namespace": namespace}
    stored = await kube.create(HTTPROUTES, namespace, route)  # web-active reads `weight: 1` (defaulted)
    at_rest = with_app_weights(stored, {"web-active": 100, "web-preview": 0})
    start_controller()
    v1 = await deploy(kube, namespace, trafficRouting={"gatewayAPI": {"httpRoutes": [{"name": "web"}]}})
    assert spec_of(await kube.get(HTTPROUTES, namespace, "web")) == spec_of(at_rest)
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    paused = await wait_for(phase_is(kube, namespace, "Paused"), what="waiting for promotion")
    await annotate(kube, namespace, "rollout.dev/promote", "step")

    async def done():
        status = await phase_is(kube, namespace, "Healthy")()
        return status if status and status["stableRevision"] == paused["currentRevision"] else None

    await wait_for(done, what="switched on the route and stable")
    assert spec_of(await kube.get(HTTPROUTES, namespace, "web")) == spec_of(at_rest)
    assert await selects(kube, namespace, "web-active") == paused["currentRevision"] != v1
