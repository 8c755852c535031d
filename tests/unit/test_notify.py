"""Notifications without I/O: the reason -> trigger table against the Events the engine really
posts, the JSON and Slack bodies, and bad spec.notifications as InvalidSpec with field paths."""

import re
from datetime import UTC, datetime
from pathlib import Path

from rollout.api.rollout import parse_rollout
from rollout.api.spec import NOTIFICATION_TRIGGERS
from rollout.api.status import CanaryStatus, RolloutStatus
from rollout.engine.types import Event
from rollout.notify.messages import TRIGGER_OF_REASON, body_of, notice_of, trigger_of
from rollout.notify.targets import parse_configmap
from tests.manifests import canary_strategy, rollout_manifest
from tests.unit.scenarios import canary_sim, run

NOW = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]
HOOK = {"name": "team", "urlFrom": {"secretKeyRef": {"name": "hook", "key": "url"}}}


def rollout(**notifications):
    m = rollout_manifest(strategy=canary_strategy(steps=STEPS))
    if notifications:
        m["spec"]["notifications"] = notifications
    return parse_rollout(m)


def test_every_trigger_has_a_reason_and_unrelated_events_trigger_nothing():
    assert set(TRIGGER_OF_REASON.values()) == set(NOTIFICATION_TRIGGERS)
    # Each reason of the table is one the engine posts (a misspelt one would never notify).
    engine = "\n".join(path.read_text() for path in Path("rollout/engine").glob("*.py"))
    posted = set(re.findall(r'Event\(\s*"(?:Normal|Warning)",\s*"(\w+)"', engine))
    # A failed gate says its phase: Analysis{gate.phase}, Failed or Error.
    assert 'Event("Warning", f"Analysis{gate.phase}"' in engine
    posted |= {"AnalysisFailed", "AnalysisError"}
    assert set(TRIGGER_OF_REASON) <= posted, set(TRIGGER_OF_REASON) - posted
    assert trigger_of("StepCompleted") == "StepCompleted"
    assert trigger_of("AnalysisError") == "AnalysisFailed"
    for reason in ("PhasePaused", "RolloutPaused", "PromotedStep", "InvalidSpec", "FirstRevision"):
        assert trigger_of(reason) is None


def test_a_canary_pause_step_without_duration_posts_awaiting_promotion_once():
    sim = canary_sim(canary_strategy(steps=STEPS))
    sim.set_image("web:2")
    run(sim, rounds=12)
    assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == 1
    reasons = [e.reason for d in sim.decisions for e in d.events]
    assert reasons.count("AwaitingPromotion") == 1  # not on every reconcile while it waits
    moments = [TRIGGER_OF_REASON[r] for r in reasons if r in TRIGGER_OF_REASON]
    assert moments == ["Started", "StepCompleted", "Paused"]
    message = next(e.message for d in sim.decisions for e in d.events if e.reason == "AwaitingPromotion")
    assert message == "Paused at step 2/3 until rollout.dev/promote"


def test_json_body_of_a_step():
    parsed = rollout()
    status = RolloutStatus(
        current_revision="b2",
        stable_revision="a1",
        current_step_index=1,
        phase="Progressing",
        canary=CanaryStatus(weight=0),
    )
    notice = notice_of(parsed.rollout, status, Event("Normal", "StepCompleted", "Step 1/3 done"), NOW)
    assert body_of(notice, "json") == {
        "rollout": {"namespace": "shop", "name": "web"},
        "trigger": "StepCompleted",
        "event": {"type": "Normal", "reason": "StepCompleted", "message": "Step 1/3 done"},
        "revision": "b2",
        "stableRevision": "a1",
        "phase": "Progressing",
        "step": 1,
        "steps": 3,
        "weight": 20,  # what step 1 set, though the routes were read back at 0 before the write
        "timestamp": "2026-03-01T12:00:05Z",
    }


