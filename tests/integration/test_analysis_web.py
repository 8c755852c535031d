"""A canary gated on provider.web: the real controller on the emulated cluster, the AnalysisTemplate
and Secret of examples/canary-web-analysis.yaml, and a real local HTTP server (aiohttp) standing
in for the smoke-test service, answering as a passing or a failing suite."""

import json
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from rollout.kube import ANALYSIS_TEMPLATES, ROLLOUTS, SECRETS
from tests.integration.conftest import NS, event_reasons, healthy_at, status_of
from tests.integration.test_canary import HTTPROUTES, app_weights, setup, weight_is
from tests.local_http import serving
from tests.manifests import image_patch
from tests.waiting import wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "canary-web-analysis.yaml"


class SmokeTests:
    """The smoke-test service: answers POST /api/v1/runs with the suite's outcome, and only to
    the token of the example's Secret."""

    def __init__(self) -> None:
        self.passing = True
        self.seen: list[dict] = []
        self.host = ""

    async def run(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer replace-me":
            return web.json_response({"error": "unauthorized"}, status=401)
        self.seen.append({"query": dict(request.query), "body": await request.json()})
        failures = 0 if self.passing else 3
        return web.json_response({"run": {"passed": self.passing, "failures": failures, "tests": 40}})


@pytest.fixture
async def smoke_tests():
    service = SmokeTests()
    app = web.Application()
    app.router.add_post("/api/v1/runs", service.run)
    async with serving(app) as base:
        service.host = base.removeprefix("http://")
        yield service


def example(kind):
    doc = next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["kind"] == kind)
    doc["metadata"]["namespace"] = NS
    return doc


def web_analysis_step(service):
    return {
        "analysis": {
            "templates": [{"name": "smoke-tests"}],
            "args": [{"name": "checks-host", "value": service.host}],
        }
    }


async def start(cluster, service):
    template = example("AnalysisTemplate")
    template["spec"]["metrics"][0]["interval"] = "1s"
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, template)
    await cluster.kube.create(SECRETS, NS, example("Secret"))
    steps = [{"setWeight": 20}, web_analysis_step(service), {"setWeight": 60}, web_analysis_step(service)]
    return await setup(cluster, steps, replicas=2)


async def test_a_passing_suite_completes_the_canary(cluster, smoke_tests):
    async with cluster.controller():
        v1 = (await start(cluster, smoke_tests))["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        async def promoted():
            status = await healthy_at(cluster)()
            return status if status and status["stableRevision"] != v1 else None

        status = await wait_for(promoted, timeout=60, what="v2 promoted")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
    runs = {r["name"]: r for r in status["analysisRuns"]}
    assert runs["step-2"]["phase"] == "Successful" and runs["step-4"]["phase"] == "Successful"
    metric = runs["step-2"]["metrics"][0]
    assert metric["successful"] == 2
    assert json.loads(metric["measurements"][-1]["value"]) == {"passed": True, "failures": 0, "tests": 40}
    # The arguments reached the service where the template puts them.
    v2 = status["stableRevision"]
    assert smoke_tests.seen[0]["query"] == {"namespace": NS, "service": "web-canary"}
    assert smoke_tests.seen[0]["body"] == {"suite": "checkout", "revision": v2}
    assert smoke_tests.seen[-1]["body"] == {"suite": "checkout", "revision": v2}
    assert "AnalysisSuccessful" in await event_reasons(cluster)


async def test_a_failing_suite_rolls_back(cluster, smoke_tests):
    async with cluster.controller():
        v1 = (await start(cluster, smoke_tests))["stableRevision"]
        smoke_tests.passing = False
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        async def rolled_back():
            status = await status_of(cluster)
            return status if status.get("phase") == "Degraded" and status.get("aborted") else None

        status = await wait_for(rolled_back, timeout=40, what="rollback on a failing suite")
        await wait_for(weight_is(cluster, 0), timeout=20, what="traffic back on stable")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
    assert status["stableRevision"] == v1
    analysis = next(c for c in status["conditions"] if c["type"] == "Analysis")
    assert analysis["status"] == "False" and analysis["reason"] == "Failed"
    assert 'result["passed"] == false' in analysis["message"] and "smoke-tests" in status["abortReason"]
    assert "RolloutCompleted" not in await event_reasons(cluster)
