"""`rollout dashboard` in a real browser (Debian's chromium through Playwright) on the emulated
cluster, with the real controller: the list follows a canary live, the page's buttons run the
CLI's commands (promote passes a pause, abort puts the route back to 100/0, a refusal is the
CLI's line), read-only mode and the CSRF token, the API server cut off and back, a Rollout
deleted while open, an InvalidSpec message in the header."""

import asyncio
import io
import os
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from rollout.cli import ops
from rollout.cli.session import CliError, Session
from rollout.kube import ROLLOUTS, SERVICES, Kube, api_client_for
from tests.browser import chromium, dashboard, new_page, screenshot
from tests.cuttable_proxy import CuttableProxy
from tests.emulated import HTTPROUTES, NS, app_weights, degraded, healthy_at, paused_at, setup, status_of
from tests.manifests import canary_strategy, image_patch, rollout_manifest, service_manifest
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
MOVING = [{"setWeight": 20}, {"pause": {"duration": "1s"}}, {"setWeight": 50}, {"pause": {}}]
HELD = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}]


def expect(locator):
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


async def confirm(page, action):
    await page.click(f'button[data-action="{action}"]')
    dialog = page.locator("dialog#confirm")
    await expect(dialog).to_be_visible()
    await page.click("#confirm-yes")


async def test_the_list_follows_a_canary_through_its_steps_live(cluster):
    async with cluster.controller(), chromium() as browser:
        v1 = (await setup(cluster, MOVING))["stableRevision"]
        async with dashboard(api_client_for(cluster.url)) as (url, _):
            page = await new_page(browser)
            await page.goto(url)
            row = page.locator(f'tr[data-rollout="{NS}/web"]')
            await expect(row.locator(".phase")).to_have_text("Healthy")
            await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
            # Seen on the page as the controller goes, without a reload: each shows within a second
            # of the API server having it.
            status = await wait_for(paused_at(cluster, 3), what="paused at the last pause")
            started = time.monotonic()
            await expect(row.locator(".step")).to_have_text("4/4: pause (until promoted)", timeout=1000)
            await expect(row.locator(".weight")).to_have_text("50%", timeout=1000)
            assert time.monotonic() - started < 1.0
            await expect(row.locator(".phase")).to_have_text("Paused")
            await expect(row.locator(".stable")).to_have_text(v1)
            await expect(row.locator(".current")).to_have_text(status["currentRevision"])
            # The filters: another namespace's name, a phase, a name.
            await page.fill("#filter-name", "nothing-like-it")
            await expect(row).to_have_count(0)
            await expect(page.locator("#empty")).to_have_text("No Rollout matches the filters.")
            await page.fill("#filter-name", "we")
            await page.select_option("#filter-phase", "Paused")
            await expect(row).to_have_count(1)
            await page.select_option("#filter-phase", "Healthy")
            await expect(row).to_have_count(0)
            await page.select_option("#filter-phase", "")
            await page.select_option("#filter-namespace", NS)
            await expect(row).to_have_count(1)
            assert page.errors == []


async def test_promote_on_the_page_passes_the_pause(cluster):
    async with cluster.controller(), chromium() as browser:
        await setup(cluster, HELD)
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(paused_at(cluster, 1), what="paused until promoted")
        async with dashboard(api_client_for(cluster.url)) as (url, board):
            page = await new_page(browser)
            await page.goto(f"{url}#/r/{NS}/web")
            await expect(page.locator('#steps li[data-step="1"]')).to_have_class("current")
            await expect(page.locator(".route")).to_have_text(
                "HTTPRoute web/app: web-stable 80, web-canary 20"
            )
            await screenshot(page, "dashboard-rollout-paused")
            await confirm(page, "promote")
            await expect(page.locator("#action-result")).to_have_text(
                'rollout "web" promoted: the current pause or gate will be passed'
            )
            status = await wait_for(healthy_at(cluster), timeout=30, what="promoted to the end")
            assert status["stableRevision"] == status["currentRevision"]
            await expect(page.locator("#health")).to_have_text("Healthy", timeout=5000)
            await expect(page.locator('#steps li[data-step="0"]')).to_have_class("done")
            # The traffic history the server kept from the watch since it started: 20, 50, then
            # all of it on the new revision, now the stable one (weight 0 again).
            seen = [p.canary for p in board.watches.history.weights[(NS, "web")]]
            assert seen[0] == 20 and 50 in seen and seen[-1] == 0, seen
            await expect(page.locator("svg.traffic")).to_have_count(1)
            assert page.errors == []


