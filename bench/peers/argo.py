"""Argo Rollouts, the peer of the side-by-side benches: its controller built from its Go module,
started against a real control plane (tests/cluster) as a ServiceAccount of its own, and the bench
workload written in its API (argoproj.io/v1alpha1).

It sits beside bench/scale.py, which runs the same workload under this project's controller. Nothing
of Argo Rollouts is copied here: bench/peers/argo-rollouts/ is a wrapper Go module that requires
github.com/argoproj/argo-rollouts, repeats its `replace` lines (they apply only in a main module,
which is why `go install` refuses it) and names its controller's main package as a `tool`; build()
compiles that package, cached under ~/.cache keyed on the wrapper's go.mod and go.sum. Its CRDs
come from the same module's manifests/crds/ in the Go module cache.

    binary = build()
    with ControlPlane.start(workdir, audit_users=(AUDIT_USER,)) as plane:
        install_crds(plane.kubeconfig, [*crds(), *routing_crds()])
        config = controller_kubeconfig(plane.kubeconfig, workdir / "kubeconfig-argo", namespace)
        controller = start_controller(config, namespace, workdir / "argo.log")   # healthy on return
        for obj in manifests("app-0", namespace, router="istio"): ...create it...
        ...patch tests.manifests.image_patch("web:2", "app-0") into the Rollout...
        canary_weight(vs, "app-0-canary") == FIRST_WEIGHT       # the first step, on the route
        completed(rollout) and stable_revision(rollout) != before  # done, on the new revision

What a fair comparison must know of the peer (seen in the smoke, and in its source):
- a `pause: {duration: 2s}` is counted from a start time Argo stores in status, which keeps whole
  seconds only: the pause lasts between 1 and 2 s, so completion differs by up to 1 s for that alone;
- at completion its route passes through canary weight 100 (to 0 once the stable Service follows),
  and it reports Healthy about a tenth of a second before the route is back at 100/0;
- its API client is held to 40 requests a second (burst 80) and 10 Rollout workers unless told
  otherwise (start_controller's qps, burst, threads);
- it writes about a dozen Events per Rollout and wave (bench/scale.py leaves Events out of writes);
- at loglevel warn it logs one harmless line per ReplicaSet it creates (its request-metrics wrapper
  cannot read a protobuf body).

`python -m bench.peers.argo` is the smoke: N Rollouts per workload through one image update on a
control plane of its own, checked step by step (no benchmark numbers).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config import new_client_from_config

from tests.cluster.launcher import (
    ControlPlane,
    audit_target,
    die_with_parent,
    free_port,
    http_ok,
    install_crds,
    tail,
)
from tests.manifests import image_patch, rollout_manifest, service_manifest

MODULE = Path(__file__).resolve().parent / "argo-rollouts"
PACKAGE = "github.com/argoproj/argo-rollouts"
COMMAND = f"{PACKAGE}/cmd/rollouts-controller"
BINARY = "rollouts-controller"
CACHE = Path(os.environ.get("ROLLOUT_PEER_CACHE", Path.home() / ".cache" / "rollout-peers")) / "argo-rollouts"

# Who the controller is: a ServiceAccount of its own namespace, bound to cluster-admin, so that the
# API server's audit log (ControlPlane.start(audit_users=(AUDIT_USER, ...))) holds exactly its requests.
PEER_NAMESPACE = "argo-rollouts"
SERVICE_ACCOUNT = "argo-rollouts"
AUDIT_USER = f"system:serviceaccount:{PEER_NAMESPACE}:{SERVICE_ACCOUNT}"

ISTIO_VERSION = "v1"  # the VirtualServices below are written as networking.istio.io/v1
ROUTE = "primary"  # the VirtualService's http route the Rollout manages
STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "2s"}}, {"setWeight": 60}]
FIRST_WEIGHT = 20

Router = Literal["istio", "none"]


class Kind(NamedTuple):
    """A resource as the API server serves it (the fields of rollout.kube.Resource)."""

    group: str
    version: str
    plural: str


ROLLOUTS = Kind("argoproj.io", "v1alpha1", "rollouts")
VIRTUAL_SERVICES = Kind("networking.istio.io", ISTIO_VERSION, "virtualservices")
SERVICES = Kind("", "v1", "services")


class PeerError(RuntimeError):
    """The peer could not be built or started; says what failed, with the tail of its log."""


# --- build -------------------------------------------------------------------------------------


def version() -> str:
    """The Argo Rollouts release the wrapper module requires."""
    for line in (MODULE / "go.mod").read_text().splitlines():
        words = line.split()
        if words[:1] == [PACKAGE] or words[:2] == ["require", PACKAGE]:
            return words[words.index(PACKAGE) + 1]
    raise PeerError(f"{MODULE / 'go.mod'} does not require {PACKAGE}")


def link_flags() -> str:
    """Strip the binary and stamp the release into it (without this it reports v99.99.99)."""
    stamp = f"-X {PACKAGE}/utils/version"
    return f"-s -w {stamp}.version={version().lstrip('v')} {stamp}.gitTreeState=clean"


def build_key() -> str:
    digest = hashlib.sha256()
    for path in (MODULE / "go.mod", MODULE / "go.sum"):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(link_flags().encode())
    return digest.hexdigest()[:16]


def go_env() -> dict[str, str]:
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}


def build(log: Path | None = None) -> Path:
    """The controller binary, built once per build key (under a lock, so two benches never build
    at once); the Go module cache and build cache make a rebuild after a key change quick."""
    import fcntl

    target = CACHE / build_key()
    binary = target / BINARY
    if binary.exists():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        staging = CACHE / f"{target.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        out = log or CACHE / "build.log"
        argv = ["go", "build", "-trimpath", f"-ldflags={link_flags()}", "-o", str(staging / BINARY), COMMAND]
        with out.open("w") as sink:
            done = subprocess.run(
                argv, cwd=MODULE, stdout=sink, stderr=subprocess.STDOUT, env=go_env(), check=False
            )
        if done.returncode != 0:
            raise PeerError(
                f"building Argo Rollouts failed ({' '.join(argv)}, exit {done.returncode}):\n{tail(out)}"
            )
        staging.rename(target)
    return binary


def module_dir() -> Path:
    """Where the Go module cache holds the required release's source (downloaded if missing)."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", PACKAGE],
        cwd=MODULE,
        capture_output=True,
        text=True,
        env=go_env(),
        check=False,
    )
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Dir" not in info:
        raise PeerError(f"go mod download {PACKAGE} failed: {info.get('Error') or done.stderr.strip()}")
    return Path(info["Dir"])


