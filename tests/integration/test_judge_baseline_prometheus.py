"""The canary judge against a fresh baseline (`against: baseline`, canary.baselineService) with a
real Prometheus: the controller on the emulated cluster, a workload process per revision (stable,
canary and the baseline's own revision) scraped every second, and load following the route's
three weights. New pods that are slower than the warm stable ones, the canary's and the
baseline's alike (a cold-start cost, not a regression), are promoted; a canary slower than its
baseline, under every fixed threshold, is rolled back, the message naming the baseline."""

import copy

import pytest
import yaml

from rollout.kube import ANALYSIS_TEMPLATES, ROLLOUTS
from tests.emulated import HTTPROUTES, NS, app_weights, degraded, healthy_at
from tests.integration.prometheus_setup import EXAMPLES, args, baseline_revision, stack
from tests.manifests import canary_strategy, image_patch, rollout_manifest
from tests.waiting import wait_for

pytestmark = pytest.mark.prometheus

WARM_MS, FRESH_MS = 50.0, 65.0  # +30 %: under the 0.5 s p99 threshold
QUICK = {"window": "24s", "step": "2s", "rate-window": "2s", "initial-delay": "26s"}
SERVICES = ("web-stable", "web-canary", "web-baseline")


def judge_template(confidence=0.99):
    """examples/canary-judge.yaml's template against the baseline, in short windows, at 99 %
    confidence (99.9 % for like against like: see test_judge_prometheus.py), its error counts
    asking for 100 requests a side."""
    template = copy.deepcopy(next(yaml.safe_load_all((EXAMPLES / "canary-judge.yaml").read_text())))
    template["metadata"]["namespace"] = NS
    template["spec"]["args"] = [{"name": k, "value": v} for k, v in QUICK.items()]
    compare = template["spec"]["metrics"][0]["provider"]["compare"]
    compare["against"] = "baseline"
    for query in compare["queries"]:
        query["confidence"] = confidence
        if "counts" in query:  # the example asks for 1,000 requests a side; these windows hold fewer
            query["minSamples"] = 100
    return template


def judged_rollout():
    step = {
        "analysis": {
            "templates": [{"name": "canary-judge"}, {"name": "http-latency-p99", "clusterScope": True}],
            "args": args(count="1", window=QUICK["window"], **{"initial-delay": QUICK["initial-delay"]}),
        }
    }
    strategy = canary_strategy([{"setWeight": 50}, step], scale_down_delay=1, baselineService="web-baseline")
    return rollout_manifest(replicas=2, strategy=strategy)


def judged(status):
    run = next(r for r in status["analysisRuns"] if r["name"] == "step-2")
    judge = next(m for m in run["metrics"] if m["name"] == "judge")
    threshold = next(m for m in run["metrics"] if m["name"] == "latency-p99")
    return run, judge, threshold


async def test_fresh_pods_slower_than_warm_stable_are_promoted_against_their_baseline(cluster):
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, judge_template(confidence=0.999))
    manifest = judged_rollout()
    async with stack(
        cluster, manifest, v2_latency_ms=FRESH_MS, baseline_latency_ms=FRESH_MS, services=SERVICES
    ) as (_, stable, canary):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(healthy_at(cluster, canary.revision), timeout=120, what="v2 promoted")
    run, judge, _ = judged(status)
    assert judge["phase"] == "Successful" and run["phase"] == "Successful"
    measurement = judge["measurements"][-1]
    assert measurement["against"] == "baseline" and measurement["score"] >= 95
    assert ">= passScore 95 vs baseline" in run["message"], run["message"]
    mean = next(c for c in measurement["comparisons"] if c["name"] == "mean-latency")
    # The reference was the baseline's fresh pods (as slow as the canary), not the warm stable.
    assert mean["verdict"] == "Pass" and mean["reference"]["median"] > 0.06
    assert mean["reference"]["samples"] >= 10 and mean["canary"]["samples"] >= 10
    assert stable.revision != baseline_revision(manifest) != canary.revision


async def test_a_canary_slower_than_its_baseline_under_every_threshold_is_rolled_back(cluster):
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, judge_template())
    async with stack(
        cluster, judged_rollout(), v2_latency_ms=FRESH_MS, baseline_latency_ms=WARM_MS, services=SERVICES
    ) as (_, stable, _canary):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(degraded(cluster), timeout=120, what="rollback by the judge")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 100, "web-canary": 0}  # no baseline backend left
    assert status["stableRevision"] == stable.revision
    _, judge, threshold = judged(status)
    assert threshold["phase"] == "Successful"  # the fixed threshold passed it
    assert judge["phase"] == "Failed"
    measurement = judge["measurements"][-1]
    assert measurement["against"] == "baseline" and measurement["score"] < 75
    mean = next(c for c in measurement["comparisons"] if c["name"] == "mean-latency")
    assert mean["verdict"] == "High" and mean["pValue"] < 0.01
    assert mean["canary"]["median"] > mean["reference"]["median"] > 0.04
    assert "vs baseline, p=" in status["abortReason"]
