"""The engine, table by table: rolling arithmetic, first deploy, completion, commands, abort order,
pauses, the progress deadline and InvalidSpec."""

import pytest

from rollout.engine import Command, ReplicaSetState
from rollout.engine.rolling import plan_rolling
from rollout.engine.types import CreateReplicaSet, ScaleReplicaSet
from tests.manifests import rollout_manifest
from tests.sim import Sim


def rs(name, spec, available, created="0"):
    return ReplicaSetState(
        name=name,
        revision=name,
        spec_replicas=spec,
        replicas=spec,
        ready=available,
        available=available,
        created_at=created,
    )


@pytest.mark.parametrize(
    ("target", "others", "desired", "surge", "unavailable", "expected_target", "expected_down"),
    [
        # nothing exists yet: the whole target at once
        (None, [], 5, 1, 0, 5, {}),
        # surge 1, unavailable 0: one new pod, nothing removed until it is available
        (None, [rs("old", 5, 5)], 5, 1, 0, 1, {}),
        (rs("new", 1, 0), [rs("old", 5, 5)], 5, 1, 0, 1, {}),
        # ... and once it is, one old pod goes and the next new one comes in the same step
        (rs("new", 1, 1), [rs("old", 5, 5)], 5, 1, 0, 2, {"old": 4}),
        # surge 0, unavailable 1: one old pod goes and one new pod takes its place
        (None, [rs("old", 4, 4)], 4, 0, 1, 1, {"old": 3}),
        (rs("new", 0, 0), [rs("old", 3, 3)], 4, 0, 1, 1, {}),
        # unavailable old pods are removed first, without touching availability
        (rs("new", 2, 2), [rs("old", 3, 1)], 4, 1, 0, 3, {"old": 2}),
        # oldest revision goes down first
        (rs("new", 2, 2), [rs("a", 1, 1, "1"), rs("b", 2, 2, "2")], 4, 0, 1, 3, {"a": 0, "b": 1}),
        # replicas lowered: the target follows at once
        (rs("new", 6, 6), [], 4, 1, 1, 4, {}),
    ],
)
def test_plan_rolling(target, others, desired, surge, unavailable, expected_target, expected_down):
    plan = plan_rolling(target, others, desired, surge, unavailable)
    assert plan.target_replicas == expected_target
    assert plan.scale_down == expected_down


def deployed(replicas=4, **kwargs):
    sim = Sim(rollout_manifest(replicas=replicas, **kwargs))
    sim.settle()
    assert sim.status["phase"] == "Healthy"
    return sim


def test_first_deploy_is_stable_at_once_and_full_scale():
    sim = Sim(rollout_manifest(replicas=4, strategy={"rolling": {"maxSurge": 1, "maxUnavailable": 0}}))
    decision = sim.reconcile()
    [create] = decision.actions
    assert isinstance(create, CreateReplicaSet) and create.replicas == 4
    assert sim.status["stableRevision"] == sim.status["currentRevision"] == create.revision
    assert sim.status["phase"] == "Progressing"
    assert "FirstRevision" in [e.reason for e in decision.events]
    sim.pods_ready()
    sim.reconcile()
    assert sim.status["phase"] == "Healthy"
    assert sim.status["availableReplicas"] == 4


def test_update_completes_and_makes_new_revision_stable():
    sim = deployed()
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    sim.settle()
    new = sim.status["currentRevision"]
    assert new != old
    assert sim.status["stableRevision"] == new
    assert sim.status["phase"] == "Healthy"
    assert sim.spec_of(new) == 4 and sim.spec_of(old) == 0
    reasons = [e.reason for d in sim.decisions for e in d.events]
    assert "NewRevision" in reasons and "RolloutCompleted" in reasons


def test_abort_scales_stable_up_before_scaling_new_down():
    sim = deployed(strategy={"rolling": {"maxSurge": 2, "maxUnavailable": 0}})
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    for _ in range(3):
        sim.reconcile()
        sim.pods_ready(1)
    new = sim.status["currentRevision"]
    assert sim.spec_of(old) < 4 and sim.spec_of(new) > 0  # mid-update
    decision = sim.reconcile(Command("abort"))
    assert decision.actions == [ScaleReplicaSet(f"web-{old}", 4)]
    assert sim.status["phase"] == "Degraded" and sim.status["aborted"] is True
    assert sim.spec_of(new) > 0
    decision = sim.reconcile()  # stable not available yet: the new revision keeps its pods
    assert decision.actions == []
    sim.pods_ready()
    decision = sim.reconcile()
    assert decision.actions == [ScaleReplicaSet(f"web-{new}", 0)]
    sim.settle()
    assert sim.spec_of(old) == 4 and sim.spec_of(new) == 0
    assert sim.status["phase"] == "Degraded"
    assert "Aborted" in sim.status["message"]


