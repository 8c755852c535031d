"""The controller's side of analysis: read the templates a Rollout refers to, and take the
measurements that are due before the engine decides.

Flow inside a reconcile: observe -> `observe_templates` (one GET per template) -> the analyses
resolved once (resolve_analyses; the engine decides with the same) -> `measure`:
for each run in status that is still open, the metrics whose next measurement is due are
queried concurrently (each in a worker thread, so the event loop never blocks) and handed to the
engine as raw results; the engine judges them and keeps the counts in status. A job metric's
measurement spans reconciles instead (jobs.py): its Job is created, then looked at until it ends."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime

from kubernetes.client.exceptions import ApiException

from rollout.analysis.due import DueMeasurement, due_measurements
from rollout.analysis.jobs import measure_job
from rollout.analysis.prometheus import Prometheus
from rollout.analysis.provider import NoData, QueryError
from rollout.analysis.providers import PROVIDERS
from rollout.analysis.resolve import (
    ResolvedAnalyses,
    ResolvedMetric,
    SecretArgValues,
    TemplateKey,
    TemplateLookup,
    Unreadable,
    arg_secret_keys,
    secret_refs,
    template_keys,
)
from rollout.analysis.runs import QueryResult
from rollout.api.rollout import Rollout
from rollout.api.status import RolloutStatus
from rollout.api.templates import AnalysisTemplateSpec, parse_template
from rollout.kube import ANALYSIS_TEMPLATES, CLUSTER_ANALYSIS_TEMPLATES, SECRETS, Kube, missing_grant


async def observe_templates(kube: Kube, rollout: Rollout) -> TemplateLookup:
    found: dict[TemplateKey, AnalysisTemplateSpec | str | None] = {}
    for key in template_keys(rollout):
        if key.cluster_scope:
            raw = await kube.get(CLUSTER_ANALYSIS_TEMPLATES, None, key.name)
        else:
            raw = await kube.get(ANALYSIS_TEMPLATES, rollout.metadata.namespace, key.name)
        found[key] = None if raw is None else parse_template(raw)
    return found


@dataclass(frozen=True)
class Denied:
    """A Secret the controller may not read (the API server answered 403): why, in words."""

    why: str


# Secrets read while observing: name -> its data (base64 values, as the API server gives them),
# None when missing, Denied when unreadable. Values stay in the controller; the engine sees only
# the key names.
SecretData = dict[str, dict[str, str] | Denied | None]


async def observe_secrets(kube: Kube, rollout: Rollout, templates: TemplateLookup) -> SecretData:
    """The Secrets named by analysis headers and by the Rollout's analysis arguments
    (`valueFrom.secretKeyRef`), a GET each or a read of a few seconds ago, so that a missing or
    unreadable Secret or key is an InvalidSpec found before anything moves."""
    found: SecretData = {}
    namespace = rollout.metadata.namespace
    wanted: dict[str, set[str]] = {}
    for ref in secret_refs(rollout, templates):
        wanted.setdefault(ref.secret, set()).add(ref.key)
    for secret, key in arg_secret_keys(rollout):
        wanted.setdefault(secret, set()).add(key)
    for name, keys in sorted(wanted.items()):
        try:
            secret = await kube.get(SECRETS, namespace, name)
            if secret is not None and not keys <= set(secret.get("data") or {}):
                # A key missing from a read of a few seconds ago: it may have been added since.
                secret = await kube.get_fresh(SECRETS, namespace, name)
        except ApiException as exc:
            if exc.status != 403:
                raise
            found[name] = Denied(missing_grant("get", "secrets", f"in namespace {namespace}"))
            continue
        found[name] = None if secret is None else dict(secret.get("data") or {})
    return found


def secret_keys(secrets: SecretData) -> dict[str, frozenset[str] | None]:
    """What the engine may know of the Secrets: which keys exist, never their values."""
    return {name: frozenset(data) if isinstance(data, dict) else None for name, data in secrets.items()}


def denied_secrets(secrets: SecretData) -> dict[str, str]:
    """The Secrets the controller may not read, and the grant it lacks."""
    return {name: data.why for name, data in secrets.items() if isinstance(data, Denied)}


def secret_arg_values(rollout: Rollout, secrets: SecretData) -> SecretArgValues:
    """The values of the Secret keys the Rollout's analysis arguments name, decoded, or why there
    is none (for resolve; only the controller holds these, masked wherever text leaves it)."""
    values: dict[tuple[str, str], str | Unreadable] = {}
    for name, key in arg_secret_keys(rollout):
        data = secrets.get(name)
        if isinstance(data, Denied):
            values[(name, key)] = Unreadable(f"the Secret cannot be read: {data.why}")
        elif data is None:
            values[(name, key)] = Unreadable("the Secret was not found")
        elif key not in data:
            values[(name, key)] = Unreadable("the Secret has no such key")
        else:
            try:
                values[(name, key)] = base64.b64decode(data[key], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                values[(name, key)] = Unreadable("the value is not base64-encoded UTF-8 text")
    return values


def request_headers(secrets: SecretData, namespace: str, metric: ResolvedMetric) -> dict[str, str]:
    headers: dict[str, str] = {}
    for header in metric.request.headers:
        if header.value is not None:
            headers[header.key] = header.value
            continue
        assert header.value_from is not None
        ref = header.value_from.secret_key_ref
        data = secrets.get(ref.name)
        # Validation stops a rollout on these before a run starts; during a run (the Secret was
        # deleted or changed) the measurement is an Error that says why.
        if isinstance(data, Denied):
            raise QueryError(f"header {header.key}: Secret {namespace}/{ref.name} cannot be read: {data.why}")
        if data is None:
            raise QueryError(f"header {header.key}: Secret {namespace}/{ref.name} not found")
        if ref.key not in data:
            raise QueryError(f"header {header.key}: Secret {namespace}/{ref.name} has no key {ref.key!r}")
        try:
            headers[header.key] = base64.b64decode(data[ref.key]).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise QueryError(
                f"header {header.key}: key {ref.key!r} of Secret {namespace}/{ref.name} is not "
                "base64-encoded text"
            ) from exc
    return headers


async def measure_one(
    secrets: SecretData,
    prometheus: Prometheus,
    rollout: Rollout,
    run: str,
    revision: str,
    metric: ResolvedMetric,
    now: datetime,
) -> QueryResult:
    context = {
        "namespace": rollout.metadata.namespace,
        "rollout": rollout.metadata.name,
        "analysis": run,
        "metric": metric.name,
    }
    try:
        headers = request_headers(secrets, rollout.metadata.namespace, metric)
        provider = PROVIDERS[metric.provider]
        clients = {"prometheus": prometheus}
        value = await asyncio.to_thread(provider.measure, metric.request, headers, clients, context)
    except QueryError as exc:  # a provider's message may quote the query: secret values masked
        return QueryResult(
            run=run, revision=revision, metric=metric.name, at=now, error=metric.masked(str(exc))
        )
    except NoData as exc:
        return QueryResult(
            run=run, revision=revision, metric=metric.name, at=now, no_data=metric.masked(str(exc))
        )
    return QueryResult(run=run, revision=revision, metric=metric.name, at=now, value=value)


async def measure(
    secrets: SecretData,
    prometheus: Prometheus,
    rollout: Rollout,
    status: RolloutStatus,
    analyses: ResolvedAnalyses,
    current: str,
    now: datetime,
    kube: Kube | None = None,
) -> tuple[QueryResult, ...]:
    """Query every metric that is due in the open runs of the current revision, concurrently. A
    metric whose header's Secret or key is gone is measured as an Error saying so, never a pass.
    Job metrics need `kube` (without it, the job provider's own measure() says so: an Error)."""

    def one(item: DueMeasurement) -> Awaitable[QueryResult]:
        run = status.analysis_run(item.run, item.revision)
        if item.metric.provider == "job" and kube is not None and run is not None:
            return measure_job(kube, rollout, run, item.metric, now)
        return measure_one(secrets, prometheus, rollout, item.run, item.revision, item.metric, now)

    due = due_measurements(analyses, status, current, now)
    return tuple(await asyncio.gather(*(one(item) for item in due)))
