"""This project's controller and Argo Rollouts side by side, on one real API server, in one run.

For each N and each workload, each controller in turn gets a namespace of its own holding N canary
Rollouts (1 replica each; steps `setWeight 20`, `pause 2s`, `setWeight 60`), which it first brings
to Healthy; then all N are given a new image at once. Workloads: `istio` (each Rollout its own
VirtualService, the same object for both controllers, route `primary`) and `none` (the
replica-only canary, no router). The control plane is tests/cluster's (no nodes; the same
stand-in kubelet marks Pods Ready), and the controller runs as a user of its own whose requests
the API server's audit log counts. Each Rollout's latency is counted from its own update:

- first step: the VirtualService gives the canary 20 (istio), or the status is past step 0 on
  the new revision (none);
- completed: Healthy, the new revision stable, and (istio) the route back at 100/0.

Printed per N and workload, for each controller and as the ratio (this project / Argo Rollouts):
first-step and completion p50/p99, controller CPU per update, API requests per update by verb
(Events apart), and peak RSS; and for each controller its first step cut into hops (the
controller, the controller-manager and the stand-in kubelet in turn: bench/hops.py). Argo
Rollouts runs with its client raised to 1,000 QPS (burst 2,000) and 64 Rollout workers, as this
project's controller has no client-side limit and 64 workers: at its defaults (40 QPS, 10
workers) it would queue on its own limiter.

    python -m bench.side_by_side                  # N = 200 and 1,000, both workloads
    python -m bench.side_by_side 100 --workloads istio
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from bench.common import print_table
from bench.hops import first_step_hops, hop_rows
from bench.peers import argo
from bench.scale import (
    CONTROLLER_USER,
    STEPS,
    WatchedKinds,
    admin_binding,
    cpu_seconds,
    crd_files,
    create,
    in_batches,
    rss_mib,
)
from rollout.kube import (
    CLUSTER_ROLE_BINDINGS,
    NAMESPACES,
    REPLICASETS,
    SERVICES,
    Kube,
    Resource,
    load_api_client,
)
from rollout.observability.logging import configure_logging
from tests.cluster.kubelet import StandInKubelet
from tests.cluster.launcher import ControlPlane, install_crds
from tests.manifests import image_patch, rollout_manifest, service_manifest
from tests.thirdparty import routing_crds

VIRTUAL_SERVICES = Resource("networking.istio.io", "v1", "virtualservices", "VirtualService")
OUR_ROLLOUTS = Resource("rollout.dev", "v1alpha1", "rollouts", "Rollout")
ARGO_ROLLOUTS = Resource(argo.ROLLOUTS.group, argo.ROLLOUTS.version, argo.ROLLOUTS.plural, "Rollout")
WORKERS = 64


def our_manifests(name: str, namespace: str, router: str) -> list[tuple[Resource, dict[str, Any]]]:
    canary: dict[str, Any] = {
        "stableService": f"{name}-stable",
        "canaryService": f"{name}-canary",
        "steps": STEPS,
        "scaleDownDelaySeconds": 0,
    }
    objects: list[tuple[Resource, dict[str, Any]]] = [
        (SERVICES, service_manifest(f"{name}-{role}", namespace, name)) for role in ("stable", "canary")
    ]
    if router == "istio":
        canary["trafficRouting"] = {"istio": {"virtualService": {"name": name, "routes": [argo.ROUTE]}}}
        objects.append((VIRTUAL_SERVICES, argo.virtual_service(name, namespace)))
    rollout = rollout_manifest(name, namespace, replicas=1, strategy={"canary": canary})
    return [*objects, (OUR_ROLLOUTS, rollout)]


def peer_manifests(name: str, namespace: str, router: str) -> list[tuple[Resource, dict[str, Any]]]:
    kinds = {"Service": SERVICES, "VirtualService": VIRTUAL_SERVICES, "Rollout": ARGO_ROLLOUTS}
    return [(kinds[obj["kind"]], obj) for obj in argo.manifests(name, namespace, router)]  # type: ignore[arg-type]


class Controller:
    """How the bench drives one controller: its objects, its process, and how to read progress."""

    name: str
    rollouts: Resource
    user: str

    def objects(self, name: str, namespace: str, router: str) -> list[tuple[Resource, dict[str, Any]]]:
        raise NotImplementedError

    def start(self, plane: ControlPlane, namespace: str, log: Path) -> subprocess.Popen[bytes]:
        raise NotImplementedError

    def stable(self, obj: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def healthy(self, obj: dict[str, Any]) -> bool:
        raise NotImplementedError

    def past_first_step(self, obj: dict[str, Any], before: str) -> bool:
        raise NotImplementedError

    def settled(self, obj: dict[str, Any]) -> bool:
        """Nothing left for the controller to do before it may stop (a finalizer to release)."""
        return True


class Ours(Controller):
    name, rollouts, user = "rollout", OUR_ROLLOUTS, CONTROLLER_USER

    def objects(self, name: str, namespace: str, router: str) -> list[tuple[Resource, dict[str, Any]]]:
        return our_manifests(name, namespace, router)

    def start(self, plane: ControlPlane, namespace: str, log: Path) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "rollout", "controller", "--kubeconfig"]
        argv += [str(plane.user_kubeconfig(CONTROLLER_USER)), "--namespace", namespace]
        argv += ["--workers", str(WORKERS), "--log-level", "WARNING", "--http-port", "0"]
        return subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT)

    def stable(self, obj: dict[str, Any]) -> str | None:
        return (obj.get("status") or {}).get("stableRevision")

    def healthy(self, obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        generation = (obj.get("metadata") or {}).get("generation")
        return (
            status.get("phase") == "Healthy"
            and status.get("observedGeneration") == generation
            and bool(status.get("stableRevision"))
            and status.get("stableRevision") == status.get("currentRevision")
        )

    def past_first_step(self, obj: dict[str, Any], before: str) -> bool:
        status = obj.get("status") or {}
        return (
            status.get("currentRevision") not in (None, before) and (status.get("currentStepIndex") or 0) >= 1
        )


class Peer(Controller):
    name, rollouts, user = "argo-rollouts", ARGO_ROLLOUTS, argo.AUDIT_USER

    def objects(self, name: str, namespace: str, router: str) -> list[tuple[Resource, dict[str, Any]]]:
        return peer_manifests(name, namespace, router)

    def start(self, plane: ControlPlane, namespace: str, log: Path) -> subprocess.Popen[bytes]:
        config = argo.controller_kubeconfig(plane.kubeconfig, log.with_suffix(".kubeconfig"), namespace)
        return argo.start_controller(config, namespace, log, qps=1000, burst=2000, threads=WORKERS)

    def stable(self, obj: dict[str, Any]) -> str | None:
        return argo.stable_revision(obj)

    def healthy(self, obj: dict[str, Any]) -> bool:
        return argo.completed(obj)

    def past_first_step(self, obj: dict[str, Any], before: str) -> bool:
        return argo.first_step_done(obj, before)


def audited(plane: ControlPlane, user: str, since: float, until: float) -> collections.Counter[str]:
    """The user's requests in [since, until] (wall clock) by verb; Events counted apart."""
    counts: collections.Counter[str] = collections.Counter()
    for event in plane.audit_events(user, since, until):
        resource = (event.get("objectRef") or {}).get("resource")
        counts["events" if resource == "events" else event["verb"]] += 1
    return counts


def quantiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99, ordered[-1]


async def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def run_one(
    plane: ControlPlane, kube: Kube, who: Controller, router: str, n: int, workdir: Path, timeout: float
) -> dict[str, Any]:
    namespace = f"bench-{who.name}-{router}-{uuid.uuid4().hex[:5]}"
    await kube.create(
        NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    admin = str(plane.kubeconfig)
    names = [f"app-{i}" for i in range(n)]
    kinds = {"rollouts": who.rollouts, "virtualservices": VIRTUAL_SERVICES, "replicasets": REPLICASETS}
    try:
        with StandInKubelet(admin, namespace) as kubelet, WatchedKinds(admin, namespace, kinds) as watched:
            jobs = [
                (lambda r=res, o=obj: create(kube, r, namespace, o))
                for name in names
                for res, obj in who.objects(name, namespace, router)
                if res != who.rollouts
            ]
            await in_batches(jobs, lambda: None)
            controller = who.start(plane, namespace, workdir / f"{who.name}-{router}-{n}.log")
            try:
                rollouts = [obj for name in names for res, obj in who.objects(name, namespace, router)
                            if res == who.rollouts]  # fmt: skip
                await in_batches(
                    [(lambda o=o: create(kube, who.rollouts, namespace, o)) for o in rollouts], lambda: None
                )

                def all_healthy() -> bool:
                    objs = watched.objects("rollouts")
                    return len(objs) == n and all(who.healthy(o) for o in objs.values())

                await wait_until(f"{who.name}: {n} Healthy at first", all_healthy, timeout)
                before = {name: str(who.stable(obj)) for name, obj in watched.objects("rollouts").items()}
                existing = set(watched.first_seen["replicasets"])
                peak = rss_mib(controller.pid)
                cpu_before = cpu_seconds(controller.pid)
                wall_began = time.time()
                updated: dict[str, float] = {}

                async def update(name: str) -> None:
                    await kube.patch(who.rollouts, namespace, name, image_patch("web:2", name))
                    updated[name] = time.monotonic()

                await in_batches([(lambda a=name: update(a)) for name in names], lambda: None)
                first: dict[str, float] = {}
                routed: dict[str, float] = {}  # when the first step was seen (time.monotonic())
                done: dict[str, float] = {}
                while len(done) < n:
                    if time.monotonic() - min(updated.values()) > timeout:
                        raise TimeoutError(f"{who.name}: only {len(done)}/{n} completed")
                    now = time.monotonic()
                    objs, routes = watched.objects("rollouts"), watched.objects("virtualservices")
                    for name in names:
                        obj, route = objs.get(name) or {}, routes.get(name) or {}
                        if name not in first and (
                            argo.canary_weight(route, f"{name}-canary") == argo.FIRST_WEIGHT
                            if router == "istio"
                            else who.past_first_step(obj, before[name])
                        ):
                            first[name] = now - updated[name]
                            routed[name] = now
                        if (
                            name not in done
                            and who.healthy(obj)
                            and who.stable(obj) != before[name]
                            and (router != "istio" or argo.at_rest(route, name))
                        ):
                            done[name] = now - updated[name]
                            first.setdefault(name, done[name])  # a step passed between two samples
                    peak = max(peak, rss_mib(controller.pid))
                    await asyncio.sleep(0.05)
                cpu = cpu_seconds(controller.pid) - cpu_before
                until = time.time()
                hops = first_step_hops(
                    updated,
                    routed,
                    watched.first_seen["replicasets"],
                    dict(watched.replicasets_ready),
                    dict(kubelet.seen),
                    dict(kubelet.ready),
                    existing,
                )

                def settled() -> bool:
                    return all(who.settled(o) for o in watched.objects("rollouts").values())

                await wait_until(f"{who.name}: finalizers released", settled, 120)
            finally:
                if who.name == "argo-rollouts":
                    argo.stop_controller(controller)
                else:
                    controller.kill()
                    controller.wait(10)
        await asyncio.sleep(2.5)  # the audit log is written in batches, a second apart
        counts = audited(plane, who.user, wall_began, until)
    finally:
        with contextlib.suppress(ApiException):
            await kube.delete(NAMESPACES, None, namespace)
    first_q, done_q = quantiles(list(first.values())), quantiles(list(done.values()))
    return {
        "step1 p50": first_q[0],
        "step1 p99": first_q[1],
        "done p50": done_q[0],
        "done p99": done_q[1],
        "CPU ms/update": 1000 * cpu / n,
        "writes/update": sum(v for k, v in counts.items() if k in ("create", "update", "patch", "delete"))
        / n,
        "reads/update": sum(v for k, v in counts.items() if k in ("get", "list", "watch")) / n,
        "events/update": counts["events"] / n,
        "by verb": {k: round(v / n, 2) for k, v in sorted(counts.items())},
        "RSS MiB": peak,
        "_hops": hops,
    }


async def gone(kube: Kube, timeout: float = 600) -> None:
    """Waits until the bench namespaces of earlier runs are deleted, so that their garbage
    collection does not share the machine with the next run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [ns for ns in await kube.list(NAMESPACES, None) if ns["metadata"]["name"].startswith("bench-")]
        if not left:
            return
        await asyncio.sleep(2)


async def main(sizes: list[int], workloads: list[str], timeout: float) -> None:
    configure_logging("ERROR", json=False)
    argo.build()
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as tmp:
        workdir = Path(tmp)
        with ControlPlane.start(workdir, audit_users=(CONTROLLER_USER, argo.AUDIT_USER)) as plane:
            install_crds(plane.kubeconfig, [*crd_files(), *routing_crds(), *argo.crds()])
            kube = Kube(load_api_client(str(plane.kubeconfig)))
            await kube.create(CLUSTER_ROLE_BINDINGS, None, admin_binding(CONTROLLER_USER))
            rows = []
            for n in sizes:
                for router in workloads:
                    results = {}
                    for who in (Ours(), Peer()):
                        await gone(kube)
                        results[who.name] = await run_one(plane, kube, who, router, n, workdir, timeout)
                        hops = results[who.name].pop("_hops")
                        print(f"N={n} {router} {who.name}: {results[who.name]}", flush=True)
                        if any(hops.values()):
                            print(f"N={n} {router} {who.name}: where the first step's time went:")
                            print_table(hop_rows(hops), width=25)
                    ours, peer = results["rollout"], results["argo-rollouts"]
                    for metric in ("step1 p50", "step1 p99", "done p50", "done p99", "CPU ms/update",
                                   "writes/update", "reads/update", "events/update", "RSS MiB"):  # fmt: skip
                        rows.append(
                            {
                                "N": n,
                                "workload": router,
                                "metric": metric,
                                "rollout": round(ours[metric], 2),
                                "argo": round(peer[metric], 2),
                                "ratio": round(ours[metric] / peer[metric], 2) if peer[metric] else "-",
                            }
                        )
    print()
    print_table(rows, width=14)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[200, 1000])
    parser.add_argument("--workloads", nargs="+", default=["istio", "none"], choices=["istio", "none"])
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for each phase")
    options = parser.parse_args()
    asyncio.run(main(options.sizes, options.workloads, options.timeout))
