"""The job metric provider's pure parts: the template's validation (restartPolicy, no conditions),
argument substitution into the Job, the deterministic Job name, the Job's body, the mapping of a
Job's conditions to a verdict, the log tail in the message; and, on the engine simulator, a
measurement that stays pending across reconciles (nothing recorded, polled, no status churn)
before its verdict passes or fails the canary."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes.client.exceptions import ApiException

from rollout.analysis.job import JobRequest, job_body, job_name, job_outcome, label_value
from rollout.analysis.jobs import log_tail
from rollout.analysis.providers import PROVIDERS
from rollout.analysis.resolve import TemplateKey, resolve
from rollout.analysis.runs import PENDING_POLL_SECONDS, QueryResult, judge
from rollout.api.spec import RolloutAnalysis
from rollout.api.templates import parse_template, template_errors
from tests.manifests import canary_strategy, http_route_manifest, rollout_manifest
from tests.sim import Sim
from tests.unit.scenarios import app_weights, run

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAME = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"


def job_template(restart="Never", **metric):
    pod = {"restartPolicy": restart, "containers": [{"name": "c", "image": "checks:1"}]}
    if restart is None:
        del pod["restartPolicy"]
    provider = {
        "job": {"metadata": {"labels": {"team": "a"}}, "spec": {"backoffLimit": 0, "template": {"spec": pod}}}
    }
    return {"spec": {"metrics": [{"name": "e2e", "provider": provider, **metric}]}}


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("restart", ["Never", "OnFailure"])
def test_a_pod_that_ends_is_accepted(restart):
    assert template_errors(job_template(restart)) == []


@pytest.mark.parametrize(("restart", "said"), [("Always", "not 'Always'"), (None, "Field required")])
def test_a_pod_that_never_ends_is_refused_at_its_field_path(restart, said):
    [error] = template_errors(job_template(restart))
    assert error.path == "spec.metrics[0].provider.job.spec.template.spec.restartPolicy"
    assert said in error.message


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [("ttlSecondsAfterFinished", 0, "would be run again"), ("suspend", True, "never runs")],
)
def test_a_job_that_would_vanish_or_never_run_is_refused_at_its_field_path(field, value, said):
    raw = job_template()
    raw["spec"]["metrics"][0]["provider"]["job"]["spec"][field] = value
    [error] = template_errors(raw)
    assert error.path == f"spec.metrics[0].provider.job.spec.{field}" and said in error.message


def test_conditions_are_refused_on_a_job_metric_and_required_elsewhere():
    [error] = template_errors(job_template(successCondition="result == 1"))
    assert error.path == "spec.metrics[0]" and "judged by its Job's outcome" in error.message
    web = {"spec": {"metrics": [{"name": "w", "provider": {"web": {"url": "http://h/x"}}}]}}
    assert "needs a successCondition" in template_errors(web)[0].message


def test_the_crd_keeps_the_job_spec_and_validates_restart_policy():
    from rollout.api.crds import all_crds

    crd = all_crds()["rollout.dev_analysistemplates.yaml"]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    job = spec["properties"]["metrics"]["items"]["properties"]["provider"]["properties"]["job"]
    job_spec = job["properties"]["spec"]
    assert job_spec["x-kubernetes-preserve-unknown-fields"] is True
    pod = job_spec["properties"]["template"]["properties"]["spec"]
    assert pod["properties"]["restartPolicy"]["enum"] == ["Never", "OnFailure"]
    assert pod["required"] == ["restartPolicy"] and pod["x-kubernetes-preserve-unknown-fields"] is True


# --- arguments and the Job's body ------------------------------------------------------------------


def resolved(raw, args):
    spec = parse_template(raw)
    metrics, errors = resolve(
        RolloutAnalysis.model_validate({"templates": [{"name": "t"}], "args": args}),
        "spec.strategy.canary.steps[1].analysis",
        {TemplateKey("t"): spec},
        {"namespace": "shop", "canary-service": "web-canary"},
        bounded=True,
    )
    return metrics, errors


def test_arguments_fill_every_string_of_the_job_as_whole_values():
    raw = job_template()
    pod = raw["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]
    pod["containers"][0]["args"] = [
        "--target=http://{{args.canary-service}}.{{args.namespace}}",
        "--x={{args.x}}",
    ]
    raw["spec"]["metrics"][0]["provider"]["job"]["metadata"]["annotations"] = {"suite": "{{ args.x }}"}
    spec = parse_template(raw)
    config = spec.metrics[0].provider.config
    assert PROVIDERS["job"].placeholders(config) == {"canary-service", "namespace", "x"}
    [metric], errors = resolved(raw, [{"name": "x", "value": 'a", "b'}])
    assert errors == []
    body = job_body(metric.request, "n", "shop", {"name": "web", "uid": "u"}, "step-2", "e2e", 0)
    container = body["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--target=http://web-canary.shop", '--x=a", "b']  # a value, never structure
    assert body["metadata"]["annotations"] == {"suite": 'a", "b'}
    assert metric.query == "Job of checks:1"


def test_an_argument_without_a_value_is_a_spec_error():
    raw = job_template()
    raw["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]["containers"][0]["args"] = [
        "{{args.missing}}"
    ]
    metrics, [error] = resolved(raw, [])
    assert metrics == [] and "missing" in error.message


def test_the_body_carries_labels_naming_the_measurement_and_the_rollout_as_owner():
    request = JobRequest(
        '{"labels": {"team": "a"}, "annotations": {}}', '{"template": {"spec": {"restartPolicy": "Never"}}}'
    )
    owner = {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "Rollout",
        "name": "web",
        "uid": "u1",
        "controller": True,
    }
    body = job_body(request, "web-step-2-e2e-0-abc", "shop", owner, "step-2", "E2E checks!", 3)
    assert body["apiVersion"] == "batch/v1" and body["kind"] == "Job"
    assert body["metadata"]["labels"] == {
        "team": "a",
        "rollout.dev/rollout": "web",
        "rollout.dev/analysis": "step-2",
        "rollout.dev/metric": "E2E-checks",
        "rollout.dev/measurement": "3",
    }
    assert body["metadata"]["ownerReferences"] == [owner]
    assert body["spec"] == {"template": {"spec": {"restartPolicy": "Never"}}}


# --- the Job's name --------------------------------------------------------------------------------


def name(**changes):
    fields = {
        "rollout": "web",
        "uid": "u1",
        "revision": "abc",
        "run": "step-2",
        "started_at": T0,
        "metric": "e2e",
        "index": 0,
    }
    return job_name(**{**fields, **changes})


def test_the_name_is_the_same_for_the_same_measurement_and_differs_for_any_other():
    import re

    assert name() == name()
    assert re.fullmatch(NAME, name()) and name().startswith("web-step-2-e2e-0-")
    others = [
        name(uid="u2"),
        name(revision="def"),
        name(run="step-4"),
        name(started_at=T0 + timedelta(seconds=1)),  # a retried run
        name(metric="other"),
        name(index=1),
    ]
    assert len({name(), *others}) == 7


def test_a_long_or_odd_name_is_cut_to_a_valid_63_character_name():
    import re

    long = name(rollout="a" * 80, metric="Some_Metric.Name" * 5)
    assert len(long) <= 63 and re.fullmatch(NAME, long)
    assert long != name(rollout="a" * 80, metric="Some_Metric.Name" * 5, index=1)
    assert len(label_value("-x" * 80)) <= 63 and label_value("__a b__") == "a-b"


# --- the verdict -----------------------------------------------------------------------------------


def job_with(*conditions):
    return {"status": {"conditions": [{"type": t, "status": s, "reason": r} for t, s, r in conditions]}}


def test_complete_is_successful_failed_is_failed_and_anything_else_runs():
    assert job_outcome(job_with(("Complete", "True", "CompletionsReached"))).phase == "Successful"
    failed = job_outcome(job_with(("FailureTarget", "True", "x"), ("Failed", "True", "BackoffLimitExceeded")))
    assert failed.phase == "Failed" and failed.reason == "BackoffLimitExceeded"
    assert job_outcome(job_with(("SuccessCriteriaMet", "True", "x"))) is None  # pods still ending
    assert job_outcome(job_with(("Complete", "False", "x"))) is None
    assert job_outcome({}) is None


def test_a_verdict_is_recorded_as_is_without_conditions():
    [metric], _ = resolved(job_template(), [])
    result = QueryResult(
        "step-2", "abc", "e2e", T0, verdict="Failed", message=(said := "Job j failed (BackoffLimitExceeded)")
    )
    measurement = judge(metric, result)
    assert measurement.phase == "Failed" and measurement.message == said


# --- the log tail ----------------------------------------------------------------------------------


class Logs:
    """The two reads log_tail makes: the Job's pods, and the newest one's log (or a refusal)."""

    def __init__(self, pods, log=None, refusal=None):
        self.pods, self.log, self.refusal, self.asked = pods, log, refusal, []

    async def list(self, res, namespace, selector):
        self.asked.append(("list", res.plural, selector))
        return self.pods

    async def pod_log(self, namespace, name, *, tail_lines, limit_bytes):
        self.asked.append(("log", name, tail_lines, limit_bytes))
        if self.refusal is not None:
            raise self.refusal
        return self.log


def pod(name, created):
    return {"metadata": {"name": name, "creationTimestamp": created}}


JOB = {"metadata": {"name": "j", "uid": "job-uid"}}


async def test_the_newest_pods_last_lines_are_in_the_message_bounded():
    lines = "\n".join(f"line {i}" for i in range(20)) + "\n"
    kube = Logs([pod("old", "2026-01-01T00:00:00Z"), pod("new", "2026-01-01T00:01:00Z")], log=lines)
    said = await log_tail(kube, "shop", JOB)
    assert said == "last log lines of pod new: line 15 | line 16 | line 17 | line 18 | line 19"
    assert kube.asked[0] == ("list", "pods", "batch.kubernetes.io/controller-uid=job-uid")
    assert kube.asked[1][:2] == ("log", "new")
    kube = Logs([pod("p", "t")], log="x" * 5000)
    assert len(await log_tail(kube, "shop", JOB)) < 400


async def test_an_unreadable_log_is_said_and_never_fails_the_verdict():
    said = 'pods "p" is forbidden: User "c" cannot get resource "pods/log" in API group ""'
    kube = Logs([pod("p", "t")], refusal=ApiException(status=403, reason="Forbidden"))
    kube.refusal.body = json.dumps({"kind": "Status", "code": 403, "message": said})
    assert await log_tail(kube, "shop", JOB) == f"logs unavailable: {said}"
    assert await log_tail(Logs([]), "shop", JOB) == "logs unavailable: the Job has no pods left"
    empty = await log_tail(Logs([pod("p", "t")], log=""), "shop", JOB)
    assert empty == "logs unavailable: pod p returned an empty log"


# --- on the engine simulator: pending, then the verdict --------------------------------------------


class JobSim(Sim):
    """The simulator with the job metric's Job scripted: `answers` pops one per due measurement."""

    answers: list[QueryResult | str]

    def _measure(self, analyses):
        taken = []
        for item in super()._measure(analyses):
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            if answer == "running":
                taken.append(
                    QueryResult(item.run, item.revision, item.metric, self.now, pending="Job j running")
                )
            else:
                taken.append(
                    QueryResult(
                        item.run,
                        item.revision,
                        item.metric,
                        self.now,
                        verdict=answer,
                        message=f"Job j {answer}",
                    )
                )
        return tuple(taken)


