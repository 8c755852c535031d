"""End-to-end tests against a real Kubernetes API server.

By default the suite starts its own control plane (tests/cluster: etcd, kube-apiserver and
kube-controller-manager built from k8s.io/kubernetes, no nodes) once per session; with
ROLLOUT_E2E_KUBECONFIG it uses that cluster instead. Where Go or etcd is missing the suite is
skipped with one line naming what is missing, except under CI (`CI` set), where it fails.

The tests apply crds/, run `rollout controller` as a subprocess and use only the Python client. On
a cluster without nodes (ours, or ROLLOUT_E2E_MARK_PODS_READY=1) a stand-in kubelet marks the test
namespace's Pods Ready through the pods/status subresource, except those of a "broken" image."""

import asyncio
import contextlib
import copy
import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from rollout.kube import CRDS, NAMESPACES, Kube, load_api_client
from tests.chart import RELEASE, RELEASE_NAMESPACE
from tests.cluster.kubelet import StandInKubelet
from tests.cluster.launcher import ClusterError, ControlPlane, missing_tools
from tests.e2e.failure_state import namespace_state
from tests.processes import ControllerProcesses
from tests.thirdparty import routing_crds

EXTERNAL = os.environ.get("ROLLOUT_E2E_KUBECONFIG")
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries its namespace's state (tests/e2e/failure_state.py)."""
    outcome = yield
    report = outcome.get_result()
    namespace = getattr(item, "funcargs", {}).get("namespace")
    kubeconfig = getattr(item, "funcargs", {}).get("kubeconfig")
    if report.when == "call" and report.failed and isinstance(namespace, str) and kubeconfig:
        try:
            state = namespace_state(kubeconfig, namespace)
        except Exception as exc:  # the server itself may be what failed
            state = f"could not read namespace {namespace}: {exc}"
        report.sections.append(("state on the server", state))


def pytest_collection_modifyitems(config, items):
    missing = None if EXTERNAL else missing_tools()
    if not missing or os.environ.get("CI"):  # under CI the `cluster` fixture fails instead
        return
    mark = pytest.mark.skip(reason=f"e2e skipped: {missing} (or set ROLLOUT_E2E_KUBECONFIG)")
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(mark)


@pytest.fixture(scope="session")
def cluster():
    """The real control plane of this session: (kubeconfig, its ControlPlane or None, whether
    Pods must be made Ready by the tests)."""
    if EXTERNAL:
        yield EXTERNAL, None, os.environ.get("ROLLOUT_E2E_MARK_PODS_READY") == "1"
        return
    missing = missing_tools()
    if missing:
        pytest.fail(f"CI must run the e2e suite, but {missing}", pytrace=False)
    with tempfile.TemporaryDirectory(prefix="rollout-e2e-") as tmp:
        try:
            # The audit log records the chart's ServiceAccount: test_chart_e2e fails on its 403s.
            # And rollout-bench, the user the sharded replicas of test_shards_e2e run as.
            audited = (
                f"system:serviceaccount:{RELEASE_NAMESPACE}:{RELEASE}-rollout-controller",
                "rollout-bench",
            )
            with ControlPlane.start(Path(tmp), audit_users=audited) as plane:
                yield str(plane.kubeconfig), plane, True
        except ClusterError as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def kubeconfig(cluster):
    return cluster[0]


@pytest.fixture
async def kube(kubeconfig):
    return Kube(load_api_client(kubeconfig))


@pytest.fixture
async def crds_applied(kube):
    for path in sorted((REPO / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        existing = await kube.get(CRDS, None, crd["metadata"]["name"])
        if existing is None:
            await kube.create(CRDS, None, crd)
        else:
            await kube.patch(CRDS, None, crd["metadata"]["name"], {"spec": crd["spec"]})
        await wait_established(kube, crd["metadata"]["name"])


async def wait_established(kube, name):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        obj = await kube.get(CRDS, None, name)
        conditions = ((obj or {}).get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        await asyncio.sleep(0.5)


@pytest.fixture
async def routing_installed(kube):
    """Gateway API and Istio CRDs from tests/thirdparty.py's directory, unless the cluster already
    has them (used by the canary and blue/green files)."""
    for crd in routing_crds():
        name = crd["metadata"]["name"]
        if await kube.get(CRDS, None, name) is None:
            body = copy.deepcopy(crd)
            body["metadata"] = {
                k: v for k, v in body["metadata"].items() if k in ("name", "labels", "annotations")
            }
            body.pop("status", None)
            await kube.create(CRDS, None, body)
        await wait_established(kube, name)


@pytest.fixture
async def namespace(kube, crds_applied):
    name = f"rollout-e2e-{uuid.uuid4().hex[:6]}"
    await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    with contextlib.suppress(ApiException):
        await kube.delete(NAMESPACES, None, name)


@pytest.fixture
def pods_made_ready(kubeconfig, namespace, cluster):
    """Plays the kubelet on a cluster without nodes (tests/cluster/kubelet.py): Pods become Ready,
    unless their image is broken; a Job's pod labelled rollout.test/exit finishes with that code."""
    if not cluster[2]:
        yield
        return
    with StandInKubelet(kubeconfig, namespace):
        yield


@pytest.fixture
def start_controller(kubeconfig, namespace, tmp_path):
    processes = ControllerProcesses(kubeconfig, namespace, tmp_path, resync_seconds=2)
    yield processes.start
    processes.stop_all()
