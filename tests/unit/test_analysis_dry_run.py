"""`dryRun` and `measurementRetention`: a dry-run metric is measured, shown and reported (status,
Event, `rollout get`) but never fails, pauses or aborts a rollout; a retention keeps that many
measurements in status, within the status bounds; a limit above the bound is refused."""

from datetime import UTC, datetime, timedelta

from rollout.analysis.resolve import TemplateKey, resolve
from rollout.analysis.runs import MAX_MEASUREMENTS, QueryResult, assess, record
from rollout.api.spec import MAX_RETENTION, RolloutAnalysis
from rollout.api.status import AnalysisRun, Measurement, MetricResult, RolloutStatus
from rollout.api.templates import parse_template
from rollout.engine.bounds import MEASUREMENTS_PER_RUN, bound_status
from tests.manifests import canary_strategy, http_route_manifest, rollout_manifest
from tests.sim import Sim
from tests.unit.scenarios import app_weights, run, start

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def metric(name, condition, **extra):
    return {
        "name": name,
        "interval": "10s",
        "count": 2,
        "successCondition": condition,
        "provider": {"prometheus": {"query": f'{name}{{revision="{{{{args.canary-hash}}}}"}}'}},
        **extra,
    }


def template(*metrics, **spec):
    return parse_template({"spec": {"metrics": list(metrics), **spec}})


SUCCESS = metric("success-rate", "result[0] >= 0.99")
ERRORS = metric("error-rate", "result[0] <= 0.05")


def resolved(spec_template, **ref_fields):
    """The metrics of a step's analysis of template t, and the errors found."""
    ref = RolloutAnalysis(templates=[{"name": "t"}], **ref_fields)
    lookup = {TemplateKey("t"): spec_template}
    return resolve(ref, "spec.strategy.canary.steps[1].analysis", lookup, {"canary-hash": "c"}, bounded=True)


def dry_sim(spec_template, values, **ref_fields):
    step = {"analysis": {"templates": [{"name": "t"}], **ref_fields}}
    sim = Sim(
        rollout_manifest(replicas=4, strategy=canary_strategy(steps=[{"setWeight": 20}, step])),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": http_route_manifest()},
        templates={TemplateKey("t"): spec_template},
        metric_values=values,
    )
    sim.settle()
    return sim


def events(sim, reason):
    return [e for d in sim.decisions for e in d.events if e.reason == reason]


def test_a_failing_dry_run_metric_lets_the_rollout_complete_and_says_so():
    sim = dry_sim(
        template(SUCCESS, ERRORS, dryRun=[{"metricName": "error-.*"}]),
        {
            "success-rate": [0.999],
            "error-rate": [0.07],
        },
    )
    start(sim)
    run(sim, rounds=30, seconds=5)
    status = sim.status
    assert status["phase"] == "Healthy" and not status.get("aborted")
    assert status["stableRevision"] == status["currentRevision"]
    assert app_weights(sim)["web-stable"] == 100  # the new revision, now stable, has all traffic
    step = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    assert step["phase"] == "Successful"
    dry = next(m for m in step["metrics"] if m["name"] == "error-rate")
    assert dry["dryRun"] is True and dry["phase"] == "Failed" and dry["measurements"][-1]["value"] == "[0.07]"
    assert "dry-run metric error-rate" in step["message"] and "Failed, not counted" in step["message"]
    (event,) = events(sim, "AnalysisDryRun")
    assert event.type == "Warning"
    assert event.message.startswith("Analysis step-2: dry-run metric error-rate Failed: [0.07] does not meet")
    assert not events(sim, "AnalysisFailed") and not events(sim, "RolloutAborted")


def test_the_same_metric_without_dry_run_aborts():
    sim = dry_sim(template(SUCCESS, ERRORS), {"success-rate": [0.999], "error-rate": [0.07]})
    start(sim)
    run(sim, rounds=30, seconds=5)
    assert sim.status["aborted"] and "error-rate" in sim.status["abortReason"]


def test_dry_run_given_on_the_rollout_and_inconclusive_never_pauses():
    sim = dry_sim(
        template(SUCCESS, ERRORS),
        {"success-rate": [0.999], "error-rate": []},  # no data: Inconclusive, were it counted
        dryRun=[{"metricName": "error-rate"}],
    )
    start(sim)
    run(sim, rounds=30, seconds=5)
    assert sim.status["phase"] == "Healthy" and not sim.status.get("pauseConditions")
    assert events(sim, "AnalysisDryRun")[0].message.startswith(
        "Analysis step-2: dry-run metric error-rate Inconclusive: no data"
    )


def test_a_run_of_dry_run_metrics_only_succeeds_once_they_finish():
    (dry,), errors = resolved(template(ERRORS, dryRun=[{"metricName": ".*"}]))
    assert not errors and dry.dry_run
    run_ = AnalysisRun(name="step-2", revision="c", started_at=T0)
    assert assess(run_, [dry], T0) == "Running"  # nothing measured yet
    record(run_, dry, QueryResult("step-2", "c", "error-rate", T0, value=[0.5]))
    assert run_.metric("error-rate").phase == "Failed"
    assert assess(run_, [dry], T0) == "Successful"


def test_a_deciding_failure_still_fails_beside_a_dry_run_metric():
    metrics, _ = resolved(template(SUCCESS, ERRORS), dryRun=[{"metricName": "error-rate"}])
    by_name = {m.name: m for m in metrics}
    run_ = AnalysisRun(name="step-2", revision="c", started_at=T0)
    record(run_, by_name["success-rate"], QueryResult("step-2", "c", "success-rate", T0, value=[0.5]))
    assert assess(run_, metrics, T0) == "Failed" and "error-rate" not in run_.message