def test_retry_after_abort_resumes_the_update():
    sim = deployed()
    sim.set_image("web:2")
    sim.reconcile()
    sim.reconcile(Command("abort"))
    sim.settle()
    decision = sim.reconcile(Command("retry"))
    assert sim.status["aborted"] is False
    assert "RolloutRetried" in [e.reason for e in decision.events]
    sim.settle()
    assert sim.status["phase"] == "Healthy"
    assert sim.status["stableRevision"] == sim.status["currentRevision"]


def test_abort_with_nothing_in_progress_is_ignored():
    sim = deployed()
    decision = sim.reconcile(Command("abort"))
    assert sim.status["aborted"] is False
    assert [e.reason for e in decision.events] == ["AbortIgnored"]


def test_user_pause_freezes_scaling_until_resume():
    sim = deployed()
    sim.set_image("web:2")
    sim.reconcile()
    sim.pods_ready()
    decision = sim.reconcile(Command("pause"))
    assert decision.actions == []
    assert sim.status["phase"] == "Paused"
    assert sim.status["pauseConditions"][0]["reason"] == "UserPause"
    sim.tick(3600)  # a pause does not count against the progress deadline
    decision = sim.reconcile(Command("promote", "step"))  # promote does not clear a user pause
    assert sim.status["phase"] == "Paused" and decision.actions == []
    decision = sim.reconcile(Command("resume"))
    assert decision.actions, "resume should continue scaling"
    sim.settle()
    assert sim.status["phase"] == "Healthy"


def test_spec_paused_is_a_declarative_pause():
    sim = deployed()
    sim.manifest["spec"]["paused"] = True
    sim.set_image("web:2")
    decision = sim.reconcile()
    assert decision.actions == [] and sim.status["phase"] == "Paused"
    assert sim.status["pauseConditions"][0]["reason"] == "SpecPaused"
    sim.manifest["spec"]["paused"] = False
    sim.settle()
    assert sim.status["phase"] == "Healthy" and sim.status["pauseConditions"] == []


