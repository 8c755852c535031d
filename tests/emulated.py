"""The emulated cluster of the integration tests (and of tests/fault_scenario.py), and what those
tests read and do on it: the Rollout and its status, ReplicaSets, Events and route weights, probes
for tests/waiting.py's wait_for, promote, and a canary deployed on the HTTPRoute `web`."""

import contextlib

from rollout.kube import EVENTS, REPLICASETS, ROLLOUTS, SERVICES, USER_AGENT, Resource
from rollout.sandbox.cluster import emulated_cluster
from rollout.sandbox.kubelet import image_matches
from tests.manifests import (
    HTTP_ROUTING,
    canary_strategy,
    http_route_manifest,
    rollout_manifest,
    service_manifest,
)
from tests.thirdparty import routing_crds
from tests.waiting import wait_for

NS = "shop"
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
VIRTUALSERVICES = Resource("networking.istio.io", "v1", "virtualservices")


@contextlib.asynccontextmanager
async def make_cluster(*, pods=False):
    """The emulated cluster of these tests (also for tests needing one per hypothesis example);
    `pods`: ReplicaSets' pods are real Pod objects (slower; for tests that read or evict pods)."""
    # Pods of an image with "broken" in it never become ready: a release that crash-loops.
    async with emulated_cluster(startup_seconds=0.2, never_ready=image_matches("broken"), pods=pods) as c:
        c.create_namespace(NS)
        for crd in routing_crds():  # routes are validated against their real schemas
            c.api.install_crd(crd)
        yield c


async def get_rollout(cluster, name="web"):
    """The Rollout as stored; `cluster` is the emulated cluster or any object with a `kube`."""
    return await cluster.kube.get(ROLLOUTS, NS, name)


async def status_of(cluster, name="web"):
    return (await get_rollout(cluster, name) or {}).get("status") or {}


async def replicasets(cluster):
    items = await cluster.kube.list(REPLICASETS, NS)
    return {rs["metadata"]["labels"]["rollout.dev/revision"]: rs for rs in items}


async def event_reasons(cluster, name="web"):
    events = await cluster.kube.list(EVENTS, NS)
    return [e["reason"] for e in events if e["involvedObject"]["name"] == name]


async def events_once(cluster, reason, fragment="", name="web"):
    """The Rollout's Events once one of `reason` whose message holds `fragment` is among them
    (Events are posted shortly after the status write that decided them)."""

    async def probe():
        events = [e for e in await cluster.kube.list(EVENTS, NS) if e["involvedObject"]["name"] == name]
        return events if any(e["reason"] == reason and fragment in e["message"] for e in events) else None

    return await wait_for(probe, what=f"a {reason} Event")


def controller_requests(cluster, since):
    """The requests the controller made to the emulated API server after the first `since`."""
    return [r for r in cluster.api.requests_since(since) if r.headers.get("User-Agent") == USER_AGENT]


def healthy_at(cluster, revision=None, name="web", other_than=None):
    """A probe: the status once Healthy and settled, on `revision` (any), past `other_than` (a
    revision it must have left: the one an update started from)."""

    async def probe():
        status = await status_of(cluster, name)
        stable = status.get("stableRevision")
        settled = status.get("phase") == "Healthy" and stable == status.get("currentRevision")
        wanted = (revision is None or stable == revision) and (other_than is None or stable != other_than)
        return status if settled and wanted else None

    return probe


def paused_at(cluster, index):
    async def probe():
        status = await status_of(cluster)
        return status if status.get("phase") == "Paused" and status.get("currentStepIndex") == index else None

    return probe


def degraded(cluster):
    """The Rollout aborted (Degraded)."""

    async def probe():
        status = await status_of(cluster)
        return status if status.get("phase") == "Degraded" and status.get("aborted") else None

    return probe


def app_weights(route):
    """Backend -> weight on the HTTPRoute's `app` rule."""
    rule = next(r for r in route["spec"]["rules"] if r.get("name") == "app")
    return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


def weight_is(cluster, weight, resource=HTTPROUTES, weights=app_weights):
    async def probe():
        route = await cluster.kube.get(resource, NS, "web")
        return route if weights(route).get("web-canary") == weight else None

    return probe


async def rolled_back_by_analysis(cluster, what):
    """Wait for the Rollout `web` to be aborted (Degraded) and its HTTPRoute back at 100/0; the
    status then, and its Analysis condition, which must say Failed."""

    async def aborted():
        status = await status_of(cluster)
        return status if status.get("phase") == "Degraded" and status.get("aborted") else None

    status = await wait_for(aborted, timeout=40, what=f"rollback on {what}")
    await wait_for(weight_is(cluster, 0), timeout=20, what="traffic back on stable")
    route = await cluster.kube.get(HTTPROUTES, NS, "web")
    assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
    analysis = next(c for c in status["conditions"] if c["type"] == "Analysis")
    assert analysis["status"] == "False" and analysis["reason"] == "Failed"
    return status, analysis


async def promote(cluster, value="step"):
    await cluster.kube.patch(
        ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/promote": value}}}
    )


async def setup(cluster, steps, routing=HTTP_ROUTING, route=None, resource=HTTPROUTES, replicas=4):
    """web-stable, web-canary, the route (the HTTPRoute `web` unless given) and a canary Rollout
    `web` on it (scale-down delays of 1 s); its status once the first deploy is Healthy."""
    for name in ("web-stable", "web-canary"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    await cluster.kube.create(resource, NS, route if route is not None else http_route_manifest())
    manifest = rollout_manifest(
        replicas=replicas, strategy=canary_strategy(steps, routing, scale_down_delay=1)
    )
    await cluster.kube.create(ROLLOUTS, NS, manifest)
    return await wait_for(healthy_at(cluster), what="first deploy Healthy")
