"""The controller (kopf, in-process) on the emulated cluster: rolling updates a user would run."""

import asyncio

from rollout.api.revision import REVISION_LABEL, revision_hash
from rollout.kube import REPLICASETS, ROLLOUTS, SERVICES
from tests.emulated import NS, event_reasons, get_rollout, healthy_at, replicasets, status_of
from tests.manifests import image_patch, rollout_manifest, service_manifest
from tests.waiting import wait_for


async def deploy(cluster, **kwargs):
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(**kwargs))
    return await wait_for(healthy_at(cluster), what="first deploy Healthy")


async def test_rolling_update_from_v1_to_v2(cluster):
    async with cluster.controller():
        first = await deploy(cluster, replicas=4)
        v1 = first["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        v2 = await wait_for(lambda: _current_if_new(cluster, v1), what="new revision noticed")
        final = await wait_for(healthy_at(cluster, v2), what="v2 Healthy")

    assert final["availableReplicas"] == 4 and final["updatedReplicas"] == 4
    rs = await replicasets(cluster)
    assert rs[v2]["spec"]["replicas"] == 4 and rs[v1]["spec"]["replicas"] == 0
    # the ReplicaSet carries the revision in its selector and pod labels, and belongs to the Rollout
    assert rs[v2]["spec"]["selector"]["matchLabels"] == {"app": "web", "rollout.dev/revision": v2}
    assert rs[v2]["spec"]["template"]["metadata"]["labels"]["rollout.dev/revision"] == v2
    rollout = await get_rollout(cluster)
    assert rs[v2]["metadata"]["ownerReferences"][0]["uid"] == rollout["metadata"]["uid"]
    template = rollout_manifest(image="web:2")["spec"]["template"]
    assert v2 == revision_hash(template)
    reasons = await event_reasons(cluster)
    assert reasons.index("FirstRevision") < reasons.index("NewRevision") < reasons.index("RolloutCompleted")
    # kopf's own bookkeeping stays off the object users keep in Git
    assert not rollout["metadata"].get("finalizers")
    assert not any("kopf" in key for key in rollout["metadata"].get("annotations", {}))
    assert final["observedGeneration"] == rollout["metadata"]["generation"] == 2


async def _current_if_new(cluster, old):
    current = (await status_of(cluster)).get("currentRevision")
    return current if current and current != old else None


async def test_abort_returns_to_v1_stable_first(cluster):
    async with cluster.controller():
        v1 = (await deploy(cluster, replicas=4))["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:broken"))

        async def stuck():
            rs = await replicasets(cluster)
            new = [r for rev, r in rs.items() if rev != v1]
            return new and new[0]["spec"]["replicas"] >= 1 and rs[v1]["spec"]["replicas"] < 4

        await wait_for(stuck, what="update in progress with v1 scaled down")
        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/abort": "true"}}}
        )

        async def restored():
            status = await status_of(cluster)
            rs = await replicasets(cluster)
            others = [r["spec"]["replicas"] for rev, r in rs.items() if rev != v1]
            done = (
                status.get("aborted")
                and rs[v1]["spec"]["replicas"] == 4
                and rs[v1].get("status", {}).get("availableReplicas") == 4
                and others == [0]
            )
            return status if done else None

        status = await wait_for(restored, what="v1 back at full scale, v2 at zero")

    assert status["phase"] == "Degraded"
    assert "Aborted" in status["message"] and status["stableRevision"] == v1
    rollout = await get_rollout(cluster)
    assert "rollout.dev/abort" not in rollout["metadata"].get("annotations", {})
    assert "RolloutAborted" in await event_reasons(cluster)
    # order of writes (resourceVersions are global): when the new ReplicaSet was scaled to zero,
    # the stable one was already back at 4 available pods
    new_name = next(
        name for (_, _, name) in cluster.api.objects if name.startswith("web-") and not name.endswith(v1)
    )
    new_versions = _versions(cluster, new_name)
    scaled_to_zero = next(
        int(v["metadata"]["resourceVersion"]) for v in new_versions if v["spec"]["replicas"] == 0
    )
    stable_then = [
        v for v in _versions(cluster, f"web-{v1}") if int(v["metadata"]["resourceVersion"]) < scaled_to_zero
    ]
    assert stable_then[-1]["spec"]["replicas"] == 4
    assert stable_then[-1]["status"]["availableReplicas"] == 4


def _versions(cluster, name):
    for (resource, _, obj_name), obj in cluster.api.objects.items():
        if resource.plural == "replicasets" and obj_name == name:
            return [dict(v) for v in obj.history if v is not None]
    raise AssertionError(f"no ReplicaSet {name}")


async def test_pause_and_resume_by_annotation(cluster):
    async with cluster.controller():
        v1 = (await deploy(cluster, replicas=4))["stableRevision"]
        await cluster.kube.patch(
            ROLLOUTS,
            NS,
            "web",
            {"metadata": {"annotations": {"rollout.dev/pause": ""}}, **image_patch("web:2")},
        )
        status = await wait_for(_phase_is(cluster, "Paused"), what="Paused")
        assert [p["reason"] for p in status["pauseConditions"]] == ["UserPause"]
        frozen = {rev: r["spec"]["replicas"] for rev, r in (await replicasets(cluster)).items()}
        await asyncio.sleep(1.0)
        assert {rev: r["spec"]["replicas"] for rev, r in (await replicasets(cluster)).items()} == frozen
        assert (await status_of(cluster))["stableRevision"] == v1

        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/resume": ""}}}
        )
        final = await wait_for(healthy_at(cluster), what="Healthy after resume")
    assert final["stableRevision"] != v1 and final["pauseConditions"] == []
    annotations = (await get_rollout(cluster))["metadata"].get("annotations", {})
    assert not any(key.startswith("rollout.dev/") for key in annotations)
    reasons = await event_reasons(cluster)
    assert "RolloutPaused" in reasons and "RolloutResumed" in reasons


