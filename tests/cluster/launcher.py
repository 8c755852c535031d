"""The real control plane for the e2e suite and the benches: etcd, kube-apiserver and
kube-controller-manager on free loopback ports, started here and torn down by process group.

The three binaries are built from the Go module beside this file (k8s.io/kubernetes at the release
go.mod pins, and etcd at the release that Kubernetes uses) and cached under ~/.cache, keyed on
go.mod, go.sum and the mains. There are no nodes: tests play the kubelet through `pods/status`.

    with ControlPlane.start(workdir) as plane:   # or: python -m tests.cluster.launcher
        plane.kubeconfig                           # admin (system:masters), by token
        plane.user_kubeconfig("rollout-bench")     # another user, for RBAC and audit counts

A component that cannot start (a port taken, a bad flag, a build that fails) raises ClusterError
naming it, with the tail of its log; nothing it started is left running.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import fcntl
import hashlib
import json
import math
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.processes import free_port

MODULE = Path(__file__).resolve().parent
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
CACHE = Path(os.environ.get("ROLLOUT_CLUSTER_CACHE", Path.home() / ".cache" / "rollout-testcluster"))
ADMIN = "admin"
# Users the tests and benches may act as, besides the admin (RBAC judges them; the audit log
# counts their requests).
USERS = ("rollout-controller", "rollout-bench", "rollout-viewer")
# The controller-manager's controllers: what a cluster with no nodes and no cloud can run.
CONTROLLERS = "*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-route,-service,-service-lb-controller"


PR_SET_PDEATHSIG = 1


class ClusterError(RuntimeError):
    """The control plane could not be built or started; says which component, and why."""


def missing_tools() -> str | None:
    """What this machine lacks to run the control plane, in one line; None when nothing."""
    missing = [tool for tool in ("go", "openssl") if shutil.which(tool) is None]
    if not missing:
        return None
    hints = {"go": "Go 1.26", "openssl": "openssl"}
    return "the real control plane needs " + ", ".join(hints[m] for m in missing)


def build_key() -> str:
    digest = hashlib.sha256()
    for path in sorted([MODULE / "go.mod", MODULE / "go.sum", *MODULE.glob("cmd/*/main.go")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(version_flags().encode())
    return digest.hexdigest()[:16]


def build(log: Path | None = None) -> Path:
    """The directory holding the three binaries, built once per build key (under a lock, so two test
    sessions never build at once)."""
    target = CACHE / build_key()
    if all((target / name).exists() for name in COMPONENTS):
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all((target / name).exists() for name in COMPONENTS):
            return target
        staging = CACHE / f"{target.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        out = log or CACHE / "build.log"
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
        with out.open("w") as sink:
            done = subprocess.run(
                [
                    "go",
                    "build",
                    "-trimpath",
                    f"-ldflags={version_flags()}",
                    "-o",
                    str(staging) + "/",
                    "./cmd/...",
                ],
                cwd=MODULE,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
            )
        if done.returncode != 0:
            raise ClusterError(
                f"building the control plane failed (go build, exit {done.returncode}):\n{tail(out)}"
            )
        staging.rename(target)
    return target


def kubernetes_version() -> str:
    """The k8s.io/kubernetes release go.mod pins (v1.36.3)."""
    for line in (MODULE / "go.mod").read_text().splitlines():
        words = line.split()
        if words[:2] == ["require", "k8s.io/kubernetes"] or words[:1] == ["k8s.io/kubernetes"]:
            return words[-1]
    raise ClusterError("tests/cluster/go.mod does not require k8s.io/kubernetes")


def version_flags() -> str:
    """Linker flags that stamp the release into the binaries, as Kubernetes' own build does: without
    them the server reports v0.0.0-master, which clients such as helm cannot parse."""
    version = kubernetes_version()
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return " ".join(flags)


def tail(path: Path, lines: int = 25) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def exited(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        return f"{self.name} exited with {code}; the tail of {self.log}:\n{tail(self.log)}"


@dataclass
class ControlPlane:
    """A running control plane: where it listens and who may call it."""

    workdir: Path
    port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def start(cls, workdir: Path, audit_users: tuple[str, ...] = ()) -> Iterator[ControlPlane]:
        plane = cls(workdir)
        try:
            plane._start(audit_users)
            yield plane
        finally:
            plane.stop()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    def user_kubeconfig(self, user: str) -> Path:
        """A kubeconfig that authenticates as `user` (one of USERS), with no groups beyond
        system:authenticated: RBAC decides what it may do."""
        path = self.workdir / f"kubeconfig-{user}"
        if not path.exists():
            write_kubeconfig(path, self.url, self.workdir / "pki" / "ca.crt", self.tokens[user], user)
        return path

    def _start(self, audit_users: tuple[str, ...]) -> None:
        bins = build(self.workdir / "build.log")
        pki = self.workdir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        make_pki(pki)
        self.tokens = {user: secrets.token_hex(16) for user in (ADMIN, *USERS)}
        lines = [f"{self.tokens[ADMIN]},{ADMIN},{ADMIN}-uid,system:masters"]
        lines += [f"{self.tokens[user]},{user},{user}-uid" for user in USERS]
        (pki / "tokens.csv").write_text("\n".join(lines) + "\n")

        etcd_client, etcd_peer = free_port(), free_port()
        self.port = free_port()
        etcd_url = f"http://127.0.0.1:{etcd_client}"
        self._spawn(
            "etcd",
            [
                str(bins / "etcd"),
                "--name=rollout-test",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=rollout-test=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync",  # a throwaway store: the tests need no durability
                "--quota-backend-bytes=4294967296",
            ],
        )
        self._wait("etcd", lambda: http_ok(f"{etcd_url}/health"), 30)

        audit = []
        if audit_users:
            policy = self.workdir / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump(audit_policy(audit_users)))
            audit = [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=batch",
                "--audit-log-batch-max-wait=1s",
                # Rotation at 10 GB rather than the default 100 MB (0 means that default): a
                # count of an N = 1,000 wave read from the current file alone missed what came
                # before a rotation. Rotated files are read too (audit_events); none is removed.
                "--audit-log-maxsize=10240",
            ]
        self._spawn(
            "kube-apiserver",
            [
                str(bins / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'serving.crt'}",
                f"--tls-private-key-file={pki / 'serving.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--endpoint-reconciler-type=none",
                "--enable-priority-and-fairness=false",  # benches measure the controller, not APF's queues
                "--max-requests-inflight=2000",
                "--max-mutating-requests-inflight=1000",
                *audit,
            ],
        )
        write_kubeconfig(self.kubeconfig, self.url, pki / "ca.crt", self.tokens[ADMIN], ADMIN)
        self._wait("kube-apiserver", lambda: self._readyz(self.port), 90)

        cm_port = free_port()
        self._spawn(
            "kube-controller-manager",
            [
                str(bins / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--authentication-skip-lookup=true",
                "--bind-address=127.0.0.1",
                f"--secure-port={cm_port}",
                f"--cert-dir={pki / 'controller-manager'}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                f"--controllers={CONTROLLERS}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--flex-volume-plugin-dir={self.workdir / 'flexvolume'}",
                # At the default 20 QPS, creating pods alone adds about 20 s to a 200-Rollout bench.
                "--kube-api-qps=2000",
                "--kube-api-burst=4000",
                "--concurrent-replicaset-syncs=20",
                "--concurrent-gc-syncs=40",
                "--horizontal-pod-autoscaler-sync-period=1s",
            ],
        )
        self._wait("kube-controller-manager", lambda: http_ok(f"https://127.0.0.1:{cm_port}/healthz"), 60)

    def _readyz(self, port: int) -> bool:
        return http_ok(f"https://127.0.0.1:{port}/readyz", token=self.tokens[ADMIN])

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = self.workdir / f"{name}.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                argv,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends it and its children
                preexec_fn=die_with_parent,
                env={**os.environ, **(env or {})},
            )
        self.components.append(Component(name, process, log))

    def _wait(self, name: str, ready: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        component = self.components[-1]
        while time.monotonic() < deadline:
            failure = component.exited()
            if failure:
                raise ClusterError(failure)
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.2)
        raise ClusterError(
            f"{name} not ready after {timeout:.0f} s; the tail of {component.log}:\n{tail(component.log)}"
        )

    def audit_events(self, user: str, since: float = 0.0, until: float = math.inf) -> list[dict[str, Any]]:
        """The audit log's events of `user` (one of the audited users) received in [since, until],
        wall-clock seconds."""
        found = []
        # Files rotated away (audit-<time>.log) come first.
        rotated = sorted(self.workdir.glob("audit-*.log"))
        for path in [*rotated, self.audit_log]:
            with contextlib.suppress(FileNotFoundError), path.open() as lines:
                found += self._events_in(lines, user, since, until)
        return found

    @staticmethod
    def _events_in(lines: Any, user: str, since: float, until: float) -> list[dict[str, Any]]:
        found = []
        for line in lines:
            event = json.loads(line)
            if event["user"]["username"] != user:
                continue
            stamp = event["requestReceivedTimestamp"].replace("Z", "+00:00")
            if since <= datetime.datetime.fromisoformat(stamp).timestamp() <= until:
                found.append(event)
        return found

    def pid_of(self, name: str) -> int:
        return next(c.process.pid for c in self.components if c.name == name)

    def check_alive(self) -> None:
        """Raises ClusterError naming the first component that has exited."""
        for component in self.components:
            failure = component.exited()
            if failure:
                raise ClusterError(failure)

    def stop(self) -> None:
        """Ends every component's process group, the newest first; waits for each."""
        for component in reversed(self.components):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(component.process.pid, signal.SIGTERM)
        for component in reversed(self.components):
            try:
                component.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(component.process.pid, signal.SIGKILL)
                component.process.wait(timeout=10)
        self.components.clear()


