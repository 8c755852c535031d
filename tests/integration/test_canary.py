"""Canary releases by the real controller on the emulated cluster, on routes stored under their
real Gateway API and Istio schemas (every write the controller makes is validated by them)."""

import copy
import json

from rollout.kube import CRDS, ROLLOUTS, SERVICES
from tests.emulated import (
    HTTPROUTES,
    NS,
    VIRTUALSERVICES,
    app_weights,
    controller_requests,
    event_reasons,
    get_rollout,
    healthy_at,
    paused_at,
    promote,
    replicasets,
    setup,
    status_of,
    weight_is,
)
from tests.manifests import image_patch, virtual_service_manifest
from tests.waiting import wait_for

REVISION = "rollout.dev/revision"


def spec_only(route):
    return {k: v for k, v in route.items() if k not in ("metadata", "status")}


async def test_a_weight_step_is_one_route_write_and_one_status_write_that_records_it(cluster):
    """The reconcile that writes a weight decides again from what it wrote (controller/passes.py):
    its one status write records the weight and starts the pause, where it took two before, and no
    status written in between says a weight the route has left."""
    steps = [{"setWeight": 20}, {"pause": {"duration": 1}}, {"setWeight": 50}, {"pause": {}}]
    async with cluster.controller():
        await setup(cluster, steps)
        since = cluster.api.request_count
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(paused_at(cluster, 3), what="paused at step 4 (indefinite)")
        requests = controller_requests(cluster, since)
    writes = [
        (r.resource.plural, r.subresource, json.loads(r.body))
        for r in requests
        if r.method.value == "PATCH" and r.resource and r.resource.plural in ("httproutes", "rollouts")
    ]
    route_writes = [i for i, (plural, _, _) in enumerate(writes) if plural == "httproutes"]
    assert len(route_writes) == 2, writes
    for index, weight in zip(route_writes, (20, 50), strict=True):
        patch = writes[index][2]
        assert {"op": "replace", "path": "/spec/rules/1/backendRefs/1/weight", "value": weight} in patch
        following = next(body["status"] for plural, sub, body in writes[index + 1 :] if sub == "status")
        assert following["canary"]["weight"] == weight
        assert following["phase"] == "Paused"
    # From the update to the first pause: the canary Service pinned and the ReplicaSet created with
    # one status write, one when its pods are counted, the route and the status that records it.
    up_to_first_pause = writes[: route_writes[0] + 2]
    assert sum(1 for _, sub, _ in up_to_first_pause if sub == "status") <= 3, up_to_first_pause


async def test_full_canary_on_an_httproute(cluster):
    steps = [{"setWeight": 20}, {"pause": {"duration": 1}}, {"setWeight": 50}, {"pause": {}}]
    async with cluster.controller():
        v1 = (await setup(cluster, steps))["stableRevision"]
        at_rest = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(at_rest) == {"web-stable": 100, "web-canary": 0}
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(weight_is(cluster, 20), what="canary at 20%")
        paused = await wait_for(paused_at(cluster, 3), what="paused at step 4 (indefinite)")
        assert paused["canary"]["weight"] == 50
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 50, "web-canary": 50}
        v2 = paused["currentRevision"]
        rs = await replicasets(cluster)
        assert rs[v2]["spec"]["replicas"] == 2 and rs[v1]["spec"]["replicas"] == 4
        canary_service = await cluster.kube.get(SERVICES, NS, "web-canary")
        assert canary_service["spec"]["selector"] == {"app": "web", REVISION: v2}
        # The finalizer is held while traffic is away from stable.
        assert "rollout.dev/traffic" in (await get_rollout(cluster))["metadata"]["finalizers"]
        await promote(cluster)
        await wait_for(healthy_at(cluster, v2), what="v2 stable")
        await wait_for(weight_is(cluster, 0), what="back to 100/0")

        async def old_scaled_down():
            return (await replicasets(cluster))[v1]["spec"]["replicas"] == 0

        await wait_for(old_scaled_down, what="v1 scaled down after scaleDownDelaySeconds")

        async def finalizer_released():
            return not (await get_rollout(cluster))["metadata"].get("finalizers")

        await wait_for(finalizer_released, what="finalizer released at rest")
    final = await cluster.kube.get(HTTPROUTES, NS, "web")
    assert spec_only(final) == spec_only(at_rest)  # the user's route, exactly
    for name in ("web-stable", "web-canary"):
        service = await cluster.kube.get(SERVICES, NS, name)
        assert service["spec"]["selector"] == {"app": "web", REVISION: v2}
    reasons = await event_reasons(cluster)
    assert reasons.count("StepCompleted") == 3 and "PromotedStep" in reasons and "RolloutCompleted" in reasons


def primary_weights(route):
    primary = next(e for e in route["spec"]["http"] if e.get("name") == "primary")
    return {r["destination"]["host"]: r["weight"] for r in primary["route"]}