def test_progress_deadline_degrades_with_a_clear_reason():
    sim = deployed(progressDeadlineSeconds=30, strategy={"rolling": {"maxSurge": 1, "maxUnavailable": 0}})
    sim.set_image("web:broken")
    sim.reconcile()  # the new ReplicaSet is created ...
    sim.reconcile()  # ... and its pod counted; from here on nothing moves
    sim.tick(10)
    decision = sim.reconcile()
    assert sim.status["phase"] == "Progressing"
    assert decision.requeue_after == pytest.approx(20)
    sim.tick(25)
    decision = sim.reconcile()
    assert sim.status["phase"] == "Degraded"
    assert "no progress for 30s" in sim.status["message"]
    progressing = next(c for c in sim.status["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "False" and progressing["reason"] == "ProgressDeadlineExceeded"
    assert "ProgressDeadlineExceeded" in [e.reason for e in decision.events]
    assert sim.status["aborted"] is False  # without progressDeadlineAbort it keeps trying
    sim.pods_ready()  # the pods come up after all: progress clears the deadline condition
    decision = sim.reconcile()
    assert sim.status["phase"] == "Progressing"
    sim.settle()
    assert sim.status["phase"] == "Healthy"


def test_progress_deadline_abort_rolls_back():
    sim = deployed(
        progressDeadlineSeconds=30,
        progressDeadlineAbort=True,
        strategy={"rolling": {"maxSurge": 0, "maxUnavailable": 1}},
    )
    old = sim.status["stableRevision"]
    sim.set_image("web:broken")
    sim.reconcile()  # one old pod goes
    sim.reconcile()  # one new pod comes, and never becomes available
    sim.reconcile()
    assert sim.spec_of(old) == 3
    sim.tick(31)
    decision = sim.reconcile()
    assert sim.status["aborted"] is True and decision.requeue_after == 0
    assert sim.status["abortReason"] == "progress deadline exceeded"
    assert [e.reason for e in decision.events] == [
        "ProgressDeadlineExceeded",
        "RolloutAborted",
        "PhaseDegraded",
    ]
    decision = sim.reconcile()
    assert decision.actions == [ScaleReplicaSet(f"web-{old}", 4)]
    sim.pods_ready()
    sim.settle()
    assert sim.spec_of(old) == 4 and sim.spec_of(sim.status["currentRevision"]) == 0


def test_template_back_to_stable_is_not_an_update():
    sim = deployed()
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    sim.reconcile()
    sim.set_image("web:1")
    decision = sim.reconcile()
    assert sim.status["currentRevision"] == old
    assert "NewRevision" not in [e.reason for e in decision.events]
    sim.settle()
    assert sim.status["stableRevision"] == old and sim.status["phase"] == "Healthy"
    assert sim.spec_of(old) == 4 and sum(r.spec for r in sim.replicasets.values()) == 4


def test_revision_history_limit_deletes_the_oldest_idle_replicasets():
    sim = deployed(revisionHistoryLimit=1)
    for image in ("web:2", "web:3", "web:4"):
        sim.set_image(image)
        sim.settle()
    deleted = [a for d in sim.decisions for a in d.actions if type(a).__name__ == "DeleteReplicaSet"]
    assert len(deleted) == 2
    assert len(sim.replicasets) == 2  # current + the newest idle one
    assert sim.spec_of(sim.status["stableRevision"]) == 4
    assert sim.spec_of(sim.revision_for("web:3")) == 0
    decision = sim.reconcile()
    assert decision.actions == [] and sim.status["phase"] == "Healthy"


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (
            lambda m: m["spec"]["selector"].update(matchLabels={"app": "other"}),
            "spec.selector",
            "does not match",
        ),
        (lambda m: m["spec"]["selector"].update(matchLabels={}), "spec.selector", "empty"),
        (
            lambda m: m["spec"]["template"]["metadata"]["labels"].update({"rollout.dev/revision": "x"}),
            "spec.template.metadata.labels",
            "set by the controller",
        ),
        (
            lambda m: m["spec"].update(strategy={"rolling": {"maxSurge": 0, "maxUnavailable": "0%"}}),
            "spec.strategy.rolling.maxUnavailable",
            "both 0",
        ),
        (
            lambda m: m["spec"].update(strategy={"canary": {"steps": [{"setWeight": 10}, {}]}}),
            "spec.strategy.canary.steps[1]",
            "no action",
        ),
        (
            lambda m: m["spec"].update(
                strategy={"canary": {"stableService": "web-stable", "canaryService": "web-canary"}}
            ),
            "spec.strategy.canary.stableService",
            "Service shop/web-stable not found",
        ),
        (
            lambda m: m["spec"].update(strategy={"blueGreen": {"activeService": "web-active"}}),
            "spec.strategy.blueGreen.activeService",
            "Service shop/web-active not found",
        ),
    ],
)
def test_invalid_spec_moves_nothing_and_names_the_field(mutate, path, fragment):
    manifest = rollout_manifest()
    mutate(manifest)
    sim = Sim(manifest)
    decision = sim.reconcile()
    assert decision.actions == []
    assert sim.status["phase"] == "Degraded"
    invalid = next(c for c in sim.status["conditions"] if c["type"] == "InvalidSpec")
    assert invalid["status"] == "True"
    assert f"{path}: " in invalid["message"] and fragment in invalid["message"]
    [event] = decision.events
    assert event.type == "Warning" and event.reason == "InvalidSpec" and path in event.message
    assert sim.reconcile().events == []  # the same problem is not announced twice


def test_fixing_the_spec_recovers():
    manifest = rollout_manifest()
    manifest["spec"]["selector"]["matchLabels"] = {"app": "typo"}
    sim = Sim(manifest)
    sim.reconcile()
    assert sim.status["phase"] == "Degraded"
    sim.manifest["spec"]["selector"]["matchLabels"] = {"app": "web"}
    decision = sim.reconcile()
    assert "SpecValid" in [e.reason for e in decision.events]
    assert not any(c["type"] == "InvalidSpec" for c in sim.status["conditions"])
    sim.settle()
    assert sim.status["phase"] == "Healthy"


def test_creating_the_missing_service_clears_its_error():
    sim = Sim(rollout_manifest(strategy={"blueGreen": {"activeService": "web-active"}}))
    sim.reconcile()
    assert "web-active not found" in sim.status["message"]
    sim.services["web-active"] = {"app": "web"}
    sim.reconcile()
    assert "not found" not in sim.status["message"]
