"""On the real control plane, beside 600 Services no Rollout names (more than one page of the
caches' lists): the controller keeps whole only what its Rollouts read, yet a change to any of
those, made by someone else, reconciles the Rollout at once. The resync is 600 s away, so what
happens within seconds comes from the watches."""

import asyncio
import time

import pytest

from rollout.kube import ROLLOUTS, SERVICES
from tests.e2e.helpers import (
    HTTPROUTES,
    app_weights,
    deploy_http_canary,
    phase_is,
    wait_for,
    with_app_weights,
)
from tests.manifests import image_patch, service_manifest
from tests.processes import ControllerProcesses

pytestmark = pytest.mark.e2e

UNRELATED = 600


async def create_unrelated_services(kube, namespace):
    names = [f"unrelated-{i}" for i in range(UNRELATED)]
    for start in range(0, len(names), 50):
        batch = names[start : start + 50]
        await asyncio.gather(
            *(kube.create(SERVICES, namespace, service_manifest(n, namespace=namespace)) for n in batch)
        )


def weights_are(kube, namespace, wanted):
    async def probe():
        route = await kube.get(HTTPROUTES, namespace, "web")
        return route if app_weights(route) == wanted else None

    return probe


async def test_a_referenced_object_changed_by_someone_else_is_seen_at_once(
    kube, kubeconfig, namespace, pods_made_ready, routing_installed, tmp_path
):
    await create_unrelated_services(kube, namespace)
    processes = ControllerProcesses(str(kubeconfig), namespace, tmp_path, resync_seconds=600)
    processes.start()
    try:
        await deploy_http_canary(kube, namespace, [{"setWeight": 20}, {"pause": {}}], replicas=1)
        await kube.patch(ROLLOUTS, namespace, "web", image_patch("web:2"))
        await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused at 20%")
        await wait_for(weights_are(kube, namespace, {"web-stable": 80, "web-canary": 20}), what="80/20")

        # Someone sends everything back to stable by hand: the controller puts its weights back.
        route = await kube.get(HTTPROUTES, namespace, "web")
        drifted = with_app_weights(route, {"web-stable": 100, "web-canary": 0})
        changed = time.monotonic()
        await kube.patch(HTTPROUTES, namespace, "web", {"spec": drifted["spec"]})
        await wait_for(weights_are(kube, namespace, {"web-stable": 80, "web-canary": 20}), what="restored")
        restored = time.monotonic() - changed

        # The canary Service is deleted: InvalidSpec names it.
        changed = time.monotonic()
        await kube.delete(SERVICES, namespace, "web-canary")

        async def invalid():
            status = ((await kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
            conditions = status.get("conditions") or []
            return (
                any(c["type"] == "InvalidSpec" and "web-canary" in c["message"] for c in conditions) or None
            )

        await wait_for(invalid, what="InvalidSpec naming the deleted Service")
        noticed = time.monotonic() - changed
        print(f"\nroute drift restored in {restored:.2f} s; Service deletion noticed in {noticed:.2f} s")
        # Within a second of the change, give or take the 0.3 s between the test's looks.
        assert restored < 1.5 and noticed < 1.5, (restored, noticed)
        assert "Traceback" not in processes.log_of(0)
    finally:
        processes.stop_all()
