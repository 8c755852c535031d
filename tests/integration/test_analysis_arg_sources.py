"""dryRun and arguments from Secrets and fields, end to end: the controller on the emulated
cluster, a real Prometheus scraping a workload process per revision, and load following the
route's weights.

- A failing dry-run metric leaves the canary completing (Healthy, the new revision stable with
  all the traffic) and says so in status, in an Event and in `rollout get`.
- A query whose label value comes from a Secret (with a quote in it, escaped for PromQL) and one
  from the Rollout's namespace (fieldRef) measures correctly; the secret value is nowhere in
  status, Events, `rollout get` or the controller's own log (run as a process, its output kept)."""

import base64
import json
from contextlib import ExitStack

import pytest

from rollout.kube import ANALYSIS_TEMPLATES, REPLICASETS, ROLLOUTS, SECRETS, SERVICES
from tests.emulated import HTTPROUTES, NS, events_once, healthy_at, status_of
from tests.integration.command_line import rollout_cli
from tests.integration.prometheus_setup import revisions, route_weights, stack
from tests.manifests import (
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.processes import ControllerProcesses
from tests.prom.stack import LoadGenerator, PrometheusServer, Workload, route_revision_weights
from tests.waiting import wait_for

pytestmark = pytest.mark.prometheus

CANARY = 'rollout_dev_revision="{{args.canary-hash}}"'
REQUESTS = f"sum(rate(http_requests_total{{{CANARY}}}[5s]))"
ERROR_RATIO = f'sum(rate(http_requests_total{{{CANARY}, code=~"5.."}}[5s])) / {REQUESTS}'
# The label value the workloads' series carry, held by a Secret: a quote in it, so that the
# query only matches when the value is escaped for its PromQL string.
SECRET_VALUE = 'acme"7f3q-tenant'
SECRET_MARK = "7f3q"  # a part of it that nothing else here contains


def metric(name, query, condition):
    return {
        "name": name,
        "interval": "1s",
        "count": 3,
        "initialDelay": "5s",
        "successCondition": condition,
        "provider": {"prometheus": {"query": query}},
    }


def template(name, *metrics, **spec):
    return {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"metrics": list(metrics), **spec},
    }


def canary(analysis):
    steps = [{"setWeight": 20}, {"analysis": analysis}]
    return rollout_manifest(replicas=2, strategy=canary_strategy(steps, scale_down_delay=1))


async def test_a_failing_dry_run_metric_is_reported_and_the_canary_completes(cluster, tmp_path):
    await cluster.kube.create(
        ANALYSIS_TEMPLATES,
        NS,
        template(
            "canary-health",
            metric("requests", REQUESTS, "result[0] > 0"),
            metric("error-ratio", ERROR_RATIO, "result[0] <= 0.05"),
            dryRun=[{"metricName": "error-.*"}],
        ),
    )
    manifest = canary({"templates": [{"name": "canary-health"}]})
    async with stack(cluster, manifest, v2_errors=0.3) as (_, _, v2):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(healthy_at(cluster, v2.revision), timeout=60, what="v2 promoted")
        weights = await route_revision_weights(cluster.kube, NS, "web")
        code, shown, _ = await rollout_cli(
            cluster.kubeconfig(tmp_path / "kubeconfig"), "get", "rollout", "web"
        )
    assert not status.get("aborted") and weights == {v2.revision: 100}
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    assert run["phase"] == "Successful"
    by_name = {m["name"]: m for m in run["metrics"]}
    errors = by_name["error-ratio"]
    assert errors["dryRun"] is True and errors["phase"] == "Failed"
    assert json.loads(errors["measurements"][-1]["value"])[0] > 0.05  # measured as it is: ~0.3
    assert "requests" in by_name and by_name["requests"].get("dryRun") is None
    assert "dry-run metric error-ratio" in run["message"] and "Failed, not counted" in run["message"]
    events = await events_once(cluster, "AnalysisDryRun")
    dry = [e for e in events if e["reason"] == "AnalysisDryRun"]
    assert len(dry) == 1 and dry[0]["type"] == "Warning"
    assert dry[0]["message"].startswith("Analysis step-2: dry-run metric error-ratio Failed: [0.")
    assert "does not meet successCondition 'result[0] <= 0.05'" in dry[0]["message"]
    reasons = {e["reason"] for e in events}
    assert "RolloutCompleted" in reasons and not reasons & {"AnalysisFailed", "RolloutAborted"}
    assert code == 0 and "error-ratio (dry run: not counted): Failed" in shown


