"""Many canary Rollouts updated at the same instant: latency, API calls and the controller's memory.

N Rollouts (1 replica each, their own HTTPRoute and Services, steps `setWeight 20`, `pause 2s`,
`setWeight 60`) are created and left to become Healthy; then all are given a new image at once.
The controller runs as a process of its own (`rollout controller --workers W`), so that its RSS
and CPU are its own. Printed per N: the time until all are Healthy at first, first-step latency
(the route at 20%) and completion latency (Healthy on the new revision) as p50/p99/max, each from
that Rollout's own update; the controller's API requests during the update (reads outside its
caches, writes per update and per weight step, Events); its CPU per update and peak RSS; and the
API server's CPU. On a real control plane, a table per N also cuts the first step into hops (the
controller, the controller-manager and the stand-in kubelet each in turn: bench/hops.py).

On the real control plane by default (tests/cluster: built on first use, started here; no nodes,
a stand-in kubelet marks Pods Ready), where the controller is a user of its own and the API
server's audit log counts its requests. `--emulator` runs kmock's emulated API server in this
process instead (pods Ready 0.2 s after creation; its single event loop sets the times there).
With ROLLOUT_BENCH_KUBECONFIG set, on that cluster (CRDs and Gateway API installed; request counts
not available). ROLLOUT_BENCH_PROFILE=FILE samples the controller with py-spy through the update
(collapsed stacks; `python -m bench.profile FILE` sums them by function). ROLLOUT_BENCH_LOGS=DIR
keeps the controller's log there (ROLLOUT_BENCH_LOG_LEVEL, WARNING by default).

    python -m bench.scale                 # N = 200 and 1,000 on the real control plane
    python -m bench.scale 100 500 --workers 32
    python -m bench.scale 10 100 --emulator
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import kmock
import yaml
from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from bench.common import print_table
from bench.hops import first_step_hops, hop_rows
from rollout.kube import (
    CLUSTER_ROLE_BINDINGS,
    NAMESPACES,
    REPLICASETS,
    ROLLOUTS,
    SERVICES,
    USER_AGENT,
    Kube,
    Resource,
    api_client_for,
    load_api_client,
)
from rollout.observability.logging import configure_logging
from rollout.sandbox.cluster import EmulatedCluster, emulated_cluster
from tests.cluster.kubelet import StandInKubelet
from tests.cluster.launcher import ControlPlane, audit_target, install_crds
from tests.manifests import http_route_manifest, image_patch, rollout_manifest, service_manifest
from tests.thirdparty import routing_crds

REPO = Path(__file__).resolve().parents[1]
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
STEPS = [{"setWeight": 20}, {"pause": {"duration": "2s"}}, {"setWeight": 60}]
WEIGHT_STEPS = 3  # 20, 60, and 100 at completion
BATCH = 50  # requests in flight while setting up


def strategy(name: str) -> dict[str, Any]:
    return {
        "canary": {
            "stableService": f"{name}-stable",
            "canaryService": f"{name}-canary",
            "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": name}]}},
            "steps": STEPS,
            "scaleDownDelaySeconds": 0,
        }
    }


async def create(kube: Kube, res: Resource, namespace: str, body: dict[str, Any]) -> None:
    """Create; one already there (a retried create whose first answer was lost) is fine."""
    try:
        await kube.create(res, namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise


async def in_batches(jobs: list[Callable[[], Awaitable[Any]]], between: Callable[[], None]) -> None:
    """Run the jobs BATCH at a time; `between` after each batch (the emulator forgets its log)."""
    for start in range(0, len(jobs), BATCH):
        await asyncio.gather(*(job() for job in jobs[start : start + BATCH]))
        between()


def canary_weight(route: dict[str, Any], canary: str) -> int | None:
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            if ref.get("name") == canary:
                return int(ref.get("weight", 1))
    return None


def rss_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):.1f}/{p99:.1f}/{ordered[-1]:.1f}"


class Target:
    """Where the Rollouts live: the emulated cluster, or a real one."""

    counts: collections.Counter[str]
    writes: dict[str, list[str]]  # Rollout -> its writes in order (the kind written)
    kube: Kube
    namespace: str
    kubeconfig: Path  # the controller's
    cluster: EmulatedCluster | None = None
    plane: ControlPlane | None = None
    watched: WatchedKinds | None = None
    harvested: int = 0  # the emulator's request count at the last harvest
    kubelet: StandInKubelet | None = None
    hops: dict[str, list[float]] | None = None  # the first step's hops (bench/hops.py), real plane only

    def harvest(self) -> None:
        """Count the controller's requests served since the last harvest, then let the emulator
        forget them (its log is bounded: a count past it is refused, not short)."""
        if self.cluster is not None:
            requests = self.cluster.api.requests_since(self.harvested)
            self.harvested = self.cluster.api.request_count
            self.counts.update(counted(requests))
            for request in requests:
                owner = rollout_of(request)
                if owner is not None:
                    self.writes.setdefault(owner, []).append(request.resource.plural)
            self.cluster.api.forget_requests()

    async def snapshot(self, names: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Every Rollout's status and every route, by name."""
        if self.watched is not None:  # from watches: polling a real server would load it
            return self.watched.objects("rollouts"), self.watched.objects("httproutes")
        if self.cluster is not None:  # straight from the emulator's store: no requests counted
            rollouts, routes = {}, {}
            for (resource, namespace, name), obj in list(self.cluster.api.objects.items()):
                if namespace != self.namespace or obj.deleted or resource is None:
                    continue
                if resource.plural == "rollouts":
                    rollouts[name] = obj.raw
                elif resource.plural == "httproutes":
                    routes[name] = obj.raw
            return rollouts, routes
        items = await self.kube.list(ROLLOUTS, self.namespace)
        route_items = await self.kube.list(HTTPROUTES, self.namespace)
        return (
            {r["metadata"]["name"]: r for r in items},
            {r["metadata"]["name"]: r for r in route_items},
        )


