"""The seams inside one decision: what is computed once per reconcile and what each strategy owns."""

import rollout.analysis.resolve as resolve_module
from tests.unit.test_analysis_engine import STEP, analysed_sim, start


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
