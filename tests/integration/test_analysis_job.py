"""A canary gated on provider.job: the real controller on the emulated cluster, which serves Jobs
but runs no Job controller, so the test plays it: it gives the measurement's Job a pod (labelled
as the Job controller labels them) and writes the Job's Complete or Failed condition through the
status subresource. The emulator answers pods/log as a real API server does for a pod no node
runs (an empty log), so the message says the logs were unavailable. Proves, on the controller's own
requests: a Complete Job passes the step and the canary completes; a Failed one rolls back with
the Job named; the Job of an ended run is deleted; an abort while the Job runs deletes it; a
controller stopped and started again while the Job runs finds it (exactly one Job). The real Job
controller runs the same scenarios in tests/e2e/test_job_analysis_e2e.py."""

import asyncio
import copy

from rollout.kube import ANALYSIS_TEMPLATES, JOBS, PODS, ROLLOUTS
from tests.emulated import HTTPROUTES, NS, app_weights, degraded, healthy_at, setup, status_of, weight_is
from tests.manifests import image_patch
from tests.waiting import wait_for

CANARY_ARG = "{{args.canary-service}}"
TEMPLATE = {
    "apiVersion": "rollout.dev/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "e2e-checks", "namespace": NS},
    "spec": {
        "metrics": [
            {
                "name": "e2e-checks",
                "provider": {
                    "job": {
                        "metadata": {"labels": {"team": "checkout"}},
                        "spec": {
                            "backoffLimit": 0,
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [
                                        {
                                            "name": "checks",
                                            "image": "checks:1",
                                            "args": ["{{args.canary-service}}"],
                                        }
                                    ],
                                }
                            },
                        },
                    }
                },
            }
        ]
    },
}
STEPS = [{"setWeight": 20}, {"analysis": {"templates": [{"name": "e2e-checks"}]}}, {"setWeight": 60}]
SELECTOR = "rollout.dev/rollout=web"


async def start(cluster, **metric):
    """The template (`metric` adds to its metric), a 2-replica canary Healthy at v1, updated to v2;
    returns v1."""
    template = copy.deepcopy(TEMPLATE)
    template["spec"]["metrics"][0].update(metric)
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, template)
    v1 = (await setup(cluster, STEPS, replicas=2))["stableRevision"]
    await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
    return v1


async def the_job(cluster):
    """The measurement's Job once the controller has created it."""

    async def created():
        jobs = await cluster.kube.list(JOBS, NS, SELECTOR)
        return jobs[0] if jobs else None

    return await wait_for(created, timeout=30, what="the measurement's Job")


async def finish(cluster, job, condition):
    """What the Job controller does: a pod for the Job, then the Job's final condition."""
    meta = job["metadata"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-x1",
            "labels": {"batch.kubernetes.io/controller-uid": meta["uid"], "job-name": meta["name"]},
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"]}
            ],
        },
        "spec": job["spec"]["template"]["spec"],
    }
    await cluster.kube.create(PODS, NS, pod)
    reason = "CompletionsReached" if condition == "Complete" else "BackoffLimitExceeded"
    conditions = [{"type": condition, "status": "True", "reason": reason, "message": "as the test said"}]
    await cluster.kube.patch(JOBS, NS, meta["name"], {"status": {"conditions": conditions}}, sub="status")


def gone(cluster, name):
    async def probe():
        return await cluster.kube.get(JOBS, NS, name) is None

    return probe


