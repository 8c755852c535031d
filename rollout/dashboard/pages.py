"""What the dashboard's pages show, as JSON: the list of Rollouts (from the watched store) and one
Rollout's page (its steps, revisions with ReplicaSets and pods, routes with their weights, analysis
runs with their measurements and conditions, recent Events, the traffic history).

A Rollout's page is read as `rollout get` reads it (rollout/cli/view.py: owned ReplicaSets,
route weights through the route bindings, health), with the user's credentials; pods and
AnalysisTemplates are read here, Secrets never."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from rollout.analysis.args import ArgError, substitute_condition
from rollout.analysis.expressions import ConditionError, evaluate
from rollout.analysis.resolve import analysis_refs
from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import parse_rollout
from rollout.api.vocabulary import INVALID_SPEC
from rollout.cli import view
from rollout.cli.health import health, refusal
from rollout.cli.session import Session
from rollout.dashboard.actions import ACTIONS
from rollout.dashboard.watching import Watches
from rollout.kube import ANALYSIS_TEMPLATES, CLUSTER_ANALYSIS_TEMPLATES, PODS, api_message

RECENT_EVENTS = 25
BAND_LEVELS = 40  # horizontal bands of an analysis chart, each judged by the metric's condition


def invalid_spec(obj: dict[str, Any]) -> str | None:
    """The InvalidSpec condition's message (it names the field path), when the condition holds."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == INVALID_SPEC and condition.get("status") == "True":
            return str(condition.get("message") or "invalid spec")
    return None


def row(obj: dict[str, Any]) -> dict[str, Any]:
    """One line of the list: what `rollout list` prints, as fields."""
    meta, status = obj["metadata"], obj.get("status") or {}
    state, message = health(obj)
    kind, _ = view.strategy_of(obj)
    return {
        "namespace": meta["namespace"],
        "name": meta["name"],
        "health": state,
        "phase": status.get("phase") or "-",
        "strategy": kind,
        "step": view.step_text(obj) or "-",
        "weight": (status.get("canary") or {}).get("weight"),
        "stable": status.get("stableRevision"),
        "current": status.get("currentRevision"),
        "available": f"{status.get('availableReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}",
        "message": invalid_spec(obj) or message,
    }


def listing(watches: Watches) -> dict[str, Any]:
    rows = sorted((row(obj) for obj in watches.rollouts.values()), key=lambda r: (r["namespace"], r["name"]))
    return {"rollouts": rows, "connection": watches.connection.as_json()}


def _steps(obj: dict[str, Any], watches: Watches) -> list[dict[str, Any]]:
    kind, strategy = view.strategy_of(obj)
    status = obj.get("status") or {}
    if kind != "canary":
        return []
    current = status.get("currentStepIndex")
    key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
    seen = watches.history.steps.get(key, {}).get(str(status.get("currentRevision") or ""), {})
    # At rest (no step index, the current revision stable) the last update went through them all.
    at_rest = current is None and status.get("stableRevision") == status.get("currentRevision")

    def state(index: int) -> str:
        if at_rest or (current is not None and index < current):
            return "done"
        return "current" if index == current else "to come"

    steps = []
    for index, step in enumerate(strategy.get("steps") or []):
        steps.append(
            {
                "index": index,
                "text": view.describe_step(step),
                "pause": "pause" in step,
                "state": state(index),
                "entered": seen.get(index),
                "left": seen.get(index + 1),
            }
        )
    if current is not None and status.get("stepStartedAt") and 0 <= current < len(steps):
        steps[current]["startedAt"] = status["stepStartedAt"]
    return steps


