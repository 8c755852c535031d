"""Secrets on the real control plane: the controller never lists or watches them, reads only those
analysis headers name, and still reacts to them. A missing Secret is InvalidSpec until it is
created (picked up within about a second, though nothing watches Secrets); one deleted while its
analysis runs is that run's measurement error and the canary rolls back; one the controller may
not read is InvalidSpec naming the missing grant, and nothing moves."""

import base64
import time

import pytest
from aiohttp import web

from rollout.kube import (
    ANALYSIS_TEMPLATES,
    CLUSTER_ROLE_BINDINGS,
    ROLLOUTS,
    SECRETS,
    Resource,
)
from tests.chart import render
from tests.e2e.helpers import HTTPROUTES, app_weights, deploy_http_canary, phase_is, wait_for
from tests.local_http import serving
from tests.manifests import image_patch
from tests.processes import ControllerProcesses

pytestmark = pytest.mark.e2e

TOKEN = "Bearer e2e-token"
CLUSTER_ROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles")
STEPS = [{"setWeight": 20}, {"analysis": {"templates": [{"name": "smoke"}]}}, {"setWeight": 60}]


async def answer(request: web.Request) -> web.Response:
    """The service the analysis asks: passes when called with the Secret's token."""
    if request.headers.get("Authorization") != TOKEN:
        return web.json_response({"error": "unauthorized"}, status=401)
    return web.json_response({"ok": True})


@pytest.fixture
async def checks():
    """The base URL of a real HTTP server answering as `answer` does."""
    app = web.Application()
    app.router.add_get("/check", answer)
    async with serving(app) as base:
        yield base


def template(namespace, base, count=2):
    header = {"key": "Authorization", "valueFrom": {"secretKeyRef": {"name": "auth", "key": "token"}}}
    metric = {
        "name": "smoke",
        "interval": "1s",
        "count": count,
        "consecutiveErrorLimit": 2,
        "successCondition": 'result["ok"] == true',
        "provider": {"web": {"url": f"{base}/check", "headers": [header], "timeout": "2s"}},
    }
    return {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "smoke", "namespace": namespace},
        "spec": {"metrics": [metric]},
    }


def secret(namespace):
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "auth", "namespace": namespace},
        "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
    }


