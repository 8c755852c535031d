"""The controller's side of job metrics: a Job per measurement, looked at until it ends, deleted
when its run ends.

Flow inside a reconcile: measure.py hands each due job metric to `measure_job`, which reads the
measurement's Job by its deterministic name (job.py) and creates it when it is not there yet (a
controller restarted mid-Job finds its Job: never a second one). While the Job runs the result
is `pending` (nothing recorded; the engine looks again after PENDING_POLL_SECONDS, runs.py); once
the Job is Complete or Failed the result is that verdict, with the reason and the tail of the
last pod's log in its message (or why the log could not be read). Jobs are read with a GET, not
watched: only while a measurement waits on one.

After the status is written, `delete_ended_jobs` deletes the Jobs of runs that this reconcile
ended (succeeded, failed, stopped by an abort or a completion, or dropped for a new revision),
with their pods (propagationPolicy Background). A Rollout deleted takes its Jobs with it through
their ownerReference (the garbage collector)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import structlog
import urllib3
from kubernetes.client.exceptions import ApiException

from rollout.analysis.job import JobRequest, job_body, job_name, job_outcome, owned_by
from rollout.analysis.resolve import ResolvedMetric
from rollout.analysis.runs import QueryResult
from rollout.api.rollout import Rollout
from rollout.api.status import AnalysisRun, RolloutStatus
from rollout.kube import JOBS, PODS, Kube, api_message
from rollout.workload.replicasets import owner_reference

log = structlog.get_logger("rollout.analysis")

LOG_LINES = 5  # of the last pod's log, in the measurement's message
LOG_BYTES = 1024  # read at most (a line may be long)
LOG_CHARS = 300  # of the log kept in the message (the status clips messages further)
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"  # the Job controller's, on its pods
PROPAGATION = "Background"  # the Job goes at once, its pods right after (the garbage collector)


def measured(run: AnalysisRun | None, metric: str) -> int:
    """Measurements recorded for `metric` in `run` (errors included): the next one's index."""
    found = next((m for m in (run.metrics if run else []) if m.name == metric), None)
    return 0 if found is None else found.count + found.error


def name_for(rollout: Rollout, run: AnalysisRun, metric: str, index: int) -> str:
    meta = rollout.metadata
    return job_name(meta.name, meta.uid, run.revision, run.name, run.started_at, metric, index)


async def measure_job(
    kube: Kube, rollout: Rollout, run: AnalysisRun, metric: ResolvedMetric, now: datetime
) -> QueryResult:
    """The measurement `metric` has due in `run`: pending while its Job runs, then its verdict; an
    Error when the Job cannot be created or read (403, a spec the API server refuses)."""
    namespace, index = rollout.metadata.namespace, measured(run, metric.name)
    name = name_for(rollout, run, metric.name, index)

    def error(text: str) -> QueryResult:
        return QueryResult(run=run.name, revision=run.revision, metric=metric.name, at=now, error=text)

    try:
        job = await kube.get(JOBS, namespace, name)
        created = job is None
        if job is None:
            job = await _create(kube, rollout, run, metric, index, name)
    except ApiException as exc:
        return error(f"Job {namespace}/{name}: {api_message(exc)}")
    if created and index > 0:  # the previous measurement's Job was kept for people to read until now
        previous = name_for(rollout, run, metric.name, index - 1)
        try:
            await kube.delete(JOBS, namespace, previous, propagation=PROPAGATION)
        except ApiException as exc:  # left for the run's end, or the Rollout's deletion
            log.warning("job not deleted", namespace=namespace, job=previous, error=api_message(exc))
    if not owned_by(job, rollout.metadata.uid):
        return error(f"Job {namespace}/{name} exists and is not this Rollout's (see its ownerReferences)")
    outcome = job_outcome(job)
    if outcome is None:
        pending = f"Job {name} running"
        return QueryResult(run=run.name, revision=run.revision, metric=metric.name, at=now, pending=pending)
    said = "complete" if outcome.phase == "Successful" else "failed"
    message = f"Job {name} {said}" + (f" ({outcome.reason})" if outcome.reason else "")
    message += f"; {await log_tail(kube, namespace, job)}"
    return QueryResult(
        run=run.name,
        revision=run.revision,
        metric=metric.name,
        at=now,
        verdict=outcome.phase,
        message=message,
    )


async def _create(
    kube: Kube, rollout: Rollout, run: AnalysisRun, metric: ResolvedMetric, index: int, name: str
) -> dict[str, object]:
    assert isinstance(metric.request, JobRequest)
    namespace = rollout.metadata.namespace
    body = job_body(metric.request, name, namespace, owner_reference(rollout), run.name, metric.name, index)
    try:
        created = await kube.create(JOBS, namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        # Created by an earlier attempt whose answer was lost: that Job is this measurement's.
        found = await kube.get_fresh(JOBS, namespace, name)
        if found is None:
            raise
        return found
    log.info("job created", namespace=namespace, job=name, run=run.name, metric=metric.name, index=index)
    return created


async def log_tail(kube: Kube, namespace: str, job: Mapping[str, object]) -> str:
    """`last log lines: ...` of the Job's newest pod, or why there are none; never raises (a log
    is information: the verdict stands without it)."""
    uid = str((job.get("metadata") or {}).get("uid", ""))  # type: ignore[union-attr]
    try:
        pods = await kube.list(PODS, namespace, f"{CONTROLLER_UID_LABEL}={uid}")
        if not pods:
            return "logs unavailable: the Job has no pods left"
        newest = max(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", "")))
        text = await kube.pod_log(
            namespace, newest["metadata"]["name"], tail_lines=LOG_LINES, limit_bytes=LOG_BYTES
        )
    except ApiException as exc:
        return f"logs unavailable: {api_message(exc)}"
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
        return f"logs unavailable: {exc}"
    lines = [line.strip() for line in text.splitlines() if line.strip()][-LOG_LINES:]
    if not lines:
        # Also what the API server answers for a pod no node ran (it has no kubelet to ask).
        return f"logs unavailable: pod {newest['metadata']['name']} returned an empty log"
    joined = " | ".join(lines)
    if len(joined) > LOG_CHARS:
        joined = "…" + joined[-(LOG_CHARS - 1) :]
    return f"last log lines of pod {newest['metadata']['name']}: {joined}"


def _ended(run: AnalysisRun, after: RolloutStatus) -> bool:
    """Whether the open `run` (as read) is over in the status about to be written."""
    now = after.analysis_run(run.name, run.revision)
    return now is None or now.finished_at is not None or now.started_at != run.started_at


async def delete_ended_jobs(
    kube: Kube,
    rollout: Rollout,
    resolved: Mapping[str, list[ResolvedMetric]],
    before: RolloutStatus,
    after: RolloutStatus,
) -> list[str]:
    """Delete the Jobs of the runs open in `before` and ended in `after`: the one that measured
    last and the one under way, per job metric (earlier ones went as each next one started).
    Returns the names asked to go (a Job already gone is no error)."""
    names: list[str] = []
    for run in before.analysis_runs:
        if run.finished_at is not None or not _ended(run, after):
            continue
        for metric in resolved.get(run.name, []):
            if metric.provider != "job":
                continue
            index = measured(run, metric.name)
            names += [name_for(rollout, run, metric.name, i) for i in (index - 1, index) if i >= 0]
    for name in names:
        await kube.delete(JOBS, rollout.metadata.namespace, name, propagation=PROPAGATION)
    if names:
        log.info("jobs deleted", namespace=rollout.metadata.namespace, name=rollout.metadata.name, jobs=names)
    return names
