"""`rollout get` and `rollout list`: what a Rollout is doing, read from the cluster and drawn
with rich (a tree for one Rollout, a table for many). `get --watch` redraws the same tree in
place with rich's Live display until Ctrl-C. Route weights are read through the Rollout's route
bindings (rollout/traffic/binding.py), as the controller reads them, whatever the router."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import parse_rollout
from rollout.cli.health import health
from rollout.cli.session import Session
from rollout.kube import REPLICASETS, ROLLOUTS
from rollout.traffic.base import ObservedRoute
from rollout.traffic.binding import Owner
from rollout.traffic.bindings import probe_state, route_bindings, routing_of
from rollout.traffic.routing import Routing
from rollout.workload.replicasets import POD_METADATA_ANNOTATION, ROLLOUT_NAME_LABEL, is_owned_by

HEALTH_STYLE = {"Healthy": "green", "Progressing": "cyan", "Suspended": "yellow", "Degraded": "red"}


def describe_step(step: dict[str, Any]) -> str:
    if not step:
        return "(empty step)"
    kind, value = next(iter(step.items()))
    if kind == "setWeight":
        return f"setWeight {value}"
    if kind == "pause":
        duration = (value or {}).get("duration")
        return f"pause {duration}" if duration is not None else "pause (until promoted)"
    if kind == "analysis":
        return "analysis " + ", ".join(t.get("name", "?") for t in (value or {}).get("templates") or [])
    if isinstance(value, dict) and "name" in value:
        return f"{kind} {value['name']}" + (f" {value['percent']}%" if "percent" in value else "")
    return f"{kind} {json.dumps(value)}"


def strategy_of(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    strategy = (obj.get("spec") or {}).get("strategy") or {}
    for name in ("canary", "blueGreen", "rolling"):
        if name in strategy:
            return name, strategy[name] or {}
    return "rolling", {}


def step_text(obj: dict[str, Any]) -> str | None:
    kind, strategy = strategy_of(obj)
    if kind != "canary":
        return None
    steps = strategy.get("steps") or []
    index = (obj.get("status") or {}).get("currentStepIndex")
    if not steps:
        return "no steps"
    if index is None or index >= len(steps):
        return f"{len(steps)}/{len(steps)}: done"
    return f"{index + 1}/{len(steps)}: {describe_step(steps[index])}"


def weight_line(observed: ObservedRoute, routing: Routing) -> str:
    """`HTTPRoute web/app: web-stable 80, web-canary 20`, and the header routes and mirror a
    route applies besides."""
    subject = f"{observed.kind} {observed.name}"
    if observed.weighted_rules:
        subject += "/" + ",".join(observed.weighted_rules)
    if observed.problem or observed.traffic is None:
        return f"{subject}: {observed.problem or 'not read'}"
    traffic = observed.traffic
    stable, canary = routing.stable_service or "stable", routing.canary_service or "canary"
    line = f"{subject}: {stable} {100 - traffic.weight - traffic.baseline}, {canary} {traffic.weight}"
    if routing.baseline_service:
        line += f", {routing.baseline_service} {traffic.baseline} (baseline)"
    if traffic.header_routes:
        line += "; header routes " + ", ".join(h.name or "?" for h in traffic.header_routes)
    if traffic.mirror is not None:
        line += f"; mirror {traffic.mirror.percent}%"
    return line


async def route_weights(session: Session, obj: dict[str, Any]) -> list[str]:
    """One line per route the Rollout names: what its router reads back from it (weights, header
    routes, mirror), or why it cannot."""
    rollout = parse_rollout(obj).rollout
    routing = None if rollout is None else routing_of(rollout)
    if rollout is None or routing is None:
        return []
    namespace = obj["metadata"]["namespace"]
    owner = Owner(namespace, owns=functools.partial(is_owned_by, rollout_uid=rollout.metadata.uid))
    probe = probe_state(rollout)
    lines = []
    for binding in route_bindings(rollout):
        observed = await binding.observe(session.kube, owner, probe)
        lines.append(
            f"{binding.kind} {binding.name}: not found"
            if observed is None
            else weight_line(observed, routing)
        )
    return lines


async def owned_replicasets(session: Session, obj: dict[str, Any]) -> list[dict[str, Any]]:
    meta = obj["metadata"]
    items = await session.kube.list(REPLICASETS, meta["namespace"], f"{ROLLOUT_NAME_LABEL}={meta['name']}")
    return sorted(items, key=lambda rs: (rs["metadata"].get("creationTimestamp", ""), rs["metadata"]["name"]))


def role_labels(replicaset: dict[str, Any]) -> str:
    """The role labels its pods carry (canaryMetadata, ...), as the controller recorded them."""
    recorded = (replicaset["metadata"].get("annotations") or {}).get(POD_METADATA_ANNOTATION)
    try:
        labels = (json.loads(recorded) or {}).get("labels") or {} if recorded else {}
    except (ValueError, AttributeError):
        return ""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def revision_role(revision: str, status: dict[str, Any]) -> str:
    roles = []
    if revision == status.get("stableRevision"):
        roles.append("stable")
    if revision == status.get("currentRevision") and revision != status.get("stableRevision"):
        kind = "preview" if status.get("blueGreen") else "canary"
        roles.append(kind)
    if revision == (status.get("canary") or {}).get("baselineRevision"):
        roles.append("baseline")
    bg = status.get("blueGreen") or {}
    if bg.get("activeRevision") == revision and "stable" not in roles:
        roles.append("active")
    return ", ".join(roles)


async def tree(session: Session, obj: dict[str, Any]) -> Tree:
    meta, status = obj["metadata"], obj.get("status") or {}
    state, message = health(obj)
    root = Tree(
        Text.assemble(
            ("Rollout ", "bold"),
            (f"{meta['namespace']}/{meta['name']}", "bold"),
            "  ",
            (state, HEALTH_STYLE.get(state, "")),
        )
    )
    root.add(f"Phase: {status.get('phase', '-')}")
    root.add(f"Message: {message or '-'}")
    kind, _ = strategy_of(obj)
    root.add(f"Strategy: {kind}")
    step = step_text(obj)
    if step:
        root.add(f"Step: {step}")
    weights = await route_weights(session, obj)
    if weights:
        branch = root.add("Weights")
        for line in weights:
            branch.add(line)
    elif kind == "canary":
        root.add(f"Weight: canary {(status.get('canary') or {}).get('weight', 0)}% (replica proportion)")
    stable_scale = (status.get("canary") or {}).get("stableReplicas")
    if stable_scale is not None:
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        root.add(f"Stable scale: {stable_scale} of {replicas} pods (dynamicStableScale)")
    revisions = root.add("Revisions")
    replicasets = await owned_replicasets(session, obj)
    for number, rs in enumerate(replicasets, start=1):
        revision = rs["metadata"]["labels"].get(REVISION_LABEL, "?")
        rs_status = rs.get("status") or {}
        images = ", ".join(
            c.get("image", "?")
            for c in ((rs["spec"].get("template") or {}).get("spec") or {}).get("containers") or []
        )
        role = f" ({revision_role(revision, status)})" if revision_role(revision, status) else ""
        pods = f"{rs_status.get('readyReplicas', 0)}/{rs['spec'].get('replicas', 0)}"
        labels = role_labels(rs)
        labels = f"  labels {labels}" if labels else ""
        revisions.add(
            f"#{number} {revision}{role}  {rs['metadata']['name']}  pods {pods} ready  {images}{labels}"
        )
    if not replicasets:
        revisions.add("none yet")
    runs = status.get("analysisRuns") or []
    if runs:
        analysis = root.add("Analysis")
        for run in runs:
            node = analysis.add(
                f"{run.get('name')} on {run.get('revision')}: {run.get('phase')}"
                + (f" ({run['message']})" if run.get("message") else "")
            )
            for metric in run.get("metrics") or []:
                latest = (metric.get("measurements") or [])[-3:]
                shown = (
                    ", ".join(f"{m.get('value') or '-'} {m.get('phase')}" for m in latest)
                    or "no measurement yet"
                )
                dry = " (dry run: not counted)" if metric.get("dryRun") else ""
                line = node.add(f"{metric.get('name')}{dry}: {metric.get('phase')}  latest: {shown}")
                if latest and latest[-1].get("comparisons"):
                    for comparison in latest[-1]["comparisons"]:
                        line.add(comparison_line(comparison, latest[-1].get("against") or "reference"))
    return root


def _median(side: dict[str, Any]) -> str:
    median = side.get("median")
    count = f"{side.get('samples', 0)} samples" + (f", {side['dropped']} NaN" if side.get("dropped") else "")
    return f"{'-' if median is None else f'{median:.4g}'} ({count})"


def comparison_line(comparison: dict[str, Any], against: str) -> str:
    """One query of a compare metric: "mean-latency High: +29% vs stable, p=0.0001; medians
    0.0661 (12 samples) vs 0.0512 (12 samples)"; for counts the rates, "0.40% (80 of 20000)"."""
    effect, p_value = comparison.get("effect"), comparison.get("pValue")
    said = f"{comparison.get('name')} {comparison.get('verdict')}:"
    if effect is not None:
        said += f" {effect * 100:+.0f}% vs {against}"
    else:
        said += f" vs {against}"
    if p_value is not None:
        said += f", p={p_value:.2g}"
    canary, reference = comparison.get("canary") or {}, comparison.get("reference") or {}
    if canary.get("events") is not None or reference.get("events") is not None:
        return f"{said}; rates canary {_rate(canary)}, {against} {_rate(reference)}"
    return f"{said}; medians canary {_median(canary)}, {against} {_median(reference)}"


