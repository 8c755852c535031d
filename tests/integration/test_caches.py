"""The controller reads from its watch-fed caches: nothing from the API server in the steady
state, a change to anything a Rollout refers to reconciles it at once, and a cache that is behind
costs a conflict and a fresh read, never a wrong write."""

import asyncio
import json

from rollout.kube import (
    ANALYSIS_TEMPLATES,
    CLUSTER_ANALYSIS_TEMPLATES,
    DESTINATION_RULES,
    ROLLOUTS,
    SECRETS,
    SERVICES,
    USER_AGENT,
    Resource,
)
from rollout.sandbox.faults import FaultPlan
from tests.emulated import (
    HTTPROUTES,
    NS,
    VIRTUALSERVICES,
    controller_requests,
    event_reasons,
    healthy_at,
    paused_at,
    promote,
    replicasets,
    setup,
    status_of,
    weight_is,
)
from tests.manifests import (
    canary_strategy,
    image_patch,
    rollout_manifest,
    service_manifest,
    unresolved_route_status,
)
from tests.waiting import wait_for


def controller_api(cluster):
    """An API client as the controller's (its User-Agent), which the fault layer picks out."""
    from rollout.kube import api_client_for

    api = api_client_for(cluster.url)
    api.user_agent = USER_AGENT
    return api


async def test_steady_state_reads_nothing_and_a_route_change_is_seen_at_once(cluster):
    # A resync far away: whatever happens below within seconds comes from the caches' triggers.
    async with cluster.controller(resync_seconds=600):
        await setup(cluster, [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}])
        since = cluster.api.request_count
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
            HTTPROUTES,
            NS,
            "web",
            {"status": unresolved_route_status(route["metadata"]["generation"])},
            sub="status",
        )

        # Well within the resync period: the route's change reconciled the Rollout that reads it,
        # which took the traffic back to stable and said why. (Its own write then makes the
        # Gateway's status one generation old, so later reconciles wait for a fresh one: the
        # Event and the weight are what stays.)
        await wait_for(weight_is(cluster, 0), timeout=10, what="traffic back on stable")

        async def told():
            return "RouteNotAccepted" in await event_reasons(cluster)

        await wait_for(told, timeout=5, what="the RouteNotAccepted Event")


async def test_stale_writes_cost_conflicts_and_fresh_reads_never_a_wrong_write(cluster):
    # Three writes in ten fail with 409, as a write guarded by a version the cache had but the
    # server no longer has; watches end early and repeat events. The controller reads again
    # from the API server after each conflict and from the re-listed caches after each drop.
    async with cluster.controller(resync_seconds=600):
        await setup(cluster, [{"setWeight": 20}, {"pause": {"duration": "1s"}}, {"setWeight": 60}])
        plan = FaultPlan(conflict=0.3, watch_drop=0.3, watch_duplicate=0.3, seed=3)
        cluster.api.faults = plan
        since = cluster.api.request_count
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


def destination_rule():
    subsets = [{"name": name, "labels": {"app": "web"}} for name in ("stable", "canary")]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"host": "web", "subsets": subsets},
    }


def subset_virtual_service():
    route = [
        {"destination": {"host": "web", "subset": "stable"}, "weight": 100},
        {"destination": {"host": "web", "subset": "canary"}, "weight": 0},
    ]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": route}]},
    }


def canary_subset_at(cluster, weight):
    async def probe():
        route = await cluster.kube.get(VIRTUALSERVICES, NS, "web")
        weights = {r["destination"]["subset"]: r["weight"] for r in route["spec"]["http"][0]["route"]}
        return weights if weights["canary"] == weight else None

    return probe


def analysis_template(kind, header=None):
    provider = {"prometheus": {"address": "http://127.0.0.1:9", "query": "up"}}
    if header is not None:
        provider["prometheus"]["headers"] = [header]
    cluster = kind == "ClusterAnalysisTemplate"
    metadata = {"name": "cluster-rate"} if cluster else {"name": "rate", "namespace": NS}
    metric = {
        "name": "cluster-rate" if cluster else "rate",
        "successCondition": "result[0] >= 0.99",
        "provider": provider,
    }
    return {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": {"metrics": [metric]},
    }


