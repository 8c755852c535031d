"""`rollout dashboard` on a real control plane, in a real browser (Debian's chromium through
Playwright): the list follows a canary live, Promote on the page passes a pause and the Rollout
moves on, Abort puts the route back to 100/0; and a user whose RBAC lets them read but not patch
Rollouts sees Kubernetes' own refusal in one line (the control plane's token user
rollout-viewer, granted a read-only Role in the test namespace); a dashboard started with
--read-only shows no button on a paused Rollout's page and refuses a POST that carries the page's
own CSRF token, and the Rollout stays where it was on the server."""

import asyncio

import pytest

from rollout.cli.session import Session
from rollout.dashboard.command import scope_of
from rollout.kube import ROLLOUTS, Kube, Resource, load_api_client
from tests.browser import chromium, dashboard, new_page
from tests.e2e.helpers import HTTPROUTES, app_weights, deploy_http_canary, phase_is, wait_for
from tests.manifests import image_patch

pytestmark = pytest.mark.e2e
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
VIEWER = "rollout-viewer"
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


def expect(locator):
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


async def confirm(page, action):
    await page.click(f'button[data-action="{action}"]')
    await page.click("#confirm-yes")


async def test_the_page_follows_and_drives_a_canary(
    kubeconfig, kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    await deploy_http_canary(kube, namespace, STEPS, replicas=2)
    async with chromium() as browser, dashboard(load_api_client(kubeconfig)) as (url, _):
        page = await new_page(browser)
        await page.goto(url)
        row = page.locator(f'tr[data-rollout="{namespace}/web"]')
        await expect(row.locator(".phase")).to_have_text("Healthy", timeout=15000)
        await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
        await expect(row.locator(".step")).to_have_text("2/4: pause (until promoted)", timeout=60000)
        await expect(row.locator(".weight")).to_have_text("20%")
        await row.locator(".name a").click()
        await expect(page.locator(".route")).to_have_text(
            "HTTPRoute web/app: web-stable 80, web-canary 20", timeout=15000
        )
        await confirm(page, "promote")
        await expect(page.locator("#action-result")).to_have_text(
            'rollout "web" promoted: the current pause or gate will be passed'
        )
        await wait_for(phase_is(kube, namespace, "Paused", 3), what="past the first pause, at the second")
        await expect(page.locator('#steps li[data-step="3"]')).to_have_class("current", timeout=15000)
        await expect(page.locator(".route")).to_have_text("HTTPRoute web/app: web-stable 50, web-canary 50")
        await confirm(page, "abort")
        await expect(page.locator("#action-result")).to_have_text(
            'rollout "web" aborted: traffic goes back to the stable revision'
        )

        async def back_to_stable():
            route = await kube.get(HTTPROUTES, namespace, "web")
            return route if app_weights(route) == {"web-stable": 100, "web-canary": 0} else None

        await wait_for(back_to_stable, what="the route at 100/0")
        await expect(page.locator(".route")).to_have_text(
            "HTTPRoute web/app: web-stable 100, web-canary 0", timeout=15000
        )
        await expect(page.locator("#health")).to_have_text("Degraded")
        assert page.errors == []


async def test_a_user_who_may_not_patch_sees_kubernetes_refusal(
    cluster, kube, namespace, routing_installed, pods_made_ready, start_controller
):
    plane = cluster[1]
    if plane is None:
        pytest.skip("needs the suite's own control plane for its token users (ROLLOUT_E2E_KUBECONFIG is set)")
    start_controller()
    rules = [
        {"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]}
        for group, resources in (
            ("rollout.dev", ["rollouts", "analysistemplates"]),
            ("apps", ["replicasets"]),
            ("", ["pods", "events"]),
            ("gateway.networking.k8s.io", ["httproutes"]),
        )
    ]
    await kube.create(ROLES, namespace, {"metadata": {"name": "viewer"}, "rules": rules})
    binding = {
        "metadata": {"name": "viewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": VIEWER}],
    }
    await kube.create(ROLE_BINDINGS, namespace, binding)
    await deploy_http_canary(kube, namespace, STEPS, replicas=2)
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused until promoted")
    viewer = load_api_client(str(plane.user_kubeconfig(VIEWER)))
    # Not allowed to list Rollouts cluster-wide: the dashboard watches the namespace it may read.
    assert await scope_of(Session(Kube(viewer), namespace), None) == namespace
    async with chromium() as browser, dashboard(viewer, namespace=namespace) as (url, _):
        page = await new_page(browser)
        await page.goto(f"{url}#/r/{namespace}/web")
        await expect(page.locator("#health")).to_have_text("Suspended", timeout=15000)
        await expect(page.locator(".route")).to_have_text("HTTPRoute web/app: web-stable 80, web-canary 20")
        await confirm(page, "promote")
        result = page.locator("#action-result")
        await expect(result).to_have_class("failed")
        assert await result.inner_text() == (
            f'the API server answered 403 Forbidden: rollouts.rollout.dev "web" is forbidden: User '
            f'"{VIEWER}" cannot patch resource "rollouts" in API group "rollout.dev" in the namespace '
            f'"{namespace}"'
        )
        assert "\n" not in await result.inner_text()
        assert page.errors == []
    status = (await kube.get(ROLLOUTS, namespace, "web"))["status"]
    assert status["phase"] == "Paused" and status["currentStepIndex"] == 1  # nothing moved


# A POST to the promote endpoint from the page itself, with the CSRF token the page is given by
# /api/config (what its buttons would send): (the token used, HTTP status, the answer's message).
POST_FROM_THE_PAGE = """async ([namespace, name]) => {
    const config = await (await fetch("/api/config")).json();
    const answer = await fetch(`/api/rollouts/${namespace}/${name}/promote`, {
        method: "POST",
        headers: {"X-CSRF-Token": config.csrfToken, "Content-Type": "application/json"},
        body: "{}",
    });
    return [config.csrfToken, answer.status, (await answer.json()).message];
}"""


async def test_a_read_only_dashboard_shows_no_action_and_refuses_a_post(
    kubeconfig, kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    await deploy_http_canary(kube, namespace, STEPS, replicas=2)
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused until promoted")
    before = await kube.get(ROLLOUTS, namespace, "web")
    async with chromium() as browser, dashboard(load_api_client(kubeconfig), read_only=True) as (url, board):
        page = await new_page(browser)
        await page.goto(f"{url}#/r/{namespace}/web")
        await expect(page.locator("#health")).to_have_text("Suspended", timeout=15000)
        await expect(page.locator(".route")).to_have_text("HTTPRoute web/app: web-stable 80, web-canary 20")
        await expect(page.locator("#mode")).to_have_text("read-only")
        await expect(page.locator("button[data-action]")).to_have_count(0)
        await expect(page.locator("#actions")).to_have_count(0)
        token, code, message = await page.evaluate(POST_FROM_THE_PAGE, [namespace, "web"])
        assert token == board.csrf_token  # a valid token: refused for being read-only, not for CSRF
        assert code == 403
        assert message == "this dashboard is read-only (--read-only): no action is taken"
        assert page.errors == []
    # A promote is an annotation written before the answer is sent, so it would be on the server
    # by now; the controller gets a few of its 2 s resyncs to act on one all the same.
    await asyncio.sleep(5)
    after = await kube.get(ROLLOUTS, namespace, "web")
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
    assert after["spec"] == before["spec"]
    assert after["status"]["phase"] == "Paused" and after["status"]["currentStepIndex"] == 1, after["status"]
    assert app_weights(await kube.get(HTTPROUTES, namespace, "web")) == {"web-stable": 80, "web-canary": 20}
