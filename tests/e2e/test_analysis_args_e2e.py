"""dryRun and secret analysis arguments on a real API server (its CRD schema prunes what it does
not declare) against a real Prometheus, the controller as a subprocess whose log is kept.

One canary step measures two metrics: `requests`, whose query's `tenant` label value comes from
a Secret (a quote in it, escaped for PromQL) and `namespace` from the Rollout (fieldRef); and
`error-ratio`, a dry run, while the new revision answers 30% of its requests with 500s. It proves
that the canary completes (the route back at rest, both Services on the new revision), that the
server keeps `dryRun: true` in status and the AnalysisDryRun Event, and that the secret value is
in none of the status, the Events or the controller's log."""

import base64
import json
from contextlib import ExitStack

import pytest

from rollout.api.rollout import parse_rollout
from rollout.engine.decide import current_revision
from rollout.kube import ANALYSIS_TEMPLATES, EVENTS, ROLLOUTS, SECRETS, SERVICES
from tests.e2e.helpers import HTTPROUTES, app_weights, wait_for
from tests.manifests import (
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.prom.stack import LoadGenerator, PrometheusServer, Workload, route_revision_weights

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

V2_IMAGE = "registry.example/web:2"
SECRET_VALUE = 'acme"9k2w-tenant'
SECRET_MARK = "9k2w"
CANARY = 'rollout_dev_revision="{{args.canary-hash}}"'
LABELS = f'{CANARY}, tenant="{{{{args.tenant}}}}", namespace="{{{{args.ns}}}}"'
REQUESTS = f"sum(rate(http_requests_total{{{LABELS}}}[5s]))"
ALL = f"sum(rate(http_requests_total{{{CANARY}}}[5s]))"
ERROR_RATIO = f'sum(rate(http_requests_total{{{CANARY}, code=~"5.."}}[5s])) / {ALL}'


def metric(name, query, condition):
    return {
        "name": name,
        "interval": "1s",
        "count": 3,
        "initialDelay": "5s",
        "successCondition": condition,
        "provider": {"prometheus": {"query": query}},
    }


def revisions(manifest):
    updated = {
        **manifest,
        "spec": {**manifest["spec"], "template": image_patch(V2_IMAGE)["spec"]["template"]},
    }
    return current_revision(parse_rollout(manifest).rollout), current_revision(parse_rollout(updated).rollout)


def dry_run_said(kube, ns):
    """The Rollout's Events once the AnalysisDryRun one is posted (shortly after the status)."""

    async def probe():
        events = [e for e in await kube.list(EVENTS, ns) if e["involvedObject"]["name"] == "web"]
        return events if any(e["reason"] == "AnalysisDryRun" for e in events) else None

    return probe


async def test_a_dry_run_metric_and_secret_arguments_on_a_real_server(
    kube, namespace, routing_installed, pods_made_ready, start_controller, monkeypatch, tmp_path
):
    ns = namespace
    analysis = {
        "templates": [{"name": "tenant-health"}],
        "args": [
            {"name": "tenant", "valueFrom": {"secretKeyRef": {"name": "tenancy", "key": "tenant"}}},
            {"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "dryRun": [{"metricName": "error-ratio"}],
    }
    steps = [{"setWeight": 20}, {"analysis": analysis}]
    manifest = rollout_manifest(namespace=ns, replicas=2, strategy=canary_strategy(steps, scale_down_delay=2))
    v1, v2 = revisions(manifest)
    template = {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "tenant-health", "namespace": ns},
        "spec": {
            "metrics": [
                metric("requests", REQUESTS, "result[0] > 0"),
                metric("error-ratio", ERROR_RATIO, "result[0] <= 0.05"),
            ],
            "measurementRetention": [{"metricName": "requests", "limit": 2}],
        },
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "tenancy", "namespace": ns},
        "data": {"tenant": base64.b64encode(SECRET_VALUE.encode()).decode()},
    }
    with ExitStack() as stop:
        stable, canary = Workload(v1), Workload(v2, error_ratio=0.3)
        stop.callback(stable.stop)
        stop.callback(canary.stop)
        prometheus = PrometheusServer([stable, canary], ns, labels={"tenant": SECRET_VALUE})
        stop.callback(prometheus.stop)
        await kube.create(SECRETS, ns, secret)
        await kube.create(ANALYSIS_TEMPLATES, ns, template)
        monkeypatch.setenv("ROLLOUT_PROMETHEUS_ADDRESS", prometheus.url)
        start_controller()
        for name in ("web-stable", "web-canary"):
            await kube.create(SERVICES, ns, service_manifest(name, namespace=ns))
        await kube.create(HTTPROUTES, ns, http_route_manifest(namespace=ns))
        await kube.create(ROLLOUTS, ns, manifest)

        def healthy_at(revision):
            async def probe():
                status = ((await kube.get(ROLLOUTS, ns, "web")) or {}).get("status") or {}
                done = status.get("phase") == "Healthy" and status.get("stableRevision") == revision
                return status if done and status.get("currentRevision") == revision else None

            return probe

        await wait_for(healthy_at(v1), what="v1 Healthy")
        async with LoadGenerator([stable, canary], lambda: route_revision_weights(kube, ns, "web")):
            await kube.patch(ROLLOUTS, ns, "web", image_patch(V2_IMAGE))
            status = await wait_for(healthy_at(v2), timeout=120, what="v2 stable despite the dry run")
        route = app_weights(await kube.get(HTTPROUTES, ns, "web"))
        services = [await kube.get(SERVICES, ns, n) for n in ("web-stable", "web-canary")]
        events = await wait_for(dry_run_said(kube, ns), what="the AnalysisDryRun Event")
        log = (tmp_path / "controller-0.log").read_text()
    assert route == {"web-stable": 100, "web-canary": 0}
    assert all(s["spec"]["selector"]["rollout.dev/revision"] == v2 for s in services)
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    by_name = {m["name"]: m for m in run["metrics"]}
    assert run["phase"] == "Successful" and by_name["requests"]["successful"] == 3
    assert len(by_name["requests"]["measurements"]) == 2  # measurementRetention, kept by the server
    assert by_name["error-ratio"]["dryRun"] is True and by_name["error-ratio"]["phase"] == "Failed"
    dry = [e for e in events if e["reason"] == "AnalysisDryRun"]
    assert len(dry) == 1 and "dry-run metric error-ratio Failed" in dry[0]["message"]
    assert not {"AnalysisFailed", "RolloutAborted"} & {e["reason"] for e in events}
    queries = [
        r["query"]
        for r in (json.loads(line) for line in log.splitlines() if line.startswith("{"))
        if r.get("event") == "prometheus query" and r.get("metric") == "requests"
    ]
    assert queries and all(f'tenant="***", namespace="{ns}"' in q for q in queries), queries[:1]
    for where, text in {"status": json.dumps(status), "events": json.dumps(events), "log": log}.items():
        assert SECRET_MARK not in text, f"the secret value shows in the {where}"
