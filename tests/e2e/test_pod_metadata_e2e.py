"""Role metadata on the real control plane: the real ReplicaSet controller makes the pods from
the templates the controller writes, and the controller relabels running pods in place when a
revision's role changes. Through a canary, its abort, a second canary promoted to the end, and a
blue/green switch: each pod carries its role's labels and annotations, no pod is recreated by a
relabelling, and no Service selects on a role label."""

import pytest

from rollout.kube import PODS, REPLICASETS, ROLLOUTS, SERVICES
from tests.e2e.helpers import annotate, deploy_http_canary, phase_is, wait_for
from tests.manifests import image_patch, rollout_manifest, service_manifest

pytestmark = pytest.mark.e2e

CANARY = {"labels": {"role": "canary"}, "annotations": {"example.com/tier": "canary"}}
STABLE = {"labels": {"role": "stable"}}


async def pods_of(kube, ns, app="web"):
    """revision -> {pod name: (uid, role, tier annotation)} of the live pods of `app`."""
    out: dict[str, dict[str, tuple]] = {}
    for pod in await kube.list(PODS, ns, f"app={app}"):
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
        out.setdefault(labels["rollout.dev/revision"], {})[meta["name"]] = (
            meta["uid"],
            labels.get("role"),
            annotations.get("example.com/tier"),
        )
    return out


def roles_are(kube, ns, wanted, app="web"):
    """Every live pod of each revision in `wanted` has (role, tier); the pods, once so."""

    async def probe():
        pods = await pods_of(kube, ns, app)
        for revision, role in wanted.items():
            found = pods.get(revision) or {}
            if not found or any(p[1:] != role for p in found.values()):
                return None
        return pods

    return probe


def status_of(kube, ns, name="web"):
    async def read():
        return ((await kube.get(ROLLOUTS, ns, name)) or {}).get("status") or {}

    return read


