"""A Rollout on the emulated cluster measured by a real Prometheus, for the analysis tests of the
canary and blue/green strategies: a workload process per revision scraped every second, the
built-in ClusterAnalysisTemplates of examples/, and load that follows the weights users see."""

import json
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import yaml

from rollout.api.revision import revision_hash
from rollout.api.rollout import parse_rollout
from rollout.engine.decide import current_revision
from rollout.kube import CLUSTER_ANALYSIS_TEMPLATES, ROLLOUTS, SERVICES
from rollout.workload.replicasets import TEMPLATE_ANNOTATION, baseline_template
from tests.emulated import HTTPROUTES, NS, healthy_at
from tests.manifests import http_route_manifest, image_patch, service_manifest
from tests.prom.stack import LoadGenerator, PrometheusServer, Workload, route_revision_weights
from tests.waiting import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Quick settings for the built-in templates: measure every second over a 5 s window, starting
# once the canary's traffic has been scraped a few times (no data would pause the rollout).
FAST = {"interval": "1s", "count": "3", "window": "5s", "initial-delay": "5s"}


def args(**extra):
    """The arguments of a built-in template: FAST, with `extra` added or overriding."""
    return [{"name": k, "value": v} for k, v in {**FAST, **extra}.items()]


def revisions(manifest):
    """The revisions of the manifest as given (v1) and with the image web:2 (v2)."""
    v1 = current_revision(parse_rollout(manifest).rollout)
    updated = {**manifest, "spec": {**manifest["spec"]}}
    updated["spec"]["template"] = image_patch("web:2")["spec"]["template"]
    return v1, current_revision(parse_rollout(updated).rollout)


def baseline_revision(manifest):
    """The revision of the baseline the controller runs beside a canary of this manifest's
    template (that template as stable, plus the baseline label)."""
    rollout = parse_rollout(manifest).rollout
    written = rollout.spec.template.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    stable_set = {"metadata": {"annotations": {TEMPLATE_ANNOTATION: json.dumps(written)}}}
    return revision_hash(baseline_template(stable_set))


def route_weights(cluster):
    """A reader of revision -> weight, from the HTTPRoute `web` and the Services' selectors."""
    return lambda: route_revision_weights(cluster.kube, NS, "web")


@asynccontextmanager
async def stack(
    cluster,
    manifest,
    *,
    v2_errors=0.0,
    v2_latency_ms=50.0,
    weights=route_weights,
    auth=None,
    services=("web-stable", "web-canary"),
    resync_seconds=2.0,
    load_rate=40.0,
    baseline_latency_ms=None,
    spaced_errors=False,
):
    """Workloads for v1 and v2, Prometheus scraping them, the built-in templates installed,
    `services` created (and with route_weights the HTTPRoute), the Rollout deployed at v1
    (Healthy), and load flowing (`load_rate` requests/s); yields (prometheus, v1, v2 workloads).
    `baseline_latency_ms`: a workload for the canary's baseline too (the revision of v1's
    template with the baseline label, which the controller gives it), that slow.
    `spaced_errors`: v1 and v2 answer exactly one request in 1 / error ratio with an error."""
    v1, v2 = revisions(manifest)
    with ExitStack() as stop:
        stable = Workload(v1, spaced_errors=spaced_errors)
        stop.callback(stable.stop)
        canary = Workload(v2, error_ratio=v2_errors, latency_ms=v2_latency_ms, spaced_errors=spaced_errors)
        stop.callback(canary.stop)
        workloads = [stable, canary]
        if baseline_latency_ms is not None:
            baseline = Workload(baseline_revision(manifest), latency_ms=baseline_latency_ms)
            stop.callback(baseline.stop)
            workloads.append(baseline)
        prometheus = PrometheusServer(workloads, NS, auth=auth)
        stop.callback(prometheus.stop)
        for template in yaml.safe_load_all((EXAMPLES / "analysis-templates.yaml").read_text()):
            await cluster.kube.create(CLUSTER_ANALYSIS_TEMPLATES, None, template)
        async with cluster.controller(prometheus_address=prometheus.url, resync_seconds=resync_seconds):
            for name in services:
                await cluster.kube.create(SERVICES, NS, service_manifest(name))
            if weights is route_weights:
                await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
            await cluster.kube.create(ROLLOUTS, NS, manifest)
            await wait_for(healthy_at(cluster, v1), what="v1 Healthy")
            async with LoadGenerator(workloads, weights(cluster), rate=load_rate, workers=16):
                yield prometheus, stable, canary