def job_sim(answers, **spec):
    steps = [
        {"setWeight": 20},
        {"analysis": {"templates": [{"name": "e2e"}]}},
        {"setWeight": 50},
        {"pause": {}},
    ]
    sim = JobSim(
        rollout_manifest(replicas=4, strategy=canary_strategy(steps=steps), **spec),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": http_route_manifest()},
        templates={TemplateKey("e2e"): parse_template(job_template())},
    )
    sim.answers = ["Successful"]
    sim.settle()
    sim.answers = answers
    return sim


def step_run(sim):
    return next(r for r in sim.status["analysisRuns"] if r["name"] == "step-2")


def test_a_running_job_records_nothing_is_polled_and_does_not_rewrite_the_status():
    sim = job_sim(["running"])
    sim.set_image("web:2")
    run(sim, rounds=8)
    assert app_weights(sim)["web-canary"] == 20
    before = dict(sim.status)
    decisions = [sim.reconcile() for _ in range(3)]
    assert all(d.requeue_after == PENDING_POLL_SECONDS for d in decisions)  # not 0: no busy loop
    assert sim.status == before  # nothing to write while the Job runs
    metric = step_run(sim)["metrics"][0]
    assert metric["measurements"] == [] and metric["count"] == 0
    assert "Job j running" in step_run(sim)["message"] and sim.status["phase"] == "Progressing"


def test_a_complete_job_moves_the_canary_on():
    sim = job_sim(["running", "running", "Successful"])
    sim.set_image("web:2")
    run(sim, rounds=12)
    assert step_run(sim)["phase"] == "Successful"
    assert sim.status["currentStepIndex"] == 3 and app_weights(sim)["web-canary"] == 50


def test_a_failed_job_rolls_the_canary_back_naming_the_job():
    sim = job_sim(["running", "Failed"])
    sim.set_image("web:2")
    run(sim, rounds=12)
    assert sim.status["phase"] == "Degraded" and sim.status["aborted"]
    assert app_weights(sim)["web-canary"] == 0
    assert "Job j Failed" in sim.status["abortReason"]


def test_a_job_that_never_ends_is_no_progress_and_never_promotes():
    sim = job_sim(["running"], progressDeadlineSeconds=30)
    sim.set_image("web:2")
    run(sim, rounds=8)
    run(sim, rounds=20, seconds=PENDING_POLL_SECONDS)  # 40 s of polls, the Job still running
    progressing = next(c for c in sim.status["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "False" and progressing["reason"] == "ProgressDeadlineExceeded"
    assert app_weights(sim)["web-canary"] == 20
    assert sim.status["stableRevision"] != sim.revision_for("web:2")
