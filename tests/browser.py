"""The real browser of the dashboard tests: Debian's chromium (apt-get install chromium) driven
by Playwright for Python; Playwright's own browser download is never used. Also the dashboard
served in this process on a free port, and screenshots for docs/ when asked for."""

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from rollout.cli.session import CLI_FIELD_MANAGER, Session
from rollout.dashboard.server import Dashboard, serving
from rollout.dashboard.watching import Watches
from rollout.kube import Kube

CHROMIUM = os.environ.get("ROLLOUT_CHROMIUM", "/usr/bin/chromium")
# Set to a directory (docs/) to have the tests that draw the dashboard save its screenshots there.
SCREENSHOTS = os.environ.get("ROLLOUT_DASHBOARD_SCREENSHOTS")


def chromium_missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    return None


@contextlib.asynccontextmanager
async def chromium():
    """A headless chromium; a page of 1280x900 per `new_page()`."""
    missing = chromium_missing()
    if missing:
        pytest.skip(f"the dashboard's browser tests need a real browser: {missing}")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


async def new_page(browser):
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # JavaScript errors: each test checks there were none
    return page


@contextlib.asynccontextmanager
async def dashboard(api_client, *, namespace=None, read_only=False):
    """`rollout dashboard` on `api_client` (its user's credentials) on a free loopback port,
    watching `namespace` (None: every namespace); yields (url, the Dashboard)."""
    kube = Kube(api_client, attempts=2, field_manager=CLI_FIELD_MANAGER)
    scope = "every namespace" if namespace is None else f"namespace {namespace}"
    board = Dashboard(
        Session(kube, namespace or "default"),
        Watches(lambda: api_client, namespace),
        read_only=read_only,
        scope=scope,
    )
    async with serving(board, "127.0.0.1", 0) as url:
        yield url, board


async def screenshot(page, name):
    """Save a PNG of the page to $ROLLOUT_DASHBOARD_SCREENSHOTS/NAME.png when that is set."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
