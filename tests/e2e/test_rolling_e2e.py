"""The rolling-update scenarios of the integration suite, on a real API server."""

import signal

import pytest
from kubernetes.client.exceptions import ApiException

from rollout.kube import REPLICASETS, ROLLOUTS
from tests.e2e.helpers import wait_for
from tests.manifests import image_patch, rollout_manifest

pytestmark = pytest.mark.e2e


def healthy(kube, ns, not_revision=None):
    async def probe():
        status = ((await kube.get(ROLLOUTS, ns, "web")) or {}).get("status") or {}
        ok = status.get("phase") == "Healthy" and status.get("stableRevision") == status.get(
            "currentRevision"
        )
        return status if ok and status.get("stableRevision") != not_revision else None

    return probe


async def replicas_by_revision(kube, ns):
    return {rs["metadata"]["labels"]["rollout.dev/revision"]: rs for rs in await kube.list(REPLICASETS, ns)}


async def test_rolling_update_and_abort(kube, namespace, pods_made_ready, start_controller):
    start_controller()
    await kube.create(ROLLOUTS, namespace, rollout_manifest(namespace=namespace, replicas=3))
    v1 = (await wait_for(healthy(kube, namespace), what="first deploy"))["stableRevision"]

    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    v2 = (await wait_for(healthy(kube, namespace, not_revision=v1), what="v2 Healthy"))["stableRevision"]
    rs = await replicas_by_revision(kube, namespace)
    assert rs[v2]["spec"]["replicas"] == 3 and rs[v1]["spec"]["replicas"] == 0

    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:broken"))

    async def stuck():
        rs = await replicas_by_revision(kube, namespace)
        return len([r for r in rs.values() if r["spec"]["replicas"] > 0]) == 2

    await wait_for(stuck, what="broken revision started")
    await kube.patch(ROLLOUTS, namespace, "web", {"metadata": {"annotations": {"rollout.dev/abort": "yes"}}})

    async def restored():
        rollout = await kube.get(ROLLOUTS, namespace, "web")
        rs = await replicas_by_revision(kube, namespace)
        others = [r["spec"]["replicas"] for rev, r in rs.items() if rev != v2]
        ok = rollout["status"].get("aborted") and rs[v2]["spec"]["replicas"] == 3 and set(others) == {0}
        return rollout if ok else None

    rollout = await wait_for(restored, what="abort back to v2")
    assert rollout["status"]["phase"] == "Degraded"
    assert "rollout.dev/abort" not in (rollout["metadata"].get("annotations") or {})


async def test_killed_controller_resumes_from_status(kube, namespace, pods_made_ready, start_controller):
    first = start_controller()
    await kube.create(
        ROLLOUTS,
        namespace,
        rollout_manifest(
            namespace=namespace, replicas=4, strategy={"rolling": {"maxSurge": 1, "maxUnavailable": 0}}
        ),
    )
    v1 = (await wait_for(healthy(kube, namespace), what="first deploy"))["stableRevision"]
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))

    async def started():
        return len(await replicas_by_revision(kube, namespace)) == 2

    await wait_for(started, what="update started")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    start_controller()
    final = await wait_for(healthy(kube, namespace, not_revision=v1), what="Healthy after restart")
    rs = await replicas_by_revision(kube, namespace)
    assert rs[final["stableRevision"]]["spec"]["replicas"] == 4 and rs[v1]["spec"]["replicas"] == 0


async def test_invalid_spec_and_schema_errors(kube, namespace, start_controller):
    start_controller()
    with pytest.raises(ApiException) as rejected:
        await kube.create(ROLLOUTS, namespace, rollout_manifest(namespace=namespace, replicas=-1))
    assert rejected.value.status == 422 and "spec.replicas" in rejected.value.body
    bad_weight = rollout_manifest(namespace=namespace, strategy={"canary": {"steps": [{"setWeight": 120}]}})
    with pytest.raises(ApiException) as rejected:
        await kube.create(ROLLOUTS, namespace, bad_weight)
    assert rejected.value.status == 422 and "setWeight" in rejected.value.body

    manifest = rollout_manifest(namespace=namespace)
    manifest["spec"]["selector"]["matchLabels"] = {"app": "other"}
    await kube.create(ROLLOUTS, namespace, manifest)

    async def invalid():
        status = ((await kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
        return status if any(c["type"] == "InvalidSpec" for c in status.get("conditions", [])) else None

    status = await wait_for(invalid, what="InvalidSpec")
    assert status["phase"] == "Degraded" and "spec.selector" in status["message"]
    assert await kube.list(REPLICASETS, namespace) == []

    # an unknown step type arrives pruned to {} by the real server
    await kube.create(
        ROLLOUTS,
        namespace,
        {
            **rollout_manifest(
                name="steps",
                namespace=namespace,
                strategy={"canary": {"steps": [{"setWeight": 5}, {"bogus": {}}]}},
            )
        },
    )

    async def pruned():
        status = ((await kube.get(ROLLOUTS, namespace, "steps")) or {}).get("status") or {}
        return status if "steps[1]" in status.get("message", "") else None

    await wait_for(pruned, what="InvalidSpec for the pruned step")
