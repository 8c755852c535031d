"""Webhook notifications by the real controller on the emulated cluster, POSTed to a real local
HTTP server (aiohttp on 127.0.0.1): what arrives and in which order for a canary, for an abort
and a failed analysis; a webhook that is down or slow never slows the rollout and is retried
with backoff; the URL comes from a Secret (a missing one is a Warning Event, not a stop); the
controller-wide ConfigMap works like spec.notifications."""

import asyncio
import base64
import itertools
import time

import pytest
from aiohttp import web

from rollout.kube import CONFIGMAPS, EVENTS, ROLLOUTS, SECRETS
from rollout.notify.delivery import NotifySettings
from rollout.observability.metrics import NOTIFICATIONS
from tests.emulated import NS, event_reasons, healthy_at, paused_at, promote, setup, status_of
from tests.integration.smoke_service import start
from tests.local_http import serving
from tests.manifests import image_patch
from tests.processes import free_port
from tests.waiting import wait_for

# Short enough for tests: a slow webhook costs 3 attempts of 0.4 s plus 0.2 + 0.4 s of backoff.
FAST = NotifySettings(timeout=0.4, attempts=3, backoff=0.2, max_backoff=1.0)


class Receiver:
    """The webhooks' server: every POST to /<hook> is recorded with the time it arrived; a hook
    named in `slow` answers only after `slow_seconds`."""

    def __init__(self) -> None:
        self.posts: dict[str, list[dict]] = {}
        self.times: dict[str, list[float]] = {}
        self.slow: set[str] = set()
        self.slow_seconds = 2.0
        self.base = ""

    async def handle(self, request: web.Request) -> web.Response:
        hook = request.match_info["hook"]
        self.times.setdefault(hook, []).append(time.monotonic())
        body = await request.json()
        if hook in self.slow:
            await asyncio.sleep(self.slow_seconds)
        self.posts.setdefault(hook, []).append(body)
        return web.json_response({"ok": True})

    def url(self, hook: str) -> str:
        return f"{self.base}/{hook}"

    def triggers(self, hook: str) -> list[str]:
        return [p["trigger"] for p in self.posts.get(hook, [])]


@pytest.fixture
async def receiver():
    service = Receiver()
    app = web.Application()
    app.router.add_post("/{hook}", service.handle)
    async with serving(app) as base:
        service.base = base
        yield service


def dead_url() -> str:
    """A port nothing listens on: connection refused."""
    return f"http://127.0.0.1:{free_port()}/hook"


def secret(name, url, namespace=NS, key="url"):
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {key: base64.b64encode(url.encode()).decode()},
    }


def webhook(name, secret_name, **extra):
    return {"name": name, "urlFrom": {"secretKeyRef": {"name": secret_name, "key": "url"}}, **extra}


async def notify_to(cluster, *webhooks, image=None):
    patch = {"spec": {"notifications": {"webhooks": list(webhooks)}}}
    if image is not None:
        patch["spec"]["template"] = image_patch(image)["spec"]["template"]
    await cluster.kube.patch(ROLLOUTS, NS, "web", patch)


def completed(cluster, old):
    """The update away from stable revision `old` is complete."""

    async def probe():
        status = await status_of(cluster)
        settled = status.get("phase") == "Healthy" and status.get("stableRevision") == status.get(
            "currentRevision"
        )
        return status if settled and status.get("stableRevision") != old else None

    return probe


def counted(trigger, outcome):
    return NOTIFICATIONS.labels(trigger, outcome)._value.get()


async def warnings(cluster, reason="NotificationNotSent"):
    events = await cluster.kube.list(EVENTS, NS)
    return [e["message"] for e in events if e["reason"] == reason and e["type"] == "Warning"]


