"""Blue/green gated on a real Prometheus: users follow the active Service, a tester sends a share
of the load to the preview Service, and the built-in success-rate template measures the new
revision before the switch (pre-promotion) and after it (post-promotion)."""

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest

from rollout.api.revision import REVISION_LABEL
from rollout.kube import REPLICASETS, ROLLOUTS, SERVICES
from tests.emulated import NS, degraded, event_reasons, healthy_at, replicasets, status_of
from tests.integration.prometheus_setup import args, stack
from tests.manifests import blue_green_strategy, image_patch, rollout_manifest
from tests.waiting import in_background, wait_for

pytestmark = pytest.mark.prometheus

SERVICES_BG = ("web-active", "web-preview")
PREVIEW_SHARE = 10  # percent of the load a tester sends to the preview Service


def success_rate():
    return {"templates": [{"name": "http-success-rate", "clusterScope": True}], "args": args()}


def blue_green_weights(cluster):
    """Users on the active Service's revision; the tester's share on the preview's."""

    async def read():
        selected = []
        for name in SERVICES_BG:
            selector = (await cluster.kube.get(SERVICES, NS, name))["spec"]["selector"]
            selected.append(selector.get(REVISION_LABEL))
        active, preview = selected
        weights = {active: 100 - PREVIEW_SHARE}
        weights[preview] = weights.get(preview, 0) + PREVIEW_SHARE
        return weights

    return read


@contextlib.asynccontextmanager
async def watching_active(cluster, stable_revision):
    """Every change of the active Service's revision, with the time it was seen and how many
    pods of `stable_revision` were ready then: (time, revision, ready)."""
    seen: list[tuple[datetime, str, int]] = []

    async def watch():
        while True:
            selector = (await cluster.kube.get(SERVICES, NS, "web-active"))["spec"]["selector"]
            revision = selector.get(REVISION_LABEL)
            if not seen or seen[-1][1] != revision:
                rs = next(
                    r
                    for r in await cluster.kube.list(REPLICASETS, NS)
                    if r["metadata"]["labels"][REVISION_LABEL] == stable_revision
                )
                seen.append((datetime.now(UTC), revision, (rs.get("status") or {}).get("readyReplicas", 0)))
            await asyncio.sleep(0.02)

    async with in_background(watch()):
        yield seen


def post_run(status, name="post-promotion"):
    return next(r for r in status["analysisRuns"] if r["name"] == name)


@contextlib.asynccontextmanager
async def green_returning_500s(cluster, **extra):
    """Blue deployed, green answering half its requests with 500, the active Service watched;
    yields (blue, green, changes of the active Service)."""
    manifest = rollout_manifest(replicas=2, strategy=blue_green_strategy(**extra))
    async with (
        stack(cluster, manifest, v2_errors=0.5, weights=blue_green_weights, services=SERVICES_BG) as (
            _,
            blue,
            green,
        ),
        watching_active(cluster, blue.revision) as seen,
    ):
        yield blue, green, seen


def scaled_to_zero(cluster, revision):
    async def probe():
        return (await replicasets(cluster))[revision]["spec"]["replicas"] == 0

    return probe


async def test_green_returning_500s_is_switched_back_within_one_interval(cluster):
    extra = {"postPromotionAnalysis": success_rate(), "abortScaleDownDelaySeconds": 2}
    async with green_returning_500s(cluster, **extra) as (blue, green, seen):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(degraded(cluster), timeout=40, what="post-promotion failure")
        await wait_for(
            scaled_to_zero(cluster, green.revision), timeout=20, what="green down after the switch back"
        )
        after = await status_of(cluster)
    revisions = [revision for _, revision, _ in seen]
    assert revisions[:3] == [blue.revision, green.revision, blue.revision], seen
    switched_back_at, _, blue_ready = seen[2]
    assert blue_ready == 2  # blue was still running when users came back to it
    run = post_run(status)
    failed = next(m for m in run["metrics"][0]["measurements"] if m["phase"] == "Failed")
    took = (switched_back_at - datetime.fromisoformat(failed["at"])).total_seconds()
    assert took <= 1.0, f"switched back {took:.2f}s after the failing measurement (interval 1s)"
    assert status["stableRevision"] == blue.revision and "post-promotion" in status["abortReason"]
    assert after["blueGreen"]["activeRevision"] == after["blueGreen"]["previewRevision"] == blue.revision
    reasons = await event_reasons(cluster)
    assert "Switched" in reasons and "AnalysisFailed" in reasons and "RolloutCompleted" not in reasons


async def test_pre_promotion_failure_never_switches(cluster):
    extra = {"prePromotionAnalysis": success_rate(), "abortScaleDownDelaySeconds": 1}
    async with green_returning_500s(cluster, **extra) as (blue, green, seen):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(degraded(cluster), timeout=40, what="pre-promotion failure")
        await wait_for(scaled_to_zero(cluster, green.revision), timeout=20, what="green scaled down")
        preview = (await cluster.kube.get(SERVICES, NS, "web-preview"))["spec"]["selector"]
    assert [revision for _, revision, _ in seen] == [blue.revision]  # never switched
    assert "pre-promotion" in status["abortReason"] and "success-rate" in status["abortReason"]
    assert post_run(status, "pre-promotion")["phase"] == "Failed"
    assert preview[REVISION_LABEL] == blue.revision  # the preview is back on the active revision
    assert "Switched" not in await event_reasons(cluster)


async def test_a_healthy_green_passes_both_analyses_and_becomes_stable(cluster):
    strategy = blue_green_strategy(prePromotionAnalysis=success_rate(), postPromotionAnalysis=success_rate())
    manifest = rollout_manifest(replicas=2, strategy=strategy)
    async with stack(cluster, manifest, weights=blue_green_weights, services=SERVICES_BG) as (_, _, green):
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        status = await wait_for(healthy_at(cluster, green.revision), timeout=60, what="green stable")
    for name in ("pre-promotion", "post-promotion"):
        run = post_run(status, name)
        assert run["phase"] == "Successful" and run["metrics"][0]["successful"] == 3, run
    assert status["blueGreen"]["activeRevision"] == green.revision
