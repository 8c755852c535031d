"""`rollout sandbox`: the real controller against the emulated cluster, an example Rollout applied
(by default a canary on an HTTPRoute; `--strategy` picks another) with the Services and routes it
names (scenario.py), an image update rolled out, progress printed as it happens (phase, step,
the route's weights, pods) and a summary at the end."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import webbrowser
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import yaml

from rollout.kube import ANALYSIS_TEMPLATES, EVENTS, REPLICASETS, ROLLOUTS, SERVICES, Resource
from rollout.sandbox import scenario
from rollout.sandbox.cluster import EmulatedCluster, emulated_cluster

HTTPROUTES = Resource(scenario.GATEWAY_GROUP, "v1", "httproutes")

DEFAULT_ROLLOUT = "rollout.yaml"
# With --dashboard the canary waits on a pause until someone presses Promote on the page.
DASHBOARD_PAUSE: dict[str, Any] = {"pause": {}}


class SandboxError(Exception):
    """The sandbox cannot run as asked: one line for the person, exit code 2."""


def load_rollout(path: Path | None) -> dict[str, Any]:
    text = (
        path.read_text() if path else resources.files("rollout.sandbox").joinpath(DEFAULT_ROLLOUT).read_text()
    )
    return dict(yaml.safe_load(text))


def first_image(rollout: dict[str, Any]) -> str:
    return str(rollout["spec"]["template"]["spec"]["containers"][0]["image"])


def bumped_image(image: str) -> str:
    """`web:1.0` -> `web:2.0`; anything else gets a `-next` tag."""
    name, _, tag = image.rpartition(":")
    if name and tag.split(".")[0].isdigit():
        major, *rest = tag.split(".")
        return f"{name}:{int(major) + 1}" + "".join(f".{part}" for part in rest)
    return f"{image}-next"


class ProgressPrinter:
    def __init__(
        self, cluster: EmulatedCluster, namespace: str, name: str, out: TextIO, routes: list[str]
    ) -> None:
        self.cluster, self.namespace, self.name, self.out = cluster, namespace, name, out
        self.routes = routes
        self.started = time.monotonic()
        self.last_line = ""

    async def line(self) -> tuple[str, dict[str, Any]]:
        rollout = await self.cluster.kube.get(ROLLOUTS, self.namespace, self.name) or {}
        status = rollout.get("status") or {}
        replicasets = await self.cluster.kube.list(REPLICASETS, self.namespace)
        pods = "  ".join(
            f"{rs['metadata']['labels'].get('rollout.dev/revision', '?')}:"
            f"{(rs.get('status') or {}).get('availableReplicas', 0)}/{rs['spec']['replicas']}"
            for rs in sorted(replicasets, key=lambda r: r["metadata"]["name"])
        )
        weight = (status.get("canary") or {}).get("weight")
        blue_green = status.get("blueGreen") or {}
        steps = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary", {}).get("steps")
        step = status.get("currentStepIndex")
        routes = ""
        for route_name in self.routes:
            route = await self.cluster.kube.get(HTTPROUTES, self.namespace, route_name) or {}
            routes += f"  route {route_name}: {scenario.route_weights(route)}"
        text = (
            f"{status.get('phase', '-'):<11} stable={status.get('stableRevision', '-')} "
            f"current={status.get('currentRevision', '-')}"
            + (_step(step, len(steps)) if steps and step is not None else "")
            + (f" weight={weight}" if weight is not None else "")
            + (_blue_green(blue_green) if blue_green else "")
            + routes
            + f"  pods(available/desired) {pods or '-'}"
            + (
                f"  ({status['message']})"
                if status.get("phase") in ("Paused", "Degraded") and status.get("message")
                else ""
            )
        )
        return text, rollout

    async def until(self, done: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            text, rollout = await self.line()
            if text != self.last_line:
                print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=self.out, flush=True)
                self.last_line = text
            if done(rollout):
                return rollout
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up after {timeout:.0f}s: {text}")
            await asyncio.sleep(0.1)


def _step(index: int, total: int) -> str:
    return f" step={index + 1}/{total}" if index < total else " steps done"


def _blue_green(status: dict[str, Any]) -> str:
    return f" active={status.get('activeRevision') or '-'} preview={status.get('previewRevision') or '-'}"


def healthy_at(revision_of: Callable[[dict[str, Any]], str | None]) -> Callable[[dict[str, Any]], bool]:
    def check(rollout: dict[str, Any]) -> bool:
        status = rollout.get("status") or {}
        return status.get("phase") == "Healthy" and status.get("stableRevision") == revision_of(rollout)

    return check


async def _supporting_objects(cluster: EmulatedCluster, manifest: dict[str, Any], out: TextIO) -> list[str]:
    """The Services and HTTPRoutes the Rollout names (and the HTTPRoute CRD); the route names."""
    namespace = manifest["metadata"]["namespace"]
    routes = scenario.httproutes(manifest)
    if routes:
        crd, real = scenario.httproute_crd()
        cluster.api.install_crd(crd)
        if not real:
            print(
                "sandbox: Gateway API CRDs not found (set ROLLOUT_THIRDPARTY_CRDS to their directory); "
                "HTTPRoute is served with a permissive schema generated by the sandbox",
                file=out,
            )
    for service in scenario.services(manifest):
        await cluster.kube.create(SERVICES, namespace, service)
    for route in routes:
        await cluster.kube.create(HTTPROUTES, namespace, route)
    made = [f"Service {s['metadata']['name']}" for s in scenario.services(manifest)]
    made += [f"HTTPRoute {r['metadata']['name']}" for r in routes]
    if made:
        print(f"created {', '.join(made)}", file=out, flush=True)
    return [r["metadata"]["name"] for r in routes]


def rolled_back(first_revision: str) -> Callable[[dict[str, Any]], bool]:
    """The update was aborted and the first revision serves everything again."""

    def check(rollout: dict[str, Any]) -> bool:
        status = rollout.get("status") or {}
        return (
            bool(status.get("aborted"))
            and status.get("phase") == "Degraded"
            and status.get("stableRevision") == first_revision
            and (status.get("canary") or {}).get("weight") == 0
        )

    return check


async def run_sandbox(
    out: TextIO,
    *,
    file: Path | None = None,
    new_image: str | None = None,
    timeout: float = 60.0,
    strategy: str | None = None,
    analysis: bool = False,
    dashboard_port: int | None = None,
    open_browser: bool = False,
) -> int:
    """0 once the update has landed (with `analysis`: once the failing analysis rolled it back).
    With `dashboard_port`, the dashboard serves the emulated cluster on that port, the canary waits
    for Promote on its page, and the sandbox runs until interrupted."""
    manifest = load_rollout(file)
    if file is None:
        manifest = scenario.with_strategy(manifest, strategy or "canary")
    namespace = manifest["metadata"].setdefault("namespace", "default")
    name = manifest["metadata"]["name"]
    old_image = first_image(manifest)
    new_image = new_image or bumped_image(old_image)
    binary = None
    if analysis:
        from rollout.sandbox import prometheus_gate as gate  # needs prometheus-client; only for --analysis

        binary = gate.prometheus_binary()
        if binary is None:
            raise SandboxError("--analysis needs the prometheus binary on PATH (apt-get install prometheus)")
        manifest["spec"]["strategy"]["canary"]["steps"] = list(gate.ANALYSIS_STEPS)
    canary = (manifest["spec"].get("strategy") or {}).get("canary")
    if dashboard_port is not None and canary is not None and canary.get("steps"):
        steps = canary["steps"]
        if len(steps) > 1 and "pause" in steps[1]:
            steps[1] = DASHBOARD_PAUSE  # the example's first pause, held until promoted
        else:
            steps.insert(1, DASHBOARD_PAUSE)
    chosen = next(iter(manifest["spec"].get("strategy") or {"?": None}))
    print(
        f"sandbox: emulated Kubernetes API, real controller; Rollout {namespace}/{name} ({chosen})", file=out
    )
    async with (
        emulated_cluster(startup_seconds=0.4, pods=True) as cluster,
        contextlib.AsyncExitStack() as stack,
    ):
        cluster.create_namespace(namespace)
        routes = await _supporting_objects(cluster, manifest, out)
        prometheus = None
        if binary is not None:
            traffic = gate.EmulatedTraffic(cluster, namespace, routes[0], {new_image})
            prometheus = await stack.enter_async_context(gate.prometheus_watching(traffic, binary))
            await cluster.kube.create(ANALYSIS_TEMPLATES, namespace, gate.error_rate_template(namespace))
            print(
                f"analysis: Prometheus {prometheus} scrapes the emulated app; AnalysisTemplate "
                f"{gate.TEMPLATE} fails above {gate.MAX_ERROR_RATE:.0%} errors; {new_image} answers "
                f"{gate.ERROR_SHARE:.0%} of its requests with a 500",
                file=out,
                flush=True,
            )
        if dashboard_port is not None:
            url = await stack.enter_async_context(_dashboard(cluster, namespace, dashboard_port))
            print(
                f"dashboard: {url}  (press Promote on {namespace}/{name}'s paused step)", file=out, flush=True
            )
            if open_browser:
                await asyncio.to_thread(webbrowser.open, f"{url}#/r/{namespace}/{name}")
            timeout = math.inf  # a person takes their time on the page
        async with cluster.controller(prometheus_address=prometheus):
            printer = ProgressPrinter(cluster, namespace, name, out, routes)
            await cluster.kube.create(ROLLOUTS, namespace, manifest)
            print(f"applied {name} with image {old_image}", file=out, flush=True)
            first = await printer.until(
                healthy_at(lambda r: (r.get("status") or {}).get("currentRevision")), timeout
            )
            first_revision = first["status"]["stableRevision"]
            containers = manifest["spec"]["template"]["spec"]["containers"]
            containers[0]["image"] = new_image
            update_started = time.monotonic()
            await cluster.kube.patch(
                ROLLOUTS, namespace, name, {"spec": {"template": manifest["spec"]["template"]}}
            )
            print(f"updated image to {new_image}", file=out, flush=True)

            def moved_on(rollout: dict[str, Any]) -> str | None:
                current = (rollout.get("status") or {}).get("currentRevision")
                return current if current != first_revision else None

            done = rolled_back(first_revision) if analysis else healthy_at(moved_on)
            final = await printer.until(done, timeout)
            took = time.monotonic() - update_started
            events = await cluster.kube.list(EVENTS, namespace)
            if dashboard_port is not None:
                _summary(final, events, name, old_image, new_image, first_revision, took, analysis, out)
                print("the dashboard stays up until Ctrl-C", file=out, flush=True)
                await asyncio.Event().wait()
    _summary(final, events, name, old_image, new_image, first_revision, took, analysis, out)
    return 0


@contextlib.asynccontextmanager
async def _dashboard(cluster: EmulatedCluster, namespace: str, port: int) -> AsyncIterator[str]:
    from rollout.dashboard.command import on_emulated_cluster

    async with on_emulated_cluster(cluster.url, namespace, "127.0.0.1", port) as url:
        yield url


def _summary(
    final: dict[str, Any],
    events: list[dict[str, Any]],
    name: str,
    old_image: str,
    new_image: str,
    first_revision: str,
    took: float,
    analysis: bool,
    out: TextIO,
) -> None:
    status = final["status"]
    reasons = [e["reason"] for e in events if e["involvedObject"].get("name") == name]
    if analysis:
        headline = (
            f"summary: the analysis failed and {name} rolled back on its own in {took:.1f}s: "
            f"{new_image} (revision {status.get('currentRevision')}) aborted, {old_image} "
            f"(revision {first_revision}) keeps all the traffic; phase {status['phase']}: "
            f"{status.get('message', '')}"
        )
    else:
        headline = (
            f"summary: {name} rolled from {old_image} (revision {first_revision}) to {new_image} "
            f"(revision {status['stableRevision']}) in {took:.1f}s; phase {status['phase']}: "
            f"{status.get('message', '')}"
        )
    print(f"\n{headline}\nevents: {', '.join(reasons)}", file=out, flush=True)
