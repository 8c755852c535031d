"""Job metrics on the real control plane: the controller creates a Job per measurement, the real
Job controller (kube-controller-manager) creates its pod and writes the Job's conditions, and the
stand-in kubelet finishes the pod with the exit code the test put on it (label rollout.test/exit;
annotation rollout.test/ready-after-seconds for a Job that runs a while). The stand-in keeps no
logs and runs no node, so the API server answers an empty log and the message says the logs were
unavailable.

Proves: a Job that exits 0 lets the canary complete (route at rest, v2 stable) and its Job is
deleted with its pods; a Job that exits 1 rolls the canary back (route weights back to stable 100)
with the Job named in the abort reason; an abort while the Job runs deletes the Job; a controller
killed and started again while the Job runs finds it: exactly one Job all along; a deleted Rollout
takes its running Job with it (the garbage collector, through the ownerReference)."""

import asyncio

import pytest
from kubernetes.client.exceptions import ApiException

from rollout.kube import ANALYSIS_TEMPLATES, EVENTS, JOBS, PODS, ROLLOUTS, api_message
from tests.e2e.helpers import (
    HTTPROUTES,
    annotate,
    app_weights,
    deploy_http_canary,
    job_analysis_template,
    phase_is,
    wait_for,
)
from tests.manifests import image_patch

pytestmark = pytest.mark.e2e

SELECTOR = "rollout.dev/rollout=web"
STEPS = [{"setWeight": 20}, {"analysis": {"templates": [{"name": "checks"}]}}, {"setWeight": 60}]
AT_REST = {"web-stable": 100, "web-canary": 0}


def template(ns, exit_code, runs_for=0):
    """The AnalysisTemplate `checks`: one Job whose pod exits with `exit_code` after `runs_for` s."""
    return job_analysis_template(ns, "checks", exit_code, runs_for)


async def canary_with_job(kube, ns, start_controller, exit_code, runs_for=0):
    """The template, the controller, a 2-replica canary on the HTTPRoute `web` Healthy at v1, then
    updated to v2; returns (v1, the controller process)."""
    await kube.create(ANALYSIS_TEMPLATES, ns, template(ns, exit_code, runs_for))
    process = start_controller()
    v1 = await deploy_http_canary(kube, ns, STEPS, replicas=2)
    await kube.patch(ROLLOUTS, ns, "web", image_patch("registry.example/web:2"))
    return v1, process


async def the_job(kube, ns):
    async def created():
        jobs = await kube.list(JOBS, ns, SELECTOR)
        return jobs[0] if jobs else None

    return await wait_for(created, timeout=60, what="the measurement's Job")


def job_gone(kube, ns, name):
    """The Job and its pods deleted."""

    async def probe():
        if await kube.get(JOBS, ns, name) is not None:
            return False
        return not await kube.list(PODS, ns, f"job-name={name}")

    return probe


async def route_weights(kube, ns):
    return app_weights(await kube.get(HTTPROUTES, ns, "web"))


