"""The Helm chart on a real API server, with the real authorizer judging its RBAC.

`helm install` puts the chart in rollout-system; the controller then runs with the rendered
Deployment's arguments and the token of the chart's own ServiceAccount (a TokenRequest), in both
modes: cluster-wide (a ClusterRole) and `watchNamespaces` (Roles in the watched namespace). In
each it drives a canary gated by a passing web analysis to completion, a canary whose analysis
fails back to stable, a canary gated by a job metric (Jobs created, read and deleted, a pod's log
read), and a blue/green switch. A grant the chart lacks is a 403 from the API
server: the test fails on any 403 the audit log records for that ServiceAccount (but those of a
namespace being deleted, which are not RBAC's), and on any missing permission the controller
logs."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from rollout.api.revision import REVISION_LABEL
from rollout.kube import ANALYSIS_TEMPLATES, JOBS, NAMESPACES, ROLLOUTS, SECRETS, SERVICES
from tests.chart import CHART, RELEASE, RELEASE_NAMESPACE, controller_args, helm, render
from tests.cluster.launcher import write_kubeconfig
from tests.e2e.helpers import HTTPROUTES, app_weights, job_analysis_template, wait_for
from tests.local_http import serving
from tests.manifests import (
    blue_green_strategy,
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.processes import ControllerProcesses

pytestmark = pytest.mark.e2e

SERVICE_ACCOUNT = f"{RELEASE}-rollout-controller"
SERVICE_ACCOUNT_USER = f"system:serviceaccount:{RELEASE_NAMESPACE}:{SERVICE_ACCOUNT}"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "canary-web-analysis.yaml"
# Fast leader election: one replica here, but the chart's Lease grants are exercised all the same.
ELECTION = {"enabled": True, "leaseDuration": 3, "renewDeadline": 2, "retryPeriod": 1}


class SmokeTests:
    """The smoke-test service the web analysis asks: passes or fails its suite on demand, and only
    for the token kept in the example's Secret (so the controller must have read it)."""

    def __init__(self) -> None:
        self.passing = True
        self.calls = 0

    async def run(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer replace-me":
            return web.json_response({"error": "unauthorized"}, status=401)
        self.calls += 1
        failures = 0 if self.passing else 3
        return web.json_response({"run": {"passed": self.passing, "failures": failures, "tests": 40}})


@pytest.fixture
async def smoke_tests():
    service = SmokeTests()
    app = web.Application()
    app.router.add_post("/api/v1/runs", service.run)
    async with serving(app) as base:
        service.host = base.removeprefix("http://")  # type: ignore[attr-defined]
        yield service


def helm_run(kubeconfig: str, *args: str, values: dict | None = None) -> str:
    command = [helm(), *args, "--kubeconfig", kubeconfig]
    if values is not None:
        command += ["--values", "-"]
    done = subprocess.run(
        command, input=yaml.safe_dump(values or {}), capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"helm {args[0]} failed: {done.stderr.strip()}"
    return done.stdout


@pytest.fixture(params=["cluster-wide", "watchNamespaces", "shards"])
async def chart_controller(request, kube, kubeconfig, cluster, namespace, tmp_path):
    """The chart installed by helm in the given mode, and `rollout controller` run with its
    rendered arguments as its ServiceAccount, as many processes as the Deployment's replicas
    (3 with `shards: 3`, which is the one value that mode sets). Yields the running processes."""
    values = {"replicaCount": 1, "leaderElection": ELECTION}
    if request.param == "watchNamespaces":
        values["watchNamespaces"] = [namespace]
    if request.param == "shards":
        values["shards"] = 3
    helm_run(
        kubeconfig,
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        "--create-namespace",
        "--skip-crds",  # crds/ is applied by the suite, the same files
        values=values,
    )
    try:
        answer = await kube.request(
            "POST",
            f"/api/v1/namespaces/{RELEASE_NAMESPACE}/serviceaccounts/{SERVICE_ACCOUNT}/token",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
        admin = yaml.safe_load(Path(kubeconfig).read_text())
        cluster_entry = admin["clusters"][0]["cluster"]
        account = tmp_path / "kubeconfig-controller"
        write_kubeconfig(
            account,
            cluster_entry["server"],
            Path(cluster_entry["certificate-authority"]),
            answer["status"]["token"],
            SERVICE_ACCOUNT,
        )
        plane, started = cluster[1], time.time()
        docs = render(values)
        processes = ControllerProcesses(
            str(account),
            namespace,
            tmp_path,
            args=controller_args(docs),
            env={"POD_NAMESPACE": RELEASE_NAMESPACE},
        )
        (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
        for _ in range(deployment["spec"]["replicas"]):
            processes.start()
        yield processes
        processes.stop_all()
        log = "\n".join(processes.log_of(i) for i in range(len(processes.running)))
        refusals = [line for line in log.splitlines() if "permission missing" in line]
        assert not refusals, "the controller met a refusal:\n" + "\n".join(refusals)
        if plane is not None:
            time.sleep(2)  # the audit log is written in batches, a second apart
            answered, refused = audited_requests(plane.audit_events(SERVICE_ACCOUNT_USER, started))
            assert answered > 100, f"the audit log saw {answered} of the ServiceAccount's requests"
            assert not refused, f"the chart's RBAC refused the controller: {refused}"
    finally:
        helm_run(kubeconfig, "uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait")
        await kube.delete(NAMESPACES, None, RELEASE_NAMESPACE)

        async def gone():  # the next mode installs into a new namespace of the same name
            return await kube.get(NAMESPACES, None, RELEASE_NAMESPACE) is None

        await wait_for(gone, timeout=90, what=f"namespace {RELEASE_NAMESPACE} deleted")


def audited_requests(mine: list[dict]) -> tuple[int, list[str]]:
    """How many of the ServiceAccount's audited requests there were, and those the API server
    refused with 403, as `verb resource in namespace`."""
    refused = [
        f"{e['verb']} {e.get('objectRef', {}).get('resource')} in {e.get('objectRef', {}).get('namespace')}"
        for e in mine
        if e.get("responseStatus", {}).get("code") == 403
        # Not RBAC: an Event for a Rollout of an earlier test whose namespace is being deleted
        # (cluster-wide, the controller finalizes those too).
        and "being terminated" not in e.get("responseStatus", {}).get("message", "")
    ]
    return len(mine), refused


def status_of(rollout: dict | None) -> dict:
    return (rollout or {}).get("status") or {}


def phase(kube, ns, name, wanted, revision_not=None):
    async def probe():
        status = status_of(await kube.get(ROLLOUTS, ns, name))
        if status.get("phase") != wanted:
            return None
        if revision_not is not None and status.get("stableRevision") in (None, revision_not):
            return None
        return status

    return probe


async def install_example_analysis(kube, ns, host):
    """The example's AnalysisTemplate (one measurement, 1 s apart) and Secret, pointed at `host`."""
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    template = next(d for d in docs if d["kind"] == "AnalysisTemplate")
    secret = next(d for d in docs if d["kind"] == "Secret")
    for doc in (template, secret):
        doc["metadata"]["namespace"] = ns
    template["spec"]["args"][0]["value"] = host
    template["spec"]["metrics"][0].update(interval="1s", count=1)
    await kube.create(SECRETS, ns, secret)
    await kube.create(ANALYSIS_TEMPLATES, ns, template)


async def canary_with_analysis(kube, ns, smoke):
    """A canary 20% -> analysis -> 60%: completes while the suite passes; goes back to 100/0 and
    Degraded when it fails."""
    await install_example_analysis(kube, ns, smoke.host)
    for name in ("web-stable", "web-canary"):
        await kube.create(SERVICES, ns, service_manifest(name, namespace=ns))
    await kube.create(HTTPROUTES, ns, http_route_manifest(namespace=ns))
    steps = [{"setWeight": 20}, {"analysis": {"templates": [{"name": "smoke-tests"}]}}, {"setWeight": 60}]
    strategy = canary_strategy(steps, scale_down_delay=0)
    await kube.create(ROLLOUTS, ns, rollout_manifest(namespace=ns, replicas=2, strategy=strategy))
    v1 = (await wait_for(phase(kube, ns, "web", "Healthy"), what="canary's first deploy"))["stableRevision"]

    await kube.patch(ROLLOUTS, ns, "web", image_patch("registry.example/web:2"))
    v2 = (await wait_for(phase(kube, ns, "web", "Healthy", revision_not=v1), what="v2 promoted"))[
        "stableRevision"
    ]
    assert smoke.calls >= 1, "the analysis never asked the smoke-test service"
    route = await kube.get(HTTPROUTES, ns, "web")
    assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
    selector = (await kube.get(SERVICES, ns, "web-stable"))["spec"]["selector"]
    assert selector[REVISION_LABEL] == v2

    smoke.passing = False
    await kube.patch(ROLLOUTS, ns, "web", image_patch("registry.example/web:3"))
    degraded = await wait_for(phase(kube, ns, "web", "Degraded"), what="v3 rolled back by its analysis")
    assert degraded["stableRevision"] == v2
    assert "smoke-tests" in degraded.get("message", ""), degraded.get("message")
    route = await kube.get(HTTPROUTES, ns, "web")
    assert app_weights(route) == {"web-stable": 100, "web-canary": 0}


async def canary_with_job(kube, ns):
    """A replica-based canary 50% -> a job metric: the controller creates the Job, reads it and
    its pod's log, and deletes it once the run has passed, all as the chart's ServiceAccount."""
    await kube.create(ANALYSIS_TEMPLATES, ns, job_analysis_template(ns, "job-checks", "0"))
    steps = [{"setWeight": 50}, {"analysis": {"templates": [{"name": "job-checks"}]}}]
    services = {"stableService": "checks-stable", "canaryService": "checks-canary"}
    for name in services.values():  # its own: a Service has one Rollout managing it
        await kube.create(SERVICES, ns, service_manifest(name, namespace=ns, app="checks"))
    strategy = canary_strategy(steps, routing=None, scale_down_delay=0, **services)
    await kube.create(ROLLOUTS, ns, rollout_manifest("checks", namespace=ns, replicas=2, strategy=strategy))
    first = await wait_for(phase(kube, ns, "checks", "Healthy"), what="job canary's first deploy")
    await kube.patch(ROLLOUTS, ns, "checks", image_patch("registry.example/checks:2", "checks"))
    done = await wait_for(
        phase(kube, ns, "checks", "Healthy", revision_not=first["stableRevision"]), what="passed its Job"
    )
    run = next(r for r in done["analysisRuns"] if r["name"] == "step-2")
    said = run["metrics"][0]["measurements"][-1]["message"]
    assert run["phase"] == "Successful" and said.startswith("Job checks-step-2-job-checks-0-"), run
    assert said.endswith("returned an empty log"), said  # the log read was allowed (no node: empty)

    async def jobs_gone():
        return not await kube.list(JOBS, ns, "rollout.dev/rollout=checks")

    await wait_for(jobs_gone, timeout=60, what="the job canary's Job deleted")


async def blue_green_switch(kube, ns):
    for name in ("shop-active", "shop-preview"):
        await kube.create(SERVICES, ns, service_manifest(name, namespace=ns, app="shop"))
    strategy = blue_green_strategy(
        activeService="shop-active",
        previewService="shop-preview",
        autoPromotionEnabled=False,
        scaleDownDelaySeconds=0,
    )
    await kube.create(ROLLOUTS, ns, rollout_manifest("shop", namespace=ns, replicas=2, strategy=strategy))
    first = await wait_for(phase(kube, ns, "shop", "Healthy"), what="blue/green first deploy")
    v1 = first["stableRevision"]
    await kube.patch(ROLLOUTS, ns, "shop", image_patch("registry.example/shop:2", "shop"))
    paused = await wait_for(phase(kube, ns, "shop", "Paused"), what="preview up")
    v2 = paused["currentRevision"]
    assert (await kube.get(SERVICES, ns, "shop-preview"))["spec"]["selector"][REVISION_LABEL] == v2
    assert (await kube.get(SERVICES, ns, "shop-active"))["spec"]["selector"][REVISION_LABEL] == v1
    await kube.patch(ROLLOUTS, ns, "shop", {"metadata": {"annotations": {"rollout.dev/promote": "step"}}})
    await wait_for(phase(kube, ns, "shop", "Healthy", revision_not=v1), what="switched to v2")
    assert (await kube.get(SERVICES, ns, "shop-active"))["spec"]["selector"][REVISION_LABEL] == v2


async def test_chart_rbac_carries_canary_analysis_and_blue_green(
    kube, namespace, routing_installed, pods_made_ready, smoke_tests, chart_controller
):
    await canary_with_analysis(kube, namespace, smoke_tests)
    await canary_with_job(kube, namespace)
    await blue_green_switch(kube, namespace)