def test_weight_after_an_abort_and_at_completion_and_slack_text():
    parsed = rollout()
    aborted = RolloutStatus(current_revision="b2", stable_revision="a1", current_step_index=2, aborted=True)
    notice = notice_of(parsed.rollout, aborted, Event("Warning", "RolloutAborted", "Aborted by command"), NOW)
    assert notice.trigger == "Aborted" and notice.weight == 0
    assert body_of(notice, "slack") == {
        "text": ":warning: *Aborted* Rollout `shop/web`: Aborted by command "
        "(revision b2, step 2/3, canary weight 0%)"
    }
    done = RolloutStatus(current_revision="b2", stable_revision="b2")
    notice = notice_of(parsed.rollout, done, Event("Normal", "RolloutCompleted", "b2 is stable"), NOW)
    assert notice.weight == 100 and notice.step is None
    assert (
        body_of(notice, "slack")["text"]
        == "*Completed* Rollout `shop/web`: b2 is stable (revision b2, canary weight 100%)"
    )


def test_a_rolling_update_has_no_step_or_weight():
    parsed = parse_rollout(rollout_manifest())
    status = RolloutStatus(current_revision="b2", stable_revision="a1")
    notice = notice_of(parsed.rollout, status, Event("Normal", "NewRevision", "New revision b2"), NOW)
    body = body_of(notice, "json")
    assert (body["trigger"], body["step"], body["steps"], body["weight"]) == ("Started", None, None, None)
    assert notice_of(parsed.rollout, status, Event("Normal", "PhaseHealthy", "x"), NOW) is None


def test_bad_notifications_are_spec_errors_with_their_field_paths():
    bad = rollout(
        webhooks=[
            {**HOOK, "triggers": ["Started", "Deployed"]},
            {"name": "chat", "urlFrom": {}},
            {**HOOK, "name": "x", "format": "teams"},
            {**HOOK, "name": "y", "triggers": []},
        ]
    )
    assert bad.rollout is None
    paths = {e.path: e.message for e in bad.errors}
    assert set(paths) == {
        "spec.notifications.webhooks[0].triggers[1]",
        "spec.notifications.webhooks[1].urlFrom.secretKeyRef",
        "spec.notifications.webhooks[2].format",
        "spec.notifications.webhooks[3].triggers",
    }
    assert "'StepCompleted'" in paths["spec.notifications.webhooks[0].triggers[1]"]
    assert paths["spec.notifications.webhooks[1].urlFrom.secretKeyRef"] == "Field required"
    duplicate = rollout(webhooks=[HOOK, HOOK])
    assert [e.path for e in duplicate.errors] == ["spec.notifications"]
    good = rollout(webhooks=[HOOK, {**HOOK, "name": "chat", "triggers": ["Paused"], "format": "slack"}])
    team, chat = good.rollout.spec.notifications.webhooks
    assert team.wants("Aborted") and team.format == "json"
    assert chat.wants("Paused") and not chat.wants("Completed")


def test_the_configmap_is_read_or_refused_with_the_problem():
    ok = {
        "data": {
            "notifications.yaml": "webhooks:\n"
            "  - name: ops\n"
            "    urlFrom: {secretKeyRef: {name: h, key: url}}\n"
        }
    }
    webhooks, problem = parse_configmap(ok, "ops/n")
    assert [w.name for w in webhooks] == ["ops"] and problem == ""
    assert parse_configmap({"data": {}}, "ops/n") == (
        [],
        "ConfigMap ops/n has no key data.notifications.yaml",
    )
    wrong = {"data": {"notifications.yaml": "webhooks:\n  - name: ops\n    triggers: [Later]\n"}}
    webhooks, problem = parse_configmap(wrong, "ops/n")
    assert webhooks == [] and "webhooks.0.urlFrom: Field required" in problem
    assert "webhooks.0.triggers.0: Input should be" in problem


def test_a_webhook_url_is_not_logged_even_at_debug(capsys):
    """A Slack webhook's path is its token: urllib3 would log it with each request at DEBUG."""
    import http.server
    import logging
    import threading

    from rollout.notify.delivery import post
    from rollout.observability.logging import configure_logging

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        configure_logging("DEBUG", json=True)
        url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/SECRET-TOKEN"
        assert post(url, {"text": "hi"}, timeout=2.0) == 200
        logging.getLogger("tests").debug("debug lines are written")
    finally:
        server.shutdown()
        configure_logging("INFO", json=True)
    logged = capsys.readouterr().err
    assert "debug lines are written" in logged
    assert "SECRET-TOKEN" not in logged
