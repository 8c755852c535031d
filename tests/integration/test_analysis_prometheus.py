"""Analysis gates against a real Prometheus: the controller on the emulated cluster, the built-in
ClusterAnalysisTemplates from examples/, workload processes per revision scraped every second,
and a load generator that follows the route's weights the way a proxy would."""

import asyncio
import base64
import json
import time
from datetime import datetime

import pytest
import yaml

from rollout.analysis.prometheus import Prometheus, QueryError
from rollout.analysis.resolve import TemplateKey, builtin_args, resolve
from rollout.api.rollout import parse_rollout
from rollout.api.spec import RolloutAnalysis
from rollout.api.templates import AnalysisTemplateSpec, parse_template
from rollout.kube import (
    ANALYSIS_TEMPLATES,
    REPLICASETS,
    ROLLOUTS,
    SECRETS,
)
from tests.emulated import (
    HTTPROUTES,
    NS,
    app_weights,
    degraded,
    event_reasons,
    healthy_at,
    status_of,
    weight_is,
)
from tests.integration.prometheus_setup import EXAMPLES, args, stack
from tests.manifests import (
    canary_strategy,
    image_patch,
    rollout_manifest,
)
from tests.prom.stack import (
    REVISION,
    PrometheusServer,
    basic_auth,
    first_query,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.prometheus


def analysis_step(*templates, **extra):
    return {
        "analysis": {
            "templates": [{"name": t, "clusterScope": True} for t in templates],
            "args": args(**extra),
        }
    }


def pod_weights(cluster):
    """revision -> ready pods: what a Service selecting every revision spreads traffic over."""

    async def read():
        items = await cluster.kube.list(REPLICASETS, NS)
        return {
            rs["metadata"]["labels"][REVISION]: (rs.get("status") or {}).get("readyReplicas", 0)
            for rs in items
        }

    return read


def canary_rollout(steps, **extra):
    return rollout_manifest(replicas=2, strategy=canary_strategy(steps, scale_down_delay=1, **extra))


def events_seen(cluster, *wanted):
    """Events are posted right after the status write: wait for them rather than race them."""

    async def probe():
        reasons = await event_reasons(cluster)
        return all(reason in reasons for reason in wanted)

    return probe


def last_value(metric):
    """The latest measurement of a vector query: "[0.998]" -> 0.998."""
    return json.loads(metric["measurements"][-1]["value"])[0]


def condition(status, type_):
    return next(c for c in status["conditions"] if c["type"] == type_)


async def test_a_healthy_canary_is_promoted_through_every_step(cluster):
    steps = [
        {"setWeight": 20},
        analysis_step("http-success-rate", "http-latency-p99"),
        {"setWeight": 50},
        analysis_step("http-success-rate"),
    ]
    manifest = canary_rollout(steps)
    async with stack(cluster, manifest) as (_, _, canary):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(healthy_at(cluster, canary.revision), timeout=60, what="v2 promoted")
        await wait_for(events_seen(cluster, "RolloutCompleted"), what="the completion Event")
    runs = {r["name"]: r for r in status["analysisRuns"]}
    assert runs["step-2"]["phase"] == "Successful" and runs["step-4"]["phase"] == "Successful"
    success = next(m for m in runs["step-2"]["metrics"] if m["name"] == "success-rate")
    assert success["successful"] == 3 and last_value(success) >= 0.99
    latency = next(m for m in runs["step-2"]["metrics"] if m["name"] == "latency-p99")
    assert last_value(latency) <= 0.5
    assert condition(status, "Analysis")["status"] == "True"
    reasons = await event_reasons(cluster)
    assert reasons.count("AnalysisSuccessful") == 2 and "RolloutAborted" not in reasons


async def test_an_error_ratio_rising_after_the_first_step_rolls_back(cluster):
    steps = [{"setWeight": 20}, analysis_step("http-success-rate", count="5"), {"setWeight": 60}]
    manifest = canary_rollout(steps)
    async with stack(cluster, manifest) as (_, stable, canary):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(weight_is(cluster, 20), timeout=20, what="canary at 20%")
        canary.configure(error_ratio=0.2)
        status = await wait_for(degraded(cluster), timeout=40, what="automatic rollback")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
        await wait_for(events_seen(cluster, "AnalysisFailed", "RolloutAborted"), what="the Events")
    assert status["stableRevision"] == stable.revision
    analysis = condition(status, "Analysis")
    assert analysis["status"] == "False" and analysis["reason"] == "Failed"
    assert "success-rate" in analysis["message"] and "result[0] >= 0.99" in analysis["message"]
    assert "success-rate" in status["abortReason"]
    assert "RolloutCompleted" not in await event_reasons(cluster)  # v2 never became stable


async def test_a_latency_regression_rolls_back(cluster):
    steps = [{"setWeight": 30}, analysis_step("http-latency-p99"), {"setWeight": 60}]
    manifest = canary_rollout(steps)
    async with stack(cluster, manifest, v2_latency_ms=800) as (_, stable, _):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(degraded(cluster), timeout=40, what="rollback on latency")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    p99 = last_value(run["metrics"][0])
    assert p99 > 0.5, p99  # the 800 ms requests, through the histogram's buckets
    assert "latency-p99" in condition(status, "Analysis")["message"]
    assert status["stableRevision"] == stable.revision


async def test_a_query_matching_no_series_pauses_with_no_data(cluster):
    steps = [{"setWeight": 20}, analysis_step("http-success-rate", **{"revision-label": "no_such_label"})]
    manifest = canary_rollout(steps)
    async with stack(cluster, manifest):

        async def paused():
            status = await status_of(cluster)
            return status if status.get("phase") == "Paused" else None

        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(paused, timeout=30, what="paused on no data")
        await wait_for(events_seen(cluster, "AnalysisInconclusive"), what="the Event")
    assert [p["reason"] for p in status["pauseConditions"]] == ["AnalysisInconclusive"]
    assert "no data" in status["message"] and "no_such_label" in status["message"]
    assert "likely causes" in status["message"]
    assert status["canary"]["weight"] == 20 and not status.get("aborted")  # held, not promoted


async def test_prometheus_killed_mid_analysis_errors_and_never_promotes(cluster):
    steps = [{"setWeight": 20}, analysis_step("http-success-rate", count="30"), {"setWeight": 100}]
    manifest = canary_rollout(steps)
    async with stack(cluster, manifest) as (prometheus, stable, _):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        async def measured_once():
            status = await status_of(cluster)
            run = next((r for r in status.get("analysisRuns", []) if r["name"] == "step-2"), None)
            return run and run["metrics"] and run["metrics"][0]["successful"] >= 1

        await wait_for(measured_once, timeout=30, what="a first successful measurement")
        prometheus.kill()

        async def erroring():
            status = await status_of(cluster)
            run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
            return status if run["metrics"][0]["consecutiveErrors"] >= 2 else None

        held = await wait_for(erroring, timeout=30, what="errors counted")
        assert held["currentStepIndex"] == 1 and held["canary"]["weight"] == 20  # waiting at the step
        assert "unreachable" in held["message"]
        status = await wait_for(degraded(cluster), timeout=30, what="abort after consecutiveErrorLimit")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
    assert status["stableRevision"] == stable.revision
    analysis = condition(status, "Analysis")
    assert analysis["reason"] == "Error" and "consecutiveErrorLimit 4" in analysis["message"]
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    assert run["metrics"][0]["consecutiveErrors"] == 5
    assert "RolloutCompleted" not in await event_reasons(cluster)


async def test_a_successful_background_analysis_lets_a_rolling_update_finish(cluster):
    strategy = {
        "rolling": {
            "maxSurge": 1,
            "maxUnavailable": 0,
            "analysis": {"templates": [{"name": "http-success-rate", "clusterScope": True}], "args": args()},
        }
    }
    manifest = rollout_manifest(replicas=2, strategy=strategy)
    async with stack(cluster, manifest, weights=pod_weights, services=()) as (_, _, canary):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        async def waiting_on_analysis():
            status = await status_of(cluster)
            scaled = status.get("updatedReplicas") == 2 and status.get("phase") == "Progressing"
            return status if scaled and "analysis background" in status.get("message", "") else None

        waiting = await wait_for(waiting_on_analysis, timeout=30, what="all pods updated, analysis running")
        assert waiting["stableRevision"] != canary.revision
        status = await wait_for(healthy_at(cluster, canary.revision), timeout=30, what="v2 stable")
    run = next(r for r in status["analysisRuns"] if r["name"] == "background")
    assert run["phase"] == "Successful" and run["metrics"][0]["successful"] == 3


async def test_a_background_analysis_failing_during_a_long_timed_pause_rolls_back_at_once(cluster):
    """Each due measurement schedules its own reconcile: a 40 s pause does not delay the background
    analysis, even with the periodic resync (120 s) far longer than the pause. The failure counts
    as visible once Prometheus shows it and the initial delay (5 s) has passed."""
    interval, initial_delay = 2.0, 5.0
    steps = [{"setWeight": 20}, {"pause": {"duration": "40s"}}, {"setWeight": 60}]
    background = {
        "templates": [{"name": "http-success-rate", "clusterScope": True}],
        "args": args(interval="2s", count="100", **{"initial-delay": "5s"}),
    }
    manifest = canary_rollout(steps, analysis=background)
    async with stack(cluster, manifest, v2_errors=0.5, resync_seconds=120) as (prometheus, stable, canary):
        rollout = parse_rollout(manifest).rollout
        query = first_query(rollout, rollout.spec.strategy.canary.analysis, stable.revision, canary.revision)
        client = Prometheus(prometheus.url)
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(weight_is(cluster, 20), timeout=20, what="canary at 20%")
        paused_at = time.time()
        visible = restored = None
        while restored is None and time.time() - paused_at < 35:
            if visible is None:
                value = await asyncio.to_thread(client.query, query)
                if value and value[0] < 0.99:
                    visible = time.time()
            route = await cluster.kube.get(HTTPROUTES, NS, "web")
            if app_weights(route)["web-canary"] == 0:
                restored = time.time()
            await asyncio.sleep(0.05)
        assert restored is not None, "no rollback before the 40 s pause would have ended"
        status = await wait_for(degraded(cluster), timeout=10, what="Degraded")
    run = next(r for r in status["analysisRuns"] if r["name"] == "background")
    first_due = datetime.fromisoformat(run["startedAt"].replace("Z", "+00:00")).timestamp() + initial_delay
    assert visible is not None
    assert restored - max(visible, first_due) <= interval + 1.0, (visible, first_due, restored)
    assert status["stableRevision"] == stable.revision
    assert "background" in status["abortReason"]


def test_every_builtin_template_resolves_and_its_queries_run_on_prometheus():
    """Each built-in template is valid (model, conditions, arguments with the Rollout's built-ins)
    and Prometheus accepts each of its queries: no data here, but no parse error either."""
    rollout = parse_rollout(canary_rollout([{"setWeight": 10}])).rollout
    templates = list(yaml.safe_load_all((EXAMPLES / "analysis-templates.yaml").read_text()))
    lookup = {TemplateKey(t["metadata"]["name"], True): parse_template(t) for t in templates}
    assert len(lookup) == 10 and all(isinstance(spec, AnalysisTemplateSpec) for spec in lookup.values())
    builtins = builtin_args(rollout, "stablehash", "canaryhash")
    prometheus = PrometheusServer([], NS)
    try:
        client = Prometheus(prometheus.url)
        for key in lookup:
            ref = RolloutAnalysis(
                templates=[{"name": key.name, "clusterScope": True}],
                args=[{"name": "envoy-cluster", "value": "shop/web-canary"}],
            )
            metrics, errors = resolve(ref, "spec.analysis", lookup, builtins, bounded=True)
            assert not errors and metrics, (key, errors)
            for metric in metrics:
                assert "{{" not in metric.query
                assert metric.count == 5 and metric.interval == 60 and metric.initial_delay == 30
                assert client.query(metric.query) == [], (key, metric.query)
    finally:
        prometheus.stop()


REQUEST_RATE = 'sum(rate(http_requests_total{rollout_dev_revision="{{args.canary-hash}}"}[5s]))'


async def test_query_headers_are_read_from_a_secret(cluster):
    """A Prometheus behind basic auth: the template's Authorization header comes from a Secret."""
    template = {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "traffic", "namespace": NS},
        "spec": {
            "metrics": [
                {
                    "name": "requests",
                    "count": 2,
                    "interval": "1s",
                    "initialDelay": "5s",
                    "successCondition": "result[0] > 0",
                    "provider": {
                        "prometheus": {
                            "query": REQUEST_RATE,
                            "headers": [
                                {
                                    "key": "Authorization",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "prometheus-auth", "key": "header"}
                                    },
                                }
                            ],
                        }
                    },
                }
            ]
        },
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "prometheus-auth", "namespace": NS},
        "data": {"header": base64.b64encode(basic_auth("rollout", "s3cret").encode()).decode()},
    }
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, template)
    await cluster.kube.create(SECRETS, NS, secret)
    steps = [{"setWeight": 20}, {"analysis": {"templates": [{"name": "traffic"}]}}]
    manifest = canary_rollout(steps)
    async with stack(cluster, manifest, auth=("rollout", "s3cret")) as (prometheus, _, canary):
        with pytest.raises(QueryError, match="401"):
            Prometheus(prometheus.url).query("up")  # no header: refused
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(healthy_at(cluster, canary.revision), timeout=40, what="v2 promoted")
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    assert run["phase"] == "Successful" and run["metrics"][0]["successful"] == 2