async def test_a_canary_posts_each_moment_in_order_as_json_and_as_slack_text(cluster, receiver):
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": 1}}]
    async with cluster.controller(notifications=FAST):
        v1 = (await setup(cluster, steps))["stableRevision"]
        await cluster.kube.create(SECRETS, NS, secret("team-hook", receiver.url("team")))
        await cluster.kube.create(SECRETS, NS, secret("chat-hook", receiver.url("chat")))
        await notify_to(
            cluster,
            webhook("team", "team-hook"),
            webhook("chat", "chat-hook", format="slack", triggers=["Started", "Paused", "Completed"]),
            image="web:2",
        )
        await wait_for(paused_at(cluster, 1), what="paused at the pause step")
        await wait_for(lambda: _true(receiver.triggers("team")[-1:] == ["Paused"]), what="Paused posted")
        await promote(cluster)
        status = await wait_for(healthy_at(cluster, None), timeout=30, what="canary completed")
        await wait_for(lambda: _true(len(receiver.posts.get("chat", [])) == 3), what="3 posts to chat")
        await wait_for(lambda: _true("Completed" in receiver.triggers("team")), what="Completed posted")
    v2 = status["stableRevision"]
    assert v2 != v1
    team = receiver.posts["team"]
    # Promoting the pause step passes it (PromotedStep): no StepCompleted is posted for it.
    assert [(p["trigger"], p["step"], p["weight"]) for p in team] == [
        ("Started", None, 0),
        ("StepCompleted", 1, 20),
        ("Paused", 1, 20),
        ("StepCompleted", 3, 50),
        ("StepCompleted", 4, 50),
        ("Completed", None, 100),  # the revision is stable: no step runs
    ]
    started, first_step, paused = team[0], team[1], team[2]
    assert started["rollout"] == {"namespace": NS, "name": "web"}
    assert started["event"] == {
        "type": "Normal",
        "reason": "NewRevision",
        "message": f"New revision {v2}; stable is {v1}",
    }
    assert {p["revision"] for p in team} == {v2} and all(p["steps"] == 4 for p in team)
    assert first_step["event"]["message"] == "Step 1/4 done: setWeight 20"
    assert paused["event"]["reason"] == "AwaitingPromotion"
    assert team[-1]["stableRevision"] == v2 and team[-1]["event"]["reason"] == "RolloutCompleted"
    assert all(p["timestamp"].endswith("Z") for p in team)
    # The Slack-compatible body: only `text`, for the three triggers asked for, in order.
    chat = receiver.posts["chat"]
    assert [set(p) for p in chat] == [{"text"}] * 3
    assert chat[0]["text"].startswith(f"*Started* Rollout `{NS}/web`: New revision {v2}")
    assert "*Paused*" in chat[1]["text"] and "until rollout.dev/promote" in chat[1]["text"]
    assert chat[2]["text"].startswith("*Completed*") and "canary weight 100%" in chat[2]["text"]
    # Exactly once per Event: the Events the controller posted and the notifications agree.
    reasons = await event_reasons(cluster)
    assert reasons.count("StepCompleted") == 3 and reasons.count("AwaitingPromotion") == 1


async def _true(value):
    return value


async def test_a_failed_analysis_is_posted(cluster, receiver, smoke_tests):
    async with cluster.controller(notifications=FAST):
        await start(cluster, smoke_tests)  # a canary gated on a smoke-test suite (provider.web)
        await cluster.kube.create(SECRETS, NS, secret("team-hook", receiver.url("team")))
        await cluster.kube.create(SECRETS, NS, secret("alerts-hook", receiver.url("alerts")))
        alerts = webhook("alerts", "alerts-hook", triggers=["AnalysisFailed", "Aborted"], format="slack")
        smoke_tests.passing = False
        await notify_to(cluster, webhook("team", "team-hook"), alerts, image="web:2")
        await wait_for(lambda: _true("Aborted" in receiver.triggers("team")), timeout=40, what="Aborted")
        await wait_for(lambda: _true(len(receiver.posts.get("alerts", [])) == 2), what="2 alerts")
    assert receiver.triggers("team") == ["Started", "StepCompleted", "AnalysisFailed", "Aborted"]
    failed, aborted = receiver.posts["team"][2:]
    assert failed["event"]["type"] == "Warning" and failed["event"]["reason"] == "AnalysisFailed"
    assert "smoke-tests" in failed["event"]["message"] and failed["weight"] == 0
    assert aborted["event"]["message"].startswith("Aborted by analysis")
    # The alerts webhook hears only what it asked for, in Slack text.
    texts = [p["text"] for p in receiver.posts["alerts"]]
    assert texts[0].startswith(":warning: *AnalysisFailed* Rollout `shop/web`:")
    assert texts[1].startswith(":warning: *Aborted* Rollout `shop/web`: Aborted by analysis")


