"""The job provider: one Kubernetes Job per measurement, its outcome the measurement's (pure).

Resolved with the other metrics: `{{args.NAME}}` is substituted into every string of the Job's
metadata and spec as a whole value (the structure is never re-parsed, so a value cannot add a
field). The controller's side (jobs.py beside this) creates the Job and looks at it on later
reconciles; what it needs to decide is here, without I/O:

- `job_name`: deterministic per measurement (Rollout uid, revision, run and its start, metric,
  measurement index), so a controller restarted mid-Job finds the Job it had created instead of
  starting a second one; readable prefix, hashed suffix, at most 63 characters (the Job
  controller copies the name into a pod label value);
- `job_body`: the Job, labelled with the Rollout, run and metric, owned by the Rollout (deleted
  with it by the garbage collector);
- `job_outcome`: the Job's `Complete` condition is a Successful measurement, `Failed` a Failed
  one; anything else is still running. Conditions (successCondition/failureCondition) are
  refused on job metrics by the API model: the Job's own outcome is the verdict."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from rollout.analysis.args import PLACEHOLDER, ArgError, placeholders
from rollout.analysis.expressions import Result
from rollout.analysis.provider import QueryError, SecretUse
from rollout.api.templates import JobProvider
from rollout.api.vocabulary import ANALYSIS_LABEL, MEASUREMENT_LABEL, METRIC_LABEL

# As on the Rollout's ReplicaSets (workload/replicasets.py, which this pure module cannot import:
# the provider registry loads it before the engine).
ROLLOUT_NAME_LABEL = "rollout.dev/rollout"

NAME_LIMIT = 63  # a Job's name is copied into its pods' job-name label: a label value's limit
HASH_CHARS = 10
_NOT_NAME = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class JobRequest:
    """A Job's metadata and spec with the arguments filled in, as JSON text (a request is
    immutable and compared by value)."""

    metadata: str
    spec: str

    @property
    def text(self) -> str:
        containers = json.loads(self.spec).get("template", {}).get("spec", {}).get("containers") or []
        images = ", ".join(str(c.get("image", "?")) for c in containers if isinstance(c, dict))
        return f"Job of {images or 'no containers'}"

    @property
    def headers(self) -> tuple[()]:
        return ()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def _fill(value: Any, args: Mapping[str, str]) -> Any:
    """Every string with its placeholders replaced by the argument's value as is."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            if match.group(1) not in args:
                raise ArgError(f"argument {match.group(1)!r} has no value (give it in the Rollout's args)")
            return args[match.group(1)]

        return PLACEHOLDER.sub(one, value)
    if isinstance(value, dict):
        return {key: _fill(item, args) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, args) for item in value]
    return value


def _wire(config: JobProvider) -> tuple[dict[str, Any], dict[str, Any]]:
    metadata = config.metadata.model_dump(by_alias=True, exclude_none=True)
    return metadata, config.spec.model_dump(by_alias=True, exclude_none=True)


class JobMetrics:
    """The job metric provider (see the module docstring)."""

    kind = "job"
    json_result = False

    def placeholders(self, config: JobProvider) -> set[str]:
        found: set[str] = set()
        for text in _strings(_wire(config)):
            found |= placeholders(text)
        return found

    def resolve(self, config: JobProvider, args: Mapping[str, str]) -> JobRequest:
        metadata, spec = _wire(config)
        return JobRequest(
            json.dumps(_fill(metadata, args), sort_keys=True), json.dumps(_fill(spec, args), sort_keys=True)
        )

    def secret_uses(self, config: JobProvider) -> list[SecretUse]:
        return []

    def measure(
        self,
        request: Any,
        headers: Mapping[str, str],
        clients: Mapping[str, Any],
        context: Mapping[str, str],
    ) -> Result:
        # A Job spans reconciles: the controller measures it with rollout/analysis/jobs.py.
        raise QueryError("a job metric is measured by the controller's Job gate, not in one call")


PROVIDER = JobMetrics()


def job_name(
    rollout: str, uid: str, revision: str, run: str, started_at: datetime, metric: str, index: int
) -> str:
    """The Job of one measurement: `<rollout>-<run>-<metric>-<index>` cut to fit, then a hash of
    everything that identifies the measurement (a new revision, a retried run or a recreated
    Rollout never meets an old Job of the same words)."""
    identity = "/".join((uid, revision, run, started_at.isoformat(), metric, str(index)))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:HASH_CHARS]
    words = _NOT_NAME.sub("-", f"{rollout}-{run}-{metric}-{index}".lower()).strip("-")
    room = NAME_LIMIT - HASH_CHARS - 1
    return f"{words[:room].rstrip('-')}-{digest}" if words else digest


def label_value(text: str) -> str:
    """`text` as a label value (at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:NAME_LIMIT]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def job_body(
    request: JobRequest,
    name: str,
    namespace: str,
    owner: dict[str, Any],
    run: str,
    metric: str,
    index: int,
) -> dict[str, Any]:
    """The Job to create: the template's metadata and spec, the controller's labels on top (they
    name what the Job measures, for `kubectl get jobs -l`), owned by the Rollout."""
    metadata = json.loads(request.metadata)
    labels = {
        **metadata.get("labels", {}),
        ROLLOUT_NAME_LABEL: label_value(str(owner["name"])),
        ANALYSIS_LABEL: label_value(run),
        METRIC_LABEL: label_value(metric),
        MEASUREMENT_LABEL: str(index),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": metadata.get("annotations", {}),
            "ownerReferences": [owner],
        },
        "spec": json.loads(request.spec),
    }


@dataclass(frozen=True)
class JobOutcome:
    phase: Literal["Successful", "Failed"]
    reason: str  # the condition's reason and message, as the Job controller wrote them


def job_outcome(job: Mapping[str, Any]) -> JobOutcome | None:
    """Complete -> Successful, Failed -> Failed (conditions with status True); None while the Job
    runs (SuccessCriteriaMet and FailureTarget come before their final condition, once pods end)."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        kind = condition.get("type")
        if kind in ("Complete", "Failed"):
            why = ": ".join(str(p) for p in (condition.get("reason"), condition.get("message")) if p)
            return JobOutcome("Successful" if kind == "Complete" else "Failed", why)
    return None


def owned_by(job: Mapping[str, Any], uid: str) -> bool:
    refs = (job.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)
