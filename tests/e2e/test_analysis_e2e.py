"""Analysis gates on a real API server against a real Prometheus: the scenarios of
tests/integration/test_analysis_prometheus.py and test_bluegreen_prometheus.py, with the
controller as a subprocess and every object the users' traffic depends on (the Services'
selectors, the HTTPRoute's weights) read back from the server.

Each test runs its own Prometheus (tests/prom/stack.py) scraping one emulated application
process per revision, and a load generator sending requests where the server's objects say
users go. It proves that:

- blue/green: a healthy new revision passes its pre- and post-promotion analyses and becomes
  active; a new revision answering 500s fails pre-promotion analysis, the active Service never
  leaves the old revision, and the Rollout is Degraded with a message naming that analysis;
- canary on an HTTPRoute: an analysis step that passes lets the canary complete (route 100/0,
  both Services on the new revision); one that fails puts the route back to 100/0 (stable 100)
  and the Rollout is Degraded with the failing measurement's message;
- role labels (canaryMetadata/stableMetadata) in a query: Prometheus finds its targets through
  service discovery from the real pods' labels, and a query on role="canary" measures only the
  canary's pods: a healthy canary passes beside a stable answering half its requests with 500s."""

import asyncio
import json
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import parse_rollout
from rollout.engine.decide import current_revision
from rollout.kube import ANALYSIS_TEMPLATES, PODS, ROLLOUTS, SERVICES
from tests.e2e.helpers import HTTPROUTES, app_weights, wait_for
from tests.manifests import (
    blue_green_strategy,
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.processes import free_port
from tests.prom.stack import LoadGenerator, PrometheusServer, Workload, route_revision_weights
from tests.waiting import in_background

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
V2_IMAGE = "registry.example/web:2"
# Measure every second over a 5 s window, three times, once the new revision has had traffic
# for 5 s (the built-in templates' defaults are minutes).
FAST = {"interval": "1s", "count": "3", "window": "5s", "initial-delay": "5s"}
PREVIEW_SHARE = 10  # percent of the load a tester sends to the blue/green preview Service
AT_REST = {"web-stable": 100, "web-canary": 0}


def success_rate():
    """A reference to the built-in success-rate template, installed in the test's namespace."""
    return {
        "templates": [{"name": "http-success-rate"}],
        "args": [{"name": k, "value": v} for k, v in FAST.items()],
    }


async def install_templates(kube, ns):
    """The built-in ClusterAnalysisTemplates of examples/, as AnalysisTemplates of this namespace
    (cluster-scoped objects would be shared with the other tests on this server)."""
    for template in yaml.safe_load_all((EXAMPLES / "analysis-templates.yaml").read_text()):
        template["kind"] = "AnalysisTemplate"
        template["metadata"]["namespace"] = ns
        await kube.create(ANALYSIS_TEMPLATES, ns, template)


def revisions(manifest):
    """(v1, v2): the revisions of `manifest` and of it with V2_IMAGE, as the controller names them."""
    updated = {
        **manifest,
        "spec": {**manifest["spec"], "template": image_patch(V2_IMAGE)["spec"]["template"]},
    }
    return current_revision(parse_rollout(manifest).rollout), current_revision(parse_rollout(updated).rollout)


async def selected(kube, ns, service):
    return (await kube.get(SERVICES, ns, service))["spec"]["selector"].get(REVISION_LABEL)


def status_when(kube, ns, accept):
    async def probe():
        status = ((await kube.get(ROLLOUTS, ns, "web")) or {}).get("status") or {}
        return status if accept(status) else None

    return probe


def healthy_at(kube, ns, revision):
    return status_when(
        kube,
        ns,
        lambda s: (
            s.get("phase") == "Healthy" and s.get("stableRevision") == s.get("currentRevision") == revision
        ),
    )


def degraded(kube, ns):
    return status_when(kube, ns, lambda s: s.get("phase") == "Degraded" and s.get("aborted"))


def run_named(status, name):
    return next(r for r in status["analysisRuns"] if r["name"] == name)


@asynccontextmanager
async def stack(kube, ns, monkeypatch, start_controller, manifest, weights, *, v2_errors=0.0, route=False):
    """One workload process per revision (v2 answering `v2_errors` of its requests with 500),
    Prometheus scraping both, the templates installed, the controller started with that
    Prometheus, the Rollout deployed at v1 (Healthy) and load flowing the way `weights(kube, ns)`
    reads the server's objects; yields (v1, v2) workloads. Everything it starts is stopped."""
    v1, v2 = revisions(manifest)
    with ExitStack() as stop:
        stable = Workload(v1)
        stop.callback(stable.stop)
        canary = Workload(v2, error_ratio=v2_errors)
        stop.callback(canary.stop)
        prometheus = PrometheusServer([stable, canary], ns)
        stop.callback(prometheus.stop)
        await install_templates(kube, ns)
        monkeypatch.setenv("ROLLOUT_PROMETHEUS_ADDRESS", prometheus.url)  # what --prometheus-address reads
        start_controller()
        services = ("web-stable", "web-canary") if route else ("web-active", "web-preview")
        for name in services:
            await kube.create(SERVICES, ns, service_manifest(name, namespace=ns))
        if route:
            body = http_route_manifest(namespace=ns)
            body["metadata"] = {"name": "web", "namespace": ns}
            await kube.create(HTTPROUTES, ns, body)
        await kube.create(ROLLOUTS, ns, manifest)
        await wait_for(healthy_at(kube, ns, v1), what="v1 Healthy")
        async with LoadGenerator([stable, canary], weights(kube, ns)):
            yield stable, canary


# Blue/green ------------------------------------------------------------------------------------


def blue_green_weights(kube, ns):
    """Users on the active Service's revision; a tester's share on the preview Service's."""

    async def read():
        active, preview = [await selected(kube, ns, name) for name in ("web-active", "web-preview")]
        weights = {active: 100 - PREVIEW_SHARE}
        weights[preview] = weights.get(preview, 0) + PREVIEW_SHARE
        return weights

    return read


@asynccontextmanager
async def watching_active(kube, ns):
    """Every revision the active Service selected while the block ran, in order."""
    seen: list[str] = []

    async def watch():
        while True:
            revision = await selected(kube, ns, "web-active")
            if not seen or seen[-1] != revision:
                seen.append(revision)
            await asyncio.sleep(0.05)

    async with in_background(watch()):
        yield seen


async def test_blue_green_healthy_revision_passes_both_analyses_and_becomes_active(
    kube, namespace, pods_made_ready, start_controller, monkeypatch
):
    strategy = blue_green_strategy(
        scale_down_delay=2, prePromotionAnalysis=success_rate(), postPromotionAnalysis=success_rate()
    )
    manifest = rollout_manifest(namespace=namespace, replicas=2, strategy=strategy)
    async with AsyncExitStack() as stack_:
        blue, green = await stack_.enter_async_context(
            stack(kube, namespace, monkeypatch, start_controller, manifest, blue_green_weights)
        )
        seen = await stack_.enter_async_context(watching_active(kube, namespace))
        await kube.patch(ROLLOUTS, namespace, "web", image_patch(V2_IMAGE))
        status = await wait_for(healthy_at(kube, namespace, green.revision), timeout=150, what="green active")
        # Users moved once, from blue to green; the preview Service follows the active one at rest.
        assert seen == [blue.revision, green.revision]
        assert await selected(kube, namespace, "web-active") == green.revision
        assert await selected(kube, namespace, "web-preview") == green.revision
    for name in ("pre-promotion", "post-promotion"):
        run = run_named(status, name)
        assert run["phase"] == "Successful" and run["revision"] == green.revision, run
        assert run["metrics"][0]["successful"] == 3, run
    assert status["blueGreen"]["activeRevision"] == green.revision
    assert not status.get("aborted")


async def test_blue_green_failing_pre_promotion_analysis_keeps_users_on_the_old_revision(
    kube, namespace, pods_made_ready, start_controller, monkeypatch
):
    strategy = blue_green_strategy(
        scale_down_delay=2, prePromotionAnalysis=success_rate(), postPromotionAnalysis=success_rate()
    )
    manifest = rollout_manifest(namespace=namespace, replicas=2, strategy=strategy)
    async with AsyncExitStack() as stack_:
        blue, green = await stack_.enter_async_context(
            stack(kube, namespace, monkeypatch, start_controller, manifest, blue_green_weights, v2_errors=0.5)
        )
        seen = await stack_.enter_async_context(watching_active(kube, namespace))
        await kube.patch(ROLLOUTS, namespace, "web", image_patch(V2_IMAGE))

        async def previewed():
            return await selected(kube, namespace, "web-preview") == green.revision

        await wait_for(previewed, timeout=60, what="green on the preview Service")
        status = await wait_for(degraded(kube, namespace), timeout=90, what="pre-promotion analysis failed")
        assert seen == [blue.revision]  # users never left blue
        assert await selected(kube, namespace, "web-active") == blue.revision

        async def preview_back():
            return await selected(kube, namespace, "web-preview") == blue.revision

        await wait_for(preview_back, timeout=30, what="the preview Service back on blue")
        assert seen == [blue.revision]
    assert status["stableRevision"] == blue.revision
    assert status["blueGreen"]["activeRevision"] == blue.revision
    run = run_named(status, "pre-promotion")
    assert run["phase"] == "Failed" and run["revision"] == green.revision
    assert not any(r["name"] == "post-promotion" for r in status["analysisRuns"])
    assert "pre-promotion" in status["message"] and "success-rate" in status["message"], status["message"]


# Canary on an HTTPRoute ------------------------------------------------------------------------


def route_weights(kube, ns):
    """revision -> weight, from the HTTPRoute and the Services' selectors on the server."""
    return lambda: route_revision_weights(kube, ns, "web")


CANARY_STEPS = [{"setWeight": 20}, {"analysis": success_rate()}, {"setWeight": 60}]


async def route_at(kube, ns):
    return app_weights(await kube.get(HTTPROUTES, ns, "web"))


async def test_canary_analysis_step_that_passes_completes(
    kube, namespace, routing_installed, pods_made_ready, start_controller, monkeypatch
):
    strategy = canary_strategy(CANARY_STEPS, scale_down_delay=2)
    manifest = rollout_manifest(namespace=namespace, replicas=2, strategy=strategy)
    async with stack(kube, namespace, monkeypatch, start_controller, manifest, route_weights, route=True) as (
        stable,
        canary,
    ):
        await kube.patch(ROLLOUTS, namespace, "web", image_patch(V2_IMAGE))

        async def at_20():
            return await route_at(kube, namespace) == {"web-stable": 80, "web-canary": 20}

        await wait_for(at_20, timeout=60, what="canary at 20% on the route")
        status = await wait_for(healthy_at(kube, namespace, canary.revision), timeout=120, what="v2 stable")
        assert await route_at(kube, namespace) == AT_REST
        assert await selected(kube, namespace, "web-stable") == canary.revision
        assert await selected(kube, namespace, "web-canary") == canary.revision
    run = run_named(status, "step-2")
    assert run["phase"] == "Successful" and run["metrics"][0]["successful"] == 3, run
    assert stable.revision != canary.revision and not status.get("aborted")


async def test_canary_analysis_step_that_fails_returns_the_route_to_stable(
    kube, namespace, routing_installed, pods_made_ready, start_controller, monkeypatch
):
    strategy = canary_strategy(CANARY_STEPS, scale_down_delay=2)
    manifest = rollout_manifest(namespace=namespace, replicas=2, strategy=strategy)
    async with stack(
        kube, namespace, monkeypatch, start_controller, manifest, route_weights, v2_errors=0.5, route=True
    ) as (stable, canary):
        await kube.patch(ROLLOUTS, namespace, "web", image_patch(V2_IMAGE))

        async def at_20():
            return await route_at(kube, namespace) == {"web-stable": 80, "web-canary": 20}

        await wait_for(at_20, timeout=60, what="canary at 20% on the route")
        status = await wait_for(degraded(kube, namespace), timeout=90, what="analysis failed")
        # Traffic goes back to stable before the abort is reported: no wait here.
        assert await route_at(kube, namespace) == AT_REST
        assert await selected(kube, namespace, "web-stable") == stable.revision
    assert status["stableRevision"] == stable.revision != canary.revision
    metric = run_named(status, "step-2")["metrics"][0]
    failed = next(m for m in metric["measurements"] if m["phase"] == "Failed")
    assert "result[0] >= 0.99" in failed["message"], failed
    assert failed["message"] in status["message"], (failed["message"], status["message"])
    assert "step-2" in status["message"] and "success-rate" in status["message"]


# Role labels in a query ------------------------------------------------------------------------

# The canary's success rate, its pods chosen by their role label rather than a revision hash.
CANARY_ROLE_SUCCESS = {
    "name": "canary-role-success",
    "interval": "1s",
    "count": 3,
    # New targets reach Prometheus' scrapers only every ~5 s, and a rate needs two scrapes.
    "initialDelay": "12s",
    "successCondition": "result[0] >= 0.99",
    "failureLimit": 0,
    "provider": {
        "prometheus": {
            "query": '1 - ((sum(rate(http_requests_total{namespace="{{args.namespace}}", role="canary", '
            'code=~"5.."}[5s])) or vector(0)) / sum(rate(http_requests_total{namespace="{{args.namespace}}", '
            'role="canary"}[5s])))'
        }
    },
}


@asynccontextmanager
async def pod_discovery(kube, ns, workloads):
    """Prometheus' HTTP service discovery, from the pods on the server: a target per revision
    with live pods (that revision's workload process), labelled from its pods' labels as a
    Kubernetes scrape config's relabelling would (role from the pod label `role`)."""
    by_revision = {w.revision: w for w in workloads}

    async def targets(request):
        groups = {}
        for pod in await kube.list(PODS, ns, "app=web"):
            meta = pod["metadata"]
            labels = meta.get("labels") or {}
            workload = by_revision.get(labels.get(REVISION_LABEL))
            if workload is None or meta.get("deletionTimestamp"):
                continue
            groups[workload.revision] = {
                "targets": [f"127.0.0.1:{workload.port}"],
                "labels": {
                    "namespace": ns,
                    "rollout_dev_revision": workload.revision,
                    "role": labels.get("role", ""),
                },
            }
        return web.json_response(list(groups.values()))

    app = web.Application()
    app.router.add_get("/targets", targets)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/targets"
    finally:
        await runner.cleanup()


async def test_a_query_on_role_canary_measures_only_the_canary_pods(
    kube, namespace, routing_installed, pods_made_ready, start_controller, monkeypatch
):
    steps = [{"setWeight": 50}, {"analysis": {"templates": [{"name": "canary-role"}]}}]
    strategy = canary_strategy(
        steps,
        scale_down_delay=2,
        canaryMetadata={"labels": {"role": "canary"}},
        stableMetadata={"labels": {"role": "stable"}},
    )
    manifest = rollout_manifest(namespace=namespace, replicas=2, strategy=strategy)
    v1, v2 = revisions(manifest)
    template = {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "canary-role", "namespace": namespace},
        "spec": {"metrics": [CANARY_ROLE_SUCCESS]},
    }
    async with AsyncExitStack() as stop:
        stable = Workload(v1, error_ratio=0.5)  # were its requests counted, the rate would be ~0.75
        stop.callback(stable.stop)
        canary = Workload(v2)
        stop.callback(canary.stop)
        discovery = await stop.enter_async_context(pod_discovery(kube, namespace, [stable, canary]))
        prometheus = await asyncio.to_thread(
            PrometheusServer, [stable, canary], namespace, discovery=discovery
        )
        stop.callback(prometheus.stop)
        await kube.create(ANALYSIS_TEMPLATES, namespace, template)
        monkeypatch.setenv("ROLLOUT_PROMETHEUS_ADDRESS", prometheus.url)
        start_controller()
        for name in ("web-stable", "web-canary"):
            await kube.create(SERVICES, namespace, service_manifest(name, namespace=namespace))
        await kube.create(HTTPROUTES, namespace, http_route_manifest(namespace=namespace))
        await kube.create(ROLLOUTS, namespace, manifest)
        await wait_for(healthy_at(kube, namespace, v1), what="v1 Healthy")
        await asyncio.to_thread(prometheus.wait_scraping, 1)  # v1's pods, found through discovery
        await stop.enter_async_context(LoadGenerator([stable, canary], route_weights(kube, namespace)))
        await kube.patch(ROLLOUTS, namespace, "web", image_patch(V2_IMAGE))
        status = await wait_for(healthy_at(kube, namespace, v2), timeout=120, what="v2 stable")
    run = run_named(status, "step-2")
    metric = run["metrics"][0]
    assert run["phase"] == "Successful" and metric["successful"] == 3, run
    # Only the canary's requests: 1 (the stable's 500s would make it about 0.75).
    assert all(json.loads(m["value"])[0] >= 0.99 for m in metric["measurements"]), metric
