"""A consumed `rollout.dev/promote` always takes effect: issued at any instant of a canary, it
passes exactly one pause (the one waiting, or the next one the canary reaches), and when there is
nothing to promote the Event and the message say so."""

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.engine import Command
from tests.manifests import canary_strategy
from tests.unit.scenarios import app_weights, canary_sim

STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}, {"setWeight": 80}]
FIRST_PAUSE, SECOND_PAUSE = 1, 3


def reasons(sim, since=0):
    return [e.reason for d in sim.decisions[since:] for e in d.events]


def drive(sim, promotes_at, readiness, rounds=40):
    """Reconcile `rounds` times after the update; a promote goes with the reconciles numbered in
    `promotes_at`; `readiness[i]` pods become ready after reconcile i (all once the list ends)."""
    sim.set_image("web:2")
    start = len(sim.decisions)
    for i in range(rounds):
        sim.reconcile(*[Command("promote")] * promotes_at.count(i))
        sim.pods_ready(readiness[i] if i < len(readiness) else None)
        sim.tick(1)
    return reasons(sim, start)


def steps_passed(events):
    return events.count("PromotedStep")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 14), st.lists(st.integers(0, 2), max_size=14))
def test_one_promote_at_any_instant_before_the_second_pause_passes_exactly_one_pause(at, readiness):
    sim = canary_sim(canary_strategy(steps=STEPS))
    events = drive(sim, [at], readiness)
    assert steps_passed(events) == 1, events
    assert "PromoteIgnored" not in events and "PromoteUnused" not in events
    # Whichever instant it came at, the canary now waits at the second pause, at 50%.
    assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == SECOND_PAUSE
    assert app_weights(sim)["web-canary"] == 50
    assert not sim.status.get("promotePending")


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 12), st.integers(1, 12), st.lists(st.integers(0, 2), max_size=14))
def test_every_promote_is_accounted_for_and_never_passes_more_than_one_pause(first, gap, readiness):
    """Two promotes: each passes one pause, or is ignored with an Event while another is still
    pending (promotes do not add up: a pause the user has not seen is not passed in advance)."""
    sim = canary_sim(canary_strategy(steps=STEPS))
    events = drive(sim, [first, first + gap], readiness, rounds=50)
    passed, ignored = steps_passed(events), events.count("PromoteIgnored")
    assert passed + ignored == 2 and "PromoteUnused" not in events, events
    assert not sim.status.get("promotePending")
    if passed == 2:
        assert sim.status["phase"] == "Healthy"
        assert sim.status["stableRevision"] == sim.status["currentRevision"]
    else:
        assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == SECOND_PAUSE


def test_a_promote_consumed_before_the_pause_step_began_passes_that_pause():
    """The race seen on a real API server: the route shows 80/20, the user promotes at once, and
    the controller consumes it in a reconcile that still reads step 1 (setWeight 20) from status
    (here: the status write that advanced the step was lost)."""
    sim = canary_sim(canary_strategy(steps=STEPS))
    sim.set_image("web:2")
    for _ in range(20):
        sim.pods_ready()
        sim.tick(1)
        written = sim.reconcile(lose_status=True)
        if app_weights(sim)["web-canary"] == 20:
            break
        sim.manifest["status"] = written.status.wire()
    assert sim.status["currentStepIndex"] == 0 and app_weights(sim)["web-canary"] == 20
    start = len(sim.decisions)
    decision = sim.reconcile(Command("promote"))
    pending = [e for e in decision.events if e.reason == "PromotePending"]
    assert len(pending) == 1 and "passes the next pause" in pending[0].message
    drive_on(sim, rounds=10)
    passed = [e.message for d in sim.decisions[start:] for e in d.events if e.reason == "PromotedStep"]
    assert passed == ["The pending rollout.dev/promote passed step 2 (pause)"]
    assert sim.status["currentStepIndex"] == SECOND_PAUSE and sim.status["phase"] == "Paused"
    assert app_weights(sim)["web-canary"] == 50 and not sim.status["promotePending"]


def test_a_promote_before_the_canary_starts_is_pending_and_shown_in_the_message():
    sim = canary_sim(canary_strategy(steps=STEPS))
    sim.set_image("web:2")
    decision = sim.reconcile(Command("promote"))  # the canary ReplicaSet does not exist yet
    assert [e.reason for e in decision.events if e.reason.startswith("Promote")] == ["PromotePending"]
    assert decision.status.promote_pending
    assert "a rollout.dev/promote is pending" in decision.status.message


def drive_on(sim, rounds):
    start = len(sim.decisions)
    for _ in range(rounds):
        sim.reconcile()
        sim.pods_ready()
        sim.tick(1)
    return reasons(sim, start)


def test_a_promote_with_nothing_to_promote_says_so():
    sim = canary_sim(canary_strategy(steps=STEPS))
    decision = sim.reconcile(Command("promote"))
    ignored = [e for e in decision.events if e.reason == "PromoteIgnored"]
    assert len(ignored) == 1 and "nothing to promote" in ignored[0].message
    assert decision.status.phase == "Healthy" and "nothing to promote" in decision.status.message
    assert not decision.status.promote_pending


def test_a_pending_promote_is_reported_unused_when_a_new_revision_replaces_it():
    sim = canary_sim(canary_strategy(steps=STEPS))
    sim.set_image("web:2")
    sim.reconcile(Command("promote"))  # before step 1: pending
    assert sim.status["promotePending"] is True
    sim.set_image("web:3")
    decision = sim.reconcile()
    unused = [e for e in decision.events if e.reason == "PromoteUnused"]
    assert len(unused) == 1 and "replaced" in unused[0].message
    assert not decision.status.promote_pending
