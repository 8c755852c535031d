"""The canary judge against a real Prometheus: the controller on the emulated cluster, a workload
process per revision scraped every second, load following the route's weights, and the
AnalysisTemplate of examples/canary-judge.yaml (short windows) next to the built-in fixed
thresholds. A canary 30 % slower than stable but far under every threshold is rolled back by the
judge; the same slowdown on both sides (stable degraded the same way) is promoted. A canary
answering 0.5 % errors against stable's 0.05 %, under the 99 % success threshold, is rolled back
by the error counts."""

import copy

import pytest
import yaml

from rollout.kube import ANALYSIS_TEMPLATES, EVENTS, ROLLOUTS
from tests.argocd_lua import health
from tests.emulated import HTTPROUTES, NS, app_weights, degraded, get_rollout, healthy_at
from tests.integration.command_line import rollout_cli
from tests.integration.prometheus_setup import EXAMPLES, args, stack
from tests.manifests import canary_strategy, image_patch, rollout_manifest
from tests.waiting import wait_for

pytestmark = pytest.mark.prometheus

STABLE_MS, SLOWER_MS = 50.0, 65.0  # +30 %: under the 0.5 s p99 and 99 % success thresholds
# A 24 s window of 2 s samples, judged once 26 s of canary traffic has been scraped. The step's
# args reach both templates: the built-in threshold measures its p99 over the same 24 s.
QUICK = {"window": "24s", "step": "2s", "rate-window": "2s", "initial-delay": "26s"}


def judge_template(timing=QUICK, confidence=0.99):
    """examples/canary-judge.yaml's template in the test namespace, at 99 % confidence (the bench
    measures the default's false failures); its error counts asking for 200 requests a side (the
    example's 1,000 take longer than these windows at this load). A test that must promote like
    against like asks for 99.9 %: at 99 % its comparisons failed by chance in ~3 % of runs (~14 %
    at the default 95 %), as the scraped samples of overlapping rate windows are not independent."""
    template = copy.deepcopy(next(yaml.safe_load_all((EXAMPLES / "canary-judge.yaml").read_text())))
    template["metadata"]["namespace"] = NS
    template["spec"]["args"] = [{"name": k, "value": v} for k, v in timing.items()]
    for query in template["spec"]["metrics"][0]["provider"]["compare"]["queries"]:
        query["confidence"] = confidence
        if "counts" in query:
            query["minSamples"] = 200
    return template


def judged_rollout(timing=QUICK, threshold="http-latency-p99"):
    step = {
        "analysis": {
            "templates": [{"name": "canary-judge"}, {"name": threshold, "clusterScope": True}],
            "args": args(count="1", window=timing["window"], **{"initial-delay": timing["initial-delay"]}),
        }
    }
    steps = [{"setWeight": 50}, step, {"setWeight": 100}]
    return rollout_manifest(replicas=2, strategy=canary_strategy(steps, scale_down_delay=1))


def step_run(status):
    return next(r for r in status["analysisRuns"] if r["name"] == "step-2")


def metric(run, name):
    return next(m for m in run["metrics"] if m["name"] == name)


async def events_of(cluster):
    """reason -> message of the Rollout's Events, once the rollback's are posted (queued after the
    status write, each posted on its own)."""

    async def probe():
        events = await cluster.kube.list(EVENTS, NS)
        found = {e["reason"]: e["message"] for e in events if e["involvedObject"]["name"] == "web"}
        return found if {"AnalysisFailed", "RolloutAborted"} <= found.keys() else None

    return await wait_for(probe, what="the AnalysisFailed and RolloutAborted Events")


async def test_the_judge_rolls_back_a_regression_under_every_fixed_threshold(cluster, tmp_path):
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, judge_template())
    async with stack(cluster, judged_rollout(), v2_latency_ms=SLOWER_MS) as (_, stable, canary):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(degraded(cluster), timeout=90, what="rollback by the judge")
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
        events = await events_of(cluster)
        argocd = health(await get_rollout(cluster))
        kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
        code, shown, _ = await rollout_cli(kubeconfig, "get", "rollout", "web")
    assert status["stableRevision"] == stable.revision and canary.revision != stable.revision
    run = step_run(status)
    threshold = metric(run, "latency-p99")
    assert threshold["phase"] == "Successful" and threshold["failed"] == 0  # the threshold passed
    judge = metric(run, "judge")
    assert judge["phase"] == "Failed"
    measurement = judge["measurements"][-1]
    assert measurement["score"] < 75 and measurement["against"] == "stable"
    by_name = {c["name"]: c for c in measurement["comparisons"]}
    mean = by_name["mean-latency"]
    assert mean["verdict"] == "High" and mean["pValue"] < 0.01
    assert 0.15 < mean["effect"] < 0.45, mean  # ~+30 %, from the medians of real scrapes
    assert mean["canary"]["samples"] >= 10 and mean["reference"]["samples"] >= 10
    assert mean["canary"]["median"] > mean["reference"]["median"] > 0.05
    assert by_name["error-ratio"]["verdict"] == "Pass"
    assert "vs stable, p=" in status["abortReason"] and "< marginalScore 75" in status["abortReason"]
    # The score and the worst query, where people look: the Event, Argo CD, `rollout get`.
    assert "< marginalScore 75" in events["AnalysisFailed"] and "vs stable, p=" in events["AnalysisFailed"]
    assert "RolloutAborted" in events
    assert argocd["status"] == "Degraded" and "vs stable, p=" in argocd["message"], argocd
    assert code == 0 and "judge: Failed  latest: score" in shown, shown
    assert "mean-latency High: +" in shown and "vs stable, p=" in shown and "medians canary 0.0" in shown


