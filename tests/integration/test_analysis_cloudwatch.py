"""A canary gated on provider.cloudWatch: the real controller on the emulated cluster, the
AnalysisTemplate and Secret of examples/canary-cloudwatch-analysis.yaml, and moto's server (a real
AWS API emulator) as CloudWatch, holding the load balancer's 5xx counts put with PutMetricData."""

from pathlib import Path

import pytest
import yaml

from rollout.kube import ANALYSIS_TEMPLATES, REPLICASETS, ROLLOUTS, SECRETS, SERVICES
from tests.emulated import (
    HTTPROUTES,
    NS,
    app_weights,
    event_reasons,
    events_once,
    healthy_at,
    rolled_back_by_analysis,
    setup,
    status_of,
)
from tests.manifests import (
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.metric_stores import MOTO_REGION, moto_cloudwatch
from tests.waiting import wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "canary-cloudwatch-analysis.yaml"
LOAD_BALANCER = "app/storefront/50dc6c495c0c9188"
CANARY_GROUP = "targetgroup/web-canary/73e2d6bc24d8a067"


@pytest.fixture
def cloudwatch():
    with moto_cloudwatch() as server:
        yield server


def example(kind):
    doc = next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["kind"] == kind)
    doc["metadata"]["namespace"] = NS
    return doc


async def start(cluster, cloudwatch):
    """The example's template (pointed at moto, measuring every second, twice) and Secret, and a
    canary 20% -> CloudWatch analysis -> 60%; its status once the first deploy is Healthy."""
    template = example("AnalysisTemplate")
    metric = template["spec"]["metrics"][0]
    metric["interval"], metric["count"] = "1s", 2
    metric["provider"]["cloudWatch"] |= {"endpoint": cloudwatch.url, "region": MOTO_REGION}
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, template)
    await cluster.kube.create(SECRETS, NS, example("Secret"))
    analysis = {
        "templates": [{"name": "alb-target-5xx"}],
        "args": [{"name": "target-group", "value": CANARY_GROUP}],
    }
    return await setup(cluster, [{"setWeight": 20}, {"analysis": analysis}, {"setWeight": 60}], replicas=2)


def put_5xx(cloudwatch, count):
    dimensions = {"LoadBalancer": LOAD_BALANCER, "TargetGroup": CANARY_GROUP}
    cloudwatch.put("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dimensions, [count], ago=20)


async def test_a_failing_cloudwatch_metric_rolls_the_canary_back(cluster, cloudwatch):
    put_5xx(cloudwatch, 40.0)
    async with cluster.controller():
        v1 = (await start(cluster, cloudwatch))["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        status, analysis = await rolled_back_by_analysis(cluster, "a failing CloudWatch metric")
    assert status["stableRevision"] == v1
    assert "result > 5" in analysis["message"] and "target-5xx" in status["abortReason"]
    [run] = [r for r in status["analysisRuns"] if r["phase"] == "Failed"]
    measurement = run["metrics"][0]["measurements"][-1]
    assert measurement["phase"] == "Failed" and float(measurement["value"]) == 40.0
    assert "RolloutCompleted" not in await event_reasons(cluster)


async def test_a_passing_cloudwatch_metric_completes_the_canary(cluster, cloudwatch):
    put_5xx(cloudwatch, 2.0)
    async with cluster.controller():
        v1 = (await start(cluster, cloudwatch))["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        status = await wait_for(healthy_at(cluster, other_than=v1), timeout=60, what="v2 promoted")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
    [run] = status["analysisRuns"]
    assert run["phase"] == "Successful" and run["metrics"][0]["successful"] == 2
    assert float(run["metrics"][0]["measurements"][-1]["value"]) == 2.0


async def test_a_missing_credentials_secret_is_invalid_spec_naming_the_field(cluster, cloudwatch):
    template = example("AnalysisTemplate")
    template["spec"]["metrics"][0]["provider"]["cloudWatch"]["endpoint"] = cloudwatch.url
    analysis = {
        "templates": [{"name": "alb-target-5xx"}],
        "args": [{"name": "target-group", "value": CANARY_GROUP}],
    }
    async with cluster.controller(resync_seconds=0.5):
        for name in ("web-stable", "web-canary"):
            await cluster.kube.create(SERVICES, NS, service_manifest(name))
        await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
        await cluster.kube.create(ANALYSIS_TEMPLATES, NS, template)
        strategy = canary_strategy([{"setWeight": 20}, {"analysis": analysis}], scale_down_delay=1)
        await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(strategy=strategy))
        said = (
            "spec.strategy.canary.steps[1].analysis.templates[0]: AnalysisTemplate alb-target-5xx "
            "metrics[0].provider.cloudWatch.accessKeyIdSecretRef (header 'accessKeyId'): "
            "Secret shop/cloudwatch-reader not found"
        )

        async def invalid():
            status = await status_of(cluster)
            condition = next((c for c in status.get("conditions") or [] if c["type"] == "InvalidSpec"), None)
            return (
                status
                if condition and said in condition["message"] and status["phase"] == "Degraded"
                else None
            )

        await wait_for(invalid, timeout=20, what="InvalidSpec naming the credentials' Secret")

        await events_once(cluster, "InvalidSpec", said)
        assert await cluster.kube.list(REPLICASETS, NS) == []  # nothing moved
        # The Secret appears: the periodic re-check recovers and the first revision comes up.
        await cluster.kube.create(SECRETS, NS, example("Secret"))
        await wait_for(healthy_at(cluster), timeout=20, what="Healthy once the Secret exists")