class WatchedKinds:
    """The bench's view of a real cluster: one watch thread per kind keeps the namespace's
    objects, so sampling them every 50 ms costs the API server nothing."""

    def __init__(self, kubeconfig: str, namespace: str, kinds: dict[str, Resource]) -> None:
        self.api = load_api_client(kubeconfig)
        self.namespace = namespace
        self.kinds = kinds
        self.store: dict[str, dict[str, dict[str, Any]]] = {plural: {} for plural in kinds}
        # When each object was first seen, and each ReplicaSet first seen with a ready replica
        # (time.monotonic()), for bench/hops.py.
        self.first_seen: dict[str, dict[str, float]] = {plural: {} for plural in kinds}
        self.replicasets_ready: dict[str, float] = {}
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._watch, args=(p,), daemon=True) for p in kinds]

    def __enter__(self) -> WatchedKinds:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def objects(self, plural: str) -> dict[str, dict[str, Any]]:
        return dict(self.store[plural])

    def _watch(self, plural: str) -> None:
        res = self.kinds[plural]
        api = k8s_client.CustomObjectsApi(self.api)
        core = k8s_client.CoreV1Api(self.api)
        version: str | None = None
        while not self.stopping.is_set():
            stream = k8s_watch.Watch()
            if res.group:
                lister = functools.partial(
                    api.list_namespaced_custom_object, res.group, res.version, self.namespace, res.plural
                )
            else:
                lister = functools.partial(core.list_namespaced_pod, self.namespace)
            try:
                for event in stream.stream(lister, resource_version=version, timeout_seconds=2):
                    obj = event["object"]
                    meta = obj["metadata"]
                    version = meta["resourceVersion"]
                    if event["type"] == "DELETED":
                        self.store[plural].pop(meta["name"], None)
                    else:
                        self.store[plural][meta["name"]] = obj
                        now = time.monotonic()
                        self.first_seen[plural].setdefault(meta["name"], now)
                        if (
                            plural == "replicasets"
                            and ((obj.get("status") or {}).get("readyReplicas") or 0) > 0
                        ):
                            self.replicasets_ready.setdefault(meta["name"], now)
            except Exception:  # a cut watch or a 410: watch everything again
                version = None
                time.sleep(0.2)
            finally:
                stream.stop()


CONTROLLER_USER = "rollout-controller"


@contextlib.asynccontextmanager
async def target(workdir: Path, emulator: bool) -> AsyncIterator[Target]:
    found = Target()
    found.counts = collections.Counter()
    found.writes = {}
    config = os.environ.get("ROLLOUT_BENCH_KUBECONFIG")
    if config:
        found.kube = Kube(load_api_client(config))
        found.kubeconfig = Path(config)
        async with real_namespace(found, config):
            yield found
        return
    if not emulator:
        with ControlPlane.start(workdir, audit_users=(CONTROLLER_USER,)) as plane:
            install_crds(plane.kubeconfig, [*crd_files(), *routing_crds()])
            found.plane = plane
            found.kube = Kube(load_api_client(str(plane.kubeconfig)))
            # The controller is a user of its own (cluster-admin here), so the audit log holds
            # exactly its requests.
            await found.kube.create(CLUSTER_ROLE_BINDINGS, None, admin_binding(CONTROLLER_USER))
            found.kubeconfig = plane.user_kubeconfig(CONTROLLER_USER)
            async with real_namespace(found, str(plane.kubeconfig)):
                yield found
        return
    async with emulated_cluster(startup_seconds=0.2) as cluster:
        cluster.create_namespace("shop")
        for crd in routing_crds():
            cluster.api.install_crd(crd)
        # A client of its own with a long timeout: at N = 1,000 the emulator answers slowly.
        found.cluster, found.kube, found.namespace = (
            cluster,
            Kube(api_client_for(cluster.url), timeout=120),
            "shop",
        )
        found.kubeconfig = cluster.kubeconfig(workdir / "kubeconfig")
        yield found