def test_a_dry_run_still_measuring_holds_success_so_its_outcome_is_seen():
    metrics, _ = resolved(template(SUCCESS, ERRORS), dryRun=[{"metricName": "error-rate"}])
    by_name = {m.name: m for m in metrics}
    run_ = AnalysisRun(name="step-2", revision="c", started_at=T0)
    for at in (T0, T0 + timedelta(seconds=10)):
        record(run_, by_name["success-rate"], QueryResult("step-2", "c", "success-rate", at, value=[1.0]))
    assert assess(run_, metrics, T0) == "Running"
    record(run_, by_name["error-rate"], QueryResult("step-2", "c", "error-rate", T0, value=[0.0]))
    record(run_, by_name["error-rate"], QueryResult("step-2", "c", "error-rate", T0, value=[0.0]))
    assert assess(run_, metrics, T0) == "Successful"


def test_patterns_match_whole_names_and_a_pattern_matching_nothing_is_an_error():
    _, errors = resolved(template(SUCCESS, ERRORS), dryRun=[{"metricName": "rate"}])
    assert [str(e) for e in errors] == [
        "spec.strategy.canary.steps[1].analysis.dryRun[0].metricName: metricName 'rate' matches no "
        "metric of its templates"
    ]
    _, errors = resolved(template(SUCCESS, dryRun=[{"metricName": "latency"}]))
    assert "dryRun[0]: metricName 'latency' matches no metric of AnalysisTemplate t" in str(errors[0])


def test_a_pattern_that_is_not_a_regular_expression_is_refused_at_its_field():
    assert "spec.dryRun[0]: metricName '(' is not a regular expression" in parse_template(
        {"spec": {"metrics": [SUCCESS], "dryRun": [{"metricName": "("}]}}
    )


def test_retention_keeps_that_many_measurements_and_the_rollouts_wins():
    long_success, long_errors = ({**m, "count": 40} for m in (SUCCESS, ERRORS))
    metrics, errors = resolved(
        template(long_success, long_errors, measurementRetention=[{"metricName": ".*", "limit": 3}]),
        measurementRetention=[{"metricName": "error-rate", "limit": 25}],
    )
    assert not errors
    by_name = {m.name: m for m in metrics}
    assert by_name["success-rate"].retention == 3 and by_name["error-rate"].retention == 25
    run_ = AnalysisRun(name="background", revision="c", started_at=T0)
    for i in range(40):
        at = T0 + timedelta(seconds=i)
        for m in metrics:
            passing = [1.0] if m.name == "success-rate" else [0.0]
            record(run_, m, QueryResult("background", "c", m.name, at, value=passing))
    assert len(run_.metric("success-rate").measurements) == 3
    assert len(run_.metric("error-rate").measurements) == 25
    assert run_.metric("error-rate").count == 40  # counts cover every measurement


def test_without_retention_the_default_is_kept():
    ((m,), _) = resolved(template(metric("x", "result[0] > 0")))
    assert m.retention == MAX_MEASUREMENTS == 10


def test_a_limit_above_the_bound_is_refused_with_its_field_path():
    problem = parse_template(
        {"spec": {"metrics": [SUCCESS], "measurementRetention": [{"metricName": ".*", "limit": 500}]}}
    )
    assert problem == (
        f"spec.measurementRetention[0].limit: limit 500 is above {MAX_RETENTION}, the most "
        "measurements status keeps for one metric"
    )


def test_the_rollouts_limit_above_the_bound_is_invalid_spec_and_nothing_moves():
    sim = dry_sim(template(SUCCESS), {"success-rate": [0.999]})
    step = sim.manifest["spec"]["strategy"]["canary"]["steps"][1]["analysis"]
    step["measurementRetention"] = [{"metricName": ".*", "limit": MAX_RETENTION + 1}]
    sim.set_image("web:2")
    run(sim, rounds=3)
    assert sim.status["phase"] == "Degraded"
    invalid = next(c for c in sim.status["conditions"] if c["type"] == "InvalidSpec")
    assert (
        "spec.strategy.canary.steps[1].analysis.measurementRetention[0].limit: limit 101 is above 100"
        in (invalid["message"])
    )
    assert app_weights(sim)["web-canary"] == 0


def test_bounds_keep_a_long_retention_when_the_run_has_room_and_cut_the_longest_first():
    def run_with(lengths):
        return AnalysisRun(
            name="background",
            revision="c",
            started_at=T0,
            metrics=[
                MetricResult(
                    name=f"m{i}",
                    measurements=[Measurement(phase="Successful", at=T0, value="1") for _ in range(n)],
                )
                for i, n in enumerate(lengths)
            ],
        )

    roomy = RolloutStatus(analysis_runs=[run_with([MAX_RETENTION - 10, 10])])
    bound_status(roomy)
    assert [len(m.measurements) for m in roomy.analysis_runs[0].metrics] == [90, 10]
    crowded = RolloutStatus(analysis_runs=[run_with([100, 10, 10, 10])])
    bound_status(crowded)
    kept = [len(m.measurements) for m in crowded.analysis_runs[0].metrics]
    assert sum(kept) <= MEASUREMENTS_PER_RUN and kept == [70, 10, 10, 10]