async def test_a_complete_job_passes_the_step_and_is_deleted(cluster):
    async with cluster.controller():
        v1 = await start(cluster)
        job = await the_job(cluster)
        name = job["metadata"]["name"]
        # As the controller built it: the template's labels and its own, owned by the Rollout.
        labels = job["metadata"]["labels"]
        assert labels["team"] == "checkout" and labels["rollout.dev/analysis"] == "step-2"
        assert labels["rollout.dev/metric"] == "e2e-checks" and labels["rollout.dev/measurement"] == "0"
        rollout = await cluster.kube.get(ROLLOUTS, NS, "web")
        assert job["metadata"]["ownerReferences"][0]["uid"] == rollout["metadata"]["uid"]
        assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["web-canary"]

        async def running():  # the status that says so is written just after the Job is created
            status = await status_of(cluster)
            return status if f"Job {name} running" in status.get("message", "") else None

        await wait_for(running, timeout=20, what=f"the status saying Job {name} runs")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 80, "web-canary": 20}
        await finish(cluster, job, "Complete")

        async def promoted():
            found = await healthy_at(cluster)()
            return found if found and found["stableRevision"] != v1 else None

        status = await wait_for(promoted, timeout=60, what="v2 promoted")
        await wait_for(gone(cluster, name), timeout=20, what="the Job deleted once its run ended")
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    measurement = run["metrics"][0]["measurements"][-1]
    assert run["phase"] == "Successful" and measurement["phase"] == "Successful"
    assert measurement["message"].startswith(f"Job {name} complete (CompletionsReached")
    assert f"logs unavailable: pod {name}-x1 returned an empty log" in measurement["message"]


async def test_each_measurement_has_its_own_job_and_the_previous_one_goes(cluster):
    async with cluster.controller():
        await start(cluster, interval="1s", count=2)
        first = await the_job(cluster)
        await finish(cluster, first, "Complete")

        async def second():
            jobs = await cluster.kube.list(JOBS, NS, SELECTOR)
            return (
                jobs if [j["metadata"]["labels"]["rollout.dev/measurement"] for j in jobs] == ["1"] else None
            )

        [job] = await wait_for(second, timeout=30, what="the second measurement's Job, the first deleted")
        assert job["metadata"]["name"] != first["metadata"]["name"]
        await finish(cluster, job, "Complete")
        await wait_for(gone(cluster, job["metadata"]["name"]), timeout=30, what="the last Job deleted")
        status = await status_of(cluster)
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    assert run["phase"] == "Successful" and run["metrics"][0]["successful"] == 2


async def test_a_failed_job_rolls_back_naming_the_job(cluster):
    async with cluster.controller():
        v1 = await start(cluster)
        job = await the_job(cluster)
        name = job["metadata"]["name"]
        await finish(cluster, job, "Failed")
        status = await wait_for(degraded(cluster), timeout=40, what="rollback on a failed Job")
        await wait_for(weight_is(cluster, 0), timeout=20, what="traffic back on stable")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
        await wait_for(gone(cluster, name), timeout=20, what="the Job deleted once its run failed")
    assert status["stableRevision"] == v1
    assert f"Job {name} failed (BackoffLimitExceeded" in status["abortReason"]


async def test_an_abort_while_the_job_runs_deletes_it(cluster):
    async with cluster.controller():
        await start(cluster)
        name = (await the_job(cluster))["metadata"]["name"]
        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/abort": "y"}}}
        )
        await wait_for(gone(cluster, name), timeout=20, what="the running Job deleted on abort")
        await wait_for(weight_is(cluster, 0), timeout=20, what="traffic back on stable")
        assert (await status_of(cluster))["aborted"]


async def test_a_controller_restarted_while_the_job_runs_finds_it(cluster):
    async with cluster.controller():
        await start(cluster)
        job = await the_job(cluster)
    async with cluster.controller():
        await asyncio.sleep(5)  # a couple of polls by the new controller
        jobs = await cluster.kube.list(JOBS, NS, SELECTOR)
        assert [j["metadata"]["uid"] for j in jobs] == [job["metadata"]["uid"]]
        await finish(cluster, job, "Complete")
        await wait_for(gone(cluster, job["metadata"]["name"]), timeout=30, what="the Job deleted")
        assert len(await cluster.kube.list(JOBS, NS, SELECTOR)) == 0