async def test_a_job_that_exits_0_lets_the_canary_complete(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    v1, _ = await canary_with_job(kube, namespace, start_controller, "0")
    job = await the_job(kube, namespace)
    name = job["metadata"]["name"]
    labels = job["metadata"]["labels"]
    assert (labels["team"], labels["rollout.dev/analysis"], labels["rollout.dev/metric"]) == (
        "checkout",
        "step-2",
        "checks",
    )
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["web-canary"]

    async def completed():
        status = await phase_is(kube, namespace, "Healthy")()
        return status if status and status["stableRevision"] != v1 else None

    status = await wait_for(completed, timeout=120, what="v2 promoted after the Job passed")
    assert await route_weights(kube, namespace) == AT_REST
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    measurement = run["metrics"][0]["measurements"][-1]
    assert run["phase"] == "Successful" and measurement["phase"] == "Successful"
    assert measurement["message"].startswith(f"Job {name} complete"), measurement
    # No node ran the pod: the API server has no kubelet to ask, and answers an empty log.
    assert f"logs unavailable: pod {name}-" in measurement["message"], measurement
    assert measurement["message"].endswith("returned an empty log"), measurement
    await wait_for(job_gone(kube, namespace, name), timeout=60, what="the Job and its pods deleted")


async def test_a_job_that_exits_1_rolls_the_canary_back(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    v1, _ = await canary_with_job(kube, namespace, start_controller, "1")
    name = (await the_job(kube, namespace))["metadata"]["name"]

    async def rolled_back():
        status = await phase_is(kube, namespace, "Degraded")()
        return status if status and status.get("aborted") else None

    status = await wait_for(rolled_back, timeout=120, what="rollback on the failed Job")

    async def at_rest():
        return await route_weights(kube, namespace) == AT_REST

    await wait_for(at_rest, timeout=60, what="route weights back to stable 100")
    assert status["stableRevision"] == v1
    assert f"Job {name} failed" in status["abortReason"], status["abortReason"]
    analysis = next(c for c in status["conditions"] if c["type"] == "Analysis")
    assert analysis["reason"] == "Failed" and name in analysis["message"]
    await wait_for(job_gone(kube, namespace, name), timeout=60, what="the failed Job and its pods deleted")


async def test_an_abort_while_the_job_runs_deletes_it(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    await canary_with_job(kube, namespace, start_controller, "0", runs_for=300)
    name = (await the_job(kube, namespace))["metadata"]["name"]
    await annotate(kube, namespace, "rollout.dev/abort")
    await wait_for(job_gone(kube, namespace, name), timeout=60, what="the running Job deleted on abort")

    async def at_rest():
        return await route_weights(kube, namespace) == AT_REST

    await wait_for(at_rest, timeout=60, what="route weights back to stable 100")


async def test_a_controller_restarted_mid_job_leaves_exactly_one_job(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    v1, first = await canary_with_job(kube, namespace, start_controller, "0", runs_for=20)
    job = await the_job(kube, namespace)
    seen: set[str] = set()  # the uid of every Job of the Rollout seen while the test runs
    done = asyncio.Event()

    async def watch_jobs():
        while not done.is_set():
            seen.update(j["metadata"]["uid"] for j in await kube.list(JOBS, namespace, SELECTOR))
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch_jobs())
    try:
        first.kill()
        await asyncio.to_thread(first.wait)
        start_controller()

        async def completed():
            status = await phase_is(kube, namespace, "Healthy")()
            return status if status and status["stableRevision"] != v1 else None

        status = await wait_for(completed, timeout=120, what="v2 promoted by the restarted controller")
    finally:
        done.set()
        await watcher
    assert seen == {job["metadata"]["uid"]}, f"Jobs created for one measurement: {seen}"
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    assert run["metrics"][0]["count"] == 1 and run["metrics"][0]["successful"] == 1
    await wait_for(job_gone(kube, namespace, job["metadata"]["name"]), timeout=60, what="the Job deleted")


async def test_a_deleted_rollout_takes_its_running_job_with_it(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    await canary_with_job(kube, namespace, start_controller, "0", runs_for=300)
    name = (await the_job(kube, namespace))["metadata"]["name"]
    await kube.delete(ROLLOUTS, namespace, "web")
    await wait_for(
        job_gone(kube, namespace, name), timeout=90, what="the Job garbage-collected with the Rollout"
    )


async def test_a_job_that_could_never_give_an_outcome_is_refused_with_its_field_path(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    # restartPolicy Always: the real API server refuses the template (the CRD's enum).
    always = template(namespace, "0")
    always["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiException) as refused:
        await kube.create(ANALYSIS_TEMPLATES, namespace, always)
    assert refused.value.status == 422
    assert "spec.metrics[0].provider.job.spec.template.spec.restartPolicy" in api_message(refused.value)
    # ttlSecondsAfterFinished passes the schema; the controller names it: InvalidSpec, an Event, no Job.
    vanishing = template(namespace, "0")
    vanishing["spec"]["metrics"][0]["provider"]["job"]["spec"]["ttlSecondsAfterFinished"] = 0
    await kube.create(ANALYSIS_TEMPLATES, namespace, vanishing)
    start_controller()
    await deploy_http_canary(kube, namespace, STEPS, replicas=2, healthy=False)
    field = "spec.metrics[0].provider.job.spec.ttlSecondsAfterFinished"

    async def invalid():
        status = ((await kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
        found = next((c for c in status.get("conditions") or [] if c["type"] == "InvalidSpec"), None)
        return found if found and found["status"] == "True" and field in found["message"] else None

    await wait_for(invalid, timeout=60, what="InvalidSpec naming ttlSecondsAfterFinished")

    async def said():
        events = await kube.list(EVENTS, namespace)
        return any(field in e.get("message", "") for e in events if e["involvedObject"]["name"] == "web")

    await wait_for(said, what="the InvalidSpec Event naming ttlSecondsAfterFinished")
    assert await kube.list(JOBS, namespace, SELECTOR) == []
