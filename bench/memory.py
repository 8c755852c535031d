"""The controller's memory beside objects no Rollout references: does it grow with the cluster?

One real control plane (tests/cluster, started as bench/scale.py starts it: no nodes, a stand-in
kubelet marks the Rollouts' Pods Ready, the controller a user of its own bound to cluster-admin)
is filled scenario after scenario, cumulatively (one control plane: creating each set once is
what keeps a full run near 10 minutes). Each scenario starts a fresh `rollout controller` process,
cluster-wide (no --namespace: a namespaced controller would not see the unrelated objects at
all), and measures its RSS:

1. baseline: nothing but what a new cluster holds;
2. + 500 Secrets of 200 KiB shaped like Helm release records (type helm.sh/release.v1, labels
   owner=helm, name, status=deployed, version=1; data `release`, 200 KiB of base64 of random
   bytes), in a namespace of their own;
3. + 5,000 Services (ClusterIP, selector app=x, one port) over 10 unrelated namespaces;
4. + 1,000 Deployments of 5 replicas (pause image, two labels, three env vars) in those
   namespaces. The bench waits until the controller-manager has created their ReplicaSets and
   5,000 Pods (Pending: no nodes); the controller caches only its own ReplicaSets and no Pods;
5. + 1,000 canary Rollouts of 1 replica (bench/scale.py's: their own stable and canary Services
   and HTTPRoute, `+3000` in the table) in the Rollouts' namespace. A controller started before
   them brings them to Healthy and is measured then (`5 Rollouts (drv)`: caches plus whatever
   the work left behind); then a fresh one (`5 Rollouts`).

RSS is VmRSS from /proc, sampled every second from the moment the controller is ready (/readyz:
every cache listed): the value printed is the last sample once 11 samples in a row (10 s) lie
within max(1 MiB, 1%) of one another, or the last one after 60 s (`settled s` then says `no`).
`list s` is the time from starting the process to ready, Python's start-up included; `create s`
is the bench's creating the scenario's objects (for Deployments, until the controller-manager's
Pods exist). `server MiB` is the API server's RSS at the same moment.

    python -m bench.memory                     # every scenario, full counts (8 minutes on 2 cores)
    python -m bench.memory --scale 0.1         # a tenth of every count (Secrets stay 200 KiB)
    python -m bench.memory --secrets-only      # scenarios 1 and 2

ROLLOUT_BENCH_LOGS=DIR keeps the controllers' logs there (ROLLOUT_BENCH_LOG_LEVEL, WARNING by
default); with ROLLOUT_BENCH_KUBECONFIG, on that cluster (whose own objects count too).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from bench.common import print_table
from bench.scale import HTTPROUTES, REPO, Target, crd_files, create, in_batches, rss_mib, strategy, target
from rollout.kube import DEPLOYMENTS, NAMESPACES, ROLLOUTS, SECRETS, SERVICES, Resource
from rollout.observability.logging import configure_logging
from tests.cluster.launcher import http_ok, tail
from tests.manifests import deployment_manifest, http_route_manifest, rollout_manifest, service_manifest
from tests.processes import ControllerProcesses
from tests.thirdparty import routing_crds

COUNTS = {"secrets": 500, "services": 5000, "deployments": 1000, "rollouts": 1000}
SECRET_BYTES = 200 * 1024  # the base64 text of `release`, as the Secret carries it
REPLICAS = 5  # of each Deployment
HELM_NAMESPACE = "helm-releases"
UNRELATED = [f"unrelated-{i}" for i in range(10)]
PAUSE = "registry.k8s.io/pause:3.10"
WINDOW = 11  # samples a second apart: 10 s
SETTLE_CAP = 60.0
READY_CAP = 90.0  # the controller waits 60 s for its caches; after that it is never ready

# What to create: kind, namespace, and the manifest's builder (called only when its turn comes,
# so that 100 MiB of Secrets never sit in the bench's memory at once).
Objects = list[tuple[Resource, str | None, Callable[[], dict[str, Any]]]]


def helm_secret(index: int) -> dict[str, Any]:
    """A Helm release record (Helm's `release` is base64 of gzipped JSON: as incompressible)."""
    release = f"app-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v1",
            "namespace": HELM_NAMESPACE,
            "labels": {"owner": "helm", "name": release, "status": "deployed", "version": "1"},
        },
        "data": {"release": base64.b64encode(os.urandom(SECRET_BYTES * 3 // 4)).decode()},
    }


def deployment(index: int) -> dict[str, Any]:
    name = f"dep-{index}"
    manifest = deployment_manifest(name, unrelated(index), replicas=REPLICAS, image=PAUSE)
    template = manifest["spec"]["template"]
    template["metadata"]["labels"]["tier"] = "backend"
    template["spec"]["containers"][0].update(
        env=[
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "REGION", "value": "eu-west-1"},
            {"name": "SERVICE_NAME", "value": name},
        ],
        ports=[{"name": "http", "containerPort": 8080}],
        resources={"requests": {"cpu": "10m", "memory": "16Mi"}},
    )
    return manifest


def unrelated(index: int) -> str:
    return UNRELATED[index % len(UNRELATED)]


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


async def create_all(where: Target, objects: Objects) -> float:
    """Create the objects, BATCH at a time (bench/scale.py's); the seconds it took."""
    began = time.monotonic()
    jobs = [lambda r=res, n=ns, b=build: create(where.kube, r, n, b()) for res, ns, build in objects]
    await in_batches(jobs, where.harvest)
    return time.monotonic() - began


async def until(probe: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll every 2 s until `probe` says yes; the seconds it took."""
    began = time.monotonic()
    while not await probe():
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{what}: not after {timeout:.0f} s")
        await asyncio.sleep(2)
    return time.monotonic() - began


async def crds_served(where: Target, timeout: float = 60) -> None:
    """Until every installed CRD's versions are served from the API server's watch cache: a
    controller started earlier meets 429s ("storage is (re)initializing") on its first watches,
    and one whose first listing is not complete by then never reports ready."""
    for crd in [*crd_files(), *routing_crds()]:
        spec = crd["spec"]
        for version in (v["name"] for v in spec["versions"] if v.get("served")):
            path = Resource(spec["group"], version, spec["names"]["plural"]).path()

            async def served(path: str = path) -> bool:
                with contextlib.suppress(ApiException):
                    await where.kube.request("GET", path, query={"resourceVersion": "0", "limit": "1"})
                    return True
                return False

            await until(served, timeout, f"{path} served")


class Controller:
    """A fresh cluster-wide controller process, with a health port for /readyz."""

    def __init__(self, where: Target, logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        level = os.environ.get("ROLLOUT_BENCH_LOG_LEVEL", "WARNING")
        args = ["controller", "--log-level", level, "--log-format", "console"]
        self.processes = ControllerProcesses(str(where.kubeconfig), "", logs, args=args)
        self.started = time.monotonic()
        self.ready_after: float | None = None
        self.process = self.processes.start()
        self.port = self.processes.ports[-1]

    def check(self) -> None:
        if self.process.poll() is not None:
            log = self.processes.logs / "controller-0.log"
            raise RuntimeError(f"the controller exited with {self.process.returncode}:\n{tail(log)}")

    async def listed(self) -> float | None:
        """Seconds from the start to /readyz first answering 200; None if not within READY_CAP."""
        while self.ready_after is None and time.monotonic() - self.started < READY_CAP:
            self.check()
            if await asyncio.to_thread(http_ok, f"http://127.0.0.1:{self.port}/readyz"):
                self.ready_after = time.monotonic() - self.started
                break
            await asyncio.sleep(0.2)
        return self.ready_after

    async def steady_rss(self) -> tuple[float, float | None]:
        """The settled RSS in MiB, and the seconds it took to settle (None: it did not)."""
        began = time.monotonic()
        samples: list[float] = []
        while True:
            self.check()
            samples.append(rss_mib(self.process.pid))
            last = samples[-WINDOW:]
            if len(last) == WINDOW and max(last) - min(last) <= max(1.0, 0.01 * max(last)):
                return last[-1], time.monotonic() - began
            if time.monotonic() - began > SETTLE_CAP:
                return last[-1], None
            await asyncio.sleep(1)

    def stop(self) -> None:
        self.processes.stop_all()


class Bench:
    """The scenarios, in order, on one cluster; a row of the table each."""

    def __init__(self, where: Target, logs: Path, counts: dict[str, int], timeout: float) -> None:
        self.where = where
        self.logs = logs
        self.counts = counts
        self.timeout = timeout
        self.rows: list[dict[str, Any]] = []
        self.baseline: float | None = None

    async def measure(self, scenario: str, added: str, created: float | None, ctl: Controller) -> None:
        listed = await ctl.listed()
        rss, settled = await ctl.steady_rss()
        if self.baseline is None:
            self.baseline = rss
        plane = self.where.plane
        row = {
            "scenario": scenario,
            "objects added": added,
            "create s": round(created, 1) if created is not None else "-",
            "list s": round(listed, 1) if listed is not None else "not ready",
            "ctl RSS MiB": round(rss, 1),
            "delta MiB": round(rss - self.baseline, 1),
            "settled s": round(settled) if settled is not None else "no",
            "server MiB": round(rss_mib(plane.pid_of("kube-apiserver"))) if plane else "n/a",
        }
        self.rows.append(row)
        print(" | ".join(f"{k}: {v}" for k, v in row.items()), flush=True)

    async def fresh(self, scenario: str, added: str, created: float | None) -> None:
        ctl = Controller(self.where, self.logs / scenario.replace(" ", "-"))
        try:
            await self.measure(scenario, added, created, ctl)
        finally:
            ctl.stop()

    async def secrets(self) -> None:
        n = self.counts["secrets"]
        names = [HELM_NAMESPACE, *UNRELATED]
        await create_all(self.where, [(NAMESPACES, None, lambda a=a: namespace(a)) for a in names])
        took = await create_all(
            self.where, [(SECRETS, HELM_NAMESPACE, lambda i=i: helm_secret(i)) for i in range(n)]
        )
        await self.fresh("2 Helm Secrets", f"{n} ({n * SECRET_BYTES / 2**20:.0f} MiB)", took)

    async def services(self) -> None:
        n = self.counts["services"]
        objects: Objects = [
            (SERVICES, unrelated(i), lambda i=i: service_manifest(f"svc-{i}", unrelated(i), "x"))
            for i in range(n)
        ]
        await self.fresh("3 Services", str(n), await create_all(self.where, objects))

    async def deployments(self) -> None:
        n = self.counts["deployments"]
        took = await create_all(
            self.where, [(DEPLOYMENTS, unrelated(i), lambda i=i: deployment(i)) for i in range(n)]
        )

        async def pods_created() -> bool:
            items = await self.where.kube.list(DEPLOYMENTS, None)
            return sum((d.get("status") or {}).get("replicas") or 0 for d in items) >= REPLICAS * n

        waited = await until(pods_created, self.timeout, f"the controller-manager's {REPLICAS * n} Pods")
        print(f"Deployments created in {took:.0f} s, then their Pods in {waited:.0f} s", flush=True)
        await self.fresh("4 Deployments", f"{n} (+{REPLICAS * n} Po)", took + waited)

    async def rollouts(self) -> None:
        where, ns, n = self.where, self.where.namespace, self.counts["rollouts"]
        names = [f"app-{i}" for i in range(n)]
        objects: Objects = []
        for name in names:
            backends = (f"{name}-stable", f"{name}-canary")
            objects += [(SERVICES, ns, lambda s=s, a=name: service_manifest(s, ns, a)) for s in backends]
            objects.append((HTTPROUTES, ns, lambda a=name, b=backends: http_route_manifest(a, ns, b)))
        took = await create_all(where, objects)
        added = f"{n} (+{3 * n})"
        ctl = Controller(where, self.logs / "5-Rollouts-drv")
        try:
            await ctl.listed()
            began = time.monotonic()
            objects = [
                (ROLLOUTS, ns, lambda a=name: rollout_manifest(a, ns, replicas=1, strategy=strategy(a)))
                for name in names
            ]
            took += await create_all(where, objects)

            watched = where.watched
            assert watched is not None

            async def all_healthy() -> bool:
                ctl.check()
                statuses = [(r.get("status") or {}) for r in watched.objects("rollouts").values()]
                return (
                    sum(s.get("phase") == "Healthy" and bool(s.get("stableRevision")) for s in statuses) >= n
                )

            await until(all_healthy, self.timeout, f"{n} Rollouts Healthy")
            print(f"{n} Rollouts Healthy {time.monotonic() - began:.0f} s after the first create", flush=True)
            await self.measure("5 Rollouts (drv)", added, took, ctl)
        finally:
            ctl.stop()
        await self.fresh("5 Rollouts", added, None)


def code_version() -> str:
    """The commit the controller runs from, and whether rollout/ differs from it (read-only git)."""
    git = ["git", "--no-optional-locks", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "rollout"], capture_output=True, text=True, check=False
    )
    changes = " + uncommitted changes in rollout/" if dirty.stdout.strip() else ""
    return f"{head.stdout.strip() or 'unknown'}{changes}"


async def main(scale: float, secrets_only: bool, timeout: float) -> None:
    configure_logging("ERROR", json=False)
    counts = {kind: max(1, round(count * scale)) for kind, count in COUNTS.items()}
    print(f"controller code: {code_version()}; counts: {counts}", flush=True)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        logs = Path(os.environ.get("ROLLOUT_BENCH_LOGS") or workdir / "logs")
        async with target(workdir, emulator=False) as where:
            await crds_served(where)
            bench = Bench(where, logs, counts, timeout)
            await bench.fresh("1 baseline", "0", None)
            await bench.secrets()
            if not secrets_only:
                await bench.services()
                await bench.deployments()
                await bench.rollouts()
    print()
    print_table(bench.rows, width=16)
    print(f"\nwhole run: {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every count (not the Secrets' size)"
    )
    parser.add_argument("--secrets-only", action="store_true", help="the baseline and the Secrets only")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the Pods, and for Healthy")
    options = parser.parse_args()
    asyncio.run(main(options.scale, options.secrets_only, options.timeout))
