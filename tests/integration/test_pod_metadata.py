"""Role metadata on pods (canaryMetadata/stableMetadata), end to end on the emulated cluster with
real Pod objects: the canary's pods carry role=canary and the stable's role=stable while the
canary is paused; after the promotion the new stable's same pods carry role=stable, relabelled
in place (no pod recreated); the Services' selectors never use the role."""

from rollout.kube import PODS, ROLLOUTS, SERVICES
from tests.manifests import canary_strategy, image_patch, rollout_manifest, service_manifest
from tests.waiting import wait_for

NS = "shop"
ROLES = {
    "canaryMetadata": {"labels": {"role": "canary"}, "annotations": {"example.com/tier": "canary"}},
    "stableMetadata": {"labels": {"role": "stable"}},
}


def canary():
    return canary_strategy([{"setWeight": 50}, {"pause": {}}], None, scaleDownDelaySeconds=0, **ROLES)


async def pods_by_revision(cluster):
    """revision -> {pod name: (uid, role label, tier annotation)} of the live pods."""
    out: dict[str, dict[str, tuple]] = {}
    for pod in await cluster.kube.list(PODS, NS):
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
        out.setdefault(labels.get("rollout.dev/revision", ""), {})[meta["name"]] = (
            meta["uid"],
            labels.get("role"),
            annotations.get("example.com/tier"),
        )
    return out


def status_where(cluster, test):
    async def probe():
        status = ((await cluster.kube.get(ROLLOUTS, NS, "web")) or {}).get("status") or {}
        return status if test(status) else None

    return probe


async def test_role_labels_follow_the_roles_and_no_pod_is_recreated(pod_cluster):
    cluster = pod_cluster
    for name in ("web-stable", "web-canary"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=2, strategy=canary()))
    async with cluster.controller():
        first = await wait_for(status_where(cluster, lambda s: s.get("phase") == "Healthy"), what="v1")
        v1 = first["stableRevision"]

        async def v1_labelled():
            pods = (await pods_by_revision(cluster)).get(v1, {})
            return pods if len(pods) == 2 and all(p[1] == "stable" for p in pods.values()) else None

        await wait_for(v1_labelled, what="the first revision's pods labelled stable")
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        paused = await wait_for(
            status_where(cluster, lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == 1),
            what="paused at 50%",
        )
        v2 = paused["currentRevision"]

        async def both_labelled():
            pods = await pods_by_revision(cluster)
            canary_pods, stable_pods = pods.get(v2, {}), pods.get(v1, {})
            ok = canary_pods and stable_pods
            ok = ok and all(p[1:] == ("canary", "canary") for p in canary_pods.values())
            ok = ok and all(p[1:] == ("stable", None) for p in stable_pods.values())
            return pods if ok else None

        during = await wait_for(both_labelled, what="canary pods role=canary, stable pods role=stable")
        await cluster.kube.patch(
            ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/promote": "true"}}}
        )
        await wait_for(
            status_where(cluster, lambda s: s.get("phase") == "Healthy" and s.get("stableRevision") == v2),
            what="v2 stable",
        )

        async def relabelled():
            pods = (await pods_by_revision(cluster)).get(v2, {})
            ok = pods and all(p[1:] == ("stable", None) for p in pods.values())
            return pods if ok else None

        after = await wait_for(relabelled, what="v2's pods relabelled stable, the canary annotation gone")
    # The canary's pods of the pause are still there, the same objects: relabelled, not replaced.
    kept = {name: uid for name, (uid, _, _) in during[v2].items()}
    assert all(after[name][0] == uid for name, uid in kept.items() if name in after)
    assert set(kept) & set(after), (kept, after)
    for name in ("web-stable", "web-canary"):
        selector = (await cluster.kube.get(SERVICES, NS, name))["spec"]["selector"]
        assert "role" not in selector, selector