async def test_after_a_conflict_every_read_goes_to_the_api_server(cluster):
    header = {"key": "Authorization", "valueFrom": {"secretKeyRef": {"name": "prom-auth", "key": "token"}}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom-auth", "namespace": NS}}
    await cluster.kube.create(SECRETS, NS, {**secret, "data": {"token": "dG9rZW4="}})
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, analysis_template("AnalysisTemplate", header))
    await cluster.kube.create(CLUSTER_ANALYSIS_TEMPLATES, None, analysis_template("ClusterAnalysisTemplate"))
    await cluster.kube.create(DESTINATION_RULES, NS, destination_rule())
    routing = {
        "istio": {
            "virtualService": {"name": "web", "routes": ["primary"]},
            "destinationRule": {"name": "web", "stableSubset": "stable", "canarySubset": "canary"},
        }
    }
    templates = [{"name": "rate"}, {"name": "cluster-rate", "clusterScope": True}]
    steps = [{"setWeight": 20}, {"analysis": {"templates": templates}}]
    async with cluster.controller(resync_seconds=600):
        await setup(cluster, steps, routing, subset_virtual_service(), VIRTUALSERVICES)
        since = cluster.api.request_count
        # Every write now conflicts, as one guarded by a version the server has moved past.
        plan = FaultPlan(conflict=1.0)
        cluster.api.faults = plan
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        async def read_again():
            fetched = {
                r.resource.plural
                for r in controller_requests(cluster, since)
                if r.method.value == "GET" and r.resource and r.params.get("watch") not in ("true", "1")
            }
            wanted = {
                "rollouts",
                "replicasets",
                "services",
                "virtualservices",
                "destinationrules",
                "analysistemplates",
                "clusteranalysistemplates",
                "secrets",
            }
            return fetched if wanted <= fetched else None

        await wait_for(read_again, timeout=10, what="a retry reading everything from the API server")
        cluster.api.faults = None
        assert plan.injected["conflict"] > 0
        await wait_for(canary_subset_at(cluster, 20), what="the canary at 20% after the conflicts")


def gateway_route(kind, name):
    backends = [{"name": "web-stable", "port": 8080}, {"name": "web-canary", "port": 8080, "weight": 0}]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": {"parentRefs": [{"name": "public"}], "rules": [{"backendRefs": backends}]},
    }


GRPCROUTES = Resource("gateway.networking.k8s.io", "v1", "grpcroutes")
TCPROUTES = Resource("gateway.networking.k8s.io", "v1", "tcproutes")


async def test_grpc_and_tcp_routes_conflicts_and_history_on_three_revisions(cluster):
    """A canary on a GRPCRoute and a TCPRoute together, through three revisions with a history
    of one: both routes step and settle, the second update meets conflicts (the retry reads
    both routes from the API server), and the oldest ReplicaSet is deleted."""
    await cluster.kube.create(GRPCROUTES, NS, gateway_route("GRPCRoute", "web-grpc"))
    await cluster.kube.create(TCPROUTES, NS, gateway_route("TCPRoute", "web-tcp"))
    routing = {"gatewayAPI": {"grpcRoutes": [{"name": "web-grpc"}], "tcpRoutes": [{"name": "web-tcp"}]}}
    for name in ("web-stable", "web-canary"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    strategy = canary_strategy(
        [{"setWeight": 50}, {"pause": {"duration": "1s"}}], routing, scale_down_delay=1
    )
    manifest = rollout_manifest(replicas=2, strategy=strategy, revisionHistoryLimit=1)
    async with cluster.controller(resync_seconds=600):
        await cluster.kube.create(ROLLOUTS, NS, manifest)
        first = (await wait_for(healthy_at(cluster), what="first deploy"))["stableRevision"]
        seen_at_50 = set()
        since = cluster.api.request_count
        for image in ("web:2", "web:3"):
            if image == "web:3":
                cluster.api.faults = FaultPlan(conflict=1.0)
            await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch(image))

            async def both_at_50():
                weights = []
                for res, name in ((GRPCROUTES, "web-grpc"), (TCPROUTES, "web-tcp")):
                    route = await cluster.kube.get(res, NS, name)
                    weights.append(route["spec"]["rules"][0]["backendRefs"][1].get("weight"))
                return weights == [50, 50]

            if image == "web:3":
                await asyncio.sleep(1.0)
                cluster.api.faults = None
            if await wait_for(both_at_50, what=f"both routes at 50% for {image}"):
                seen_at_50.add(image)
            status = await wait_for(healthy_at(cluster), what=f"{image} Healthy")
            assert status["stableRevision"] != first
        fetched = {
            r.resource.plural
            for r in controller_requests(cluster, since)
            if r.method.value == "GET" and r.resource and r.params.get("watch") not in ("true", "1")
        }
        assert {"grpcroutes", "tcproutes"} <= fetched, fetched

        async def history_of_one():
            revisions = await replicasets(cluster)
            return revisions if first not in revisions and len(revisions) == 2 else None

        await wait_for(history_of_one, what="the oldest ReplicaSet deleted")
    assert seen_at_50 == {"web:2", "web:3"}
    for res, name in ((GRPCROUTES, "web-grpc"), (TCPROUTES, "web-tcp")):
        route = await cluster.kube.get(res, NS, name)
        assert [ref.get("weight") for ref in route["spec"]["rules"][0]["backendRefs"]] == [100, 0]