async def test_abort_on_the_page_puts_the_route_back_to_100_0(cluster):
    async with cluster.controller(), chromium() as browser:
        await setup(cluster, HELD)
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(paused_at(cluster, 1), what="paused at 20%")
        async with dashboard(api_client_for(cluster.url)) as (url, _):
            page = await new_page(browser)
            await page.goto(f"{url}#/r/{NS}/web")
            # Cancel first: nothing happens.
            await page.click('button[data-action="abort"]')
            await page.click("#confirm-no")
            await asyncio.sleep(0.5)
            assert not (await status_of(cluster)).get("aborted")
            await confirm(page, "abort")
            await expect(page.locator("#action-result")).to_have_text(
                'rollout "web" aborted: traffic goes back to the stable revision'
            )
            await wait_for(degraded(cluster), what="aborted")
            route = await wait_for(
                lambda: _route_at(cluster, {"web-stable": 100, "web-canary": 0}), what="route at 100/0"
            )
            assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
            await expect(page.locator(".route")).to_have_text(
                "HTTPRoute web/app: web-stable 100, web-canary 0", timeout=5000
            )
            await expect(page.locator("#health")).to_have_text("Degraded")
            await expect(page.locator("#abort-reason")).to_contain_text("Aborted:")
            assert page.errors == []


async def _route_at(cluster, weights):
    route = await cluster.kube.get(HTTPROUTES, NS, "web")
    return route if app_weights(route) == weights else None


async def test_a_refusal_is_the_clis_own_line(cluster):
    async with cluster.controller(), chromium() as browser:
        await setup(cluster, HELD)
        async with dashboard(api_client_for(cluster.url)) as (url, _):
            page = await new_page(browser)
            await page.goto(f"{url}#/r/{NS}/web")
            await expect(page.locator("#health")).to_have_text("Healthy")
            retry = page.locator('button[data-action="retry"]')
            await expect(retry).to_have_attribute("title", "refused now: it is not aborted")
            await confirm(page, "retry")
            result = page.locator("#action-result")
            await expect(result).to_have_class("failed")
            shown = await result.inner_text()
        # What `rollout retry web` says on the same Rollout.
        with pytest.raises(CliError) as said:
            await ops.command(Session(Kube(api_client_for(cluster.url)), NS), "web", "retry", io.StringIO())
        assert shown == str(said.value) == 'cannot retry rollout "web": it is not aborted (phase Healthy)'


async def test_read_only_shows_and_takes_no_action(cluster):
    async with cluster.controller(), chromium() as browser:
        await setup(cluster, HELD)
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(paused_at(cluster, 1), what="paused until promoted")
        async with dashboard(api_client_for(cluster.url), read_only=True) as (url, board):
            page = await new_page(browser)
            await page.goto(f"{url}#/r/{NS}/web")
            await expect(page.locator("#health")).to_have_text("Suspended")
            await expect(page.locator("#mode")).to_have_text("read-only")
            await expect(page.locator("button[data-action]")).to_have_count(0)
            await expect(page.locator("#actions")).to_have_count(0)
            # The server refuses the POST too, with the right token and Host.
            async with aiohttp.ClientSession() as http:
                answer = await http.post(
                    f"{url}api/rollouts/{NS}/web/promote", headers={"X-CSRF-Token": board.csrf_token}
                )
                assert answer.status == 403
                assert "read-only" in (await answer.json())["message"]
        await asyncio.sleep(0.5)
        assert (await status_of(cluster))["currentStepIndex"] == 1  # still held


async def test_a_post_needs_the_csrf_token_and_a_loopback_host(cluster):
    async with cluster.controller():
        await setup(cluster, HELD)
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(paused_at(cluster, 1), what="paused until promoted")
        async with dashboard(api_client_for(cluster.url)) as (url, board), aiohttp.ClientSession() as http:
            promote = f"{url}api/rollouts/{NS}/web/promote"
            for headers in ({}, {"X-CSRF-Token": "guessed"}):
                answer = await http.post(promote, headers=headers)
                assert answer.status == 403 and "CSRF" in (await answer.json())["message"]
            port = url.rstrip("/").rsplit(":", 1)[1]
            rebound = await http.post(
                promote, headers={"X-CSRF-Token": board.csrf_token, "Host": f"attacker.example:{port}"}
            )
            assert rebound.status == 421
            await asyncio.sleep(0.5)
            assert (await status_of(cluster))["currentStepIndex"] == 1  # none of them promoted
            answer = await http.post(promote, headers={"X-CSRF-Token": board.csrf_token})
            assert answer.status == 200, await answer.text()
        await wait_for(lambda: _past_step(cluster, 1), what="promoted by the POST with the token")


async def _past_step(cluster, index):
    status = await status_of(cluster)
    return status if (status.get("currentStepIndex") or 0) > index else None


async def test_the_page_says_when_the_api_server_is_cut_off_and_comes_back(cluster):
    proxy = CuttableProxy(cluster.url)
    await proxy.start()
    async with cluster.controller(), chromium() as browser:
        await setup(cluster, HELD)
        async with dashboard(api_client_for(proxy.url)) as (url, _):
            page = await new_page(browser)
            await page.goto(url)
            row = page.locator(f'tr[data-rollout="{NS}/web"]')
            await expect(row.locator(".phase")).to_have_text("Healthy")
            banner = page.locator("#banner")
            await expect(banner).to_be_hidden()
            await proxy.cut()
            await expect(banner).to_contain_text("API server unreachable or watch cut", timeout=10000)
            await screenshot(page, "dashboard-api-unreachable")
            # What happens meanwhile is shown once it is back, with no reload.
            await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
            await wait_for(paused_at(cluster, 1), what="paused while cut off")
            await proxy.restore()
            await expect(banner).to_be_hidden(timeout=20000)
            await expect(row.locator(".step")).to_have_text("2/4: pause (until promoted)")
            assert page.errors == []