@contextlib.asynccontextmanager
async def real_namespace(found: Target, admin: str) -> AsyncIterator[None]:
    """A namespace of the bench's own, the stand-in kubelet for its Pods, and the watches."""
    found.namespace = f"rollout-scale-{uuid.uuid4().hex[:6]}"
    await found.kube.create(
        NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": found.namespace}}
    )
    kinds = {"rollouts": ROLLOUTS, "httproutes": HTTPROUTES, "replicasets": REPLICASETS}
    try:
        with (
            StandInKubelet(admin, found.namespace) as kubelet,
            WatchedKinds(admin, found.namespace, kinds) as watched,
        ):
            found.watched, found.kubelet = watched, kubelet
            yield
    finally:
        found.watched, found.kubelet = None, None
        with contextlib.suppress(ApiException):
            await found.kube.delete(NAMESPACES, None, found.namespace)


def crd_files() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted((REPO / "crds").glob("*.yaml"))]


def admin_binding(user: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{user}-bench"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


def audited(
    plane: ControlPlane, since: float, until: float
) -> tuple[collections.Counter[str], dict[str, list[str]]]:
    """The controller's requests in [since, until] (wall-clock seconds) from the audit log: counts
    by `verb resource[/sub]` (reads as `get`, `list`, `watch`), and each Rollout's writes in order."""
    counts: collections.Counter[str] = collections.Counter()
    writes: dict[str, list[str]] = {}
    for event in plane.audit_events(CONTROLLER_USER, since, until):
        target = audit_target(event)  # reads too by resource: which kind missed a cache
        counts[target] += 1
        verb, resource = target.split(" ", 1)
        name = str((event.get("objectRef") or {}).get("name") or "")
        parts = name.split("-")  # app-N, app-N-stable, app-N-<revision>
        if verb not in ("get", "list", "watch") and resource != "events" and len(parts) >= 2:
            writes.setdefault("-".join(parts[:2]), []).append(resource.split("/")[0])
    return counts, writes


def controller_process(
    where: Target, workers: int, log: Path, extra: list[str] | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`rollout controller` on the bench's namespace; `extra` arguments and `env` (over this
    process's environment) for bench/shards.py's replicas."""
    args = [sys.executable, "-m", "rollout", "controller", "--kubeconfig", str(where.kubeconfig)]
    level = os.environ.get("ROLLOUT_BENCH_LOG_LEVEL", "WARNING")
    args += [
        "--namespace",
        where.namespace,
        "--workers",
        str(workers),
        "--log-level",
        level,
        "--http-port",
        "0",
        *(extra or []),
    ]
    environment = {**os.environ, **env} if env else None
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=environment)


def profile(pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the controller through the update, when ROLLOUT_BENCH_PROFILE names the
    file for its collapsed stacks (flame-graph input; `bench.profile` sums it by function)."""
    path = os.environ.get("ROLLOUT_BENCH_PROFILE")
    if not path:
        return None
    argv = ["py-spy", "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "--output", path]
    return subprocess.Popen([*argv, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rollout_of(request: Any) -> str | None:
    """The Rollout `app-N` a write of the controller was for (Events aside), else None."""
    if request.headers.get("User-Agent") != USER_AGENT or request.method.value == "GET":
        return None
    if request.resource is None or request.resource.plural == "events":
        return None
    name = request.name or ((request.data or {}).get("metadata") or {}).get("name") or ""
    parts = str(name).split("-")  # app-N, app-N-stable, app-N-<revision>
    return "-".join(parts[:2]) if len(parts) >= 2 else None


def per_step(writes: dict[str, list[str]]) -> str:
    """Mean writes per Rollout: up to and including the 20% route write (the update's set-up and
    step 1), after it up to and including the 60% one (a weight step), and the rest (completion),
    as `a/b/c`."""
    segments: list[list[int]] = [[], [], []]
    for sequence in writes.values():
        cuts = [i + 1 for i, kind in enumerate(sequence) if kind == "httproutes"][:2]
        if len(cuts) < 2:
            continue
        bounds = [0, *cuts, len(sequence)]
        for index in range(3):
            segments[index].append(bounds[index + 1] - bounds[index])
    return "/".join(f"{statistics.mean(s):.1f}" if s else "-" for s in segments)


def counted(requests: list[Any]) -> collections.Counter[str]:
    """The controller's requests by kind: `read` (a GET of one object, or a list that is not a
    cache's), `cache` (its caches' lists and watches), and writes as `METHOD plural[/sub]`."""
    counts: collections.Counter[str] = collections.Counter()
    for request in requests:
        if request.headers.get("User-Agent") != USER_AGENT:
            continue
        method = request.method.value
        if method == "GET":
            watching = request.params.get("watch") in ("true", "1")
            counts["cache" if watching or request.action == kmock.action.LIST else "read"] += 1
            continue
        plural = request.resource.plural if request.resource else "?"
        sub = f"/{request.subresource}" if request.subresource else ""
        counts[f"{method} {plural}{sub}"] += 1
    return counts


def track_rss(peaks: dict[int, float]) -> Callable[[], None]:
    """A sampler of peak RSS: `peaks` maps each process id to its largest RSS in MiB so far."""

    def sample() -> None:
        for pid in peaks:
            peaks[pid] = max(peaks[pid], rss_mib(pid))

    return sample


async def create_backends(where: Target, names: list[str]) -> None:
    """Each Rollout's stable and canary Services and its HTTPRoute."""
    ns = where.namespace
    jobs: list[Callable[[], Awaitable[Any]]] = []
    for name in names:
        for service in (f"{name}-stable", f"{name}-canary"):
            jobs.append(
                lambda s=service, a=name: create(where.kube, SERVICES, ns, service_manifest(s, ns, a))
            )
        jobs.append(
            lambda a=name: create(
                where.kube, HTTPROUTES, ns, http_route_manifest(a, ns, (f"{a}-stable", f"{a}-canary"))
            )
        )
    await in_batches(jobs, where.harvest)


async def create_rollouts(where: Target, names: list[str]) -> None:
    ns = where.namespace
    await in_batches(
        [
            lambda a=name: create(
                where.kube,
                ROLLOUTS,
                ns,
                rollout_manifest(a, ns, replicas=1, strategy=strategy(a)),
            )
            for name in names
        ],
        where.harvest,
    )


async def first_healthy(
    where: Target, names: list[str], began: float, timeout: float, sample: Callable[[], None]
) -> dict[str, str]:
    """Poll until every Rollout is Healthy (`sample` at each poll); each one's stable revision."""
    first_revision: dict[str, str] = {}
    while len(first_revision) < len(names):
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"only {len(first_revision)}/{len(names)} Healthy at first")
        rollouts, _ = await where.snapshot(names)
        for name, obj in rollouts.items():
            status = obj.get("status") or {}
            if status.get("phase") == "Healthy" and status.get("stableRevision"):
                first_revision[name] = status["stableRevision"]
        sample()
        where.harvest()
        await asyncio.sleep(0.1)
    return first_revision


async def update_wave(
    where: Target,
    names: list[str],
    first_revision: dict[str, str],
    timeout: float,
    sample: Callable[[], None],
) -> tuple[dict[str, float], dict[str, float], float]:
    """Give every Rollout the new image at once, then poll (`sample` at each poll) until all
    have completed: each one's first-step and completion latency from its own update, and when
    the first update was sent (time.monotonic())."""
    ns = where.namespace
    updated: dict[str, float] = {}
    existing = set(where.watched.first_seen["replicasets"]) if where.watched is not None else set()

    async def update(name: str) -> None:
        await where.kube.patch(ROLLOUTS, ns, name, image_patch("web:2", name))
        updated[name] = time.monotonic()

    await in_batches([lambda a=name: update(a) for name in names], where.harvest)
    first_step: dict[str, float] = {}
    routed: dict[str, float] = {}
    completed: dict[str, float] = {}
    while len(completed) < len(names):
        if time.monotonic() - min(updated.values()) > timeout:
            raise TimeoutError(f"only {len(completed)}/{len(names)} completed")
        rollouts, routes = await where.snapshot(names)
        now = time.monotonic()
        for name in names:
            if name not in first_step and canary_weight(routes.get(name, {}), f"{name}-canary") == 20:
                first_step[name] = now - updated[name]
                routed[name] = now
            status = (rollouts.get(name) or {}).get("status") or {}
            if (
                name not in completed
                and status.get("phase") == "Healthy"
                and status.get("stableRevision") not in (None, first_revision[name])
            ):
                completed[name] = now - updated[name]
        sample()
        where.harvest()
        await asyncio.sleep(0.05)
    if where.watched is not None and where.kubelet is not None:
        where.hops = first_step_hops(
            updated,
            routed,
            where.watched.first_seen["replicasets"],
            dict(where.watched.replicasets_ready),
            dict(where.kubelet.seen),
            dict(where.kubelet.ready),
            existing,
        )
    return first_step, completed, min(updated.values())


async def run(n: int, workers: int, timeout: float, emulator: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with target(workdir, emulator) as where:
            names = [f"app-{i}" for i in range(n)]
            await create_backends(where, names)
            log_dir = Path(os.environ.get("ROLLOUT_BENCH_LOGS") or workdir)
            controller = controller_process(where, workers, log_dir / f"controller-{n}.log")
            peaks = {controller.pid: 0.0}
            try:
                began = time.monotonic()
                await create_rollouts(where, names)
                first_revision = await first_healthy(where, names, began, timeout, track_rss(peaks))
                all_healthy = time.monotonic() - began
                where.harvest()
                where.counts.clear()  # from here on: the update
                cpu_before = cpu_seconds(controller.pid)
                where.writes.clear()
                server_pid = where.plane.pid_of("kube-apiserver") if where.plane is not None else None
                server_cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
                wall_began = time.time()
                profiler = profile(controller.pid)
                first_step, completed, first_sent = await update_wave(
                    where, names, first_revision, timeout, track_rss(peaks)
                )
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
                    profiler.wait(60)
                cpu = cpu_seconds(controller.pid) - cpu_before
                server_cpu = cpu_seconds(server_pid) - server_cpu_before if server_pid else None
                took = time.monotonic() - first_sent
                if where.plane is not None:
                    await asyncio.sleep(2.5)  # the audit log is written in batches, a second apart
                    where.counts, where.writes = audited(where.plane, wall_began, time.time() - 2.5)
                counts = where.counts
            finally:
                controller.kill()
                controller.wait(10)
    requests = where.cluster is not None or where.plane is not None
    reads = ("read", "cache", "get", "list", "watch")
    for key, value in list(counts.items()):  # the real server's reads, `verb resource`, by verb too
        verb = key.split(" ", 1)[0]
        if verb in ("get", "list", "watch") and " " in key:
            counts[verb] += value
    writes = sum(
        v
        for k, v in counts.items()
        if k.split(" ", 1)[0] not in reads and not k.startswith(("POST events", "create events"))
    )
    events = counts["POST events"] + counts["create events"]
    return {
        "N": n,
        "all Healthy s": round(all_healthy, 1),
        "step1 p50/99/max": percentiles(list(first_step.values())),
        "done p50/99/max": percentiles(list(completed.values())),
        "reads/Rollout": round((counts["read"] + counts["get"]) / n, 2) if requests else "n/a",
        "writes/update": round(writes / n, 2) if requests else "n/a",
        "writes/step": round(writes / (n * WEIGHT_STEPS), 2) if requests else "n/a",
        "to20/20-60/done": per_step(where.writes) if requests else "n/a",
        "events/Rollout": round(events / n, 1) if requests else "n/a",
        "RSS MiB": round(peaks[controller.pid]),
        "ctl CPU": f"{cpu:.0f}s/{took:.0f}s",
        "CPU/update ms": round(1000 * cpu / n),
        "server CPU s": round(server_cpu) if server_cpu is not None else "n/a",
        "_counts": counts,
        "_hops": where.hops,
    }


async def main(sizes: list[int], workers: int, timeout: float, emulator: bool) -> None:
    configure_logging("ERROR", json=False)
    rows = []
    for n in sizes:
        row = await run(n, workers, timeout, emulator)
        counts = row.pop("_counts")
        hops = row.pop("_hops")
        print(f"N={n}: controller requests during the update: {dict(sorted(counts.items()))}", flush=True)
        if hops:
            print(f"N={n}: where the first step's time went (bench/hops.py):")
            print_table(hop_rows(hops), width=25)
        rows.append(row)
    print()
    print_table(rows, width=16)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[200, 1000])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for each phase")
    parser.add_argument(
        "--emulator", action="store_true", help="kmock's emulated API server instead of the real one"
    )
    options = parser.parse_args()
    asyncio.run(main(options.sizes, options.workers, options.timeout, options.emulator))
