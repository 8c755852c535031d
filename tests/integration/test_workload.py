"""Workload adapters against the emulated API server: ReplicaSets per revision and Service pinning."""

from rollout.api.rollout import parse_rollout
from rollout.controller.reconciler import Reconciler
from rollout.controller.routes import write_traffic
from rollout.engine.types import CreateReplicaSet, PinService
from rollout.kube import REPLICASETS, ROLLOUTS, SERVICES, Resource
from rollout.traffic.base import TrafficState
from tests.emulated import NS
from tests.manifests import http_route_manifest, rollout_manifest, service_manifest

HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")


async def test_pinning_merges_the_revision_into_the_selector(cluster):
    service = service_manifest("web-stable")
    service["spec"]["selector"]["tier"] = "frontend"
    await cluster.kube.create(SERVICES, NS, service)
    rollout = await cluster.kube.create(ROLLOUTS, NS, rollout_manifest())
    reconciler = Reconciler(cluster.kube)
    await reconciler.apply_action(parse_rollout(rollout), PinService("web-stable", "abc123def0"))
    pinned = await cluster.kube.get(SERVICES, NS, "web-stable")
    assert pinned["spec"]["selector"] == {
        "app": "web",
        "tier": "frontend",
        "rollout.dev/revision": "abc123def0",
    }
    assert pinned["spec"]["ports"] == service["spec"]["ports"]  # the rest untouched
    await reconciler.apply_action(parse_rollout(rollout), PinService("web-stable", "fff0001111"))
    repinned = await cluster.kube.get(SERVICES, NS, "web-stable")
    assert repinned["spec"]["selector"]["rollout.dev/revision"] == "fff0001111"
    assert repinned["spec"]["selector"]["tier"] == "frontend"


async def test_create_of_an_existing_replicaset_takes_it_over(cluster):
    """A reconcile whose status write was lost re-issues the create: the existing ReplicaSet is
    scaled instead of failing the reconcile."""
    rollout = parse_rollout(await cluster.kube.create(ROLLOUTS, NS, rollout_manifest()))
    reconciler = Reconciler(cluster.kube)
    await reconciler.apply_action(rollout, CreateReplicaSet("abc123def0", 1))
    await reconciler.apply_action(rollout, CreateReplicaSet("abc123def0", 3))
    [rs] = await cluster.kube.list(REPLICASETS, NS)
    assert rs["metadata"]["name"] == "web-abc123def0" and rs["spec"]["replicas"] == 3


async def test_route_write_after_a_concurrent_edit_retries_and_keeps_the_edit(cluster):
    """The route changed between the read and the write (someone else's edit): the write guarded
    by the stale resourceVersion gets 409, the route is read again and the weights are applied on
    top of the other edit."""
    await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
    strategy = {
        "canary": {
            "stableService": "web-stable",
            "canaryService": "web-canary",
            "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
        }
    }
    rollout = parse_rollout(
        await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(strategy=strategy))
    ).rollout
    stale = await cluster.kube.get(HTTPROUTES, NS, "web")
    await cluster.kube.patch(
        HTTPROUTES, NS, "web", {"spec": {"hostnames": ["shop.example.com", "www.example.com"]}}
    )
    written = await write_traffic(
        cluster.kube, rollout, TrafficState(weight=30), {("httproutes", "web"): stale}
    )
    assert written == 1
    route = await cluster.kube.get(HTTPROUTES, NS, "web")
    assert route["spec"]["hostnames"] == ["shop.example.com", "www.example.com"]
    app = next(r for r in route["spec"]["rules"] if r["name"] == "app")
    assert [ref["weight"] for ref in app["backendRefs"]] == [70, 30]
    # The emulator refused the stale write: it is the 409 path that was taken, not luck.
    patches = [
        r
        for r in cluster.api.requests_since(0)
        if r.method.value == "PATCH" and r.resource and r.resource.plural == "httproutes"
    ]
    assert len(patches) == 3  # the concurrent edit, the refused write, the retried one
