"""End-to-end tests against a real Kubernetes API server, given by ROLLOUT_E2E_KUBECONFIG.

They apply crds/, run `rollout controller` as a subprocess, and use only the Python client. With
ROLLOUT_E2E_MARK_PODS_READY=1 (a cluster without nodes), a helper marks the test namespace's Pods
Ready through the pods/status subresource, except those of a "broken" image."""

import asyncio
import contextlib
import copy
import os
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from rollout.controller.kube import CRDS, NAMESPACES, Kube, load_api_client
from tests.e2e.helpers import mark_pods_ready
from tests.processes import ControllerProcesses
from tests.thirdparty import routing_crds

KUBECONFIG = os.environ.get("ROLLOUT_E2E_KUBECONFIG")
MARK_READY = os.environ.get("ROLLOUT_E2E_MARK_PODS_READY") == "1"
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(config, items):
    if KUBECONFIG:
        return
    skip = pytest.mark.skip(reason="set ROLLOUT_E2E_KUBECONFIG to run the e2e suite against a real cluster")
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture
async def kube():
    return Kube(load_api_client(KUBECONFIG))


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
async def pods_made_ready(kube, namespace):
    """Plays the kubelet on a cluster without nodes: Pods become Ready, unless their image is broken."""
    if not MARK_READY:
        yield
        return

    task = asyncio.get_running_loop().create_task(mark_pods_ready(kube, namespace))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
def start_controller(namespace, tmp_path):
    processes = ControllerProcesses(KUBECONFIG, namespace, tmp_path, resync_seconds=2)
    yield processes.start
    processes.stop_all()
