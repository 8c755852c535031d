"""Workload adapters against the emulated API server: ReplicaSets per revision and Service pinning."""

from rollout.api.rollout import parse_rollout
from rollout.controller.kube import REPLICASETS, ROLLOUTS, SERVICES
from rollout.controller.reconciler import Reconciler
from rollout.engine.types import CreateReplicaSet, PinService
from tests.integration.conftest import NS
from tests.manifests import rollout_manifest, service_manifest


async def test_pinning_merges_the_revision_into_the_selector(cluster):
    service = service_manifest("web-stable")
    service["spec"]["selector"]["tier"] = "frontend"
    await cluster.kube.create(SERVICES, NS, service)
    rollout = await cluster.kube.create(ROLLOUTS, NS, rollout_manifest())
    reconciler = Reconciler(cluster.kube)
    await reconciler.apply_action(parse_rollout(rollout), PinService("web-stable", "abc123def0"))
    pinned = await cluster.kube.get(SERVICES, NS, "web-stable")
    assert pinned["spec"]["selector"] == {
        "app": "web",
        "tier": "frontend",
        "rollout.dev/revision": "abc123def0",
    }
    assert pinned["spec"]["ports"] == service["spec"]["ports"]  # the rest untouched
    await reconciler.apply_action(parse_rollout(rollout), PinService("web-stable", "fff0001111"))
    repinned = await cluster.kube.get(SERVICES, NS, "web-stable")
    assert repinned["spec"]["selector"]["rollout.dev/revision"] == "fff0001111"
    assert repinned["spec"]["selector"]["tier"] == "frontend"


async def test_create_of_an_existing_replicaset_takes_it_over(cluster):
    """A reconcile whose status write was lost re-issues the create: the existing ReplicaSet is
    scaled instead of failing the reconcile."""
    rollout = parse_rollout(await cluster.kube.create(ROLLOUTS, NS, rollout_manifest()))
    reconciler = Reconciler(cluster.kube)
    await reconciler.apply_action(rollout, CreateReplicaSet("abc123def0", 1))
    await reconciler.apply_action(rollout, CreateReplicaSet("abc123def0", 3))
    [rs] = await cluster.kube.list(REPLICASETS, NS)
    assert rs["metadata"]["name"] == "web-abc123def0" and rs["spec"]["replicas"] == 3