async def test_arguments_from_a_secret_and_a_field_measure_and_the_secret_never_shows(cluster, tmp_path):
    await cluster.kube.create(
        SECRETS,
        NS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tenancy", "namespace": NS},
            "data": {"tenant": base64.b64encode(SECRET_VALUE.encode()).decode()},
        },
    )
    labels = f'{CANARY}, tenant="{{{{args.tenant}}}}", namespace="{{{{args.ns}}}}"'
    query = f"sum(rate(http_requests_total{{{labels}}}[5s]))"
    requests_metric = metric("requests", query, "result[0] > 0")
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, template("tenant-traffic", requests_metric))
    manifest = canary(
        {
            "templates": [{"name": "tenant-traffic"}],
            "args": [
                {"name": "tenant", "valueFrom": {"secretKeyRef": {"name": "tenancy", "key": "tenant"}}},
                {"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            ],
        }
    )
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    v1, v2 = revisions(manifest)
    with ExitStack() as stop:
        stable, canary_workload = Workload(v1), Workload(v2)
        stop.callback(stable.stop)
        stop.callback(canary_workload.stop)
        prometheus = PrometheusServer([stable, canary_workload], NS, labels={"tenant": SECRET_VALUE})
        stop.callback(prometheus.stop)
        controller = ControllerProcesses(
            str(kubeconfig),
            NS,
            tmp_path,
            args=[
                "controller",
                "--namespace",
                NS,
                "--resync-seconds",
                "1",
                "--prometheus-address",
                prometheus.url,
            ],
        )
        stop.callback(controller.stop_all)
        controller.start()
        for name in ("web-stable", "web-canary"):
            await cluster.kube.create(SERVICES, NS, service_manifest(name))
        await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
        await cluster.kube.create(ROLLOUTS, NS, manifest)
        await wait_for(healthy_at(cluster, v1), timeout=60, what="v1 Healthy")
        async with LoadGenerator([stable, canary_workload], route_weights(cluster)):
            await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
            status = await wait_for(healthy_at(cluster, v2), timeout=60, what="v2 promoted")
        code, shown, _ = await rollout_cli(kubeconfig, "get", "rollout", "web")
        log = controller.log_of(0)
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    (requests,) = run["metrics"]
    # The series carry the secret's label value: only a correctly escaped query finds them.
    assert run["phase"] == "Successful" and requests["successful"] == 3
    assert all(json.loads(m["value"])[0] > 0 for m in requests["measurements"])
    events = await events_once(cluster, "RolloutCompleted")
    assert "RolloutCompleted" in {e["reason"] for e in events}
    # The controller's queries are logged: with the secret masked, the field's value as it is.
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    queries = [
        r["query"] for r in records if r.get("event") == "prometheus query" and r.get("metric") == "requests"
    ]
    assert len(queries) >= 3
    assert all('tenant="***", namespace="shop"' in q for q in queries), queries[0]
    assert code == 0 and "requests: Successful" in shown
    everything = {
        "status": json.dumps(await status_of(cluster)),
        "events": json.dumps(events),
        "rollout get": shown,
        "controller log": log,
    }
    for where, text in everything.items():
        assert SECRET_MARK not in text, f"the secret value shows in {where}"


async def test_a_missing_argument_secret_or_label_is_invalid_spec_until_fixed(cluster):
    """Nothing moves on an argument without a value: no ReplicaSet, no Service pinned, the route as
    it was; creating the Secret and the label recovers on the periodic re-check."""
    query = (
        'sum(rate(http_requests_total{rollout_dev_revision="{{args.canary-hash}}", '
        'tenant="{{args.tenant}}", team="{{args.team}}"}[5s]))'
    )
    await cluster.kube.create(
        ANALYSIS_TEMPLATES, NS, template("tenant-traffic", metric("requests", query, "result[0] > 0"))
    )
    manifest = canary(
        {
            "templates": [{"name": "tenant-traffic"}],
            "args": [
                {"name": "tenant", "valueFrom": {"secretKeyRef": {"name": "tenancy", "key": "tenant"}}},
                {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
            ],
        }
    )
    async with cluster.controller(resync_seconds=0.5):
        for name in ("web-stable", "web-canary"):
            await cluster.kube.create(SERVICES, NS, service_manifest(name))
        await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        await cluster.kube.create(ROLLOUTS, NS, manifest)
        where = "spec.strategy.canary.steps[1].analysis.args"
        wanted = (
            f"{where}[0].valueFrom.secretKeyRef: Secret shop/tenancy key 'tenant': the Secret was not found",
            f"{where}[1].valueFrom.fieldRef.fieldPath: \"metadata.labels['team']\": "
            "the Rollout has no such label or annotation",
        )

        async def invalid():
            status = await status_of(cluster)
            condition = next((c for c in status.get("conditions") or [] if c["type"] == "InvalidSpec"), None)
            return status if condition and all(w in condition["message"] for w in wanted) else None

        status = await wait_for(invalid, what="InvalidSpec naming both arguments")
        assert status["phase"] == "Degraded"
        events = await events_once(cluster, "InvalidSpec")
        assert any(e["reason"] == "InvalidSpec" and wanted[0] in e["message"] for e in events)
        assert await cluster.kube.list(REPLICASETS, NS) == []
        assert await cluster.kube.get(HTTPROUTES, NS, "web") == route
        for name in ("web-stable", "web-canary"):
            assert (
                "rollout.dev/revision" not in (await cluster.kube.get(SERVICES, NS, name))["spec"]["selector"]
            )
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tenancy", "namespace": NS},
            "data": {"tenant": base64.b64encode(SECRET_VALUE.encode()).decode()},
        }
        await cluster.kube.create(SECRETS, NS, secret)
        await cluster.kube.patch(ROLLOUTS, NS, "web", {"metadata": {"labels": {"team": "payments"}}})
        status = await wait_for(healthy_at(cluster), what="Healthy once both have values")
    assert SECRET_MARK not in json.dumps(status)
