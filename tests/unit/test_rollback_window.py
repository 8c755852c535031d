"""spec.rollbackWindow on the simulator: going back to one of the last N stable revisions skips
the steps and the analysis (it already ran in production); a new revision never does; abort is
still the brake; a negative window is InvalidSpec."""

from rollout.analysis.resolve import TemplateKey
from rollout.engine import Command
from tests.manifests import rollout_manifest
from tests.sim import Sim
from tests.unit.scenarios import ANALYSIS, STEP, TEMPLATE, active, analysed_sim, blue_green_sim


def windowed(revisions, steps=None):
    """A routed canary with a pause and an analysis step, v1 stable, then v2 promoted to stable."""
    sim = analysed_sim(steps or [{"setWeight": 20}, {"pause": {}}, STEP, {"setWeight": 60}])
    sim.manifest["spec"]["rollbackWindow"] = {"revisions": revisions}
    sim.reconcile()
    v1 = sim.status["stableRevision"]
    to_stable(sim, "web:2")
    return sim, v1, sim.status["stableRevision"]


def to_stable(sim, image):
    """Update to `image` and promote at every pause until it is the stable revision."""
    sim.set_image(image)
    wanted = sim.revision_for(image)
    for _ in range(60):
        commands = (Command("promote"),) if sim.status.get("phase") == "Paused" else ()
        sim.reconcile(*commands)
        sim.pods_ready()
        sim.tick(11)
        if sim.status.get("stableRevision") == wanted and sim.status.get("phase") == "Healthy":
            return
    raise AssertionError(f"{image} never became stable: {sim.status.get('message')}")


def settle_without_commands(sim, rounds=60):
    """Reconcile with pods becoming ready and time passing; never a promote. The phases seen."""
    phases = []
    for _ in range(rounds):
        sim.reconcile()
        phases.append(sim.status["phase"])
        sim.pods_ready()
        sim.tick(11)
    return phases


def events_of(sim, reason):
    return [e for d in sim.decisions for e in d.events if e.reason == reason]


def test_going_back_within_the_window_skips_steps_and_analysis():
    sim, v1, v2 = windowed(2)
    assert sim.status["stableHistory"] == [v1]
    runs_before = len(sim.status.get("analysisRuns", []))
    sim.set_image("web:1")
    sim.reconcile()
    assert sim.status["currentRevision"] == v1 and sim.status["stableRevision"] == v2
    assert "rollback fast-tracked: revision" in sim.status["message"]
    assert "within spec.rollbackWindow.revisions (2)" in sim.status["fastTracked"]
    [event] = events_of(sim, "RollbackFastTracked")
    assert event.message.startswith(f"Rollback to {v1} fast-tracked: revision {v1} was stable 1")
    phases = settle_without_commands(sim)
    assert "Paused" not in phases  # no pause step, no analysis step waited for
    assert sim.status["phase"] == "Healthy" and sim.status["stableRevision"] == v1
    v1_runs = [r for r in sim.status.get("analysisRuns", []) if r["revision"] == v1]
    assert not v1_runs and len(sim.status.get("analysisRuns", [])) <= runs_before
    assert sim.status["stableHistory"] == [v2]  # and going forward again would be fast too


def test_a_new_revision_is_never_fast_tracked():
    sim, _, _ = windowed(2)
    sim.set_image("web:3")
    phases = settle_without_commands(sim, rounds=10)
    assert "Paused" in phases
    assert not events_of(sim, "RollbackFastTracked") and not sim.status.get("fastTracked")


def test_without_a_window_going_back_runs_the_steps():
    sim, v1, _ = windowed(0)
    assert sim.status.get("stableHistory", []) == []
    sim.set_image("web:1")
    assert "Paused" in settle_without_commands(sim, rounds=10)
    assert sim.status["stableRevision"] != v1


def test_only_the_last_n_stable_revisions_are_in_the_window():
    sim, v1, v2 = windowed(1)
    to_stable(sim, "web:3")
    assert sim.status["stableHistory"] == [v2]
    sim.set_image("web:1")  # two stable revisions ago: outside a window of 1
    assert "Paused" in settle_without_commands(sim, rounds=10)
    assert sim.status["currentRevision"] == v1 and not events_of(sim, "RollbackFastTracked")
    sim.set_image("web:2")  # one ago: inside
    sim.reconcile()
    assert sim.status["fastTracked"] and events_of(sim, "RollbackFastTracked")


def test_abort_stays_the_brake_during_a_fast_tracked_rollback():
    sim, v1, v2 = windowed(2)
    sim.set_image("web:1")
    sim.reconcile()
    sim.reconcile(Command("abort"))
    settle_without_commands(sim, rounds=10)
    assert sim.status["aborted"] and sim.status["stableRevision"] == v2
    assert sim.spec_of(v2) == 4 and sim.spec_of(v1) == 0
    assert not sim.status.get("fastTracked") and "fast-tracked" not in sim.status["message"]


def test_a_negative_window_is_invalid_spec():
    sim = Sim(rollout_manifest(rollbackWindow={"revisions": -1}))
    decision = sim.reconcile()
    condition = decision.status.condition("InvalidSpec")
    assert condition is not None and condition.message.startswith("spec.rollbackWindow.revisions:")
    assert "greater than or equal to 0" in condition.message
    assert not decision.actions


def test_a_blue_green_rollback_within_the_window_switches_without_waiting_or_analysis():
    sim = blue_green_sim(
        autoPromotionEnabled=False, prePromotionAnalysis=ANALYSIS, postPromotionAnalysis=ANALYSIS
    )
    sim.manifest["spec"]["rollbackWindow"] = {"revisions": 3}
    v1 = sim.status["stableRevision"]
    to_stable(sim, "web:2")
    v2 = sim.status["stableRevision"]
    sim.metric_values = {}  # an analysis would have no answer now: it must not be asked
    sim.set_image("web:1")
    phases = settle_without_commands(sim, rounds=20)
    assert "Paused" not in phases
    assert sim.status["stableRevision"] == v1 and active(sim) == v1
    assert sim.status["stableHistory"] == [v2]
    assert not [r for r in sim.status.get("analysisRuns", []) if r["revision"] == v1]


def test_a_rolling_rollback_within_the_window_skips_the_background_analysis():
    rolling = {"rolling": {"maxSurge": 1, "maxUnavailable": 0, "analysis": ANALYSIS}}
    sim = Sim(
        rollout_manifest(strategy=rolling, rollbackWindow={"revisions": 1}),
        templates={TemplateKey("success-rate"): TEMPLATE},
        metric_values={"success-rate": [0.999]},
    )
    sim.settle()
    v1 = sim.status["stableRevision"]
    to_stable(sim, "web:2")
    sim.metric_values = {}
    sim.set_image("web:1")
    settle_without_commands(sim, rounds=20)
    assert sim.status["phase"] == "Healthy" and sim.status["stableRevision"] == v1
    assert sim.status["skipAnalysis"] is True
