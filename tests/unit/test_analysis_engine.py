"""Analysis gates in the pure engine, with scripted Prometheus answers: a failed step rolls back
with traffic first, no data pauses, errors never promote, promote passes an inconclusive step,
background analysis gates completion, and unknown templates are InvalidSpec."""

from rollout.analysis.resolve import TemplateKey
from rollout.engine import Command
from rollout.engine.types import ScaleReplicaSet, SetTraffic
from tests.manifests import rollout_manifest
from tests.sim import Sim
from tests.unit.scenarios import STEP, TEMPLATE, action_log, analysed_sim, app_weights, run, start


def step_run(sim, name="step-2"):
    return next(r for r in sim.status["analysisRuns"] if r["name"] == name)


def test_a_passing_analysis_step_moves_on_after_count_measurements():
    sim = analysed_sim([{"setWeight": 20}, STEP, {"setWeight": 50}, {"pause": {}}])
    start(sim)
    run(sim, rounds=30, seconds=5)
    assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == 3
    assert app_weights(sim)["web-canary"] == 50
    metric = step_run(sim)["metrics"][0]
    assert step_run(sim)["phase"] == "Successful" and metric["successful"] == 3
    times = [m["at"] for m in metric["measurements"]]
    assert len(set(times)) == 3  # one measurement per interval, not per reconcile


def test_a_failed_measurement_aborts_and_moves_traffic_before_scaling_down():
    sim = analysed_sim([{"setWeight": 20}, STEP, {"setWeight": 50}])
    start(sim)
    assert app_weights(sim)["web-canary"] == 20
    sim.metric_values = {"success-rate": [0.8]}
    before = len(action_log(sim))
    run(sim, rounds=20, seconds=5)
    status = sim.status
    assert status["phase"] == "Degraded" and status["aborted"]
    assert "success-rate" in status["abortReason"] and "[0.8]" in status["abortReason"]
    assert app_weights(sim)["web-canary"] == 0
    after = action_log(sim)[before:]
    first_traffic = next(i for i, a in enumerate(after) if isinstance(a, SetTraffic))
    first_scale_down = next(
        i for i, a in enumerate(after) if isinstance(a, ScaleReplicaSet) and a.replicas == 0
    )
    assert first_traffic < first_scale_down
    analysis = next(c for c in status["conditions"] if c["type"] == "Analysis")
    assert analysis["status"] == "False" and "result[0] >= 0.99" in analysis["message"]
    reasons = [e.reason for d in sim.decisions for e in d.events]
    assert "AnalysisFailed" in reasons and "RolloutCompleted" not in reasons[-20:]


def test_no_data_pauses_and_promote_passes_the_step():
    sim = analysed_sim([{"setWeight": 20}, STEP, {"setWeight": 50}, {"pause": {}}])
    sim.metric_values = {"success-rate": []}
    start(sim)
    run(sim, rounds=5, seconds=5)
    assert sim.status["phase"] == "Paused"
    assert [p["reason"] for p in sim.status["pauseConditions"]] == ["AnalysisInconclusive"]
    assert "no data" in sim.status["message"]
    assert app_weights(sim)["web-canary"] == 20  # held where it was, never promoted
    run(sim, 1, 1.0, True, Command("promote", "step"))
    run(sim, rounds=5)
    assert sim.status["currentStepIndex"] == 3 and app_weights(sim)["web-canary"] == 50
    assert step_run(sim)["phase"] == "Successful" and "rollout.dev/promote" in step_run(sim)["message"]


def test_prometheus_errors_hold_the_step_then_abort_never_promote():
    sim = analysed_sim([{"setWeight": 20}, STEP, {"setWeight": 100}])
    sim.metric_values = {"success-rate": "Prometheus at http://p:9090 is unreachable (connection failed)"}
    start(sim)
    seen_weights = set()
    for _ in range(12):
        run(sim, rounds=1, seconds=5)
        seen_weights.add(app_weights(sim)["web-canary"])
        if sim.status.get("aborted"):
            break
        assert sim.status["currentStepIndex"] == 1
    assert sim.status["aborted"] and "consecutiveErrorLimit 4" in sim.status["abortReason"]
    assert seen_weights <= {0, 20}
    run(sim, rounds=5)
    assert (
        app_weights(sim)["web-canary"] == 0 and sim.status["stableRevision"] != sim.status["currentRevision"]
    )


