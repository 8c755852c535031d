"""A canary with a baseline (canary.baselineService) by the real controller on the emulated
cluster, on an HTTPRoute, a GRPCRoute and an Istio VirtualService stored under their real schemas:
the server's route at stable 60 / baseline 20 / canary 20 at setWeight 20, the baseline
ReplicaSet at the canary's size with the stable image, and the route back exactly as written
(the baseline backend gone) and the baseline removed after promotion and after abort."""

import copy

import pytest

from rollout.kube import ROLLOUTS, SERVICES
from rollout.kube.resources import Resource
from tests.emulated import (
    HTTPROUTES,
    NS,
    VIRTUALSERVICES,
    degraded,
    healthy_at,
    paused_at,
    promote,
    replicasets,
)
from tests.manifests import (
    canary_strategy,
    grpc_route_manifest,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
    virtual_service_manifest,
)
from tests.waiting import wait_for

GRPCROUTES = Resource("gateway.networking.k8s.io", "v1", "grpcroutes")
BASELINE = "rollout.dev/baseline-of"
REVISION = "rollout.dev/revision"
STEPS = [{"setWeight": 20}, {"pause": {}}]


def gateway_weights(route):
    rule = next(r for r in route["spec"]["rules"] if r.get("name") == "app")
    return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


def istio_weights(route):
    primary = next(e for e in route["spec"]["http"] if e.get("name") == "primary")
    return {r["destination"]["host"]: r["weight"] for r in primary["route"]}


KINDS = {
    "HTTPRoute": (
        HTTPROUTES,
        http_route_manifest,
        {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
        gateway_weights,
    ),
    "GRPCRoute": (
        GRPCROUTES,
        grpc_route_manifest,
        {"gatewayAPI": {"grpcRoutes": [{"name": "web"}]}},
        gateway_weights,
    ),
    "VirtualService": (
        VIRTUALSERVICES,
        virtual_service_manifest,
        {"istio": {"virtualService": {"name": "web", "routes": ["primary"]}}},
        istio_weights,
    ),
}


def spec_only(route):
    return {k: v for k, v in route.items() if k not in ("metadata", "status")}


async def start(cluster, kind):
    """The three Services, the route and a canary with baselineService, Healthy; then web:2."""
    resource, make_route, routing, weights = KINDS[kind]
    for name in ("web-stable", "web-canary", "web-baseline"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    await cluster.kube.create(resource, NS, make_route())
    strategy = canary_strategy(STEPS, routing, scale_down_delay=1, baselineService="web-baseline")
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=4, strategy=strategy))
    v1 = (await wait_for(healthy_at(cluster), what="first deploy Healthy"))["stableRevision"]
    before = copy.deepcopy(await cluster.kube.get(resource, NS, "web"))
    await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
    paused = await wait_for(paused_at(cluster, 1), what="paused after setWeight 20")
    route = await cluster.kube.get(resource, NS, "web")
    assert weights(route) == {"web-stable": 60, "web-baseline": 20, "web-canary": 20}
    sets = await replicasets(cluster)
    baseline = next(rs for rs in sets.values() if rs["metadata"]["labels"].get(BASELINE) == v1)
    revision = baseline["metadata"]["labels"][REVISION]
    assert paused["canary"]["baselineRevision"] == revision and paused["canary"]["baselineWeight"] == 20
    assert baseline["spec"]["replicas"] == sets[paused["currentRevision"]]["spec"]["replicas"] == 1
    images = [c["image"] for c in baseline["spec"]["template"]["spec"]["containers"]]
    assert images == ["web:1"]
    service = await cluster.kube.get(SERVICES, NS, "web-baseline")
    assert service["spec"]["selector"] == {"app": "web", REVISION: revision}
    stable_service = await cluster.kube.get(SERVICES, NS, "web-stable")
    assert stable_service["spec"]["selector"] == {"app": "web", REVISION: v1}
    return resource, before, revision


async def left_as_written(cluster, resource, before, revision):
    """The route back exactly as it was at rest (no baseline backend), then the baseline down."""

    async def restored():
        route = await cluster.kube.get(resource, NS, "web")
        return route if spec_only(route) == spec_only(before) else None

    async def baseline_gone():
        rs = (await replicasets(cluster)).get(revision)
        return rs is None or rs["spec"]["replicas"] == 0

    await wait_for(restored, what="the route back as written, baseline backend gone")
    await wait_for(baseline_gone, what="the baseline ReplicaSet scaled down or deleted")


@pytest.mark.parametrize("kind", list(KINDS))
async def test_baseline_takes_the_canary_weight_and_leaves_with_promotion(cluster, kind):
    async with cluster.controller():
        resource, before, revision = await start(cluster, kind)
        await promote(cluster)
        await wait_for(healthy_at(cluster), what="v2 stable")
        await left_as_written(cluster, resource, before, revision)
        status = (await cluster.kube.get(ROLLOUTS, NS, "web"))["status"]
        assert status["canary"].get("baselineWeight", 0) == 0


async def test_abort_takes_the_baseline_off_the_route_then_removes_it(cluster):
    async with cluster.controller():
        resource, before, revision = await start(cluster, "HTTPRoute")
        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/abort": "y"}}}
        )
        await wait_for(degraded(cluster), what="aborted")
        await left_as_written(cluster, resource, before, revision)