def invalid_with(kube, namespace, fragment):
    async def probe():
        status = ((await kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
        invalid = next((c for c in status.get("conditions") or [] if c["type"] == "InvalidSpec"), None)
        return status if invalid and fragment in invalid["message"] else None

    return probe


def controller(kubeconfig, namespace, logs):
    """A controller whose periodic resync is far away: whatever it does within the test comes
    from its own triggers and re-checks."""
    return ControllerProcesses(str(kubeconfig), namespace, logs, resync_seconds=600)


async def test_a_missing_secret_is_invalid_until_created_then_seen_within_seconds(
    kube, kubeconfig, namespace, pods_made_ready, routing_installed, checks, tmp_path
):
    base = checks
    await kube.create(ANALYSIS_TEMPLATES, namespace, template(namespace, base))
    processes = controller(kubeconfig, namespace, tmp_path)
    processes.start()
    try:
        # Not Healthy: the analysis names a Secret that does not exist yet.
        await deploy_http_canary(kube, namespace, STEPS, replicas=2, healthy=False)
        status = await wait_for(
            invalid_with(kube, namespace, f"Secret {namespace}/auth not found"), what="InvalidSpec"
        )
        assert status.get("phase") != "Healthy"
        route = await kube.get(HTTPROUTES, namespace, "web")
        assert app_weights(route)["web-canary"] == 0  # as created: nothing moved
        created = time.monotonic()
        await kube.create(SECRETS, namespace, secret(namespace))

        async def valid():
            status = ((await kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
            conditions = status.get("conditions") or []
            return not any(c["type"] == "InvalidSpec" for c in conditions) or None

        await wait_for(valid, timeout=30, what="InvalidSpec cleared once the Secret exists")
        seen = time.monotonic() - created
        # Nothing watches Secrets and the resync is 600 s away: the 1 s re-check found it.
        assert seen < 2.0, f"took {seen:.1f} s"
        print(f"\nSecret created -> InvalidSpec cleared in {seen:.2f} s")
        await wait_for(phase_is(kube, namespace, "Healthy"), timeout=30, what="Healthy with the Secret")
    finally:
        processes.stop_all()


async def test_a_secret_deleted_during_the_analysis_fails_it_and_traffic_returns(
    kube, kubeconfig, namespace, pods_made_ready, routing_installed, checks, tmp_path
):
    base = checks
    await kube.create(ANALYSIS_TEMPLATES, namespace, template(namespace, base, count=60))
    await kube.create(SECRETS, namespace, secret(namespace))
    processes = controller(kubeconfig, namespace, tmp_path)
    processes.start()
    try:
        v1 = await deploy_http_canary(kube, namespace, STEPS, replicas=2)
        await kube.patch(ROLLOUTS, namespace, "web", image_patch("web:2"))

        async def measuring():
            status = ((await kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
            run = next((r for r in status.get("analysisRuns") or [] if r["name"] == "step-2"), None)
            metric = (run or {}).get("metrics") or [{}]
            return status if metric[0].get("successful", 0) >= 2 else None

        await wait_for(measuring, what="the analysis passing with the Secret's token")
        await kube.delete(SECRETS, namespace, "auth")

        async def rolled_back():
            status = ((await kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
            return status if status.get("aborted") else None

        status = await wait_for(rolled_back, what="the run failing once the Secret is gone")
        run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
        assert run["phase"] == "Error", run
        errors = [m for m in run["metrics"][0]["measurements"] if m.get("phase") == "Error"]
        assert errors and f"Secret {namespace}/auth not found" in errors[-1]["message"], run
        assert status["stableRevision"] == v1
        await wait_for(weights_back(kube, namespace), what="traffic back on stable after the failed run")
        # The run is over; the spec still names a Secret that is gone: that is what to fix now.
        await wait_for(
            invalid_with(kube, namespace, f"Secret {namespace}/auth not found"), what="InvalidSpec"
        )
    finally:
        processes.stop_all()


def weights_back(kube, namespace):
    async def probe():
        route = await kube.get(HTTPROUTES, namespace, "web")
        return app_weights(route) == {"web-stable": 100, "web-canary": 0} or None

    return probe


async def test_a_secret_the_controller_may_not_read_is_invalid_spec_naming_the_grant(
    kube, cluster, namespace, pods_made_ready, routing_installed, checks, tmp_path
):
    """The chart's cluster-wide rules without `get secrets`, for a user of the API server's own:
    the Secret exists, the controller is refused it, says which grant it lacks, and moves nothing."""
    plane = cluster[1]
    if plane is None:
        pytest.skip("needs the project's control plane (its users), not ROLLOUT_E2E_KUBECONFIG")
    base = checks
    user = "rollout-bench"
    rules = [
        rule
        for doc in render({})
        if doc["kind"] == "ClusterRole"
        for rule in doc.get("rules") or []
        if "secrets" not in rule.get("resources", [])
    ]
    role = f"e2e-no-secrets-{namespace}"
    cluster_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": role},
        "rules": rules,
    }
    await kube.create(CLUSTER_ROLES, None, cluster_role)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    await kube.create(CLUSTER_ROLE_BINDINGS, None, binding)
    await kube.create(ANALYSIS_TEMPLATES, namespace, template(namespace, base))
    await kube.create(SECRETS, namespace, secret(namespace))
    processes = controller(plane.user_kubeconfig(user), namespace, tmp_path)
    processes.start()
    try:
        await deploy_http_canary(kube, namespace, STEPS, replicas=2, healthy=False)
        grant = "grant (apiGroup 'core', resource 'secrets', verb 'get')"
        status = await wait_for(
            invalid_with(kube, namespace, f"Secret {namespace}/auth cannot be read"), what="InvalidSpec"
        )
        message = next(c for c in status["conditions"] if c["type"] == "InvalidSpec")["message"]
        assert grant in message and f"may not get secrets in namespace {namespace}" in message
        route = await kube.get(HTTPROUTES, namespace, "web")
        assert app_weights(route)["web-canary"] == 0  # as created: nothing moved
        assert status.get("phase") != "Healthy"
    finally:
        processes.stop_all()
        await kube.delete(CLUSTER_ROLE_BINDINGS, None, role)
        await kube.delete(CLUSTER_ROLES, None, role)