async def test_a_watch_the_server_never_ends_is_watched_again_not_listed_again(cluster):
    """kmock's emulator, unlike a real API server, does not end a watch at timeoutSeconds: the
    read then times out. That is the watch's end, not a failure: a new watch from the last
    version follows, no list of the whole kind, and nothing is missed."""
    from rollout.controller.cache import CachedKind, Caches
    from rollout.kube import api_client_for

    changes = []
    caches = Caches(
        lambda: api_client_for(cluster.url),
        [CachedKind(SERVICES)],
        [NS],
        on_change=lambda res, key, old, new: changes.append(key),
        watch_seconds=1,
        read_grace=0.5,
    )
    since = cluster.api.request_count
    caches.start()
    try:
        assert await caches.wait_started(10)
        await asyncio.sleep(4)  # at least two watches timed out
        await cluster.kube.create(SERVICES, NS, service_manifest("late"))
        await wait_for(
            lambda: _listed_and(caches.stores[SERVICES].get(NS, "late")), timeout=5, what="late Service seen"
        )
    finally:
        caches.stop()
    lists, watches = service_reads(cluster, since)
    assert len(lists) == 1, [r.params for r in lists]
    assert len(watches) >= 3
    assert (NS, "late") in changes
    assert caches.serves(SERVICES, NS)


async def test_a_watch_the_server_ends_early_is_watched_again_from_its_version_not_listed_again(cluster):
    """A real server ends a watch whose reader falls behind; the reflector watches again from the
    last version it saw, which the server replays from (the emulator too, see test_faults.py),
    instead of listing the whole kind again: at N = 3,000 Rollouts those lists were about 50 of 6
    pages each in a wave. Creates, a relabel and deletes made while watches were being cut are
    all seen, after one list."""
    from rollout.controller.cache import CachedKind, Caches

    caches = Caches(lambda: controller_api(cluster), [CachedKind(SERVICES)], [NS], on_change=lambda *_: None)
    since = cluster.api.request_count
    caches.start()
    try:
        assert await caches.wait_started(10)
        cluster.api.faults = FaultPlan(watch_drop=0.3, seed=11)  # a third of the events end their stream
        names = [f"svc-{i}" for i in range(8)]
        for name in names:
            await cluster.kube.create(SERVICES, NS, service_manifest(name))
        await cluster.kube.patch(SERVICES, NS, names[0], {"metadata": {"labels": {"tier": "front"}}})
        for name in names[-3:]:
            await cluster.kube.delete(SERVICES, NS, name)
        store = caches.stores[SERVICES]

        async def all_seen():
            held = sorted(key[1] for key in store.objects)
            labels = (store.get(NS, names[0]) or {}).get("metadata", {}).get("labels") or {}
            return held == names[:-3] and labels.get("tier") == "front"

        await wait_for(all_seen, timeout=20, what="every change seen")
        dropped = cluster.api.faults.injected["watch_drop"]
    finally:
        cluster.api.faults = None
        caches.stop()
    lists, watches = service_reads(cluster, since)
    assert dropped >= 2 and len(watches) > dropped, (dropped, len(watches))
    assert len(lists) == 1, [r.params for r in lists]
    from_versions = [r.params.get("resourceVersion", "") for r in watches[1:]]
    assert all(version.isdigit() for version in from_versions), from_versions
    assert caches.serves(SERVICES, NS)


def service_reads(cluster, since):
    """The lists and the watches of Services the emulator served after request `since`."""
    served = [
        r
        for r in cluster.api.requests_since(since)
        if r.method.value == "GET" and r.resource is not None and r.resource.plural == "services"
    ]
    watches = [r for r in served if r.params.get("watch") in ("true", "1")]
    lists = [r for r in served if r.params.get("watch") not in ("true", "1")]
    return lists, watches


async def _listed_and(value):
    return value
