"""dynamicStableScale on the real control plane: the real ReplicaSet controller adds and removes
the pods, and each new pod takes 2 s to become Ready (the stand-in kubelet's ready-after
annotation). While the canary takes 75 % of the traffic, stable runs 1 of its 4 pods; on abort
stable is scaled back to 4 first, and the route keeps the canary's share until stable's new pods
are available; at no moment read back does the route send stable more than its available pods
carry. `kubectl get -o wide` and `rollout get` show the roles and the stable scale."""

import asyncio
import math
import subprocess
import time

import pytest

from rollout.kube import REPLICASETS, ROLLOUTS
from tests.chart import kubectl
from tests.e2e.helpers import (
    HTTPROUTES,
    annotate,
    app_weights,
    deploy_http_canary,
    phase_is,
    rollout_cli,
    wait_for,
)
from tests.manifests import image_patch

pytestmark = pytest.mark.e2e

REPLICAS = 4
SLOW_START = {"rollout.test/ready-after-seconds": "2"}


async def replicaset_of(kube, ns, revision):
    found = await kube.list(REPLICASETS, ns, f"rollout.dev/revision={revision}")
    return found[0] if found else None


async def sample(kube, ns, stable):
    """(canary weight on the route, stable's available pods, stable's scale): the route first,
    so a sample can only understate what stable had when the route said that weight (stable's
    pods only grow while traffic returns)."""
    weights = app_weights(await kube.get(HTTPROUTES, ns, "web"))
    rs = await replicaset_of(kube, ns, stable)
    return weights["web-canary"], (rs.get("status") or {}).get("availableReplicas", 0), rs["spec"]["replicas"]


async def test_stable_follows_its_traffic_down_and_comes_back_before_the_traffic(
    kube, kubeconfig, namespace, pods_made_ready, routing_installed, start_controller
):
    start_controller()
    v1 = await deploy_http_canary(
        kube,
        namespace,
        [{"setWeight": 75}, {"pause": {}}],
        REPLICAS,
        pod_annotations=SLOW_START,
        dynamicStableScale=True,
        abortScaleDownDelaySeconds=2,
        canaryMetadata={"labels": {"role": "canary"}},
        stableMetadata={"labels": {"role": "stable"}},
    )
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("web:2"))
    await wait_for(phase_is(kube, namespace, "Paused", 1), timeout=60, what="paused at 75 %")

    async def stable_scaled_down():
        weight, available, scale = await sample(kube, namespace, v1)
        return (weight, available, scale) if (weight, scale) == (75, 1) else None

    await wait_for(stable_scaled_down, what="stable at 1 pod under 25 % of the traffic")
    status = (await kube.get(ROLLOUTS, namespace, "web"))["status"]
    assert status["canary"]["stableReplicas"] == 1
    assert status["roles"] == "stable role=stable; canary role=canary"

    # What a person sees: kubectl's wide columns, and rollout get.
    table = subprocess.run(
        [kubectl(), "--kubeconfig", kubeconfig, "-n", namespace, "get", "rollouts", "-o", "wide"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[-2:] == ["ROLES", "STABLE-PODS"], header
    assert row.endswith("stable role=stable; canary role=canary   1"), row
    code, out, err = await rollout_cli(kubeconfig, namespace, "get", "rollout", "web")
    assert code == 0, err
    assert f"Stable scale: 1 of {REPLICAS} pods (dynamicStableScale)" in out
    assert "labels role=canary" in out and "labels role=stable" in out

    # Abort: stable back to 4 first; the canary keeps its 75 % until stable's pods are Ready.
    await annotate(kube, namespace, "rollout.dev/abort")
    aborted_at = time.monotonic()
    samples = []
    while time.monotonic() - aborted_at < 30:
        weight, available, scale = await sample(kube, namespace, v1)
        samples.append((time.monotonic() - aborted_at, weight, available, scale))
        need = math.ceil(REPLICAS * (100 - weight) / 100)
        assert available >= need, f"stable had {available} pods available under {100 - weight} %: {samples}"
        if weight == 0 and available == REPLICAS:
            break
        await asyncio.sleep(0.1)
    assert samples[-1][1:] == (0, REPLICAS, REPLICAS), samples
    # Stable was asked for its 4 pods at once, and the traffic waited for them: it held 75 % while
    # stable had only its 1 pod (each sample above held the traffic to what stable had; timed
    # against the pods' start this had been a fixed 1 s, which a faster controller missed by 30 ms).
    held = [(weight, available, scale) for _, weight, available, scale in samples]
    assert (75, 1, REPLICAS) in held, samples
    await wait_for(phase_is(kube, namespace, "Degraded"), what="aborted")
    # abortScaleDownDelaySeconds after the traffic left it, the canary is scaled down.
    rollout = await kube.get(ROLLOUTS, namespace, "web")
    v2 = rollout["status"]["currentRevision"]

    async def canary_gone():
        rs = await replicaset_of(kube, namespace, v2)
        return rs if rs is not None and rs["spec"]["replicas"] == 0 else None

    await wait_for(canary_gone, timeout=20, what="the aborted canary scaled down")
    assert "stableReplicas" not in (await kube.get(ROLLOUTS, namespace, "web"))["status"]["canary"]
