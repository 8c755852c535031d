"""The canary scenarios of the integration suite on a real API server, which also checks every
route write against the Gateway API and Istio CRDs in full (CEL rules included)."""

import pytest

from rollout.kube import ROLLOUTS, SERVICES
from tests.e2e.helpers import (
    HTTPROUTES,
    VIRTUALSERVICES,
    annotate,
    app_weights,
    phase_is,
    spec_of,
    wait_for,
    with_app_weights,
)
from tests.manifests import (
    HTTP_ROUTING,
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
    virtual_service_manifest,
)

pytestmark = pytest.mark.e2e
AT_REST = {"web-stable": 100, "web-canary": 0}


async def deploy(kube, ns, steps, routing=HTTP_ROUTING, route=None, resource=HTTPROUTES):
    """Services, the route and the Rollout; returns the Rollout's status once Healthy and the
    route as the server stored it when created (its CRD's defaults applied, e.g. `weight: 1` on a
    backendRef written without one), before the controller wrote to it."""
    for name in ("web-stable", "web-canary"):
        await kube.create(SERVICES, ns, service_manifest(name, namespace=ns))
    route = route or http_route_manifest(namespace=ns)
    route["metadata"] = {"name": "web", "namespace": ns}
    stored = await kube.create(resource, ns, route)
    strategy = canary_strategy(steps, routing, scale_down_delay=2)
    await kube.create(ROLLOUTS, ns, rollout_manifest(namespace=ns, replicas=2, strategy=strategy))
    return await wait_for(phase_is(kube, ns, "Healthy"), what="first deploy"), stored


async def test_httproute_canary_to_completion(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    status, stored = await deploy(kube, namespace, [{"setWeight": 50}, {"pause": {}}])
    v1 = status["stableRevision"]
    # The server defaulted the stable backendRef written without a weight to 1 (1:0, all to
    # stable); the first deploy writes 100/0 and changes nothing else in the route.
    assert app_weights(stored) == {"web-stable": 1, "web-canary": 0}
    at_rest = await kube.get(HTTPROUTES, namespace, "web")
    assert spec_of(at_rest) == spec_of(with_app_weights(stored, AT_REST))
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused at 50%")
    assert app_weights(await kube.get(HTTPROUTES, namespace, "web")) == {"web-stable": 50, "web-canary": 50}
    await annotate(kube, namespace, "rollout.dev/promote", "step")

    async def done():
        status = await phase_is(kube, namespace, "Healthy")()
        return status if status and status["stableRevision"] != v1 else None

    await wait_for(done, what="v2 stable")
    final = await kube.get(HTTPROUTES, namespace, "web")
    assert spec_of(final) == spec_of(with_app_weights(stored, AT_REST))


async def test_abort_and_delete_restore_the_route(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    steps = [
        {"setHeaderRoute": {"name": "dark", "match": [{"header": "version", "exact": "v2"}]}},
        {"setMirrorRoute": {"name": "shadow", "percent": 10}},
        {"setWeight": 50},
        {"pause": {}},
    ]
    _, stored = await deploy(kube, namespace, steps)
    at_rest = with_app_weights(stored, AT_REST)  # as stored, but 100/0: nothing else is ours
    assert spec_of(await kube.get(HTTPROUTES, namespace, "web")) == spec_of(at_rest)
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    await wait_for(phase_is(kube, namespace, "Paused", 3), what="paused at 50% with dark launch and mirror")
    busy = await kube.get(HTTPROUTES, namespace, "web")
    assert app_weights(busy) == {"web-stable": 50, "web-canary": 50}
    assert [r.get("name") for r in busy["spec"]["rules"]] == ["static", "rollout.dev.web.dark", "app"]
    await annotate(kube, namespace, "rollout.dev/abort")

    async def restored():
        route = await kube.get(HTTPROUTES, namespace, "web")
        return route if spec_of(route) == spec_of(at_rest) else None

    await wait_for(restored, what="route back as written after abort")
    await annotate(kube, namespace, "rollout.dev/retry")
    await wait_for(phase_is(kube, namespace, "Paused", 3), what="paused at 50% again")
    await kube.delete(ROLLOUTS, namespace, "web")
    await wait_for(restored, what="route restored on deletion")

    async def gone():
        return await kube.get(ROLLOUTS, namespace, "web") is None

    await wait_for(gone, what="Rollout deleted after the finalizer released it")


async def test_unresolved_backend_stops_the_rollout(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    await deploy(kube, namespace, [{"setWeight": 20}, {"pause": {}}])
    route = await kube.get(HTTPROUTES, namespace, "web")  # after the first deploy's 100/0 write
    condition = {
        "type": "ResolvedRefs",
        "status": "False",
        "reason": "BackendNotFound",
        "message": "web-canary not found",
        "observedGeneration": route["metadata"]["generation"],
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    parent = {
        "parentRef": {"name": "public"},
        "controllerName": "example.com/gateway",
        "conditions": [condition],
    }
    await kube.patch(HTTPROUTES, namespace, "web", {"status": {"parents": [parent]}}, sub="status")
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))

    async def stopped():
        status = ((await kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
        return status if "BackendNotFound" in status.get("message", "") else None

    status = await wait_for(stopped, what="stopped on BackendNotFound")
    assert status["phase"] == "Degraded"
    assert app_weights(await kube.get(HTTPROUTES, namespace, "web"))["web-canary"] == 0


async def test_virtualservice_canary(kube, namespace, routing_installed, pods_made_ready, start_controller):
    start_controller()
    routing = {"istio": {"virtualService": {"name": "web", "routes": ["primary"], "tcpRoutes": [5432]}}}
    await deploy(
        kube,
        namespace,
        [{"setWeight": 20}, {"pause": {}}],
        routing,
        virtual_service_manifest(),
        VIRTUALSERVICES,
    )
    at_rest = await kube.get(VIRTUALSERVICES, namespace, "web")
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused at 20%")
    route = await kube.get(VIRTUALSERVICES, namespace, "web")
    assert [r["weight"] for r in route["spec"]["tcp"][0]["route"]] == [80, 20]
    await annotate(kube, namespace, "rollout.dev/abort")

    async def restored():
        current = await kube.get(VIRTUALSERVICES, namespace, "web")
        return current if spec_of(current) == spec_of(at_rest) else None

    await wait_for(restored, what="VirtualService back as written")