async def test_full_canary_on_an_istio_virtualservice_with_tcp(cluster):
    steps = [{"setWeight": 20}, {"pause": {}}]
    routing = {"istio": {"virtualService": {"name": "web", "routes": ["primary"], "tcpRoutes": [5432]}}}
    async with cluster.controller():
        await setup(cluster, steps, routing, virtual_service_manifest(), VIRTUALSERVICES)
        before = await cluster.kube.get(VIRTUALSERVICES, NS, "web")
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(paused_at(cluster, 1), what="paused after 20%")
        route = await cluster.kube.get(VIRTUALSERVICES, NS, "web")
        assert primary_weights(route) == {"web-stable": 80, "web-canary": 20}
        assert [r["weight"] for r in route["spec"]["tcp"][0]["route"]] == [80, 20]
        primary = next(e for e in route["spec"]["http"] if e.get("name") == "primary")
        assert primary["retries"] == {"attempts": 3, "perTryTimeout": "2s"} and primary["timeout"] == "5s"
        await promote(cluster)
        await wait_for(healthy_at(cluster), what="v2 stable")
        await wait_for(weight_is(cluster, 0, VIRTUALSERVICES, primary_weights), what="back to 100/0")
    assert spec_only(await cluster.kube.get(VIRTUALSERVICES, NS, "web")) == spec_only(before)


async def test_abort_at_fifty_restores_the_route_byte_for_byte(cluster):
    steps = [
        {"setHeaderRoute": {"name": "dark", "match": [{"header": "version", "exact": "v2"}]}},
        {"setMirrorRoute": {"name": "shadow", "percent": 10}},
        {"setWeight": 50},
        {"pause": {}},
    ]
    async with cluster.controller():
        v1 = (await setup(cluster, steps))["stableRevision"]
        before = copy.deepcopy(await cluster.kube.get(HTTPROUTES, NS, "web"))
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        paused = await wait_for(paused_at(cluster, 3), what="paused at 50%")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route)["web-canary"] == 50
        assert [r.get("name") for r in route["spec"]["rules"]] == ["static", "rollout.dev.web.dark", "app"]
        assert paused["canary"]["headerRoutes"] == ["dark"] and paused["canary"]["mirrorRoutes"] == ["shadow"]
        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/abort": "yes"}}}
        )
        restored = await wait_for(weight_is(cluster, 0), what="weight 0 after abort")
        assert spec_only(restored) == spec_only(before)  # managed rule and mirror gone, the rest as it was

        async def canary_down():
            rs = await replicasets(cluster)
            return rs[paused["currentRevision"]]["spec"]["replicas"] == 0 and rs[v1]["spec"]["replicas"] == 4

        await wait_for(canary_down, what="canary scaled down after abortScaleDownDelaySeconds")
        status = await status_of(cluster)
        assert status["phase"] == "Degraded" and status["aborted"] is True
    assert "RolloutAborted" in await event_reasons(cluster)


async def test_deleting_a_rollout_mid_canary_restores_its_routes(cluster):
    steps = [
        {"setHeaderRoute": {"name": "dark", "match": [{"header": "version", "exact": "v2"}]}},
        {"setWeight": 30},
        {"pause": {}},
    ]
    async with cluster.controller():
        await setup(cluster, steps)
        before = copy.deepcopy(await cluster.kube.get(HTTPROUTES, NS, "web"))
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(weight_is(cluster, 30), what="canary at 30%")
        await cluster.kube.delete(ROLLOUTS, NS, "web")

        async def gone():
            return await get_rollout(cluster) is None

        await wait_for(gone, what="Rollout deleted once its routes are restored")
    route = await cluster.kube.get(HTTPROUTES, NS, "web")
    assert spec_only(route) == spec_only(before)
    assert "TrafficRestored" in await event_reasons(cluster)


async def test_route_with_unresolved_refs_stops_the_rollout_with_the_reason_shown(cluster):
    steps = [{"setWeight": 20}, {"pause": {}}]
    async with cluster.controller():
        await setup(cluster, steps)
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        generation = route["metadata"]["generation"]
        conditions = [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Accepted",
                "message": "",
                "observedGeneration": generation,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            },
            {
                "type": "ResolvedRefs",
                "status": "False",
                "reason": "BackendNotFound",
                "message": "backend web-canary has no endpoints in a known namespace",
                "observedGeneration": generation,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            },
        ]
        parent = {
            "parentRef": {"name": "public"},
            "controllerName": "example.com/gateway",
            "conditions": conditions,
        }
        await cluster.kube.patch(HTTPROUTES, NS, "web", {"status": {"parents": [parent]}}, sub="status")
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        async def stopped():
            status = await status_of(cluster)
            return status if "BackendNotFound" in status.get("message", "") else None

        status = await wait_for(stopped, what="stopped on BackendNotFound")
        assert status["phase"] == "Degraded"
        condition = next(c for c in status["conditions"] if c["type"] == "RouteStatus")
        assert condition["status"] == "False" and condition["reason"] == "BackendNotFound"
        # What `kubectl get rollout` prints: the Message column is the status message.
        crd = await cluster.kube.get(CRDS, None, "rollouts.rollout.dev")
        columns = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
        assert columns["Message"] == ".status.message"
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route)["web-canary"] == 0 and status["currentStepIndex"] == 0
        # The Gateway resolves the backend: the rollout goes on by itself.
        conditions[1].update(status="True", reason="ResolvedRefs", message="")
        await cluster.kube.patch(HTTPROUTES, NS, "web", {"status": {"parents": [parent]}}, sub="status")
        await wait_for(weight_is(cluster, 20), what="canary at 20% once resolved")
    assert "RouteNotAccepted" in await event_reasons(cluster)
