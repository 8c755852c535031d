"""Every file in examples/ is applied to the emulated cluster and its Rollouts reach Healthy."""

from pathlib import Path

import pytest
import yaml

from rollout.controller.kube import ROLLOUTS, SERVICES
from tests.waiting import wait_for

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
KINDS = {"Rollout": ROLLOUTS, "Service": SERVICES}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
async def test_example_applies_and_becomes_healthy(cluster, path):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    namespaces = {d["metadata"].setdefault("namespace", "default") for d in documents}
    for namespace in namespaces - {"shop"}:
        cluster.create_namespace(namespace)
    rollouts = [
        (d["metadata"]["namespace"], d["metadata"]["name"]) for d in documents if d["kind"] == "Rollout"
    ]
    assert rollouts, f"{path.name} has no Rollout"
    async with cluster.controller():
        for doc in documents:
            await cluster.kube.create(KINDS[doc["kind"]], doc["metadata"]["namespace"], doc)
        for namespace, name in rollouts:

            async def healthy(namespace=namespace, name=name):
                status = (await cluster.kube.get(ROLLOUTS, namespace, name) or {}).get("status") or {}
                return status if status.get("phase") == "Healthy" else None

            status = await wait_for(healthy, timeout=30, what=f"{name} Healthy")
            assert status["stableRevision"] == status["currentRevision"]
            assert status["availableReplicas"] == next(
                d["spec"]["replicas"]
                for d in documents
                if d["kind"] == "Rollout" and d["metadata"]["name"] == name
            )
