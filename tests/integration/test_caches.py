"""The controller reads from its watch-fed caches: nothing from the API server in the steady
state, a change to anything a Rollout refers to reconciles it at once, and a cache that is behind
costs a conflict and a fresh read, never a wrong write."""

import json

from rollout.controller.kube import ROLLOUTS, USER_AGENT
from rollout.sandbox.faults import FaultPlan
from tests.integration.conftest import NS, status_of
from tests.integration.test_canary import HTTPROUTES, app_weights, paused_at, promote, setup, weight_is
from tests.manifests import image_patch
from tests.waiting import wait_for


def controller_requests(cluster, since):
    return [r for r in list(cluster.api)[since:] if r.headers.get("User-Agent") == USER_AGENT]


def unresolved(generation):
    conditions = [
        {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        for type_, status, reason, message in (
            ("Accepted", "True", "Accepted", ""),
            ("ResolvedRefs", "False", "BackendNotFound", "backend web-canary not found"),
        )
    ]
    return {
        "parents": [
            {"parentRef": {"name": "public"}, "controllerName": "example.com/gw", "conditions": conditions}
        ]
    }


async def test_steady_state_reads_nothing_and_a_route_change_is_seen_at_once(cluster):
    # A resync far away: whatever happens below within seconds comes from the caches' triggers.
    async with cluster.controller(resync_seconds=600):
        await setup(cluster, [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}])
        since = len(list(cluster.api))
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(weight_is(cluster, 20), what="canary at 20%")
        await wait_for(paused_at(cluster, 1), what="paused at step 2")
        await promote(cluster)
        await wait_for(weight_is(cluster, 60), what="canary at 60%")
        await wait_for(paused_at(cluster, 3), what="paused at step 4")

        requests = controller_requests(cluster, since)
        reads = [f"{r.method.value} {r.url}" for r in requests if r.method.value == "GET"]
        writes = [r for r in requests if r.method.value != "GET"]
        assert reads == [], f"reads outside the caches: {reads}"
        assert any(r.resource and r.resource.plural == "httproutes" for r in writes)

        # A Gateway reports that the route's backend cannot be resolved: the canary stops at once.
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        await cluster.kube.patch(
            HTTPROUTES, NS, "web", {"status": unresolved(route["metadata"]["generation"])}, sub="status"
        )

        async def reported():
            status = await status_of(cluster)
            return status if "BackendNotFound" in status.get("message", "") else None

        # Well within the resync period: the route's change reconciled the Rollout that reads it.
        status = await wait_for(reported, timeout=10, what="the route's ResolvedRefs=False shown")
        condition = next(c for c in status["conditions"] if c["type"] == "RouteStatus")
        assert condition["status"] == "False"
        assert app_weights(await cluster.kube.get(HTTPROUTES, NS, "web"))["web-canary"] == 0


async def test_stale_writes_cost_conflicts_and_fresh_reads_never_a_wrong_write(cluster):
    # Three writes in ten fail with 409, as a write guarded by a version the cache had but the
    # server no longer has; watches end early and repeat events. The controller reads again
    # from the API server after each conflict and from the re-listed caches after each drop.
    async with cluster.controller(resync_seconds=600):
        await setup(cluster, [{"setWeight": 20}, {"pause": {"duration": "1s"}}, {"setWeight": 60}])
        plan = FaultPlan(conflict=0.3, watch_drop=0.3, watch_duplicate=0.3, seed=3)
        cluster.api.faults = plan
        since = len(list(cluster.api))
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        async def completed():
            status = await status_of(cluster)
            done = status.get("phase") == "Healthy" and status.get("stableRevision") == status.get(
                "currentRevision"
            )
            return status if done and status.get("observedGeneration") == 2 else None

        await wait_for(completed, timeout=60, what="canary completed under conflicts and watch faults")
        cluster.api.faults = None
    assert plan.injected["conflict"] > 0 and plan.injected["watch_drop"] > 0, plan.injected
    weights = []
    for request in controller_requests(cluster, since):
        if request.method.value == "PATCH" and request.resource and request.resource.plural == "httproutes":
            for op in json.loads(request.text or "[]"):
                if op.get("path", "").endswith("/weight") and op.get("value") not in (None, 100):
                    weights.append(op["value"])
    # The canary's weights went up step by step and back to 0 once the stable Service moved over:
    # no write from a stale view ever took a step back.
    canary_weights = [w for w in weights if w in (0, 20, 60)]
    steps = [w for i, w in enumerate(canary_weights) if i == 0 or canary_weights[i - 1] != w]
    assert steps == [20, 60, 0], weights