def crds() -> list[dict[str, Any]]:
    """Rollout, AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate and Experiment, as the
    release ships them (manifests/crds/ of the module)."""
    found = sorted((module_dir() / "manifests" / "crds").glob("*-crd.yaml"))
    if not found:
        raise PeerError(f"no CRDs in {module_dir() / 'manifests' / 'crds'}")
    return [yaml.safe_load(path.read_text()) for path in found]


# --- identity and process ----------------------------------------------------------------------


def _created(call: Any, *args: Any) -> None:
    """Create; one already there is fine."""
    try:
        call(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise


def controller_kubeconfig(admin: Path | str, path: Path, namespace: str, hours: int = 24) -> Path:
    """A kubeconfig for the controller: its ServiceAccount (created, bound to cluster-admin) with a
    TokenRequest token, and `namespace` as the context's namespace (what --namespaced watches)."""
    api = new_client_from_config(str(admin))
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    _created(core.create_namespace, {"metadata": {"name": PEER_NAMESPACE}})
    _created(core.create_namespaced_service_account, PEER_NAMESPACE, {"metadata": {"name": SERVICE_ACCOUNT}})
    binding = {
        "metadata": {"name": f"{SERVICE_ACCOUNT}-bench"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": PEER_NAMESPACE}],
    }
    _created(rbac.create_cluster_role_binding, binding)
    request = {"spec": {"audiences": [], "expirationSeconds": hours * 3600}}
    token = core.create_namespaced_service_account_token(
        SERVICE_ACCOUNT, PEER_NAMESPACE, request
    ).status.token
    admin_config = yaml.safe_load(Path(admin).read_text())
    cluster = admin_config["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bench", "cluster": cluster}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [
            {"name": "argo", "context": {"cluster": "bench", "user": SERVICE_ACCOUNT, "namespace": namespace}}
        ],
        "current-context": "argo",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def start_controller(
    kubeconfig: Path | str,
    namespace: str,
    log: Path,
    *,
    loglevel: str = "warn",
    qps: float = 40.0,
    burst: int = 80,
    threads: int = 10,
    ready_timeout: float = 60.0,
) -> subprocess.Popen[bytes]:
    """Argo Rollouts' controller watching `namespace` only (--namespaced), no leader election,
    metrics and healthz on free ports; returns once its healthz answers. qps/burst/threads are
    Argo's own defaults; its log level defaults to warn, as the bench runs this project's
    controller at WARNING. The process dies with its parent; stop it with stop_controller()."""
    binary = build()
    healthz = free_port()
    argv = [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--namespaced",
        f"--namespace={namespace}",
        "--leader-elect=false",
        f"--metricsPort={free_port()}",
        f"--healthzPort={healthz}",
        f"--loglevel={loglevel}",
        f"--istio-api-version={ISTIO_VERSION}",
        f"--qps={qps}",
        f"--burst={burst}",
        f"--rollout-threads={threads}",
    ]
    with log.open("w") as sink:
        process = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
            # Where it looks for its notification ConfigMap and Secret (absent here: no notifications).
            env={**os.environ, "POD_NAMESPACE": PEER_NAMESPACE},
        )
    deadline = time.monotonic() + ready_timeout
    while not http_ok(f"http://127.0.0.1:{healthz}/healthz"):
        if process.poll() is not None:
            raise PeerError(
                f"Argo Rollouts exited with {process.returncode}; the tail of {log}:\n{tail(log)}"
            )
        if time.monotonic() > deadline:
            stop_controller(process)
            raise PeerError(
                f"Argo Rollouts not healthy after {ready_timeout:.0f} s; the tail of {log}:\n{tail(log)}"
            )
        time.sleep(0.2)
    return process


def stop_controller(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM to its process group, then SIGKILL if it lingers."""
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


# --- the workload ------------------------------------------------------------------------------


def virtual_service(name: str, namespace: str) -> dict[str, Any]:
    """One http route, `primary`, splitting `<name>-stable` / `<name>-canary` 100/0."""
    return {
        "apiVersion": f"networking.istio.io/{ISTIO_VERSION}",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "hosts": [name],
            "http": [
                {
                    "name": ROUTE,
                    "route": [
                        {"destination": {"host": f"{name}-stable"}, "weight": 100},
                        {"destination": {"host": f"{name}-canary"}, "weight": 0},
                    ],
                }
            ],
        },
    }


def strategy(name: str, router: Router, steps: list[dict[str, Any]], services: bool) -> dict[str, Any]:
    canary: dict[str, Any] = {"steps": steps}
    if services or router == "istio":
        canary.update(stableService=f"{name}-stable", canaryService=f"{name}-canary")
    if router == "istio":
        canary["trafficRouting"] = {"istio": {"virtualService": {"name": name, "routes": [ROUTE]}}}
        # As bench/scale.py's Rollouts: the old revision goes at completion, not 30 s later (Argo's
        # default), which would also hold the Rollout Progressing until then. Argo accepts the
        # field only with traffic routing.
        canary["scaleDownDelaySeconds"] = 0
    return {"canary": canary}


def manifests(
    name: str,
    namespace: str,
    router: Router = "istio",
    *,
    replicas: int = 1,
    image: str = "web:1",
    steps: list[dict[str, Any]] | None = None,
    services: bool = True,
) -> list[dict[str, Any]]:
    """The objects of one bench Rollout, in the order to create them: its stable and canary
    Services, its VirtualService (router "istio"), then the Rollout. The pod template is
    tests.manifests.rollout_manifest's (labels `app: <name>`, container `app`), so
    tests.manifests.image_patch(image, name) updates it as it updates this project's Rollouts.
    Router "none" is the replica-only canary (weights as replica proportions); `services=False`
    drops its Services too."""
    objects = [service_manifest(f"{name}-{role}", namespace, name) for role in ("stable", "canary")]
    if not services and router == "none":
        objects = []
    if router == "istio":
        objects.append(virtual_service(name, namespace))
    rollout = rollout_manifest(
        name,
        namespace,
        replicas=replicas,
        image=image,
        strategy=strategy(name, router, steps or STEPS, services),
    )
    objects.append({**rollout, "apiVersion": f"{ROLLOUTS.group}/{ROLLOUTS.version}"})
    return objects


# --- reading progress --------------------------------------------------------------------------


def canary_weight(vs: dict[str, Any], canary: str) -> int | None:
    """The weight the VirtualService's managed route gives the canary Service (short name or FQDN);
    None when the route or the destination is missing."""
    for route in (vs.get("spec") or {}).get("http") or []:
        if route.get("name") != ROUTE:
            continue
        for destination in route.get("route") or []:
            host = str((destination.get("destination") or {}).get("host", ""))
            if host == canary or host.startswith(f"{canary}."):
                return int(destination.get("weight") or 0)
    return None


def at_rest(vs: dict[str, Any], name: str) -> bool:
    """The route of Rollout `name` sends everything to its stable Service (100/0)."""
    return canary_weight(vs, f"{name}-stable") == 100 and canary_weight(vs, f"{name}-canary") == 0


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


def observed(obj: dict[str, Any]) -> bool:
    """The status speaks of the current spec (Argo writes observedGeneration as a string)."""
    return str(_status(obj).get("observedGeneration", "")) == str(
        (obj.get("metadata") or {}).get("generation")
    )


def revision(obj: dict[str, Any]) -> str | None:
    """The pod-template hash of the revision the Rollout is moving to."""
    return _status(obj).get("currentPodHash")


def stable_revision(obj: dict[str, Any]) -> str | None:
    return _status(obj).get("stableRS")


def completed(obj: dict[str, Any]) -> bool:
    """Healthy at the current spec, with the current revision stable. Argo reports this while the
    route may still send 100% to the canary Service (both Services then select the new revision);
    at_rest() tells when the route is back at 100/0, as this project's Healthy implies."""
    status = _status(obj)
    return (
        observed(obj)
        and status.get("phase") == "Healthy"
        and bool(status.get("stableRS"))
        and status.get("stableRS") == status.get("currentPodHash")
    )


def first_step_done(obj: dict[str, Any], previous: str | None) -> bool:
    """Past step 0 (setWeight 20) on a revision other than `previous`: Argo advances
    currentStepIndex once the step's canary replicas are available (and, with a router, the route
    written). The replica-only workload's first-step signal; with a router, the route's weight
    (canary_weight) is the one to time."""
    status = _status(obj)
    return (
        observed(obj)
        and revision(obj) not in (None, previous)
        and int(status.get("currentStepIndex") or 0) >= 1
    )


# --- the smoke ---------------------------------------------------------------------------------


def _create(api: client.ApiClient, obj: dict[str, Any]) -> None:
    namespace = obj["metadata"]["namespace"]
    if obj["kind"] == "Service":
        _created(client.CoreV1Api(api).create_namespaced_service, namespace, obj)
        return
    group, version_ = obj["apiVersion"].split("/")
    plural = {"VirtualService": VIRTUAL_SERVICES.plural, "Rollout": ROLLOUTS.plural}[obj["kind"]]
    _created(
        client.CustomObjectsApi(api).create_namespaced_custom_object, group, version_, namespace, plural, obj
    )


def _listed(api: client.ApiClient, kind: Kind, namespace: str) -> dict[str, dict[str, Any]]:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        kind.group, kind.version, namespace, kind.plural
    )["items"]
    return {item["metadata"]["name"]: item for item in items}


def audited_requests(plane: ControlPlane) -> dict[str, int]:
    """The controller's requests in the audit log, by `verb resource[/subresource]`."""
    counts: dict[str, int] = {}
    for event in plane.audit_events(AUDIT_USER):
        counts[audit_target(event)] = counts.get(audit_target(event), 0) + 1
    return dict(sorted(counts.items()))


@contextlib.contextmanager
def _namespace(api: client.ApiClient, prefix: str) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        with contextlib.suppress(ApiException):
            client.CoreV1Api(api).delete_namespace(name)


def smoke_wave(plane: ControlPlane, router: Router, n: int, timeout: float) -> list[str]:
    """N Rollouts created, Healthy, then updated at once and followed until each is Healthy on
    the new revision with its route back at 100/0. Returns what went wrong (empty when nothing
    did); prints what each Rollout went through."""
    from tests.cluster.kubelet import StandInKubelet

    admin = new_client_from_config(str(plane.kubeconfig))
    problems: list[str] = []
    with _namespace(admin, f"argo-smoke-{router}") as ns, StandInKubelet(str(plane.kubeconfig), ns):
        names = [f"app-{i}" for i in range(n)]
        for name in names:
            for obj in manifests(name, ns, router):
                _create(admin, obj)
        log = plane.workdir / f"argo-{router}.log"
        config = controller_kubeconfig(plane.kubeconfig, plane.workdir / f"kubeconfig-argo-{ns}", ns)
        started = time.monotonic()
        controller = start_controller(config, ns, log)
        try:
            print(f"[{router}] controller healthy after {time.monotonic() - started:.1f} s")
            first: dict[str, str] = {}
            while len(first) < n:
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"[{router}] only {len(first)}/{n} Healthy at first; log {log}")
                for name, obj in _listed(admin, ROLLOUTS, ns).items():
                    if completed(obj):
                        first[name] = str(stable_revision(obj))
                time.sleep(0.2)
            print(f"[{router}] all {n} Healthy at first after {time.monotonic() - started:.1f} s")

            custom = client.CustomObjectsApi(admin)
            updated: dict[str, float] = {}
            for name in names:
                custom.patch_namespaced_custom_object(
                    ROLLOUTS.group, ROLLOUTS.version, ns, ROLLOUTS.plural, name, image_patch("web:2", name)
                )
                updated[name] = time.monotonic()
            weights: dict[str, list[int]] = {name: [] for name in names}
            step: dict[str, float] = {}  # the first step seen
            healthy: dict[str, float] = {}  # Healthy on the new revision
            done: dict[str, float] = {}  # ... and the route back at 100/0
            while len(done) < n:
                if time.monotonic() - min(updated.values()) > timeout:
                    raise TimeoutError(f"[{router}] only {len(done)}/{n} completed; log {log}")
                rollouts = _listed(admin, ROLLOUTS, ns)
                routes = _listed(admin, VIRTUAL_SERVICES, ns) if router == "istio" else {}
                now = time.monotonic()
                for name in names:
                    obj, vs = rollouts.get(name, {}), routes.get(name, {})
                    if router == "istio":
                        weight = canary_weight(vs, f"{name}-canary")
                        if weight is not None and (not weights[name] or weights[name][-1] != weight):
                            weights[name].append(weight)
                        if weight == FIRST_WEIGHT:
                            step.setdefault(name, now - updated[name])
                    elif first_step_done(obj, first[name]):
                        step.setdefault(name, now - updated[name])
                    if completed(obj) and stable_revision(obj) != first[name]:
                        healthy.setdefault(name, now - updated[name])
                        if router == "none" or at_rest(vs, name):
                            done.setdefault(name, now - updated[name])
                time.sleep(0.05)
            errors = [line for line in log.read_text(errors="replace").splitlines() if "level=error" in line]
        finally:
            stop_controller(controller)
        if errors:
            problems.append(f"[{router}] {len(errors)} error lines in {log}, the first: {errors[0]}")
        rollouts = _listed(admin, ROLLOUTS, ns)
        for name in names:
            seen = " -> ".join(map(str, weights[name])) if router == "istio" else "(no route)"
            print(
                f"[{router}] {name}: first step {step.get(name, float('nan')):.1f} s, Healthy on "
                f"{stable_revision(rollouts[name])} (was {first[name]}) {healthy[name]:.1f} s, "
                f"route at rest {done[name]:.1f} s after its update; canary weights {seen}"
            )
            if name not in step:
                problems.append(f"[{router}] {name}: first step never seen")
            if router == "istio" and FIRST_WEIGHT not in weights[name]:
                problems.append(f"[{router}] {name}: canary weight never {FIRST_WEIGHT}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Smoke Argo Rollouts, built from its Go module, on a real control plane."
    )
    parser.add_argument("-n", type=int, default=5, help="Rollouts per workload")
    parser.add_argument(
        "--router", choices=["istio", "none"], action="append", help="workloads (default: both)"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds for each phase")
    parser.add_argument("--keep", type=Path, help="keep the control plane's directory (logs) here")
    options = parser.parse_args()

    began = time.monotonic()
    binary = build()
    print(f"Argo Rollouts {version()}: {binary} ({binary.stat().st_size / 2**20:.0f} MiB), "
          f"ready in {time.monotonic() - began:.1f} s")  # fmt: skip
    from tests.thirdparty import routing_crds

    with contextlib.ExitStack() as stack:
        if options.keep:
            options.keep.mkdir(parents=True, exist_ok=True)
            workdir = options.keep
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="argo-smoke-")))
        plane = stack.enter_context(ControlPlane.start(workdir, audit_users=(AUDIT_USER,)))
        install_crds(plane.kubeconfig, [*crds(), *routing_crds()])
        problems: list[str] = []
        for router in options.router or ["istio", "none"]:
            problems += smoke_wave(plane, router, options.n, options.timeout)
        time.sleep(2)  # the audit log is written in batches, a second apart
        print(f"the controller's requests in the audit log (all waves): {audited_requests(plane)}")
    for problem in problems:
        print("PROBLEM:", problem)
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