def _phase_is(cluster, phase):
    async def probe():
        status = await status_of(cluster)
        return status if status.get("phase") == phase else None

    return probe


async def test_spec_paused_holds_a_new_revision_until_unpaused(cluster):
    async with cluster.controller():
        v1 = (await deploy(cluster, replicas=3))["stableRevision"]
        patch = image_patch("web:2")
        patch["spec"]["paused"] = True
        await cluster.kube.patch(ROLLOUTS, NS, "web", patch)
        await wait_for(_phase_is(cluster, "Paused"), what="Paused")
        await asyncio.sleep(0.5)
        assert list(await replicasets(cluster)) == [v1]  # nothing created for the new revision
        await cluster.kube.patch(ROLLOUTS, NS, "web", {"spec": {"paused": False}})
        final = await wait_for(healthy_at(cluster), what="Healthy")
    assert final["stableRevision"] != v1


async def test_progress_deadline_degrades_with_reason(cluster):
    async with cluster.controller():
        await deploy(
            cluster,
            replicas=2,
            progressDeadlineSeconds=1,
            strategy={"rolling": {"maxSurge": 1, "maxUnavailable": 0}},
        )
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:broken"))
        status = await wait_for(_phase_is(cluster, "Degraded"), what="Degraded")
    assert "no progress for 1s" in status["message"]
    assert "ProgressDeadlineExceeded" in await event_reasons(cluster)


async def test_invalid_spec_moves_nothing_then_recovers_when_fixed(cluster):
    manifest = rollout_manifest()
    manifest["spec"]["selector"]["matchLabels"] = {"app": "webb"}
    async with cluster.controller():
        await cluster.kube.create(ROLLOUTS, NS, manifest)
        status = await wait_for(_phase_is(cluster, "Degraded"), what="InvalidSpec")
        invalid = next(c for c in status["conditions"] if c["type"] == "InvalidSpec")
        assert invalid["status"] == "True" and invalid["message"].startswith("spec.selector: ")
        assert "does not match the template labels" in invalid["message"]
        assert await replicasets(cluster) == {}
        # Events are posted right after the status write: wait for them rather than race them.
        await wait_for(_event_seen(cluster, "InvalidSpec"), what="the InvalidSpec Event")
        await cluster.kube.patch(ROLLOUTS, NS, "web", {"spec": {"selector": {"matchLabels": {"app": "web"}}}})
        status = await wait_for(healthy_at(cluster), what="Healthy after the fix")
        await wait_for(_event_seen(cluster, "SpecValid"), what="the SpecValid Event")
    assert not any(c["type"] == "InvalidSpec" for c in status["conditions"])


async def test_unknown_step_pruned_to_empty_is_invalid_spec(cluster):
    manifest = rollout_manifest(strategy={"canary": {"steps": [{"setWeight": 20}, {}]}})
    async with cluster.controller():
        await cluster.kube.create(ROLLOUTS, NS, manifest)
        status = await wait_for(_phase_is(cluster, "Degraded"), what="InvalidSpec")
    assert "spec.strategy.canary.steps[1]: step has no action" in status["message"]
    assert await replicasets(cluster) == {}


async def test_missing_service_is_rechecked_without_restart(cluster):
    manifest = rollout_manifest(strategy={"blueGreen": {"activeService": "web-active"}})
    async with cluster.controller(resync_seconds=0.5):
        await cluster.kube.create(ROLLOUTS, NS, manifest)
        status = await wait_for(_phase_is(cluster, "Degraded"), what="InvalidSpec")
        assert "spec.strategy.blueGreen.activeService: Service shop/web-active not found" in status["message"]
        await cluster.kube.create(SERVICES, NS, service_manifest("web-active"))

        async def rechecked():
            message = (await status_of(cluster)).get("message", "")
            return message if "not found" not in message else None

        await wait_for(rechecked, what="the periodic re-check to see the Service")
        # The first revision then comes up and the active Service is pinned to it.
        healthy = await wait_for(_phase_is(cluster, "Healthy"), what="the first revision")
        service = await cluster.kube.get(SERVICES, NS, "web-active")
    assert service["spec"]["selector"][REVISION_LABEL] == healthy["blueGreen"]["activeRevision"]


async def test_schema_rejects_bad_shapes_with_the_field_named(cluster):
    from kubernetes.client.exceptions import ApiException

    bad = rollout_manifest(replicas=-1)
    try:
        await cluster.kube.create(ROLLOUTS, NS, bad)
    except ApiException as exc:
        assert exc.status == 422
        assert "spec.replicas" in exc.body and "minimum" in exc.body
    else:
        raise AssertionError("a Rollout with replicas=-1 was accepted")
    assert await cluster.kube.list(REPLICASETS, NS) == []


def _event_seen(cluster, reason):
    async def probe():
        return reason in await event_reasons(cluster)

    return probe
