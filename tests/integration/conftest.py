"""Fixtures for tests of the real controller against the emulated cluster (kmock)."""

from pathlib import Path

import pytest
from aiohttp import web

from tests.emulated import NS, make_cluster
from tests.integration.recorded import RECORDED_CALLS, WHOLE_SUITE
from tests.integration.smoke_service import SmokeTests
from tests.local_http import serving
from tests.processes import ControllerProcesses


@pytest.fixture
def start_controller(cluster, tmp_path):
    """Start `rollout controller` as a process of its own (to be killed); all stopped at the end."""
    processes = ControllerProcesses(str(cluster.kubeconfig(tmp_path / "kubeconfig")), NS, tmp_path)
    yield processes.start
    processes.stop_all()


# Every request the controller made, over all the tests of this run that used `cluster`, goes to
# RECORDED_CALLS (tests/integration/test_rbac.py compares them with the chart's RBAC).


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


@pytest.fixture
async def smoke_tests():
    """The smoke-test service of examples/canary-web-analysis.yaml on a local port, passing until
    a test sets `passing` to False."""
    service = SmokeTests()
    app = web.Application()
    app.router.add_post("/api/v1/runs", service.run)
    async with serving(app) as base:
        service.host = base.removeprefix("http://")
        yield service


INTEGRATION = Path(__file__).resolve().parent


def pytest_collection_modifyitems(session, config, items):
    """test_rbac.py runs last: it checks what all the tests before it recorded."""
    files = {Path(str(item.fspath)).resolve() for item in items}
    WHOLE_SUITE["collected"] = set(INTEGRATION.glob("test_*.py")) <= files
    last = [item for item in items if Path(str(item.fspath)).name == "test_rbac.py"]
    items[:] = [item for item in items if item not in last] + last
