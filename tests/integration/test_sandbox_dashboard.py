"""`rollout sandbox --dashboard` as a new user runs it, no cluster at all: a process of its own,
its dashboard opened in a real browser (Debian's chromium through Playwright). The canary waits
on a pause until Promote is pressed on the page; with --analysis a real Prometheus then fails the
analysis, the page plots the failing measurement and the canary rolls back on its own. The tests
also take the README's screenshots when ROLLOUT_DASHBOARD_SCREENSHOTS names a directory."""

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.browser import chromium, new_page, screenshot
from tests.prom.stack import prometheus_binary
from tests.thirdparty import require_crds

ROOT = Path(__file__).resolve().parents[2]


def expect(locator):
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


@contextlib.asynccontextmanager
async def sandbox_dashboard(*argv):
    """The sandbox process with --dashboard on a free port; yields (the dashboard's URL, the
    lines printed so far); interrupted with Ctrl-C (SIGINT) at the end, as a person stops it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ROLLOUT_THIRDPARTY_CRDS": str(require_crds())}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rollout", "sandbox", "--dashboard", "--port", "0", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    lines = []

    async def read():
        while line := await process.stdout.readline():
            lines.append(line.decode().rstrip("\n"))

    reader = asyncio.get_running_loop().create_task(read())
    try:
        async with asyncio.timeout(60):
            while not any(line.startswith("dashboard: http://") for line in lines):
                assert process.returncode is None, "\n".join(lines)
                await asyncio.sleep(0.1)
        url = re.search(r"http://\S+/", next(ln for ln in lines if ln.startswith("dashboard: "))).group(0)
        yield url, lines
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        await reader


async def test_the_sandbox_dashboard_waits_for_promote_on_the_page():
    async with sandbox_dashboard() as (url, lines), chromium() as browser:
        page = await new_page(browser)
        await page.goto(url)
        row = page.locator('tr[data-rollout="shop/web"]')
        await expect(row.locator(".step")).to_have_text("2/4: pause (until promoted)", timeout=30000)
        await expect(row.locator(".weight")).to_have_text("20%")
        await screenshot(page, "dashboard-list")
        await row.locator(".name a").click()
        await expect(page.locator('#steps li[data-step="1"]')).to_have_class("current")
        await expect(page.locator(".route")).to_have_text(
            "HTTPRoute web/rules[0]: web-stable 80, web-canary 20"
        )
        await page.click('button[data-action="promote"]')
        await page.click("#confirm-yes")
        await expect(page.locator("#action-result")).to_have_text(
            'rollout "web" promoted: the current pause or gate will be passed'
        )
        await expect(page.locator("#health")).to_have_text("Healthy", timeout=30000)
        await expect(page.locator(".route")).to_have_text(
            "HTTPRoute web/rules[0]: web-stable 100, web-canary 0"
        )
        assert page.errors == []
    assert any(line.startswith("summary: web rolled from registry.example/web:1.0") for line in lines), lines


@pytest.mark.prometheus
async def test_the_analysis_chart_shows_the_failing_measurement_that_rolls_the_canary_back():
    prometheus_binary()  # skips with the reason when the binary is missing (fails under CI)
    async with sandbox_dashboard("--analysis") as (url, lines), chromium() as browser:
        page = await new_page(browser)
        await page.goto(f"{url}#/r/shop/web")
        await expect(page.locator('#steps li[data-step="1"]')).to_have_class("current", timeout=30000)
        await page.click('button[data-action="promote"]')
        await page.click("#confirm-yes")
        # The analysis step's run on real Prometheus answers: its failing measurement is plotted.
        failed = page.locator('#analysis .metric[data-metric="error-rate"] circle.point.Failed')
        await expect(failed.first).to_be_visible(timeout=45000)
        value = json.loads(await failed.first.get_attribute("data-value"))  # "[0.5]", as measured
        assert value[0] > 0.05  # above the template's limit
        chart = page.locator('#analysis .metric[data-metric="error-rate"]')
        await expect(chart.locator(".condition")).to_contain_text("success when result[0] <= 0.05")
        # Shaded by the condition: the failing point lies in a band where a value fails (both
        # measured in one go in the page, which redraws as the status changes).
        in_failing_band = """(chart) => {
            const point = chart.querySelector("circle.point.Failed").getBoundingClientRect();
            const centre = point.top + point.height / 2;
            return [...chart.querySelectorAll("rect.band.fails")].some((band) => {
                const box = band.getBoundingClientRect();
                return box.top - 0.5 <= centre && centre <= box.bottom + 0.5;
            });
        }"""
        assert await chart.evaluate(in_failing_band)
        assert await chart.locator("rect.band.passes").count() > 0
        await expect(page.locator("#health")).to_have_text("Degraded", timeout=30000)
        await expect(page.locator("#abort-reason")).to_contain_text("error-rate")
        await expect(page.locator(".route")).to_have_text(
            "HTTPRoute web/rules[0]: web-stable 100, web-canary 0", timeout=30000
        )
        await screenshot(page, "dashboard-rollout-analysis")
        assert page.errors == []
    assert any(line.startswith("summary: the analysis failed and web rolled back") for line in lines), lines
