"""The seams inside one decision: what is computed once per reconcile and what each strategy owns."""

from datetime import UTC, datetime

import pytest

import rollout.analysis.resolve as resolve_module
from rollout.analysis.resolve import resolve_analyses
from rollout.analysis.runs import QueryResult
from rollout.api.rollout import parse_rollout
from rollout.api.status import AnalysisRun
from rollout.engine.decide import current_revision
from rollout.engine.gates import Analyses
from rollout.engine.rolling import plan_replicas
from rollout.engine.types import Observed, ReplicaSetState
from tests.unit.scenarios import STEP, analysed_sim, start


def test_the_analyses_are_resolved_once_per_reconcile(monkeypatch):
    sim = analysed_sim([{"setWeight": 20}, STEP, {"setWeight": 50}])
    start(sim)
    calls = []
    real = resolve_module.resolve_all
    monkeypatch.setattr(resolve_module, "resolve_all", lambda *a: calls.append(a) or real(*a))
    for _ in range(3):
        sim.tick(10)
        sim.reconcile()
    assert len(calls) == 3  # observing (what is due) and deciding share one resolution
    assert any(r["name"] == "step-2" for r in sim.status["analysisRuns"])  # measured meanwhile


def test_a_failing_gate_is_an_outcome_and_the_abort_is_the_callers():
    sim = analysed_sim([{"setWeight": 20}, STEP, {"setWeight": 50}])
    parsed = parse_rollout(sim.manifest)
    current = current_revision(parsed.rollout)
    status = parsed.status.model_copy(deep=True)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    status.analysis_runs = [AnalysisRun(name="step-2", revision=current, started_at=now)]
    analyses = resolve_analyses(parsed.rollout, status, sim.templates, current)
    measured = QueryResult("step-2", current, "success-rate", now, [0.5])
    events = []
    engine = Analyses(
        parsed.rollout, status, Observed(measurements=(measured,)), analyses.metrics, current, now, events
    )
    engine.fold()
    gate = engine.gate("step-2")
    assert gate.fails and not gate.passed and gate.run == "step-2"
    assert not status.aborted and not [e for e in events if e.reason == "RolloutAborted"]
    assert status.condition("Analysis").reason == "Failed"  # reported, not acted on
    engine.abort(gate)
    assert status.aborted and status.abort_reason == gate.text and "[0.5]" in gate.text
    assert [e.reason for e in events][-2:] == ["AnalysisFailed", "RolloutAborted"]
    engine.abort(gate)  # an abort already made stands, said once
    assert [e.reason for e in events].count("RolloutAborted") == 1


def rs(revision, spec, available, created="0"):
    return ReplicaSetState(revision, revision, spec, spec, available, available, created)


@pytest.mark.parametrize(
    ("sets", "targets", "surge", "unavailable", "expected"),
    [
        # a canary without routes at 1 of 4 pods: the new pod first (surge), stable untouched...
        ([rs("stable", 4, 4)], {"stable": 3, "canary": 1}, 1, 0, {"stable": 4, "canary": 1}),
        # ... then, once it is available, one stable pod goes
        (
            [rs("stable", 4, 4), rs("canary", 1, 1)],
            {"stable": 3, "canary": 1},
            1,
            0,
            {"stable": 3, "canary": 1},
        ),
        # an abandoned canary's pods go first; its unavailable ones cost no availability
        (
            [rs("old", 2, 0, "0"), rs("stable", 4, 4, "1")],
            {"stable": 2, "canary": 2},
            1,
            0,
            {"old": 0, "stable": 4, "canary": 1},
        ),
        # the rolling update is the same arithmetic with one target
        (
            [rs("a", 1, 1, "1"), rs("b", 2, 2, "2"), rs("new", 2, 2, "3")],
            {"new": 4},
            0,
            1,
            {"a": 0, "b": 1, "new": 3},
        ),
    ],
)
def test_one_replica_arithmetic_for_rolling_and_a_canary_without_routes(
    sets, targets, surge, unavailable, expected
):
    assert plan_replicas(sets, targets, 4, surge, unavailable) == expected


def test_below_minimum_availability_starting_pods_are_kept_to_restore_it():
    # 4 wanted, none may be unavailable, 3 available: of the old revision's 2 starting pods only
    # as many go as the budget allows (they may be about to restore availability), as a
    # Deployment does; a canary without routes now follows the same rule
    sets = [rs("old", 3, 1, "0"), rs("new", 2, 2, "1")]
    assert plan_replicas(sets, {"new": 4}, 4, 0, 0) == {"old": 2, "new": 2}
