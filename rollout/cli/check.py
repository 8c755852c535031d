"""`rollout check NAME`: a live preflight of everything a Rollout refers to, before (or while)
it rolls out. Where `rollout lint` reads files, this reads the cluster: the Services and whether
they select ready pods, each route and what its parent Gateways report for it, the
DestinationRule's subsets, the analysis templates (resolved by the controller's own code), and
Prometheus (each resolved query is run once, now, and must return data).

Prints one row per check with a mark and, for a failure, the fix to try; exit 1 when any fails.

"Selects pods": Pods matching the Service's selector are counted when the cluster has Pods; a
cluster without Pod objects (the emulator keeps ReplicaSet status only) is judged from the
ReplicaSets whose pod template labels match the selector and their readyReplicas."""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass, replace
from typing import Any, TextIO

from rollout.analysis.compare import CompareRequest
from rollout.analysis.measure import observe_secrets, observe_templates, request_headers, secret_arg_values
from rollout.analysis.prometheus import Prometheus, PrometheusRequest, QueryError
from rollout.analysis.resolve import ResolvedMetric, resolve_all, template_keys
from rollout.api.rollout import Rollout, parse_rollout
from rollout.cli.session import Session
from rollout.engine.decide import current_revision
from rollout.engine.validation import referenced_services
from rollout.kube import DESTINATION_RULES, PODS, REPLICASETS, SERVICES
from rollout.traffic.bindings import TrafficBinding, probe_state, route_bindings, routing_of
from rollout.traffic.gatewayapi import GROUP as GATEWAY_GROUP

OK, FAIL = "✓", "✗"
PARENT_CONDITIONS = ("Accepted", "ResolvedRefs")


