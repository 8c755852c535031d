"""`rollout check NAME` against the emulated cluster with the real controller: the preflight
passes when every reference is in place, and names the broken one (with the fix to try and
exit code 1) when a Service is missing, a parent Gateway reports ResolvedRefs False, or an
analysis template does not exist; against a real Prometheus, each query is run once."""

import pytest

from rollout.kube import ANALYSIS_TEMPLATES, ROLLOUTS, SERVICES
from tests.emulated import HTTPROUTES, NS, setup
from tests.integration.command_line import rollout_cli
from tests.manifests import image_patch, service_manifest
from tests.prom.stack import PrometheusServer, Workload

STEPS = [{"setWeight": 20}, {"pause": {}}]


def parent_status(generation, resolved="True", reason="ResolvedRefs", message=""):
    def condition(type_, status, why, text):
        return {
            "type": type_,
            "status": status,
            "reason": why,
            "message": text,
            "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }

    return {
        "parents": [
            {
                "parentRef": {"name": "public"},
                "controllerName": "example.com/gateway",
                "conditions": [
                    condition("Accepted", "True", "Accepted", ""),
                    condition("ResolvedRefs", resolved, reason, message),
                ],
            }
        ]
    }


async def report_route(cluster, **status):
    route = await cluster.kube.get(HTTPROUTES, NS, "web")
    body = {"status": parent_status(route["metadata"]["generation"], **status)}
    await cluster.kube.patch(HTTPROUTES, NS, "web", body, sub="status")


async def add_analysis_step(cluster, template_name):
    """A step added once the controller is stopped, so that the check sees the reference first."""
    rollout = await cluster.kube.get(ROLLOUTS, NS, "web")
    steps = [
        *rollout["spec"]["strategy"]["canary"]["steps"],
        {"analysis": {"templates": [{"name": template_name}]}},
    ]
    await cluster.kube.patch(ROLLOUTS, NS, "web", {"spec": {"strategy": {"canary": {"steps": steps}}}})


def rows(out):
    """Each table row, its runs of spaces collapsed."""
    return [" ".join(line.split()) for line in out.splitlines()]


async def test_check_passes_then_names_each_broken_reference(cluster, tmp_path):
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    async with cluster.controller():
        v1 = (await setup(cluster, STEPS))["stableRevision"]
        await report_route(cluster)

        code, out, err = await rollout_cli(kubeconfig, "check", "web")
        assert (code, err) == (0, "")
        selector = f"app=web,rollout.dev/revision={v1}"
        assert rows(out) == [
            "✓ Rollout web spec readable",
            f"✓ Service web-stable selects 4 ready pod(s) ({selector}; ReplicaSets: web-{v1})",
            f"✓ Service web-canary selects 4 ready pod(s) ({selector}; ReplicaSets: web-{v1})",
            "✓ HTTPRoute web found; the controller can set its weights",
            "✓ HTTPRoute web -> Gateway public Accepted True",
            "✓ HTTPRoute web -> Gateway public ResolvedRefs True",
            "6 check(s): all passed",
        ]

        await report_route(
            cluster, resolved="False", reason="BackendNotFound", message="backend web-canary not found"
        )
        code, out, _ = await rollout_cli(kubeconfig, "check", "web")
        assert code == 1
        assert (
            "✗ HTTPRoute web -> Gateway public ResolvedRefs False (BackendNotFound): backend web-canary "
            "not found fix: fix the backendRefs (Services exist, ports, ReferenceGrants)"
        ) in rows(out)
        assert "✓ HTTPRoute web -> Gateway public Accepted True" in rows(out)
        assert rows(out)[-1] == "6 check(s): 1 failed"
        await report_route(cluster)

        await cluster.kube.delete(SERVICES, NS, "web-canary")
        code, out, _ = await rollout_cli(kubeconfig, "check", "web")
        assert code == 1
        assert (
            "✗ Service web-canary not found in namespace shop fix: create Service web-canary, "
            "or correct spec.strategy.canary.canaryService"
        ) in rows(out)
        assert rows(out)[-1] == "6 check(s): 1 failed"

    # A Service selecting no pods (the controller, which would pin its selector, is stopped).
    await cluster.kube.create(SERVICES, NS, service_manifest("web-canary", app="nothing"))
    code, out, _ = await rollout_cli(kubeconfig, "check", "web")
    assert code == 1
    assert any(
        line.startswith("✗ Service web-canary selects 0 ready pod(s) (app=nothing; ReplicaSets: none)")
        for line in rows(out)
    ), out


async def test_check_reports_a_missing_analysis_template(cluster, tmp_path):
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    async with cluster.controller():
        await setup(cluster, STEPS)
    await add_analysis_step(cluster, "error-rate")
    await report_route(cluster)
    code, out, _ = await rollout_cli(kubeconfig, "check", "web")
    assert code == 1
    assert (
        "✗ AnalysisTemplate error-rate not found in namespace shop fix: create AnalysisTemplate "
        "error-rate, or correct the reference"
    ) in rows(out)
    assert rows(out)[-1] == "7 check(s): 1 failed"


def template(*metrics):
    return {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "up", "namespace": NS},
        "spec": {
            "metrics": [
                {
                    "name": name,
                    "successCondition": "result[0] >= 1",
                    "provider": {"prometheus": {"query": query, **extra}},
                }
                for name, query, extra in metrics
            ]
        },
    }


