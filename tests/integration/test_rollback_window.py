"""spec.rollbackWindow with the real controller: going back (by Git: the template as it was) to
the revision stable before skips the canary's pause, with the reason in status and an Event;
a new revision pauses as always."""

from rollout.kube import ROLLOUTS, SERVICES
from tests.emulated import HTTPROUTES, NS, event_reasons, healthy_at, paused_at, promote, status_of
from tests.manifests import (
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.waiting import wait_for


async def test_going_back_within_the_window_skips_the_pause(cluster):
    for name in ("web-stable", "web-canary"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
    strategy = canary_strategy([{"setWeight": 25}, {"pause": {}}], scale_down_delay=1)
    manifest = rollout_manifest(replicas=4, strategy=strategy, rollbackWindow={"revisions": 2})
    async with cluster.controller():
        await cluster.kube.create(ROLLOUTS, NS, manifest)
        v1 = (await wait_for(healthy_at(cluster), what="v1 Healthy"))["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(paused_at(cluster, 1), what="v2 paused after setWeight 25")  # a new revision
        await promote(cluster)
        v2 = (await wait_for(healthy_at(cluster), what="v2 Healthy"))["stableRevision"]
        assert v2 != v1

        seen: list[dict] = []

        async def back_on_v1():
            status = await status_of(cluster)
            seen.append(status)
            return status if status.get("phase") == "Healthy" and status["stableRevision"] == v1 else None

        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:1"))  # Git revert
        final = await wait_for(back_on_v1, what="v1 stable again without a promote")
    assert not any(s.get("phase") == "Paused" for s in seen)  # the pause step was skipped
    assert final["stableHistory"] == [v2]
    assert "within spec.rollbackWindow.revisions (2)" in final["fastTracked"]
    assert "RollbackFastTracked" in await event_reasons(cluster)