async def _pods(session: Session, obj: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The Rollout's pods (by its selector), grouped by the uid of the ReplicaSet that owns them."""
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None
    owned: dict[str, list[dict[str, Any]]] = {}
    for pod in await session.kube.list(PODS, obj["metadata"]["namespace"], selector):
        status = pod.get("status") or {}
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        for owner in pod["metadata"].get("ownerReferences") or []:
            owned.setdefault(str(owner.get("uid")), []).append(
                {
                    "name": pod["metadata"]["name"],
                    "phase": status.get("phase") or "-",
                    "ready": conditions.get("Ready") == "True",
                    "deleting": bool(pod["metadata"].get("deletionTimestamp")),
                }
            )
    return {uid: sorted(pods, key=lambda p: p["name"]) for uid, pods in owned.items()}


async def _revisions(session: Session, obj: dict[str, Any]) -> list[dict[str, Any]]:
    status = obj.get("status") or {}
    replicasets, pods = await asyncio.gather(view.owned_replicasets(session, obj), _pods(session, obj))
    revisions = []
    for number, rs in enumerate(replicasets, start=1):
        revision = rs["metadata"]["labels"].get(REVISION_LABEL, "?")
        rs_status = rs.get("status") or {}
        template_spec = (rs["spec"].get("template") or {}).get("spec") or {}
        revisions.append(
            {
                "number": number,
                "revision": revision,
                "role": view.revision_role(revision, status),
                "replicaset": rs["metadata"]["name"],
                "desired": rs["spec"].get("replicas", 0),
                "ready": rs_status.get("readyReplicas", 0),
                "available": rs_status.get("availableReplicas", 0),
                "images": [c.get("image", "?") for c in template_spec.get("containers") or []],
                "labels": view.role_labels(rs),
                "pods": pods.get(str(rs["metadata"].get("uid")), []),
            }
        )
    return revisions


async def _conditions(session: Session, obj: dict[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    """run name -> metric name -> its successCondition / failureCondition, with the arguments
    filled in as that run's analysis gives them (the template's defaults, then the Rollout's own
    literal values), so the page says `>= 0.99` where the controller compares with 0.99. A
    condition whose argument has no value here (from a field, a Secret, a built-in) is shown as
    written; a template the user may not read is left out; an invalid spec shows none."""
    rollout = parse_rollout(obj).rollout
    if rollout is None:
        return {}
    namespace = obj["metadata"]["namespace"]
    templates: dict[tuple[str, bool], dict[str, Any] | None] = {}
    found: dict[str, dict[str, dict[str, str]]] = {}
    for run, (_, ref) in analysis_refs(rollout).items():
        given = {arg.name: arg.value for arg in ref.args if arg.value is not None}
        metrics = found.setdefault(run, {})
        for template_ref in ref.templates:
            key = (template_ref.name, template_ref.cluster_scope)
            if key not in templates:
                try:
                    templates[key] = await session.kube.get(
                        CLUSTER_ANALYSIS_TEMPLATES if key[1] else ANALYSIS_TEMPLATES,
                        None if key[1] else namespace,
                        key[0],
                    )
                except ApiException:
                    templates[key] = None
            spec = (templates[key] or {}).get("spec") or {}
            args = {a["name"]: str(a["value"]) for a in spec.get("args") or [] if a.get("value") is not None}
            args |= given  # the Rollout's values win over the template's defaults, as when measuring
            for metric in spec.get("metrics") or []:
                metrics[str(metric.get("name"))] = {
                    k: _filled(str(metric[k]), args)
                    for k in ("successCondition", "failureCondition")
                    if metric.get(k)
                }
    return found


def _filled(condition: str, args: dict[str, str]) -> str:
    try:
        return substitute_condition(condition, args)
    except ArgError:  # shown as written: the page does not know that argument's value
        return condition


def _numeric(value: str) -> tuple[float, bool] | None:
    """A measurement's value as stored ("0.998", "[0.998, 0.97]"): its first number, and whether
    the result was a vector; None when it holds no number."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if isinstance(parsed, int | float) and not isinstance(parsed, bool):
        return float(parsed), False
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], int | float):
        return float(parsed[0]), True
    return None


def condition_bands(metric: dict[str, Any], condition: dict[str, str]) -> dict[str, Any] | None:
    """The chart's value range cut into bands, each judged by the metric's own conditions (the
    controller's evaluator, rollout/analysis/expressions.py) on a result of the measured shape:
    where the chart's points would pass or fail. None without numbers or conditions."""
    measured = [n for m in metric.get("measurements") or [] if (n := _numeric(str(m.get("value", ""))))]
    success, failure = condition.get("successCondition"), condition.get("failureCondition")
    if not measured or not (success or failure):
        return None
    values = [v for v, _ in measured]
    vector = measured[-1][1]
    lo, hi = min(*values, 0.0), max(values)
    if hi == lo:
        hi = lo + 1.0
    levels = []
    for index in range(BAND_LEVELS):
        level = lo + (index + 0.5) * (hi - lo) / BAND_LEVELS
        sample: Any = [level] if vector else level
        try:
            ok = (evaluate(success, sample) if success else True) and not (
                evaluate(failure, sample) if failure else False
            )
        except ConditionError:  # a condition over something else than the number (len, ...)
            return None
        levels.append(ok)
    return {"lo": lo, "hi": hi, "passes": levels}


def _events(watches: Watches, obj: dict[str, Any], replicasets: list[str]) -> list[dict[str, Any]]:
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    about = {name, *replicasets}
    mine = [
        e
        for e in watches.stores["events"].values(namespace)
        if (e.get("involvedObject") or {}).get("name") in about
    ]

    def when(event: dict[str, Any]) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event["metadata"].get("creationTimestamp")
            or ""
        )

    return [
        {
            "at": when(e),
            "type": e.get("type") or "Normal",
            "reason": e.get("reason") or "",
            "object": f"{(e.get('involvedObject') or {}).get('kind', '')} {e['involvedObject'].get('name')}",
            "message": e.get("message") or "",
            "count": e.get("count") or 1,
        }
        for e in sorted(mine, key=when)[-RECENT_EVENTS:]
    ]


async def rollout_page(session: Session, watches: Watches, namespace: str, name: str) -> dict[str, Any]:
    """One Rollout's page; `gone` when it is not (or no longer) in the watched store."""
    obj = watches.rollouts.get(namespace, name)
    connection = watches.connection.as_json()
    if obj is None:
        return {"gone": watches.connection.listed, "connection": connection}
    state, message = health(obj)
    try:
        revisions = await _revisions(session, obj)
        routes = await view.route_weights(session, obj)
        conditions = await _conditions(session, obj)
        problem = None
    except ApiException as exc:
        revisions, routes, conditions = [], [], {}
        problem = f"the API server answered {exc.status} {exc.reason}: {api_message(exc)}"
    except Exception as exc:  # the API server unreachable: the page says so and tries again
        revisions, routes, conditions = [], [], {}
        problem = f"cannot read the Rollout's objects: {type(exc).__name__}: {exc}"
    status = obj.get("status") or {}
    key = (namespace, name)
    return {
        "gone": False,
        "connection": connection,
        "problem": problem,
        "summary": row(obj),
        "healthMessage": message,
        "health": state,
        "invalidSpec": invalid_spec(obj),
        "abortReason": status.get("abortReason") or "",
        "refusals": {action: refusal(action, obj) for action in ACTIONS if action != "undo"},
        "steps": _steps(obj, watches),
        "revisions": revisions,
        "routes": routes,
        "analysisRuns": [
            {
                **run,
                "metrics": [
                    {
                        **metric,
                        "bands": condition_bands(
                            metric, conditions.get(str(run.get("name")), {}).get(str(metric.get("name")), {})
                        ),
                    }
                    for metric in run.get("metrics") or []
                ],
            }
            for run in status.get("analysisRuns") or []
        ],
        "conditions": conditions,
        "events": _events(watches, obj, [r["replicaset"] for r in revisions]),
        "traffic": [{"at": p.at, "canary": p.canary} for p in watches.history.weights.get(key, [])],
        "stableService": ((obj.get("spec") or {}).get("strategy") or {})
        .get("canary", {})
        .get("stableService"),
        "canaryService": ((obj.get("spec") or {}).get("strategy") or {})
        .get("canary", {})
        .get("canaryService"),
    }
