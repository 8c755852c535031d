"""Blue/green through the real controller on the emulated cluster: promotion by annotation,
auto-promotion after a delay, the route-level switch on an HTTPRoute under its real schema, and
a controller killed between the switch and the scale-down. Pre- and post-promotion analysis run
against a real Prometheus in test_bluegreen_prometheus.py."""

import asyncio
import signal
from datetime import UTC, datetime, timedelta

from rollout.api.revision import REVISION_LABEL
from rollout.kube import ROLLOUTS, SERVICES
from tests.emulated import HTTPROUTES, NS, event_reasons, events_once, healthy_at, replicasets, status_of
from tests.manifests import (
    blue_green_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.waiting import wait_for


async def deploy(cluster, replicas=3, **extra):
    for name in ("web-active", "web-preview"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    await cluster.kube.create(
        ROLLOUTS, NS, rollout_manifest(replicas=replicas, strategy=blue_green_strategy(**extra))
    )
    return (await wait_for(healthy_at(cluster), what="first deploy Healthy"))["stableRevision"]


async def selects(cluster, service):
    return (await cluster.kube.get(SERVICES, NS, service))["spec"]["selector"].get(REVISION_LABEL)


def phase_is(cluster, phase):
    async def probe():
        status = await status_of(cluster)
        return status if status.get("phase") == phase else None

    return probe


async def test_promote_by_annotation_scales_to_full_then_switches(cluster):
    async with cluster.controller():
        v1 = await deploy(cluster, previewReplicaCount=1, autoPromotionEnabled=False, scaleDownDelaySeconds=1)
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        paused = await wait_for(phase_is(cluster, "Paused"), what="waiting for promotion")
        v2 = paused["currentRevision"]
        assert paused["blueGreen"]["activeRevision"] == v1 and paused["blueGreen"]["previewRevision"] == v2
        assert "waiting for rollout.dev/promote" in paused["message"]
        rs = await replicasets(cluster)
        assert rs[v2]["spec"]["replicas"] == 1 and rs[v1]["spec"]["replicas"] == 3
        assert await selects(cluster, "web-active") == v1 and await selects(cluster, "web-preview") == v2
        await asyncio.sleep(1.0)
        assert await selects(cluster, "web-active") == v1  # no promotion without the annotation

        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/promote": ""}}}
        )
        final = await wait_for(healthy_at(cluster, v2), what="v2 active and stable")
        assert await selects(cluster, "web-active") == v2 and await selects(cluster, "web-preview") == v2

        async def old_gone():
            return (await replicasets(cluster))[v1]["spec"]["replicas"] == 0

        await wait_for(old_gone, what="v1 scaled down after scaleDownDelaySeconds")
    assert final["blueGreen"]["activeRevision"] == v2
    reasons = await event_reasons(cluster)
    assert {"PreviewReady", "Promoted", "Switched", "RolloutCompleted"} <= set(reasons)
    assert "rollout.dev/promote" not in (
        (await cluster.kube.get(ROLLOUTS, NS, "web"))["metadata"].get("annotations") or {}
    )


async def test_auto_promotion_after_a_delay(cluster):
    async with cluster.controller():
        v1 = await deploy(cluster, autoPromotionSeconds=2)
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

        async def counting_down():
            status = await status_of(cluster)
            return status if "auto-promotion in" in status.get("message", "") else None

        waiting = await wait_for(counting_down, what="the auto-promotion countdown")
        assert await selects(cluster, "web-active") == v1
        final = await wait_for(healthy_at(cluster, waiting["currentRevision"]), what="auto-promoted")
    ready_at = datetime.fromisoformat(final["blueGreen"]["previewReadyAt"])
    switched_at = datetime.fromisoformat(final["blueGreen"]["switchedAt"])
    assert 2.0 <= (switched_at - ready_at).total_seconds() < 4.0
    assert "AutoPromoted" in await event_reasons(cluster)


async def test_route_level_switch_on_an_httproute(cluster):
    route = http_route_manifest(backends=("web-active", "web-preview"))
    await cluster.kube.create(HTTPROUTES, NS, route)
    routing = {"gatewayAPI": {"httpRoutes": [{"name": "web", "rule": "app"}]}}
    async with cluster.controller():
        v1 = await deploy(cluster, trafficRouting=routing, autoPromotionEnabled=False)

        def weights(doc):
            rule = next(r for r in doc["spec"]["rules"] if r.get("name") == "app")
            return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}

        assert weights(await cluster.kube.get(HTTPROUTES, NS, "web")) == {"web-active": 100, "web-preview": 0}
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        paused = await wait_for(phase_is(cluster, "Paused"), what="waiting for promotion")
        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/promote": ""}}}
        )
        await wait_for(healthy_at(cluster, paused["currentRevision"]), what="switched and stable")
        at_rest = await cluster.kube.get(HTTPROUTES, NS, "web")
    assert weights(at_rest) == {"web-active": 100, "web-preview": 0}
    assert await selects(cluster, "web-active") == paused["currentRevision"] != v1
    assert [r.get("name") for r in at_rest["spec"]["rules"]] == ["static", "app"]


async def test_controller_killed_between_switch_and_scale_down(cluster, start_controller):
    for name in ("web-active", "web-preview"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    await cluster.kube.create(
        ROLLOUTS, NS, rollout_manifest(replicas=3, strategy=blue_green_strategy(scaleDownDelaySeconds=8))
    )
    first = start_controller()
    v1 = (await wait_for(healthy_at(cluster), timeout=30, what="first deploy"))["stableRevision"]
    await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

    async def switched_not_scaled():
        status = await status_of(cluster)
        rs = await replicasets(cluster)
        done = status.get("stableRevision") not in (None, v1) and status.get("blueGreen", {}).get(
            "scaleDownAt"
        )
        return status if done and rs[v1]["spec"]["replicas"] == 3 else None

    switched = await wait_for(switched_not_scaled, timeout=30, what="switched, old pods still up")
    # Events go out after the status write that decided them; kill once this one is out, so the
    # count below tells whether the restart posted it again.
    await events_once(cluster, "RolloutCompleted")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    v2 = switched["stableRevision"]
    assert await selects(cluster, "web-active") == v2
    await asyncio.sleep(2.0)  # down for a while: the scale-down wait must not start again after it

    restarted = datetime.now(UTC)
    start_controller()

    async def old_gone():
        return (await replicasets(cluster))[v1]["spec"]["replicas"] == 0

    await wait_for(old_gone, timeout=30, what="v1 scaled down after the restart")
    scaled_down = datetime.now(UTC)
    scale_down_at = datetime.fromisoformat(switched["blueGreen"]["scaleDownAt"])
    switched_at = datetime.fromisoformat(switched["blueGreen"]["switchedAt"])
    assert (scale_down_at - switched_at).total_seconds() == 8
    # The new process started two seconds or more after the switch: a wait of its own would end
    # 8 s after its start at the earliest. It scaled down before that (however long its start-up
    # took, up to 8 s), and not before the time in the status (which has whole seconds).
    assert scaled_down < restarted + timedelta(seconds=8), (scaled_down - restarted).total_seconds()
    assert scaled_down >= scale_down_at - timedelta(seconds=1), (scaled_down - scale_down_at).total_seconds()
    assert await selects(cluster, "web-active") == v2  # never switched back
    reasons = await event_reasons(cluster)
    assert reasons.count("Switched") == 1 and reasons.count("RolloutCompleted") == 1