@pytest.mark.prometheus
async def test_check_runs_each_query_on_a_real_prometheus(cluster, tmp_path):
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    workload = Workload("v1")
    prometheus = PrometheusServer([workload], NS)
    try:
        await cluster.kube.create(
            ANALYSIS_TEMPLATES,
            NS,
            template(
                ("scraped", 'sum(up{namespace="{{args.namespace}}"})', {}),
                ("elsewhere", 'sum(up{namespace="nowhere"})', {}),
                ("gone", "sum(up)", {"address": "http://127.0.0.1:9"}),
            ),
        )
        async with cluster.controller():
            await setup(cluster, STEPS)
        await add_analysis_step(cluster, "up")
        await report_route(cluster)
        code, out, _ = await rollout_cli(kubeconfig, "check", "web", "--prometheus-address", prometheus.url)
    finally:
        prometheus.stop()
        workload.stop()
    assert code == 1
    lines = rows(out)
    assert "✓ analysis templates 1 found, every metric resolves" in lines
    assert f"✓ Prometheus {prometheus.url} reachable" in lines
    assert "✓ metric scraped (AnalysisTemplate up) returns 1" in lines
    assert (
        '✗ metric elsewhere (AnalysisTemplate up) no data right now for: sum(up{namespace="nowhere"}) '
        "fix: check the metric is scraped and the labels the query filters on"
    ) in lines
    assert any(
        line.startswith("✗ Prometheus http://127.0.0.1:9 Prometheus at http://127.0.0.1:9 is unreachable")
        for line in lines
    ), out
    assert lines[-1] == "11 check(s): 2 failed"


@pytest.mark.prometheus
async def test_check_runs_each_side_of_a_compare_query(cluster, tmp_path):
    """A compare metric's query is run once per side, each named by its side."""
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    workload = Workload("v1")
    prometheus = PrometheusServer([workload], NS)
    # 1 on either side while the app is scraped; {{side.revision}} makes it a per-side template.
    query = 'sum(up{namespace="{{args.namespace}}"}) + 0 * count(up{absent!="{{side.revision}}"})'
    judge = {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "up", "namespace": NS},
        "spec": {
            "metrics": [
                {"name": "judge", "provider": {"compare": {"queries": [{"name": "up", "query": query}]}}}
            ]
        },
    }
    try:
        await cluster.kube.create(ANALYSIS_TEMPLATES, NS, judge)
        async with cluster.controller():
            await setup(cluster, STEPS)
        await add_analysis_step(cluster, "up")
        # A new revision, so that the canary's queries differ from stable's (the controller is
        # stopped: the check reads the spec's revision and the status's stable one).
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await report_route(cluster)
        _, out, _ = await rollout_cli(kubeconfig, "check", "web", "--prometheus-address", prometheus.url)
    finally:
        prometheus.stop()
        workload.stop()
    lines = rows(out)
    assert "✓ analysis templates 1 found, every metric resolves" in lines, out
    assert "✓ metric judge/up canary (AnalysisTemplate up) returns 1" in lines
    assert "✓ metric judge/up stable (AnalysisTemplate up) returns 1" in lines