@dataclass(frozen=True)
class Check:
    passed: bool
    subject: str  # what was checked: "Service web-stable"
    result: str  # what was found
    fix: str = ""  # for a failure, what to try


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _template_labels(rs: dict[str, Any]) -> dict[str, str]:
    return dict((((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})


def _pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def _service(session: Session, field: str, name: str) -> list[Check]:
    subject = f"Service {name}"
    service = await session.kube.get(SERVICES, session.namespace, name)
    if service is None:
        return [
            Check(
                False,
                subject,
                f"not found in namespace {session.namespace}",
                f"create Service {name}, or correct {field}",
            )
        ]
    selector = dict((service.get("spec") or {}).get("selector") or {})
    if not selector:
        return [
            Check(False, subject, "has no selector", "give it a selector matching the Rollout's pod labels")
        ]
    pods = await session.kube.list(PODS, session.namespace, _selector(selector))
    if pods:
        ready = sum(1 for p in pods if _pod_ready(p))
        found = f"selects {ready}/{len(pods)} ready pod(s) ({_selector(selector)})"
    else:
        replicasets = [
            rs
            for rs in await session.kube.list(REPLICASETS, session.namespace)
            if selector.items() <= _template_labels(rs).items()
        ]
        ready = sum(int((rs.get("status") or {}).get("readyReplicas") or 0) for rs in replicasets)
        names = ", ".join(sorted(rs["metadata"]["name"] for rs in replicasets)) or "none"
        found = f"selects {ready} ready pod(s) ({_selector(selector)}; ReplicaSets: {names})"
    if ready == 0:
        return [
            Check(
                False,
                subject,
                found,
                "match the selector to the Rollout's pod labels, or see why the pods are not Ready",
            )
        ]
    return [Check(True, subject, found)]


def _same_parent(ref: dict[str, Any], reported: dict[str, Any], namespace: str) -> bool:
    keys = ("group", "kind", "name", "sectionName", "port")
    defaults = {"group": GATEWAY_GROUP, "kind": "Gateway"}
    for key in keys:
        if ref.get(key, defaults.get(key)) != reported.get(key, defaults.get(key)):
            return False
    return (ref.get("namespace") or namespace) == (reported.get("namespace") or namespace)


def _parent_checks(kind: str, name: str, route: dict[str, Any], namespace: str) -> list[Check]:
    """Accepted and ResolvedRefs as each parent Gateway reports them in the route's status."""
    generation = (route.get("metadata") or {}).get("generation")
    reported = ((route.get("status") or {}).get("parents")) or []
    checks: list[Check] = []
    refs = (route.get("spec") or {}).get("parentRefs") or []
    if not refs:
        return [Check(False, f"{kind} {name}", "has no parentRefs: no Gateway serves it", "add a parentRef")]
    for ref in refs:
        gateway = f"Gateway {ref.get('name')}" + (f"/{ref['sectionName']}" if ref.get("sectionName") else "")
        subject = f"{kind} {name} -> {gateway}"
        entry = next((p for p in reported if _same_parent(ref, p.get("parentRef") or {}, namespace)), None)
        if entry is None:
            checks.append(
                Check(
                    False,
                    subject,
                    "no status from this Gateway for the route",
                    f"check that {gateway} exists and that its Gateway controller is running",
                )
            )
            continue
        conditions = {c.get("type"): c for c in entry.get("conditions") or []}
        for type_ in PARENT_CONDITIONS:
            condition = conditions.get(type_)
            if condition is None:
                checks.append(
                    Check(False, f"{subject} {type_}", "not reported", f"wait for {gateway} to report")
                )
                continue
            observed = condition.get("observedGeneration")
            if generation is not None and observed is not None and observed != generation:
                checks.append(
                    Check(
                        False,
                        f"{subject} {type_}",
                        f"reported for generation {observed}, the route is at {generation}",
                        f"wait for {gateway} to catch up",
                    )
                )
            elif condition.get("status") == "True":
                checks.append(Check(True, f"{subject} {type_}", "True"))
            else:
                reason, message = condition.get("reason", ""), condition.get("message", "")
                checks.append(
                    Check(
                        False,
                        f"{subject} {type_}",
                        f"{condition.get('status')} ({reason}): {message}".rstrip(": "),
                        "fix the parentRef (Gateway, listener, allowedRoutes)"
                        if type_ == "Accepted"
                        else "fix the backendRefs (Services exist, ports, ReferenceGrants)",
                    )
                )
    return checks


async def _route(session: Session, binding: TrafficBinding, rollout: Rollout) -> list[Check]:
    kind = binding.kind
    resource = binding.resource
    route = await session.kube.get(resource, session.namespace, binding.name)
    subject = f"{kind} {binding.name}"
    if route is None:
        return [
            Check(
                False,
                subject,
                f"not found in namespace {session.namespace}",
                f"create {kind} {binding.name}, or correct {binding.path}",
            )
        ]
    observed = binding.observed(route, probe_state(rollout))
    if observed is not None and observed.problem:
        return [Check(False, subject, observed.problem, f"change the route or {binding.path}")]
    checks = [Check(True, subject, "found; the controller can set its weights")]
    if binding.group == GATEWAY_GROUP:
        checks += _parent_checks(kind, binding.name, route, session.namespace)
    return checks


async def _subsets(session: Session, rollout: Rollout) -> list[Check]:
    spec = routing_of(rollout)
    istio = spec.routing.istio if spec is not None else None
    if istio is None or istio.destination_rule is None:
        return []
    ref = istio.destination_rule
    rule = await session.kube.get(DESTINATION_RULES, session.namespace, ref.name)
    subject = f"DestinationRule {ref.name}"
    if rule is None:
        return [Check(False, subject, f"not found in namespace {session.namespace}", f"create {subject}")]
    names = {s.get("name") for s in (rule.get("spec") or {}).get("subsets") or []}
    return [
        Check(True, f"{subject} subset {subset}", "found")
        if subset in names
        else Check(False, f"{subject} subset {subset}", "missing", f"add subset {subset} to {subject}")
        for subset in (ref.stable_subset, ref.canary_subset)
    ]


async def _analysis(session: Session, rollout: Rollout, prometheus: Prometheus) -> list[Check]:
    if not template_keys(rollout):
        return []
    templates = await observe_templates(session.kube, rollout)
    checks: list[Check] = []
    for key, spec in sorted(templates.items(), key=lambda item: str(item[0])):
        if spec is None:
            scope = "in the cluster" if key.cluster_scope else f"in namespace {session.namespace}"
            checks.append(
                Check(False, str(key), f"not found {scope}", f"create {key}, or correct the reference")
            )
        elif isinstance(spec, str):
            checks.append(Check(False, str(key), f"not valid: {spec}", f"fix {key}"))
    # A workloadRef Rollout has no template of its own here: its revision is the status's.
    current = rollout.status.current_revision or ""
    if rollout.spec.template is not None:
        current = current_revision(rollout)
    secrets = await observe_secrets(session.kube, rollout, templates)
    resolved, problems = resolve_all(
        rollout,
        templates,
        rollout.status.stable_revision or current,
        current,
        secret_arg_values(rollout, secrets),
    )
    # A missing or unreadable template has its own row above.
    problems = [
        p for p in problems if not p.message.endswith("not found") and "is not valid:" not in p.message
    ]
    checks += [Check(False, "analysis", str(p), "fix the template or the Rollout's args") for p in problems]
    if not checks:
        checks.append(Check(True, "analysis templates", f"{len(templates)} found, every metric resolves"))
    unique: dict[tuple[str | None, str], ResolvedMetric] = {}
    for metrics in resolved.values():
        for metric in metrics:
            if metric.provider == "prometheus":  # the queries asked of Prometheus right now
                unique.setdefault((metric.request.address, metric.request.text), metric)
            elif metric.provider == "compare":  # each query of each side, as an instant query
                for side in per_side(metric):
                    unique.setdefault((side.request.address, side.request.text), side)
    checks += await _queries(session, prometheus, list(unique.values()), secrets)
    return checks


def per_side(metric: ResolvedMetric) -> list[ResolvedMetric]:
    """A compare metric's queries as plain Prometheus metrics, one per query and side (named
    `judge/p99 canary`), so that each is run once like any other query."""
    request = metric.request
    assert isinstance(request, CompareRequest)
    return [
        replace(
            metric,
            name=f"{metric.name}/{query.name} {side}",
            provider="prometheus",
            request=PrometheusRequest(
                text, request.address, request.timeout, request.headers, request.insecure
            ),
        )
        for query in request.queries
        for side, text in (("canary", query.canary), (request.settings.against, query.reference))
    ]


async def _queries(
    session: Session, prometheus: Prometheus, metrics: list[ResolvedMetric], secrets: Any
) -> list[Check]:
    checks: list[Check] = []
    reachable: dict[str, bool] = {}
    for metric in metrics:
        try:
            address = prometheus.address_for(metric.request.address)
            headers = request_headers(secrets, session.namespace, metric)
        except QueryError as exc:
            checks.append(Check(False, f"metric {metric.name}", str(exc), "give the address or the Secret"))
            continue
        if address not in reachable:
            try:
                await asyncio.to_thread(
                    prometheus.query, "1", address=address, timeout=metric.request.timeout, headers=headers
                )
                reachable[address] = True
                checks.append(Check(True, f"Prometheus {address}", "reachable"))
            except QueryError as exc:
                reachable[address] = False
                checks.append(
                    Check(
                        False, f"Prometheus {address}", str(exc), "check the address and that Prometheus runs"
                    )
                )
        if not reachable[address]:
            continue
        subject = f"metric {metric.name} ({metric.template})"
        try:
            value = await asyncio.to_thread(
                prometheus.query,
                metric.request.text,  # the query as sent; metric.query is as shown (secrets masked)
                address=address,
                timeout=metric.request.timeout,
                headers=headers,
                insecure=metric.request.insecure,
            )
        except QueryError as exc:
            checks.append(Check(False, subject, metric.masked(str(exc)), "fix the query"))
            continue
        values = value if isinstance(value, list) else [value]
        if not values or all(math.isnan(v) for v in values):
            checks.append(
                Check(
                    False,
                    subject,
                    f"no data right now for: {metric.query}",
                    "check the metric is scraped and the labels the query filters on",
                )
            )
        else:
            shown = ", ".join(f"{v:.4g}" for v in values)
            checks.append(Check(True, subject, f"returns {shown}"))
    return checks


async def run_checks(session: Session, name: str, prometheus: Prometheus) -> list[Check]:
    raw = await session.rollout(name)
    parsed = parse_rollout(raw)
    if parsed.rollout is None:
        return [Check(False, f"Rollout {name}", str(e), "correct the spec") for e in parsed.errors]
    rollout = parsed.rollout
    checks = [Check(True, f"Rollout {name}", "spec readable")]
    for field, service in referenced_services(rollout).items():
        checks += await _service(session, field, service)
    for binding in route_bindings(rollout):
        checks += await _route(session, binding, rollout)
    checks += await _subsets(session, rollout)
    checks += await _analysis(session, rollout, prometheus)
    return checks


def table(checks: list[Check]) -> list[str]:
    subject_width = max(len(c.subject) for c in checks)
    result_width = max(len(c.result) for c in checks)
    lines = []
    for check in checks:
        mark = OK if check.passed else FAIL
        line = f"{mark} {check.subject.ljust(subject_width)}  {check.result.ljust(result_width)}"
        lines.append((line + (f"  fix: {check.fix}" if check.fix and not check.passed else "")).rstrip())
    return lines


async def check(session: Session, name: str, out: TextIO, prometheus_address: str | None) -> int:
    prometheus = Prometheus(prometheus_address or os.environ.get("ROLLOUT_PROMETHEUS_ADDRESS"), attempts=2)
    checks = await run_checks(session, name, prometheus)
    for line in table(checks):
        print(line, file=out)
    failed = sum(1 for c in checks if not c.passed)
    print(
        f"{len(checks)} check(s): " + (f"{failed} failed" if failed else "all passed"),
        file=out,
    )
    return 1 if failed else 0
