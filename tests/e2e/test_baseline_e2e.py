"""A canary with a baseline (canary.baselineService) on a real API server and controller-manager,
whose Gateway API CRD schema (CEL rules included) judges every route write: at setWeight 20 the
server's HTTPRoute sends 60/20/20 to the stable, baseline and canary Services, the baseline
ReplicaSet runs the stable template's image at the canary's size, and the baseline Service selects
the baseline's pods only (the stable Service none of them). After promotion, after an abort and
after the Rollout is deleted, the route is back to 100 stable with no baseline backend and the
baseline ReplicaSet is gone or at zero (garbage-collected with the Rollout)."""

import pytest

from rollout.kube import PODS, REPLICASETS, ROLLOUTS, SERVICES
from tests.e2e.helpers import HTTPROUTES, annotate, app_weights, phase_is, spec_of, wait_for
from tests.manifests import (
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)

pytestmark = pytest.mark.e2e

REVISION = "rollout.dev/revision"
BASELINE_OF = "rollout.dev/baseline-of"
STEPS = [{"setWeight": 20}, {"pause": {}}]


def selects(selector, pod):
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


async def canary_with_baseline_at_twenty(kube, ns):
    """Three Services, the HTTPRoute `web` and a 4-replica canary with baselineService, Healthy at
    web:1, then updated to web:2 and paused after setWeight 20, checked there. Returns the route
    as it was at rest, the stable revision and the baseline's ReplicaSet name."""
    for name in ("web-stable", "web-canary", "web-baseline"):
        await kube.create(SERVICES, ns, service_manifest(name, namespace=ns))
    await kube.create(HTTPROUTES, ns, http_route_manifest(namespace=ns))
    strategy = canary_strategy(STEPS, scale_down_delay=2, baselineService="web-baseline")
    await kube.create(ROLLOUTS, ns, rollout_manifest(namespace=ns, replicas=4, strategy=strategy))
    v1 = (await wait_for(phase_is(kube, ns, "Healthy"), what="first deploy Healthy"))["stableRevision"]
    at_rest = await kube.get(HTTPROUTES, ns, "web")
    assert app_weights(at_rest) == {"web-stable": 100, "web-canary": 0}
    await kube.patch(ROLLOUTS, ns, "web", image_patch("web:2"))
    paused = await wait_for(phase_is(kube, ns, "Paused", 1), what="paused after setWeight 20")
    v2 = paused["currentRevision"]
    route = await kube.get(HTTPROUTES, ns, "web")
    assert app_weights(route) == {"web-stable": 60, "web-canary": 20, "web-baseline": 20}
    sets = await kube.list(REPLICASETS, ns)
    (baseline,) = [rs for rs in sets if rs["metadata"]["labels"].get(BASELINE_OF) == v1]
    canary = next(rs for rs in sets if rs["metadata"]["labels"][REVISION] == v2)
    stable = next(rs for rs in sets if rs["metadata"]["labels"][REVISION] == v1)
    revision = baseline["metadata"]["labels"][REVISION]
    assert revision not in (v1, v2) and paused["canary"]["baselineRevision"] == revision
    # Kept by the real server (declared in the CRD's status schema, not pruned).
    assert paused["canary"]["baselineWeight"] == 20 and paused["canary"]["baselineService"] == "web-baseline"
    assert baseline["spec"]["replicas"] == canary["spec"]["replicas"] == 1
    assert stable["spec"]["replicas"] == 4
    assert [c["image"] for c in baseline["spec"]["template"]["spec"]["containers"]] == ["web:1"]
    # The baseline Service selects the baseline's pod only; the stable Service none of its pods.
    pods = [p for p in await kube.list(PODS, ns) if not p["metadata"].get("deletionTimestamp")]
    baseline_selector = (await kube.get(SERVICES, ns, "web-baseline"))["spec"]["selector"]
    stable_selector = (await kube.get(SERVICES, ns, "web-stable"))["spec"]["selector"]
    chosen = [p for p in pods if selects(baseline_selector, p)]
    assert len(chosen) == 1 and chosen[0]["metadata"]["labels"][REVISION] == revision
    assert all(p["metadata"]["labels"][REVISION] == v1 for p in pods if selects(stable_selector, p))
    assert len([p for p in pods if selects(stable_selector, p)]) == 4
    return at_rest, v1, baseline["metadata"]["name"]


def phase_where(kube, ns, phase, check):
    """A probe: the status once in `phase` and `check(status)` holds."""

    async def probe():
        status = await phase_is(kube, ns, phase)()
        return status if status and check(status) else None

    return probe


async def back_as_written(kube, ns, at_rest, baseline_name):
    async def route_restored():
        route = await kube.get(HTTPROUTES, ns, "web")
        return route if spec_of(route) == spec_of(at_rest) else None

    route = await wait_for(route_restored, what="the route back at 100 stable, no baseline backend")
    assert app_weights(route) == {"web-stable": 100, "web-canary": 0}

    async def baseline_down():
        found = await kube.get(REPLICASETS, ns, baseline_name)
        return found is None or found["spec"]["replicas"] == 0

    await wait_for(baseline_down, what="the baseline ReplicaSet gone or at zero")


async def test_baseline_beside_the_canary_then_removed_at_promotion(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    at_rest, v1, baseline_name = await canary_with_baseline_at_twenty(kube, namespace)
    await annotate(kube, namespace, "rollout.dev/promote", "step")
    healthy = phase_where(kube, namespace, "Healthy", lambda status: status["stableRevision"] != v1)
    await wait_for(healthy, what="web:2 stable and Healthy")
    await back_as_written(kube, namespace, at_rest, baseline_name)


async def test_baseline_removed_after_abort(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    at_rest, _, baseline_name = await canary_with_baseline_at_twenty(kube, namespace)
    await annotate(kube, namespace, "rollout.dev/abort")
    aborted = phase_where(kube, namespace, "Degraded", lambda status: status.get("aborted"))
    await wait_for(aborted, what="aborted")
    await back_as_written(kube, namespace, at_rest, baseline_name)


async def test_deleting_the_rollout_restores_the_route_and_the_baseline_goes_with_it(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    at_rest, _, baseline_name = await canary_with_baseline_at_twenty(kube, namespace)
    await kube.delete(ROLLOUTS, namespace, "web")

    async def rollout_gone():
        return await kube.get(ROLLOUTS, namespace, "web") is None

    await wait_for(rollout_gone, what="the Rollout deleted once its finalizer restored the route")
    await back_as_written(kube, namespace, at_rest, baseline_name)
