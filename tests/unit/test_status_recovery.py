"""Never act on a status the controller cannot read, and recover a lost one from the cluster:
an unreadable status holds the Rollout (a condition and an Event, nothing else written); a lost
or reset status takes the stable revision from the Service users are on and starts the canary
again with traffic on stable; it is never a promotion."""

import copy

from rollout.api.revision import REVISION_LABEL
from rollout.engine import Command
from rollout.engine.types import PinService, ScaleReplicaSet, SetTraffic
from tests.manifests import CANARY_STEPS, canary_strategy
from tests.unit.scenarios import app_weights, canary_sim, run


def paused_at_twenty():
    """A canary paused at step 2 (pause) with 20% on the new revision; returns (sim, old, new)."""
    sim = canary_sim(canary_strategy(steps=CANARY_STEPS))
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    run(sim, rounds=8)
    assert sim.status["phase"] == "Paused" and app_weights(sim)["web-canary"] == 20
    return sim, old, sim.revision_for("web:2")


def never_promoted(sim, old, new, since=0):
    """No decision since `since` pointed the stable Service at `new` or scaled `old` down."""
    old_rs = next(rs.name for rs in sim.replicasets.values() if rs.revision == old)
    for decision in sim.decisions[since:]:
        assert PinService("web-stable", new) not in decision.actions
        assert not any(
            isinstance(a, ScaleReplicaSet) and a.name == old_rs and a.replicas < 4 for a in decision.actions
        )


def test_an_unknown_phase_holds_the_rollout_and_writes_only_a_condition():
    sim, old, new = paused_at_twenty()
    sim.manifest["status"]["phase"] = "Suspended"  # written by a newer controller
    before = copy.deepcopy(sim.manifest["status"])
    decision = sim.reconcile(Command("promote"))
    assert decision.actions == [] and decision.conditions_only
    [event] = decision.events
    assert event.type == "Warning" and event.reason == "StatusUnreadable"
    assert "status.phase" in event.message and "holding the rollout" in event.message
    condition = decision.status.condition("InvalidStatus")
    assert condition.status == "True" and "status.phase" in condition.message
    # The stored status is untouched but for its conditions.
    after = sim.manifest["status"]
    assert {k: v for k, v in after.items() if k != "conditions"} == {
        k: v for k, v in before.items() if k != "conditions"
    }
    assert [c["type"] for c in after["conditions"]] == [c["type"] for c in before["conditions"]] + [
        "InvalidStatus"
    ]
    assert app_weights(sim)["web-canary"] == 20 and sim.services["web-stable"][REVISION_LABEL] == old
    assert sim.reconcile().events == []  # a second reconcile says nothing new
    never_promoted(sim, old, new)


def test_a_fixed_status_resumes_where_it_was_without_promoting():
    sim, old, new = paused_at_twenty()
    status = sim.manifest["status"]
    status["phase"] = "Suspended"
    sim.reconcile()
    del sim.manifest["status"]["phase"]  # the fix: remove the field (kubectl patch --subresource=status)
    since = len(sim.decisions)
    run(sim, rounds=5)
    reasons = [e.reason for d in sim.decisions[since:] for e in d.events]
    assert "StatusReadable" in reasons
    assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == 1
    assert app_weights(sim)["web-canary"] == 20 and sim.status["stableRevision"] == old
    assert not any(c["type"] == "InvalidStatus" for c in sim.status["conditions"])
    never_promoted(sim, old, new)


def test_a_status_that_is_not_an_object_holds_too():
    sim, _, _ = paused_at_twenty()
    sim.manifest["status"] = "garbage"
    decision = sim.reconcile()
    assert decision.actions == [] and decision.events[0].reason == "StatusUnreadable"
    assert "status: expected an object" in decision.events[0].message


def test_a_lost_status_is_recovered_from_the_stable_service_and_the_canary_starts_again():
    sim, old, new = paused_at_twenty()
    sim.manifest.pop("status")  # deleted by hand, or the object restored without it
    since = len(sim.decisions)
    first = sim.reconcile()
    [recovered] = [e for e in first.events if e.reason == "StableRecovered"]
    assert f"taking {old} as stable" in recovered.message and "Service web-stable" in recovered.message
    assert "the routes carried 20% to the canary" in recovered.message
    assert first.status.stable_revision == old and first.status.current_step_index is None
    assert first.actions[0] == SetTraffic(first.actions[0].state) and first.actions[0].state.weight == 0
    run(sim, rounds=10)
    # Started again from step 1: back at the first pause, 20% once more, never promoted.
    assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == 1
    assert sim.status["stableRevision"] == old and app_weights(sim)["web-canary"] == 20
    weights = [a.state.weight for d in sim.decisions[since:] for a in d.actions if isinstance(a, SetTraffic)]
    assert weights[0] == 0 and max(weights) == 20
    never_promoted(sim, old, new, since)


def test_a_status_from_a_backup_naming_the_new_revision_stable_is_not_believed():
    sim, old, new = paused_at_twenty()
    sim.manifest["status"]["stableRevision"] = new
    since = len(sim.decisions)
    decision = sim.reconcile()
    [recovered] = [e for e in decision.events if e.reason == "StableRecovered"]
    assert f"status says revision {new} is stable, but users are on {old}" in recovered.message
    run(sim, rounds=10)
    assert sim.status["stableRevision"] == old and sim.status["currentStepIndex"] == 1
    never_promoted(sim, old, new, since)


def test_first_deploy_means_no_replicaset_not_no_stable_revision():
    sim = canary_sim(canary_strategy(steps=CANARY_STEPS))
    first = sim.decisions[0]
    assert first.events[0].reason == "FirstRevision"
    # A Healthy Rollout whose status is lost: nothing to roll out, recovered, not a first deploy.
    sim.manifest.pop("status")
    decision = sim.reconcile()
    reasons = [e.reason for e in decision.events]
    assert "FirstRevision" not in reasons and "StableRecovered" in reasons
    assert decision.status.stable_revision == sim.services["web-stable"][REVISION_LABEL]