async def test_canary_pods_carry_their_role_through_abort_and_promotion(
    kube, namespace, pods_made_ready, routing_installed, start_controller
):
    start_controller()
    steps = [{"setWeight": 50}, {"pause": {}}]
    v1 = await deploy_http_canary(
        kube, namespace, steps, replicas=2, canaryMetadata=CANARY, stableMetadata=STABLE
    )
    await wait_for(roles_are(kube, namespace, {v1: ("stable", None)}), what="v1's pods role=stable")

    await kube.patch(ROLLOUTS, namespace, "web", image_patch("web:2"))
    v2 = (await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused"))["currentRevision"]
    await wait_for(
        roles_are(kube, namespace, {v1: ("stable", None), v2: ("canary", "canary")}),
        what="the canary's pods role=canary, the stable's role=stable",
    )
    await annotate(kube, namespace, "rollout.dev/abort")
    await wait_for(phase_is(kube, namespace, "Degraded"), what="aborted")
    # Aborted: v2 is still the canary revision; its pods keep that role until scaled down.
    await wait_for(roles_are(kube, namespace, {v1: ("stable", None)}), what="v1 still role=stable")
    pods = await pods_of(kube, namespace)
    assert all(p[1] == "canary" for p in (pods.get(v2) or {}).values()), pods

    await kube.patch(ROLLOUTS, namespace, "web", image_patch("web:3"))
    v3 = (await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused on v3"))["currentRevision"]
    during = await wait_for(
        roles_are(kube, namespace, {v1: ("stable", None), v3: ("canary", "canary")}), what="v3 role=canary"
    )
    await annotate(kube, namespace, "rollout.dev/promote")

    async def completed():
        status = await status_of(kube, namespace)()
        return status if status.get("phase") == "Healthy" and status.get("stableRevision") == v3 else None

    await wait_for(completed, what="v3 stable")
    after = await wait_for(roles_are(kube, namespace, {v3: ("stable", None)}), what="v3's pods role=stable")
    same = {name for name, (uid, _, _) in during[v3].items() if after[v3].get(name, (None,))[0] == uid}
    assert same, f"relabelled in place, not recreated: {during[v3]} then {after[v3]}"
    for name in ("web-stable", "web-canary"):
        selector = (await kube.get(SERVICES, namespace, name))["spec"]["selector"]
        assert "role" not in selector, selector


async def test_blue_green_pods_switch_role_in_place(kube, namespace, pods_made_ready, start_controller):
    start_controller()
    for name in ("web-active", "web-preview"):
        await kube.create(SERVICES, namespace, service_manifest(name, namespace=namespace))
    strategy = {
        "blueGreen": {
            "activeService": "web-active",
            "previewService": "web-preview",
            "autoPromotionEnabled": False,
            "scaleDownDelaySeconds": 2,
            "activeMetadata": {"labels": {"role": "active"}},
            "previewMetadata": {
                "labels": {"role": "preview"},
                "annotations": {"example.com/tier": "preview"},
            },
        }
    }
    await kube.create(
        ROLLOUTS, namespace, rollout_manifest(namespace=namespace, replicas=2, strategy=strategy)
    )
    blue = (await wait_for(phase_is(kube, namespace, "Healthy"), what="blue"))["stableRevision"]
    await wait_for(roles_are(kube, namespace, {blue: ("active", None)}), what="blue's pods role=active")
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("web:2"))
    paused = await wait_for(phase_is(kube, namespace, "Paused"), what="green waiting for promotion")
    green = paused["currentRevision"]
    during = await wait_for(
        roles_are(kube, namespace, {blue: ("active", None), green: ("preview", "preview")}),
        what="green's pods role=preview",
    )
    await annotate(kube, namespace, "rollout.dev/promote")
    after = await wait_for(
        roles_are(kube, namespace, {green: ("active", None)}), what="green's pods role=active"
    )
    assert {n: p[0] for n, p in during[green].items()} == {n: p[0] for n, p in after[green].items()}


def anti_affinity_terms(replicaset):
    affinity = ((replicaset["spec"]["template"].get("spec") or {}).get("affinity") or {}).get(
        "podAntiAffinity"
    ) or {}
    return affinity


async def test_anti_affinity_keeps_the_canary_apart_until_it_is_alone(
    kube, namespace, pods_made_ready, routing_installed, start_controller
):
    start_controller()
    steps = [{"setWeight": 50}, {"pause": {}}]
    separation = {"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 60}}
    v1 = await deploy_http_canary(kube, namespace, steps, replicas=2, antiAffinity=separation)
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("web:2"))
    v2 = (await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused"))["currentRevision"]
    canary_rs = await kube.get(REPLICASETS, namespace, f"web-{v2}")
    term = {
        "weight": 60,
        "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"rollout.dev/revision": v1}},
            "topologyKey": "kubernetes.io/hostname",
        },
    }
    assert anti_affinity_terms(canary_rs) == {"preferredDuringSchedulingIgnoredDuringExecution": [term]}
    pods = await kube.list(PODS, namespace, f"rollout.dev/revision={v2}")
    assert pods and all(
        p["spec"]["affinity"]["podAntiAffinity"] == anti_affinity_terms(canary_rs) for p in pods
    )
    assert anti_affinity_terms(await kube.get(REPLICASETS, namespace, f"web-{v1}")) == {}  # stable: none

    await annotate(kube, namespace, "rollout.dev/promote")

    async def alone():
        status = await status_of(kube, namespace)()
        rs = await kube.get(REPLICASETS, namespace, f"web-{v2}")
        done = status.get("phase") == "Healthy" and status.get("stableRevision") == v2
        return rs if done and not anti_affinity_terms(rs) else None

    await wait_for(alone, what="the term gone from v2's template once it is alone")


async def test_a_required_anti_affinity_is_named_when_the_canary_makes_no_progress(
    kube, namespace, pods_made_ready, routing_installed, start_controller
):
    start_controller()
    separation = {"requiredDuringSchedulingIgnoredDuringExecution": {}}
    await deploy_http_canary(kube, namespace, [{"setWeight": 50}], replicas=1, antiAffinity=separation)
    await kube.patch(ROLLOUTS, namespace, "web", {"spec": {"progressDeadlineSeconds": 5}})
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("web:broken"))  # its pods never get Ready

    async def degraded():
        status = await status_of(kube, namespace)()
        return status if "antiAffinity is required" in status.get("message", "") else None

    status = await wait_for(degraded, what="the deadline message naming the required anti-affinity")
    assert status["phase"] == "Degraded", status
