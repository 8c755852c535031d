"""Fixtures for tests of the real controller against the emulated cluster (kmock)."""

import contextlib
from pathlib import Path

import pytest

from rollout.kube import EVENTS, REPLICASETS, ROLLOUTS
from rollout.sandbox.cluster import emulated_cluster
from rollout.sandbox.kubelet import image_matches
from tests.processes import ControllerProcesses
from tests.thirdparty import routing_crds

NS = "shop"


@pytest.fixture
def start_controller(cluster, tmp_path):
    """Start `rollout controller` as a process of its own (to be killed); all stopped at the end."""
    processes = ControllerProcesses(str(cluster.kubeconfig(tmp_path / "kubeconfig")), NS, tmp_path)
    yield processes.start
    processes.stop_all()


@contextlib.asynccontextmanager
async def make_cluster(*, pods=False):
    """The emulated cluster of these tests (also for tests needing one per hypothesis example);
    `pods`: ReplicaSets' pods are real Pod objects (slower; for tests that read or evict pods)."""
    # Pods of an image with "broken" in it never become ready: a release that crash-loops.
    async with emulated_cluster(startup_seconds=0.2, never_ready=image_matches("broken"), pods=pods) as c:
        c.create_namespace(NS)
        for crd in routing_crds():  # routes are validated against their real schemas
            c.api.install_crd(crd)
        yield c


# Every request the controller made, over all the tests of this run that used `cluster`
# (tests/integration/test_rbac.py compares them with the chart's RBAC).
RECORDED_CALLS: set = set()


@pytest.fixture
async def cluster():
    async with make_cluster() as c:
        try:
            yield c
        finally:
            RECORDED_CALLS.update(c.api.audit.calls)


@pytest.fixture
async def pod_cluster():
    """`cluster` whose ReplicaSets have real Pod objects (the restart tests)."""
    async with make_cluster(pods=True) as c:
        try:
            yield c
        finally:
            RECORDED_CALLS.update(c.api.audit.calls)


async def get_rollout(cluster, name="web"):
    """The Rollout as stored; `cluster` is the emulated cluster or any object with a `kube`."""
    return await cluster.kube.get(ROLLOUTS, NS, name)


async def status_of(cluster, name="web"):
    return (await get_rollout(cluster, name) or {}).get("status") or {}


async def replicasets(cluster):
    items = await cluster.kube.list(REPLICASETS, NS)
    return {rs["metadata"]["labels"]["rollout.dev/revision"]: rs for rs in items}


async def event_reasons(cluster, name="web"):
    events = await cluster.kube.list(EVENTS, NS)
    return [e["reason"] for e in events if e["involvedObject"]["name"] == name]


def healthy_at(cluster, revision=None, name="web"):
    async def probe():
        status = await status_of(cluster, name)
        settled = status.get("phase") == "Healthy" and status.get("stableRevision") == status.get(
            "currentRevision"
        )
        wanted = revision is None or status.get("stableRevision") == revision
        return status if settled and wanted else None

    return probe


INTEGRATION = Path(__file__).resolve().parent
# Whether this run collected every integration test file (the RBAC test then checks both ways).
WHOLE_SUITE: dict[str, bool] = {"collected": False}


def pytest_collection_modifyitems(session, config, items):
    """test_rbac.py runs last: it checks what all the tests before it recorded."""
    files = {Path(str(item.fspath)).resolve() for item in items}
    WHOLE_SUITE["collected"] = set(INTEGRATION.glob("test_*.py")) <= files
    last = [item for item in items if Path(str(item.fspath)).name == "test_rbac.py"]
    items[:] = [item for item in items if item not in last] + last
