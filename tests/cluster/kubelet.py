"""A stand-in kubelet for the node-less control plane: it watches a namespace's Pods and marks each
new one Running and Ready through `pods/status`, as a kubelet reports a started container.

Pods whose image contains "broken" are left Pending (a revision that never becomes Ready). A
Pod labelled `rollout.test/exit` (a Job's pod) is finished instead: phase Succeeded for "0",
Failed for anything else, each container terminated with that exit code. A Pod annotated
`rollout.test/ready-after-seconds` becomes Ready (or finishes) that long after its creation
(pods that take a while to start, a Job that runs a while). Patches go out on a small thread
pool, so a wave of a thousand Pods is Ready within a second or two rather than one after another.
A patch that fails (a 5xx, a cut connection) is retried; one that still fails makes the next
watch start from a fresh list, so that no Pod stays unready because one request was lost.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from rollout.kube import load_api_client

EXIT_LABEL = "rollout.test/exit"
READY_AFTER_ANNOTATION = "rollout.test/ready-after-seconds"


def ready_status(now: str) -> dict[str, Any]:
    return {
        "phase": "Running",
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": now}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
    }


def finished_status(code: str, now: str, containers: list[Any] | None = None) -> dict[str, Any]:
    """A pod whose containers all exited with `code` (not a number: 1), as a kubelet reports it:
    the phase, and each container terminated with its exit code (what the Job controller and
    people read). No log is kept: a log read is answered by the API server without one."""
    exit_code = int(code) if code.lstrip("-").isdigit() else 1
    terminated = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": now,
        "finishedAt": now,
    }
    return {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
        "containerStatuses": [
            {
                "name": c.name,
                "image": c.image or "",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
            for c in containers or []
        ],
    }


def wanted_status(pod: Any) -> dict[str, Any] | None:
    """The status this kubelet gives the Pod, or None when it has nothing to do for it."""
    if pod.metadata.deletion_timestamp:
        return None
    images = [c.image or "" for c in pod.spec.containers]
    if any("broken" in image for image in images):
        return None
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    code = (pod.metadata.labels or {}).get(EXIT_LABEL)
    if code is not None:
        if pod.status.phase in ("Succeeded", "Failed"):
            return None
        return finished_status(code, now, list(pod.spec.containers))
    conditions = pod.status.conditions or []
    if any(c.type == "Ready" and c.status == "True" for c in conditions):
        return None
    return ready_status(now)


class StandInKubelet:
    """Marks the Pods of `namespace` Ready until stopped (a context manager)."""

    def __init__(self, kubeconfig: str, namespace: str, threads: int = 8) -> None:
        self.namespace = namespace
        self.api = client.CoreV1Api(load_api_client(kubeconfig))
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="kubelet")
        self.stopping = threading.Event()
        self.watcher = threading.Thread(target=self._run, name="kubelet-watch", daemon=True)
        self.marked = 0
        self.delayed: set[str] = set()  # Pods whose Ready is scheduled already (by uid)
        self.relist = threading.Event()  # a patch was lost: list every Pod again
        # When each Pod (by name) was first seen, and when its status patch was answered
        # (time.monotonic()): bench/hops.py times the kubelet's hop of a first step with them.
        self.seen: dict[str, float] = {}
        self.ready: dict[str, float] = {}

    def __enter__(self) -> StandInKubelet:
        self.watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # The watch ends by itself within its 2 s timeout; nothing waits for it (a test's
        # teardown should not), and a patch of a Pod already gone is a harmless 404.
        self.stopping.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        version: str | None = None  # None: the next watch starts with every Pod as ADDED
        while not self.stopping.is_set():
            if self.relist.is_set():
                self.relist.clear()
                version = None
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.api.list_namespaced_pod,
                    self.namespace,
                    resource_version=version,
                    timeout_seconds=2,  # how long stopping may wait
                    _request_timeout=10,
                ):
                    pod = event["object"]
                    version = pod.metadata.resource_version
                    self.seen.setdefault(pod.metadata.name, time.monotonic())
                    if event["type"] in ("ADDED", "MODIFIED"):
                        status = wanted_status(pod)
                        if status is not None:
                            self._mark(pod, status)
            except Exception:  # a cut watch, a 410 or an API error: watch everything again
                version = None
                time.sleep(0.2)
            finally:
                stream.stop()

    def _mark(self, pod: Any, status: dict[str, Any]) -> None:
        """Patch now, or once the Pod's ready-after delay from its creation has passed."""
        delay = (pod.metadata.annotations or {}).get(READY_AFTER_ANNOTATION)
        if delay is None:
            self.pool.submit(self._patch, pod.metadata.name, status)
            return
        if pod.metadata.uid in self.delayed:
            return
        self.delayed.add(pod.metadata.uid)
        due = pod.metadata.creation_timestamp.timestamp() + float(delay)
        timer = threading.Timer(max(0.0, due - time.time()), self._submit, (pod.metadata.name, status))
        timer.daemon = True
        timer.start()

    def _submit(self, name: str, status: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the kubelet stopped meanwhile
            self.pool.submit(self._patch, name, status)

    def _patch(self, name: str, status: dict[str, Any]) -> None:
        try:
            self._patch_retried(name, status)
            self.ready.setdefault(name, time.monotonic())
            self.marked += 1
        except ApiException as exc:
            if exc.status != 404:  # a Pod gone meanwhile needs nothing
                self.relist.set()
        except Exception:
            self.relist.set()

    @retry(
        retry=retry_if_exception(lambda exc: not (isinstance(exc, ApiException) and exc.status == 404)),
        stop=stop_after_attempt(4),
        wait=wait_exponential(multiplier=0.1, max=1.0),
        reraise=True,
    )
    def _patch_retried(self, name: str, status: dict[str, Any]) -> None:
        self.api.patch_namespaced_pod_status(name, self.namespace, {"status": status})
