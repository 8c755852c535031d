"""Any stored status (lost, truncated, from another version, hand-edited, random) with any cluster
state mid-canary or mid-blue/green never moves users to a revision that no analysis passed.

The analysis never passes here (its metric fails, has no data, or errors): the canary's analysis
step, or the blue/green's pre-promotion analysis (auto-promotion on). So the only revision users
may be on is the one the stable (active) Service selected at the start. Excluded from the random
statuses are the records of decisions already made, which a controller must trust to resume
after a restart: a Successful analysis run, `skipAnalysis` (promote full), a pending promote, a
step index at completion, and a blue/green's promotion or switch."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.api.revision import REVISION_LABEL
from rollout.engine import Command
from rollout.engine.types import ScaleReplicaSet, SetTraffic
from tests.unit.scenarios import ANALYSIS, STEP, active, analysed_sim, blue_green_sim, check_route

STEPS = [{"setWeight": 20}, {"pause": {"duration": 5}}, STEP, {"setWeight": 60}, {"pause": {}}]
PHASES = ["Progressing", "Paused", "Healthy", "Degraded", None]


def status_strategy(revisions):
    revision = st.sampled_from([*revisions, "0123456789", None])
    when = st.sampled_from(["2026-01-01T00:00:00Z", "2025-06-01T12:00:00Z"])
    pause = st.fixed_dictionaries(
        {
            "reason": st.sampled_from(["CanaryPauseStep", "UserPause", "AnalysisInconclusive"]),
            "startTime": when,
        }
    )
    run = st.fixed_dictionaries(
        {
            "name": st.sampled_from(["step-3", "background"]),
            "revision": revision,
            "phase": st.sampled_from(["Running", "Failed", "Inconclusive", "Error"]),
            "startedAt": when,
        }
    )
    fields = {
        "phase": st.sampled_from(PHASES),
        "stableRevision": revision,
        "currentRevision": revision,
        "currentStepIndex": st.one_of(st.none(), st.integers(0, len(STEPS) - 1)),
        "stepStartedAt": when,
        "pauseConditions": st.lists(pause, max_size=2),
        "aborted": st.booleans(),
        "abortReason": st.text(max_size=10),
        "canary": st.fixed_dictionaries(
            {},
            optional={
                "weight": st.integers(0, 100),
                "stepsHash": st.sampled_from(["", "abcdef0123"]),
                "scaleDownAt": when,
            },
        ),
        "analysisRuns": st.lists(run, max_size=2),
        "fromANewerVersion": st.just({"anything": 1}),  # unknown fields are ignored
    }
    return st.fixed_dictionaries({}, optional=fields)


def random_status(data, real, revisions):
    return data.draw(
        st.one_of(
            st.none(),
            st.just({}),
            truncated(real),
            status_strategy(revisions),
            status_strategy(revisions).map(lambda s: {**real, **s}),
        ),
        label="status",
    )


def store(sim, stored):
    if stored is None:
        sim.manifest.pop("status", None)
    else:
        sim.manifest["status"] = stored


def truncated(real):
    return st.sets(st.sampled_from(sorted(real))).map(lambda keep: {k: real[k] for k in keep})


operation = st.one_of(
    st.tuples(st.just("ready"), st.integers(0, 3)),
    st.tuples(st.just("wait"), st.integers(1, 20)),
    st.tuples(st.just("crash"), st.just(0)),
    st.tuples(st.sampled_from(["abort", "retry", "pause", "resume"]), st.just(0)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.integers(0, 12),
    st.booleans(),
    st.sampled_from([[0.5], [], "connection refused"]),
    st.lists(operation, max_size=25),
)
def test_no_status_ever_moves_users_to_an_unanalysed_revision(data, rounds, third, answer, operations):
    sim = analysed_sim(STEPS)
    sim.metric_values = {"success-rate": answer}
    users_on = sim.services["web-stable"][REVISION_LABEL]
    revisions = [users_on, sim.revision_for("web:2"), sim.revision_for("web:3")]
    if third:  # an abandoned canary of web:3 still around
        sim.set_image("web:3")
        for _ in range(4):
            sim.reconcile()
            sim.pods_ready()
            sim.tick(1)
    sim.set_image("web:2")
    for _ in range(rounds):  # the canary somewhere along its steps
        sim.reconcile()
        sim.pods_ready(data.draw(st.integers(0, 2)))
        sim.tick(data.draw(st.integers(1, 6)))

    real = copy.deepcopy(sim.manifest.get("status") or {})
    store(sim, random_status(data, real, revisions))
    users_rs = next(rs.name for rs in sim.replicasets.values() if rs.revision == users_on)

    def check(decision, canary_available):
        assert sim.services["web-stable"][REVISION_LABEL] == users_on
        for action in decision.actions:
            if isinstance(action, ScaleReplicaSet) and action.name == users_rs:
                assert action.replicas >= 4, action
            if isinstance(action, SetTraffic) and canary_available == 0:
                assert action.state.weight == 0
        check_route(sim.routes["web"])

    for kind, value in [("start", 0), *operations]:
        commands = () if kind in ("start", "crash", "ready", "wait") else (Command(kind),)
        canary_available = sum(rs.available for rs in sim.replicasets.values() if rs.revision == revisions[1])
        decision = sim.reconcile(*commands, lose_status=kind == "crash")
        check(decision, canary_available)
        if kind == "ready":
            sim.pods_ready(value)
        sim.tick(value if kind == "wait" else 1)
    for _ in range(30):  # and when left alone
        canary_available = sum(rs.available for rs in sim.replicasets.values() if rs.revision == revisions[1])
        check(sim.reconcile(), canary_available)
        sim.pods_ready()
        sim.tick(3)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.integers(0, 10),
    st.sampled_from([[0.5], [], "connection refused"]),
    st.lists(operation, max_size=20),
)
def test_no_status_ever_switches_users_to_an_unanalysed_revision(data, rounds, answer, operations):
    sim = blue_green_sim(prePromotionAnalysis=ANALYSIS, previewReplicaCount=1)
    sim.metric_values = {"success-rate": answer}
    users_on = active(sim)
    revisions = [users_on, sim.revision_for("web:2"), sim.revision_for("web:3")]
    sim.set_image("web:2")
    for _ in range(rounds):
        sim.reconcile()
        sim.pods_ready(data.draw(st.integers(0, 2)))
        sim.tick(data.draw(st.integers(1, 6)))
    real = copy.deepcopy(sim.manifest.get("status") or {})
    stored = random_status(data, real, revisions)
    if isinstance(stored, dict):  # a promotion or switch recorded is a decision made: trusted
        stored.pop("blueGreen", None)
    store(sim, stored)
    users_rs = next(rs.name for rs in sim.replicasets.values() if rs.revision == users_on)

    for kind, value in [("start", 0), *operations, *[("ready", 2)] * 20]:
        commands = () if kind in ("start", "crash", "ready", "wait") else (Command(kind),)
        decision = sim.reconcile(*commands, lose_status=kind == "crash")
        assert active(sim) == users_on
        for action in decision.actions:
            if isinstance(action, ScaleReplicaSet) and action.name == users_rs:
                assert action.replicas >= 4, action
        if kind == "ready":
            sim.pods_ready(value)
        sim.tick(value if kind == "wait" else 1)
