"""The chart's in-cluster dashboard grants, judged by a real API server's RBAC: the dashboard's
ServiceAccount, ClusterRole and ClusterRoleBinding as `helm template` renders them (dashboard
enabled), applied to the control plane; the dashboard run with that ServiceAccount's token (a
TokenRequest) shows a canary's page in full (revisions and pods, route weights, Events, no
refusal), and Kubernetes refuses its Promote unless dashboard.allowActions granted patch."""

import contextlib
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from rollout.cli.session import Session
from rollout.dashboard.command import scope_of
from rollout.kube import ROLLOUTS, Kube, Resource, load_api_client
from tests.browser import chromium, dashboard, new_page
from tests.chart import CHART, run_helm
from tests.cluster.launcher import write_kubeconfig
from tests.e2e.helpers import deploy_http_canary, phase_is, wait_for
from tests.manifests import image_patch

pytestmark = pytest.mark.e2e
RELEASE, RELEASE_NAMESPACE = "dash", "default"  # a release of its own: no clash with test_chart_e2e
ACCOUNT = f"{RELEASE}-rollout-controller-dashboard"
KINDS = {
    "ServiceAccount": Resource("", "v1", "serviceaccounts"),
    "ClusterRole": Resource("rbac.authorization.k8s.io", "v1", "clusterroles"),
    "ClusterRoleBinding": Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
}


def expect(locator):
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


def rendered(allow_actions):
    allow = f"dashboard.allowActions={str(allow_actions).lower()}"
    values = ["--set", "dashboard.enabled=true", "--set", allow]
    done = run_helm("template", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, *values)
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    return [d for d in docs if d["kind"] in KINDS and d["metadata"]["name"] == ACCOUNT]


@contextlib.asynccontextmanager
async def applied(kube, docs):
    for doc in docs:
        namespace = RELEASE_NAMESPACE if doc["kind"] == "ServiceAccount" else None
        await kube.create(KINDS[doc["kind"]], namespace, doc)
    try:
        yield
    finally:
        for doc in docs:
            namespace = RELEASE_NAMESPACE if doc["kind"] == "ServiceAccount" else None
            with contextlib.suppress(ApiException):
                await kube.delete(KINDS[doc["kind"]], namespace, doc["metadata"]["name"])


async def account_client(kube, kubeconfig, tmp_path):
    answer = await kube.request(
        "POST",
        f"/api/v1/namespaces/{RELEASE_NAMESPACE}/serviceaccounts/{ACCOUNT}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    entry = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]
    path = tmp_path / "kubeconfig-dashboard"
    write_kubeconfig(
        path, entry["server"], Path(entry["certificate-authority"]), answer["status"]["token"], ACCOUNT
    )
    return load_api_client(str(path))


@pytest.mark.parametrize("allow_actions", [False, True], ids=["read-only", "allowActions"])
async def test_the_chart_grants_the_dashboard_what_its_page_reads_and_no_more(
    allow_actions, kube, kubeconfig, namespace, routing_installed, pods_made_ready, start_controller, tmp_path
):
    start_controller()
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}]
    await deploy_http_canary(kube, namespace, steps, replicas=2)
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused until promoted")
    async with applied(kube, rendered(allow_actions)), chromium() as browser:
        client = await account_client(kube, kubeconfig, tmp_path)
        # Not --read-only here whatever the chart says: RBAC alone must refuse the write.
        # Its ClusterRole lets it list Rollouts cluster-wide: it watches every namespace.
        assert await scope_of(Session(Kube(client), RELEASE_NAMESPACE), None) is None
        async with dashboard(client) as (url, _):
            page = await new_page(browser)
            await page.goto(f"{url}#/r/{namespace}/web")
            await expect(page.locator("#health")).to_have_text("Suspended", timeout=20000)
            route = page.locator(".route")
            await expect(route).to_have_text("HTTPRoute web/app: web-stable 80, web-canary 20")
            await expect(page.locator("#revisions tr[data-revision]")).to_have_count(2)
            await expect(page.locator("#revisions .pod.ready").first).to_be_visible()
            await expect(page.locator("#events tr").first).to_be_visible()
            await expect(page.locator("#banner")).to_be_hidden()  # no read was refused
            await page.click('button[data-action="promote"]')
            await page.click("#confirm-yes")
            result = page.locator("#action-result")
            if allow_actions:
                await expect(result).to_have_text(
                    'rollout "web" promoted: the current pause or gate will be passed'
                )
                await wait_for(phase_is(kube, namespace, "Healthy"), what="promoted to the end")
            else:
                await expect(result).to_have_text(
                    f'the API server answered 403 Forbidden: rollouts.rollout.dev "web" is forbidden: User '
                    f'"system:serviceaccount:{RELEASE_NAMESPACE}:{ACCOUNT}" cannot patch resource "rollouts" '
                    f'in API group "rollout.dev" in the namespace "{namespace}"'
                )
            assert page.errors == []