async def test_a_rollout_deleted_while_open_is_said_gone(cluster):
    async with cluster.controller(), chromium() as browser:
        await setup(cluster, HELD)
        async with dashboard(api_client_for(cluster.url)) as (url, _):
            page = await new_page(browser)
            await page.goto(f"{url}#/r/{NS}/web")
            await expect(page.locator("#health")).to_have_text("Healthy")
            await cluster.kube.delete(ROLLOUTS, NS, "web")
            await expect(page.locator("#gone")).to_contain_text(
                f"Rollout {NS}/web is gone: it was deleted", timeout=3000
            )
            assert page.errors == []


async def test_an_invalid_spec_is_in_the_header_with_its_field_path(cluster):
    routing = {"gatewayAPI": {"httpRoutes": [{"name": "gone"}]}}
    async with cluster.controller(resync_seconds=0.5), chromium() as browser:
        for name in ("web-stable", "web-canary"):
            await cluster.kube.create(SERVICES, NS, service_manifest(name))
        await cluster.kube.create(
            ROLLOUTS, NS, rollout_manifest(strategy=canary_strategy(HELD, routing, scale_down_delay=1))
        )
        async with dashboard(api_client_for(cluster.url)) as (url, _):
            page = await new_page(browser)
            await page.goto(f"{url}#/r/{NS}/web")
            await expect(page.locator("#invalid-spec")).to_have_text(
                re.compile(
                    r"^InvalidSpec: .*spec\.strategy\.canary\.trafficRouting\.gatewayAPI\.httpRoutes\[0\]: "
                    r"httproutes shop/gone not found"
                ),
                timeout=15000,
            )
            await expect(page.locator("#health")).to_have_text("Degraded")
            await page.goto(url)
            await expect(page.locator(f'tr[data-rollout="{NS}/web"] .message')).to_contain_text(
                "httpRoutes[0]: httproutes shop/gone not found"
            )
            assert page.errors == []


async def test_the_command_serves_the_kubeconfigs_cluster_and_stops_on_ctrl_c(cluster, tmp_path):
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest())  # no controller: never observed
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "rollout", "dashboard", "--kubeconfig", str(kubeconfig)]
    process = await asyncio.create_subprocess_exec(
        *command, "--port", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        said = r"dashboard: (http://127\.0\.0\.1:\d+/)  \(Rollouts in every namespace; Ctrl-C to stop\)"
        url = re.match(said, line)
        assert url, line
        async with aiohttp.ClientSession() as http:

            async def listed():
                async with http.get(f"{url.group(1)}api/rollouts") as answer:
                    rows = (await answer.json())["rollouts"]
                return rows

            (shown,) = await wait_for(listed, what="the Rollout listed")
            assert (shown["namespace"], shown["name"], shown["health"]) == (NS, "web", "Progressing")
            assert shown["message"] == "Waiting for the rollout controller to observe the Rollout"
            port = int(url.group(1).rstrip("/").rsplit(":", 1)[1])
            # The port taken: one line, exit 2.
            taken = await asyncio.create_subprocess_exec(
                *command, "--port", str(port), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=env,
            )  # fmt: skip
            _, err = await asyncio.wait_for(taken.communicate(), 60)
            assert taken.returncode == 2
            assert err.decode().startswith(f"rollout dashboard: cannot listen on 127.0.0.1:{port}: ")
            assert len(err.decode().strip().splitlines()) == 1
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 130
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_pause_resume_and_undo_from_the_page(cluster):
    async with cluster.controller(), chromium() as browser:
        v1 = (await setup(cluster, [{"setWeight": 50}, {"pause": {"duration": "1s"}}]))["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        v2 = (await wait_for(healthy_at(cluster, other_than=v1), timeout=30, what="v2 stable"))[
            "stableRevision"
        ]
        async with dashboard(api_client_for(cluster.url)) as (url, _):
            page = await new_page(browser)
            await page.goto(f"{url}#/r/{NS}/web")
            result = page.locator("#action-result")
            await expect(page.locator("#revisions tr[data-revision]")).to_have_count(2)
            await confirm(page, "pause")
            await expect(result).to_have_text('rollout "web" paused')
            await expect(page.locator("#health")).to_have_text("Suspended", timeout=5000)
            await confirm(page, "resume")
            await expect(result).to_have_text('rollout "web" resumed')
            await expect(page.locator("#health")).to_have_text("Healthy", timeout=5000)
            await confirm(page, "undo")
            await expect(result).to_have_text(
                f'rollout "web" rolled back to revision {v1} (it goes through the strategy like any update)'
            )
            status = await wait_for(healthy_at(cluster, v1), timeout=30, what="back on v1 through the steps")
            assert status["stableRevision"] == v1 != v2
            role = page.locator(f'#revisions tr[data-revision="{v1}"] td').nth(2)
            await expect(role).to_have_text("stable")
            assert page.errors == []