async def test_an_abort_by_command_is_posted(cluster, receiver):
    async with cluster.controller(notifications=FAST):
        v1 = (await setup(cluster, [{"setWeight": 20}, {"pause": {}}]))["stableRevision"]
        await cluster.kube.create(SECRETS, NS, secret("team-hook", receiver.url("team")))
        await notify_to(cluster, webhook("team", "team-hook", triggers=["Aborted"]), image="web:2")
        await wait_for(paused_at(cluster, 1), what="paused at the pause step")
        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/abort": "true"}}}
        )
        await wait_for(lambda: _true(receiver.triggers("team") == ["Aborted"]), what="Aborted posted")
    (aborted,) = receiver.posts["team"]
    assert aborted["event"] == {
        "type": "Warning",
        "reason": "RolloutAborted",
        "message": f"Aborted by command: returning to stable revision {v1}",
    }
    assert aborted["stableRevision"] == v1 and aborted["revision"] != v1 and aborted["weight"] == 0


async def test_a_dead_or_slow_webhook_never_slows_the_rollout_nor_another_webhook(cluster, receiver):
    steps = [{"setWeight": 50}, {"pause": {"duration": 1}}]

    async def update(image):
        before = (await status_of(cluster))["stableRevision"]
        began = time.monotonic()
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch(image))
        await wait_for(completed(cluster, before), timeout=30, what=f"update to {image} complete")
        return time.monotonic() - began

    receiver.slow.add("slow")
    receiver.slow_seconds = 1.5  # longer than the 0.4 s timeout
    failed_before = counted("StepCompleted", "failed")
    backoff = NotifySettings(timeout=0.3, attempts=3, backoff=0.5, max_backoff=2.0)
    async with cluster.controller(notifications=backoff):
        await setup(cluster, steps)
        quiet = await update("web:2")  # no webhooks
        await cluster.kube.create(SECRETS, NS, secret("slow-hook", receiver.url("slow")))
        await cluster.kube.create(SECRETS, NS, secret("dead-hook", dead_url()))
        await cluster.kube.create(SECRETS, NS, secret("team-hook", receiver.url("team")))
        await notify_to(
            cluster, webhook("slow", "slow-hook"), webhook("dead", "dead-hook"), webhook("team", "team-hook")
        )
        noisy = await update("web:3")
        done_at = time.monotonic()
        # A healthy webhook hears of every moment as it happens, not behind the failing ones'
        # retries (~2.4 s per notice: one after the other, the last would come ~7 s late).
        await wait_for(lambda: _true(len(receiver.posts.get("team", [])) == 4), what="team told of 4 moments")
        assert receiver.triggers("team") == ["Started", "StepCompleted", "StepCompleted", "Completed"]
        assert receiver.times["team"][-1] - done_at < 1.0, receiver.times["team"][-1] - done_at
        # Started, 2 x StepCompleted, Completed: each given up after 3 attempts, to both webhooks.
        await wait_for(
            lambda: _true(len(receiver.times.get("slow", [])) == 12), timeout=40, what="12 attempts"
        )
        await wait_for(
            lambda: _true(counted("StepCompleted", "failed") - failed_before == 4), what="failures counted"
        )
    # Delivery of each notification to the failing webhooks takes ~2.4 s (3 x 0.3 s timeouts, 0.5
    # and 1 s of backoff); the four of them ~10 s, one after the other. Had the rollout waited for
    # even one of them, it would be 2.4 s slower; it is ~0.9 s slower here (the same process
    # serves the API, the kubelet, the receiver and the retries' Events), up to 1.7 s in CI.
    print(f"canary without webhooks {quiet:.2f} s, with a dead and a slow one {noisy:.2f} s")
    assert noisy < quiet + 2.4, (quiet, noisy)
    times = receiver.times["slow"]
    for first in range(0, 12, 3):
        window = times[first : first + 3]
        gaps = [b - a for a, b in itertools.pairwise(window)]
        # Each wait: the 0.3 s timeout plus the backoff, 0.5 s then 1 s: 0.8 s, then 2.1 s from
        # the first attempt to the third. The test's own event loop, serving the emulated API
        # server too, notes an arrival up to ~0.2 s late, which moves the middle one between the
        # two gaps; so the backoff's growth is judged on the span of the three (a backoff that did
        # not grow would give 1.6 s).
        assert 0.6 <= gaps[0] < 1.3 and 1.9 <= gaps[0] + gaps[1] < 2.6, gaps
    given_up = await warnings(cluster)
    assert any(
        "webhook 'dead' of spec.notifications: ConnectionError after 3 attempt(s)" in m for m in given_up
    )
    assert any("webhook 'slow' of spec.notifications: ReadTimeout after 3 attempt(s)" in m for m in given_up)
    assert all(receiver.url("slow") not in m and "127.0.0.1" not in m for m in given_up)


