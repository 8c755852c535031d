"""The CLI's commands that change a Rollout (`promote`, `abort`, `retry`, `pause`, `resume`,
`restart`, `undo`, `set image`) and `status`, which waits for one to finish.

Commands are the annotations the controller consumes; each is refused in one line when it makes
no sense in the Rollout's phase (health.refusal, the same rule as the Argo CD actions). `undo` and
`set image` change `spec.template`, so they go through the strategy like any update."""

from __future__ import annotations

import asyncio
import time
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from rollout.api.revision import REVISION_LABEL
from rollout.cli.health import health, refusal
from rollout.cli.session import CliError, Session
from rollout.cli.view import owned_replicasets
from rollout.kube import JSON_PATCH, ROLLOUTS
from rollout.workload.replicasets import written_template

ANNOTATIONS = {
    "promote": ("rollout.dev/promote", "step"),
    "promote-full": ("rollout.dev/promote", "full"),
    "abort": ("rollout.dev/abort", "true"),
    "retry": ("rollout.dev/retry", "true"),
    "pause": ("rollout.dev/pause", "true"),
    "resume": ("rollout.dev/resume", "true"),
    "restart": ("rollout.dev/restart", "true"),
}
SAID = {
    "promote": "promoted: the current pause or gate will be passed",
    "promote-full": "fully promoted: the new revision goes to 100% without further steps or analysis",
    "abort": "aborted: traffic goes back to the stable revision",
    "retry": "retried: the update starts again from the first step",
    "pause": "paused",
    "resume": "resumed",
    "restart": "restarting: the stable revision's pods are replaced one at a time",
}


async def command(session: Session, name: str, action: str, out: TextIO) -> int:
    # Judged on the Rollout as read, and written only if it is still that version; the
    # controller's status writes change it often, so on a conflict it is read and judged again.
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(5),
        wait=wait_exponential(multiplier=0.1, max=1.0),
        retry=retry_if_exception(lambda exc: isinstance(exc, ApiException) and exc.status == 409),
        reraise=True,
    ):
        with attempt:
            obj = await session.rollout(name)
            why = refusal(action, obj)
            if why:
                verb = action.replace("-full", " --full")
                raise CliError(f'cannot {verb} rollout "{name}": {why} (phase {health(obj)[0]})')
            key, value = ANNOTATIONS[action]
            version = obj["metadata"]["resourceVersion"]
            patch = {"metadata": {"resourceVersion": version, "annotations": {key: value}}}
            await session.kube.patch(ROLLOUTS, session.namespace, name, patch)
    print(f'rollout "{name}" {SAID[action]}', file=out)
    return 0


async def undo(session: Session, name: str, to_revision: str | None, out: TextIO) -> int:
    obj = await session.rollout(name)
    status = obj.get("status") or {}
    current = status.get("currentRevision")
    replicasets = await owned_replicasets(session, obj)
    numbered = {str(i): rs for i, rs in enumerate(replicasets, start=1)}
    if to_revision is None:
        earlier = [rs for rs in replicasets if rs["metadata"]["labels"].get(REVISION_LABEL) != current]
        if not earlier:
            raise CliError(f'cannot undo rollout "{name}": no earlier revision is kept')
        target = earlier[-1]
    else:
        by_hash = [
            rs
            for rs in replicasets
            if rs["metadata"]["labels"].get(REVISION_LABEL, "").startswith(to_revision)
        ]
        target = numbered.get(to_revision) or (by_hash[0] if len(by_hash) == 1 else None)
        if target is None:
            kept = ", ".join(
                f"#{n} {rs['metadata']['labels'].get(REVISION_LABEL)}" for n, rs in numbered.items()
            )
            raise CliError(f'rollout "{name}" has no revision {to_revision!r} (kept: {kept or "none"})')
    _refuse_workload_ref(obj, name, "undo")
    revision = target["metadata"]["labels"].get(REVISION_LABEL)
    if revision == current:
        raise CliError(f'cannot undo rollout "{name}": revision {revision} is already the current one')
    patch = [
        {"op": "test", "path": "/metadata/generation", "value": obj["metadata"]["generation"]},
        {"op": "replace", "path": "/spec/template", "value": written_template(target)},
    ]
    await session.kube.patch(ROLLOUTS, session.namespace, name, patch, content_type=JSON_PATCH)
    print(
        f'rollout "{name}" rolled back to revision {revision} (it goes through the strategy like any update)',
        file=out,
    )
    return 0


def _refuse_workload_ref(obj: dict[str, Any], name: str, what: str) -> None:
    """A Rollout that takes its template from a Deployment is changed through that Deployment."""
    ref = (obj.get("spec") or {}).get("workloadRef")
    if ref and not (obj.get("spec") or {}).get("template"):
        raise CliError(
            f'cannot {what} rollout "{name}": its template is Deployment {ref.get("name")}\'s '
            f"(spec.workloadRef); change the Deployment"
        )


async def set_image(session: Session, name: str, assignments: list[str], out: TextIO) -> int:
    obj = await session.rollout(name)
    _refuse_workload_ref(obj, name, "set the image of")
    containers = obj["spec"]["template"]["spec"].get("containers") or []
    patch: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/generation", "value": obj["metadata"]["generation"]}
    ]
    said = []
    for assignment in assignments:
        container, sep, image = assignment.partition("=")
        if not sep or not container or not image:
            raise CliError(f"expected CONTAINER=IMAGE, got {assignment!r}")
        index = next((i for i, c in enumerate(containers) if c.get("name") == container), None)
        if index is None:
            names = ", ".join(c.get("name", "?") for c in containers)
            raise CliError(f'rollout "{name}" has no container {container!r} (containers: {names})')
        patch.append(
            {"op": "replace", "path": f"/spec/template/spec/containers/{index}/image", "value": image}
        )
        said.append(f"{container}={image}")
    await session.kube.patch(ROLLOUTS, session.namespace, name, patch, content_type=JSON_PATCH)
    print(f'rollout "{name}" image updated: {", ".join(said)}', file=out)
    return 0


async def wait_status(session: Session, name: str, timeout: float, out: TextIO, interval: float = 1.0) -> int:
    """0 once Healthy on the new revision, 1 when Degraded (the reason printed), 2 on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        obj = await session.rollout(name)
        state, message = health(obj)
        if (state, message) != last:
            print(f"{state}: {message}", file=out, flush=True)
            last = (state, message)
        if state == "Healthy":
            return 0
        if state == "Degraded":
            print(f'rollout "{name}" failed: {message}', file=out, flush=True)
            return 1
        if time.monotonic() >= deadline:
            print(
                f'rollout "{name}" timed out after {timeout:.0f}s while {state}: {message}',
                file=out,
                flush=True,
            )
            return 2
        await asyncio.sleep(min(interval, max(deadline - time.monotonic(), 0.01)))