def _rate(side: dict[str, Any]) -> str:
    """A counts query's side: "0.40% (80 of 20000)"."""
    rate, events = side.get("rate"), side.get("events")
    shown = "-" if rate is None else f"{rate:.2%}"
    return f"{shown} ({'-' if events is None else events} of {side.get('samples', 0)})"


def printable(obj: dict[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(obj, indent=2)
    return yaml.safe_dump(obj, sort_keys=False)


async def show(session: Session, name: str, console: Console, output: str | None) -> int:
    obj = await session.rollout(name)
    if output:
        console.out(printable(obj, output), end="", highlight=False)
        return 0
    console.print(await tree(session, obj))
    return 0


async def watch(session: Session, name: str, console: Console, interval: float = 1.0) -> int:
    """Redraw the tree in place until interrupted (Ctrl-C ends the command with 0). The tree is
    drawn on the terminal's alternate screen, each frame from the top, so a frame shorter or
    narrower than the last leaves nothing behind; the last frame is printed on leaving."""
    obj = await session.rollout(name)
    frame = await tree(session, obj)
    try:
        with Live(frame, console=console, auto_refresh=False, screen=True) as live:
            while True:
                await asyncio.sleep(interval)
                obj = await session.rollout(name)
                frame = await tree(session, obj)
                live.update(Group(frame), refresh=True)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    console.print(frame)
    return 0


async def listing(session: Session, console: Console) -> int:
    items = await session.kube.list(ROLLOUTS, None if session.all_namespaces else session.namespace)
    if not items:
        scope = "any namespace" if session.all_namespaces else f'namespace "{session.namespace}"'
        console.print(f"No Rollouts in {scope}.")
        return 0
    table = Table(box=None, pad_edge=False)
    for column in (
        *(["NAMESPACE"] if session.all_namespaces else []),
        "NAME",
        "STRATEGY",
        "STATUS",
        "STEP",
        "WEIGHT",
        "STABLE",
        "CURRENT",
        "AVAILABLE",
        "MESSAGE",
    ):
        table.add_column(
            column, overflow="fold" if column == "MESSAGE" else "ellipsis", no_wrap=column != "MESSAGE"
        )
    for obj in sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
        status = obj.get("status") or {}
        state, message = health(obj)
        kind, _ = strategy_of(obj)
        step = step_text(obj) or "-"
        weight = (status.get("canary") or {}).get("weight")
        table.add_row(
            *([obj["metadata"]["namespace"]] if session.all_namespaces else []),
            obj["metadata"]["name"],
            kind,
            state,
            step.split(":")[0],
            "-" if weight is None else str(weight),
            status.get("stableRevision") or "-",
            status.get("currentRevision") or "-",
            f"{status.get('availableReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}",
            message,
        )
    console.print(table)
    return 0