def test_background_analysis_gates_completion_and_its_failure_aborts():
    background = {"templates": [{"name": "success-rate"}]}
    sim = analysed_sim([{"setWeight": 50}], analysis=background)
    start(sim)
    run(sim, rounds=3)
    assert sim.status["phase"] == "Progressing" and "background" in sim.status["message"]
    assert sim.status["stableRevision"] != sim.status["currentRevision"]
    run(sim, rounds=10, seconds=5)
    assert sim.status["phase"] == "Healthy" and sim.status["stableRevision"] == sim.status["currentRevision"]

    sim.metric_values = {"success-rate": [0.5]}
    sim.set_image("web:3")
    run(sim, rounds=10, seconds=5)
    assert sim.status["aborted"] and "background" in sim.status["abortReason"]
    assert app_weights(sim)["web-canary"] == 0


def test_a_missing_template_is_invalid_spec_and_nothing_moves():
    sim = analysed_sim([{"setWeight": 20}, STEP])
    sim.manifest["spec"]["strategy"]["canary"]["steps"][1] = {"analysis": {"templates": [{"name": "gone"}]}}
    start(sim)
    assert sim.status["phase"] == "Degraded"
    assert (
        "spec.strategy.canary.steps[1].analysis.templates[0]: AnalysisTemplate gone not found"
        in (sim.status["message"])
    )
    assert app_weights(sim)["web-canary"] == 0


def test_rolling_update_waits_for_background_analysis():
    strategy = {
        "rolling": {"maxSurge": 1, "maxUnavailable": 0, "analysis": {"templates": [{"name": "success-rate"}]}}
    }
    sim = Sim(rollout_manifest(replicas=2, strategy=strategy))
    sim.templates = {TemplateKey("success-rate"): TEMPLATE}
    sim.metric_values = {"success-rate": [0.999]}
    sim.settle()
    sim.set_image("web:2")
    run(sim, rounds=8)
    assert sim.status["updatedReplicas"] == 2 and sim.status["phase"] == "Progressing"
    run(sim, rounds=10, seconds=5)
    assert sim.status["phase"] == "Healthy" and sim.status["stableRevision"] == sim.status["currentRevision"]


def test_a_timed_pause_never_postpones_a_due_background_measurement():
    """The reconcile is requeued for the next measurement, not for the end of the pause: with a
    40 s pause and a 10 s interval, the engine asks to look again within 10 s every time."""
    background = {"templates": [{"name": "success-rate"}]}
    sim = analysed_sim(
        [{"setWeight": 20}, {"pause": {"duration": "40s"}}, {"setWeight": 60}], analysis=background
    )
    start(sim)
    assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == 1
    paused_at = sim.now
    sim.metric_values = {"success-rate": [0.5]}
    for _ in range(10):
        decision = sim.reconcile()
        if decision.status.aborted:
            break
        assert decision.requeue_after is not None and decision.requeue_after <= 10
        sim.tick(decision.requeue_after)
    assert sim.status["aborted"] and "background" in sim.status["abortReason"]
    assert app_weights(sim)["web-canary"] == 0
    # Aborted at the next measurement (interval 10 s), long before the pause would end.
    assert (sim.now - paused_at).total_seconds() <= 10


def test_a_promote_issued_before_an_analysis_step_passes_it_once_inconclusive():
    sim = analysed_sim([{"setWeight": 20}, STEP, {"setWeight": 50}, {"pause": {}}])
    sim.metric_values = {"success-rate": []}  # no data: the step will be inconclusive
    sim.set_image("web:2")
    first = sim.reconcile(Command("promote"))
    assert [e.reason for e in first.events if e.reason.startswith("Promote")] == ["PromotePending"]
    run(sim, rounds=20, seconds=5)
    assert step_run(sim)["phase"] == "Successful"
    assert "passed by rollout.dev/promote" in step_run(sim)["message"]
    reasons = [e.reason for d in sim.decisions for e in d.events]
    assert reasons.count("PromotedAnalysis") == 1 and "PromotedStep" not in reasons
    # One promote, one gate: the pause after the analysis still waits.
    assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == 3
