"""`rollout dashboard` on a real control plane against a real Prometheus, in a real browser
(Debian's chromium through Playwright): a canary whose analysis step's query fails on the
emulated application's real metrics (tests/prom: v2 answers half its requests with 500s) is
watched on the Rollout's page. The page plots the failing measurement, marked failed and lying in
the band the success condition fails, shows the Rollout Degraded with the failing metric named,
and the route back at 100/0, as the HTTPRoute on the server says. The scaffolding (workloads,
Prometheus, load, controller) is test_analysis_e2e.py's `stack`."""

import json

import pytest

from rollout.kube import ROLLOUTS, load_api_client
from tests.browser import chromium, dashboard, new_page
from tests.e2e.helpers import wait_for
from tests.e2e.test_analysis_e2e import (
    AT_REST,
    CANARY_STEPS,
    V2_IMAGE,
    degraded,
    route_at,
    route_weights,
    run_named,
    stack,
)
from tests.manifests import canary_strategy, image_patch, rollout_manifest

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

# The failing point's centre lies in a band shaded "fails" (measured in the page in one go: the
# chart is redrawn as the status changes).
IN_FAILING_BAND = """(chart) => {
    const point = chart.querySelector("circle.point.Failed").getBoundingClientRect();
    const centre = point.top + point.height / 2;
    return [...chart.querySelectorAll("rect.band.fails")].some((band) => {
        const box = band.getBoundingClientRect();
        return box.top - 0.5 <= centre && centre <= box.bottom + 0.5;
    });
}"""


def expect(locator):
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


async def test_the_chart_shows_the_failing_prometheus_measurement_that_rolls_the_canary_back(
    kubeconfig, kube, namespace, routing_installed, pods_made_ready, start_controller, monkeypatch
):
    strategy = canary_strategy(CANARY_STEPS, scale_down_delay=2)
    manifest = rollout_manifest(namespace=namespace, replicas=2, strategy=strategy)
    async with (
        stack(
            kube, namespace, monkeypatch, start_controller, manifest, route_weights, v2_errors=0.5, route=True
        ) as (stable, canary),
        chromium() as browser,
        dashboard(load_api_client(kubeconfig)) as (url, _),
    ):
        page = await new_page(browser)
        await page.goto(f"{url}#/r/{namespace}/web")
        await expect(page.locator("#health")).to_have_text("Healthy", timeout=15000)
        await kube.patch(ROLLOUTS, namespace, "web", image_patch(V2_IMAGE))
        await expect(page.locator(".route")).to_have_text(
            "HTTPRoute web/app: web-stable 80, web-canary 20", timeout=60000
        )
        # The analysis step's run on the real Prometheus: its failing measurement is plotted.
        chart = page.locator('#analysis .run[data-run="step-2"] .metric[data-metric="success-rate"]')
        failed = chart.locator("circle.point.Failed")
        await expect(failed.first).to_be_visible(timeout=90000)
        await expect(chart.locator("text.failed-mark").first).to_have_text("✕ failed")
        shown = json.loads(await failed.first.get_attribute("data-value"))  # as Prometheus answered
        assert shown[0] < 0.99, shown  # about 0.5: v2 fails half its requests
        await expect(chart.locator(".condition")).to_contain_text("success when result[0] >= 0.99")
        # The plotted range runs from 0 to the highest value (~0.5), all of it below 0.99: red.
        assert await chart.evaluate(IN_FAILING_BAND)
        await expect(page.locator("#health")).to_have_text("Degraded", timeout=30000)
        await expect(page.locator("#abort-reason")).to_contain_text("success-rate")
        await expect(page.locator(".route")).to_have_text(
            "HTTPRoute web/app: web-stable 100, web-canary 0", timeout=30000
        )
        status = await wait_for(degraded(kube, namespace), timeout=30, what="Degraded on the server")
        assert await route_at(kube, namespace) == AT_REST
        assert page.errors == []
    # The point the page marked failed is the measurement the controller failed the run on.
    measurements = run_named(status, "step-2")["metrics"][0]["measurements"]
    assert any(m["phase"] == "Failed" and json.loads(m["value"]) == shown for m in measurements), measurements
    assert status["stableRevision"] == stable.revision != canary.revision
