"""A canary gated on provider.web: the real controller on the emulated cluster, the AnalysisTemplate
and Secret of examples/canary-web-analysis.yaml, and a real local HTTP server (aiohttp) standing
in for the smoke-test service, answering as a passing or a failing suite."""

import json

from rollout.kube import ROLLOUTS
from tests.emulated import (
    HTTPROUTES,
    NS,
    app_weights,
    event_reasons,
    healthy_at,
    rolled_back_by_analysis,
)
from tests.integration.smoke_service import start
from tests.manifests import image_patch
from tests.waiting import wait_for


async def test_a_passing_suite_completes_the_canary(cluster, smoke_tests):
    async with cluster.controller():
        v1 = (await start(cluster, smoke_tests))["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        status = await wait_for(healthy_at(cluster, other_than=v1), timeout=60, what="v2 promoted")
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

        status, analysis = await rolled_back_by_analysis(cluster, "a failing suite")
    assert status["stableRevision"] == v1
    assert 'result["passed"] == false' in analysis["message"] and "smoke-tests" in status["abortReason"]
    assert "RolloutCompleted" not in await event_reasons(cluster)