async def test_a_missing_secret_warns_and_the_rollout_goes_on(cluster, receiver):
    steps = [{"setWeight": 50}]
    async with cluster.controller(notifications=FAST):
        v1 = (await setup(cluster, steps))["stableRevision"]
        await notify_to(cluster, webhook("team", "team-hook", triggers=["Started"]), image="web:2")
        v2 = (await wait_for(completed(cluster, v1), timeout=30, what="update complete"))["stableRevision"]
        messages = await wait_for(lambda: warnings(cluster), what="a Warning Event")
        assert messages == [
            f"webhook 'team' of spec.notifications: Secret {NS}/team-hook not found; Started not notified"
        ]
        # Once the Secret exists, the URL is read from it (through the controller's cache).
        await cluster.kube.create(SECRETS, NS, secret("team-hook", receiver.url("team")))
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:3"))
        await wait_for(completed(cluster, v2), timeout=30, what="second update complete")
        await wait_for(lambda: _true(receiver.triggers("team") == ["Started"]), what="Started posted")
    assert receiver.posts["team"][0]["event"]["message"].startswith("New revision")
    assert "InvalidSpec" not in await event_reasons(cluster)


async def test_the_controller_wide_configmap_tells_of_every_rollout(cluster, receiver):
    cluster.create_namespace("ops")
    config = (
        "webhooks:\n"
        "  - name: platform\n"
        "    urlFrom: {secretKeyRef: {name: platform-hook, key: url}}\n"
        "    triggers: [Started, Completed]\n"
    )
    await cluster.kube.create(
        CONFIGMAPS,
        "ops",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "notifications", "namespace": "ops"},
            "data": {"notifications.yaml": config},
        },
    )
    await cluster.kube.create(
        SECRETS, "ops", secret("platform-hook", receiver.url("platform"), namespace="ops")
    )
    settings = NotifySettings(configmap="ops/notifications", timeout=0.4, attempts=2, backoff=0.1)
    async with cluster.controller(notifications=settings):
        v1 = (await setup(cluster, [{"setWeight": 50}]))["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(completed(cluster, v1), timeout=30, what="update complete")
        await wait_for(lambda: _true(len(receiver.posts.get("platform", [])) == 2), what="2 posts")
    assert status["stableRevision"] != v1
    assert receiver.triggers("platform") == ["Started", "Completed"]
    assert {p["rollout"]["name"] for p in receiver.posts["platform"]} == {"web"}