def audit_target(event: dict[str, Any]) -> str:
    """`verb resource[/subresource]` of an audit event."""
    ref = event.get("objectRef") or {}
    sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
    return f"{event['verb']} {ref.get('resource', '?')}{sub}"


def die_with_parent() -> None:
    """In the child before exec: the kernel kills it when the process that started it dies, even
    by SIGKILL, so a killed test run leaves no control plane behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def audit_policy(users: tuple[str, ...]) -> dict[str, object]:
    """Metadata (verb, resource, user) of the named users' requests; nothing of anyone else's."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived", "ResponseStarted"],
        "rules": [{"level": "Metadata", "users": list(users)}, {"level": "None"}],
    }


def http_ok(url: str, token: str | None = None) -> bool:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    context = ssl._create_unverified_context()  # only to probe health; clients verify the CA
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def make_pki(pki: Path) -> None:
    """A CA, the API server's serving certificate for 127.0.0.1 and localhost, and the
    service-account signing key pair, with openssl."""

    def openssl(*args: str) -> None:
        done = subprocess.run(["openssl", *args], cwd=pki, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ClusterError(f"openssl {args[0]} failed: {done.stderr.strip()}")

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=rollout-test-ca")  # fmt: skip
    (pki / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "serving.key", "-out", "serving.csr",
            "-subj", "/CN=kube-apiserver")  # fmt: skip
    openssl("x509", "-req", "-in", "serving.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "serving.crt", "-days", "2", "-extfile", "san.cnf")  # fmt: skip
    openssl("genrsa", "-out", "sa.key", "2048")
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")


def write_kubeconfig(path: Path, server: str, ca: Path, token: str, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "test", "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def main() -> None:
    """Start the control plane and keep it until interrupted; prints the kubeconfig's path."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="Run the test control plane until interrupted.")
    parser.add_argument("--build-only", action="store_true", help="build (or find) the binaries and exit")
    options = parser.parse_args()
    if options.build_only:
        print(build())
        return
    with (
        tempfile.TemporaryDirectory(prefix="rollout-cluster-") as tmp,
        ControlPlane.start(Path(tmp)) as plane,
    ):
        print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()


def install_crds(kubeconfig: Path | str, crds: list[dict[str, object]], timeout: float = 60) -> None:
    """Creates each CRD the cluster lacks (its spec replaced where it exists) and waits until all
    are Established. Server-owned metadata and status of a CRD read from a file are dropped."""
    from kubernetes import client

    from rollout.kube import load_api_client

    api = client.ApiextensionsV1Api(load_api_client(str(kubeconfig)))
    names = []
    for crd in crds:
        meta = crd["metadata"]
        assert isinstance(meta, dict)
        body = {
            **{k: v for k, v in crd.items() if k != "status"},
            "metadata": {k: v for k, v in meta.items() if k in ("name", "labels", "annotations")},
        }
        names.append(str(meta["name"]))
        try:
            api.create_custom_resource_definition(body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            api.patch_custom_resource_definition(names[-1], {"spec": body["spec"]})
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            conditions = api.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise ClusterError(f"CRD {name} not Established after {timeout:.0f} s")
            time.sleep(0.2)