async def test_a_canary_whose_reference_degrades_the_same_way_is_promoted(cluster):
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, judge_template(confidence=0.999))
    async with stack(cluster, judged_rollout(), v2_latency_ms=SLOWER_MS) as (_, stable, canary):
        stable.configure(latency_ms=SLOWER_MS)  # the whole service slows down, not the canary
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(healthy_at(cluster, canary.revision), timeout=90, what="v2 promoted")
    run = step_run(status)
    judge = metric(run, "judge")
    assert judge["phase"] == "Successful"
    assert run["phase"] == "Successful" and ">= passScore 95 vs stable" in run["message"], run["message"]
    measurement = judge["measurements"][-1]
    assert measurement["score"] >= 95
    mean = next(c for c in measurement["comparisons"] if c["name"] == "mean-latency")
    assert mean["verdict"] == "Pass" and mean["reference"]["median"] > 0.06  # stable was slow too


# 60 s of some 95 requests/s a side (what the load generator reaches here on an idle machine):
# about 5,800 requests, 29 errors on the canary (0.5 %) against 2 on stable (0.05 %), where the
# 99 % success threshold sees 0.5 % and passes. The errors are spaced evenly, so that the verdict
# does not hinge on how a few rare errors fall: the counts test's p is then about 3e-7, and under
# the 0.01 / 3 each query is tested at from some 2,400 requests a side. Drawn at random, such
# counts miss the rise in about 1 run in 20 at 4,500 requests a side and 6 in 10 at 2,000 (one
# such miss failed CI); bench/judge.py measures the judge on random errors.
COUNTED = {"window": "60s", "step": "5s", "rate-window": "5s", "initial-delay": "62s"}


async def test_the_error_counts_roll_back_an_error_rise_under_the_success_threshold(cluster):
    await cluster.kube.create(ANALYSIS_TEMPLATES, NS, judge_template(COUNTED))
    manifest = judged_rollout(COUNTED, threshold="http-success-rate")
    load = {"v2_errors": 0.005, "load_rate": 200.0, "spaced_errors": True}
    async with stack(cluster, manifest, **load) as (_, stable, canary):
        stable.configure(error_ratio=0.0005)
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        rolled_back, promoted = degraded(cluster), healthy_at(cluster, canary.revision)

        async def ended():  # either way: a promotion fails at once, showing what the judge saw
            return await rolled_back() or await promoted()

        status = await wait_for(ended, timeout=150, what="the update to end")
        assert status["phase"] == "Degraded", metric(step_run(status), "judge")["measurements"][-1]
        route = await cluster.kube.get(HTTPROUTES, NS, "web")
        assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
    assert status["stableRevision"] == stable.revision
    run = step_run(status)
    threshold = metric(run, "success-rate")
    assert threshold["phase"] == "Successful", threshold  # 99.5 % passes the 99 % threshold
    measurement = metric(run, "judge")["measurements"][-1]
    errors = next(c for c in measurement["comparisons"] if c["name"] == "error-ratio")
    assert errors["verdict"] == "High" and errors["pValue"] < 0.01 / 3, errors
    canary_side, stable_side = errors["canary"], errors["reference"]
    assert canary_side["samples"] >= 2000 and stable_side["samples"] >= 2000  # requests counted
    assert 0.003 < canary_side["rate"] < 0.01 and stable_side["rate"] < 0.003, errors
    assert canary_side["events"] > stable_side["events"]
    assert "error-ratio 0." in status["abortReason"] and "% stable" in status["abortReason"], status[
        "abortReason"
    ]
    # The latency queries compared like with like: they passed.
    assert all(c["verdict"] == "Pass" for c in measurement["comparisons"] if c["name"] != "error-ratio")
