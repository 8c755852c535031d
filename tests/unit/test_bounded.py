"""Bounded resources: a Rollout with 1,000 steps and one with 100 analysis metrics measured many
times with long messages keep every status list bounded and the wire status under 100 KiB."""

import json
from datetime import timedelta

from rollout.analysis.resolve import TemplateKey
from rollout.analysis.runs import MAX_MEASUREMENTS
from rollout.api.status import AnalysisRun, Condition, Measurement, MetricResult, RolloutStatus
from rollout.api.templates import parse_template
from rollout.engine.bounds import (
    MAX_STATUS_BYTES,
    MEASUREMENT_MESSAGE,
    METRIC_MESSAGE,
    RUN_MESSAGE,
    bound_status,
    measurements_kept,
)
from tests.manifests import canary_strategy, http_route_manifest, rollout_manifest
from tests.sim import T0, Sim
from tests.unit.scenarios import app_weights, run

LONG = "x" * 5000


def wire_size(status):
    return len(json.dumps(status))


def test_a_thousand_steps_run_through_with_a_small_status():
    steps = [{"setWeight": 1 + i % 99} for i in range(999)] + [{"pause": {}}]
    sim = Sim(
        rollout_manifest(strategy=canary_strategy(steps=steps)),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": http_route_manifest()},
    )
    sim.settle()
    sim.set_image("web:2")
    run(sim, rounds=30)
    assert sim.status["currentStepIndex"] >= 20
    # Status is the only memory: a controller that finds the canary at step 990 goes on from there
    # (walking all 1,000 steps one reconcile each takes half a minute of test time).
    sim.manifest["status"]["currentStepIndex"] = 990
    run(sim, rounds=20)
    assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == 999
    assert app_weights(sim)["web-canary"] == 1 + 998 % 99
    assert wire_size(sim.status) < 4 * 1024
    assert len(sim.status["conditions"]) <= 4 and len(sim.status["pauseConditions"]) == 1


def hundred_metrics(query_length=2000):
    metrics = [
        {
            "name": f"m{i:03d}",
            "interval": "1s",
            "successCondition": "result[0] >= 0.5",
            "inconclusiveLimit": 100000,
            "consecutiveErrorLimit": 100000,
            "failureLimit": 100000,
            "provider": {"prometheus": {"query": f"sum(rate(metric_{i}{{" + "a" * query_length + "}[1m]))"}},
        }
        for i in range(100)
    ]
    return parse_template({"spec": {"metrics": metrics}})


def test_a_hundred_metrics_measured_many_times_keep_the_status_under_100_kib():
    sim = Sim(
        rollout_manifest(strategy=canary_strategy(steps=[{"setWeight": 20}, {"pause": {}}])),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": http_route_manifest()},
        templates={TemplateKey("many"): hundred_metrics()},
    )
    sim.manifest["spec"]["strategy"]["canary"]["analysis"] = {"templates": [{"name": "many"}]}
    sim.settle()
    sim.set_image("web:2")
    answers = [[], "Prometheus answered garbage: " + LONG, [0.9], [0.1]]  # no data, error, pass, fail
    for round_ in range(40):
        sim.metric_values = {f"m{i:03d}": answers[(i + round_) % 4] for i in range(100)}
        run(sim, rounds=1)
    status = sim.status
    background = next(r for r in status["analysisRuns"] if r["name"] == "background")
    assert background["phase"] == "Running" and len(background["metrics"]) == 100
    assert all(m["count"] + m["error"] >= 30 for m in background["metrics"])  # measured many times
    kept = measurements_kept(100)
    assert all(len(m["measurements"]) <= kept for m in background["metrics"])
    assert all(len(m["message"]) <= METRIC_MESSAGE for m in background["metrics"])
    assert all(
        len(x["message"]) <= MEASUREMENT_MESSAGE for m in background["metrics"] for x in m["measurements"]
    )
    assert len(background["message"]) <= RUN_MESSAGE
    assert wire_size(status) < MAX_STATUS_BYTES


def run_of(name, finished, phase="Failed"):
    metrics = [
        MetricResult(
            name=f"metric-with-a-long-name-{i:03d}",
            phase="Running",
            message=LONG,
            count=1000,
            successful=500,
            failed=250,
            inconclusive=250,
            measurements=[
                Measurement(phase="Inconclusive", at=T0, value="[" + "1, " * 50 + "1]", message=LONG)
                for _ in range(MAX_MEASUREMENTS)
            ],
        )
        for i in range(100)
    ]
    return AnalysisRun(
        name=name,
        revision="abcdef0123",
        phase=phase if finished else "Running",
        message=LONG,
        started_at=T0 + timedelta(seconds=len(name)),
        finished_at=T0 if finished else None,
        metrics=metrics,
    )


def test_the_worst_status_constructed_is_bounded_under_100_kib():
    """Seven runs of 100 metrics, each with MAX_MEASUREMENTS measurements and 5,000-character
    messages everywhere: what the bookkeeping alone would keep (megabytes) is cut to size."""
    runs = [run_of(f"step-{i}", True) for i in range(1, 6)] + [
        run_of("background", False),
        run_of("step-9", False),
    ]
    status = RolloutStatus(
        message=LONG,
        abort_reason=LONG,
        analysis_runs=runs,
        conditions=[
            Condition(type=t, status="True", message=LONG) for t in ("Analysis", "Progressing", "Available")
        ],
    )
    before = wire_size(status.wire())
    bound_status(status)
    after = wire_size(status.wire())
    assert before > 30 * 1024 * 1024 and after < MAX_STATUS_BYTES
    open_runs = [r for r in status.analysis_runs if r.finished_at is None]
    assert len(open_runs) == 2 and all(len(m.measurements) == 1 for r in open_runs for m in r.metrics)
    assert all(m.count == 1000 for r in status.analysis_runs for m in r.metrics)  # counts are kept
    assert bound_status(status).wire() == status.wire()  # idempotent: no status write churn
    print(f"worst case constructed: {before} bytes before, {after} bytes after")


def test_a_passed_analysis_step_stays_in_status_whatever_the_size():
    """The newest finished run is kept when it passed: a canary past an analysis step is believed
    only with that step's successful run in status, so dropping it would restart the canary."""
    status = RolloutStatus(
        analysis_runs=[
            run_of("step-2", True, phase="Successful"),
            run_of("background", False),
            run_of("step-9", False),
        ]
    )
    bound_status(status)
    assert [r.name for r in status.analysis_runs] == ["step-2", "background", "step-9"]
    assert wire_size(status.wire()) < MAX_STATUS_BYTES
