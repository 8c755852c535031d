"""A canary gated on provider.datadog: the real controller on the emulated cluster, the
AnalysisTemplate and Secret of examples/canary-datadog-analysis.yaml, and Datadog's v2 timeseries
API played by a local server that checks each request as Datadog documents it
(tests/vendor_apis.py): a failing error ratio rolls the canary back, a missing key Secret is an
InvalidSpec before anything moves."""

import copy
from pathlib import Path

import yaml

from rollout.kube import ANALYSIS_TEMPLATES, ROLLOUTS, SECRETS, SERVICES
from tests.emulated import (
    HTTPROUTES,
    NS,
    event_reasons,
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
from tests.vendor_apis import API_KEY, APP_KEY
from tests.waiting import wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "canary-datadog-analysis.yaml"
TEMPLATE = "datadog-error-ratio"


def example(kind):
    doc = next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["kind"] == kind)
    doc["metadata"]["namespace"] = NS
    return doc


def analysis_step():
    return {"analysis": {"templates": [{"name": TEMPLATE}], "args": [{"name": "service", "value": "web"}]}}


async def create_template(cluster, datadog):
    """The example's template measuring every second on the local Datadog."""
    template = example("AnalysisTemplate")
    template["spec"]["metrics"][0]["interval"] = "1s"
    template["spec"]["metrics"][0]["provider"]["datadog"]["address"] = datadog.base
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, template)


async def test_a_failing_datadog_error_ratio_rolls_the_canary_back(cluster, datadog):
    async with cluster.controller():
        await create_template(cluster, datadog)
        secret = example("Secret")
        secret["stringData"] = {"api-key": API_KEY, "app-key": APP_KEY}
        await cluster.kube.create(SECRETS, NS, secret)
        v1 = (await setup(cluster, [{"setWeight": 20}, analysis_step(), {"setWeight": 60}], replicas=2))[
            "stableRevision"
        ]
        datadog.value = 0.25  # the last minute: a quarter of the canary's requests fail
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        status, analysis = await rolled_back_by_analysis(cluster, "a failing Datadog metric")
    assert status["stableRevision"] == v1
    assert "result > 0.05" in analysis["message"] and "error-ratio" in status["abortReason"]
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    # The example's aggregator avg over the window's points (0.05, a gap, 0.25).
    assert run["phase"] == "Failed" and float(run["metrics"][0]["measurements"][-1]["value"]) == 0.15
    assert "RolloutCompleted" not in await event_reasons(cluster)
    # The queries Datadog was asked: the canary's revision and the step's argument in their tags.
    canary = status["currentRevision"]
    attributes = datadog.seen[-1]["body"]["data"]["attributes"]
    assert {q["name"]: q["query"] for q in attributes["queries"]} == {
        "errors": f"sum:trace.http.request.errors{{service:web,revision:{canary}}}.as_count()",
        "hits": f"sum:trace.http.request.hits{{service:web,revision:{canary}}}.as_count()",
    }
    assert attributes["formulas"] == [{"formula": "errors / hits"}]


async def test_a_missing_datadog_key_secret_is_invalid_spec_naming_the_field(cluster, datadog):
    async with cluster.controller(resync_seconds=0.5):
        for name in ("web-stable", "web-canary"):
            await cluster.kube.create(SERVICES, NS, service_manifest(name))
        await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
        before = copy.deepcopy(await cluster.kube.get(HTTPROUTES, NS, "web"))
        await create_template(cluster, datadog)
        steps = [{"setWeight": 20}, analysis_step()]
        await cluster.kube.create(
            ROLLOUTS, NS, rollout_manifest(replicas=2, strategy=canary_strategy(steps, scale_down_delay=1))
        )
        where = (
            f"spec.strategy.canary.steps[1].analysis.templates[0]: AnalysisTemplate {TEMPLATE} "
            "metrics[0].provider.datadog.apiKeySecretRef (header 'DD-API-KEY'): "
        )

        async def invalid(fragment):
            status = await status_of(cluster)
            condition = next((c for c in status.get("conditions") or [] if c["type"] == "InvalidSpec"), None)
            return status if condition and fragment in condition["message"] else None

        await wait_for(lambda: invalid(where + "Secret shop/datadog-keys not found"), what="Secret missing")
        secret = example("Secret")
        secret["stringData"] = {"api-key": API_KEY}  # the application key missing
        await cluster.kube.create(SECRETS, NS, secret)
        fragment = (
            "metrics[0].provider.datadog.appKeySecretRef (header 'DD-APPLICATION-KEY'): "
            "Secret shop/datadog-keys has no key 'app-key'"
        )
        status = await wait_for(lambda: invalid(fragment), what="the app key missing")
        assert status["phase"] == "Degraded"
        assert await cluster.kube.get(HTTPROUTES, NS, "web") == before  # nothing moved
        assert "InvalidSpec" in await event_reasons(cluster)
    assert datadog.seen == []  # never asked Datadog
