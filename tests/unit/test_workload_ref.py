"""spec.workloadRef on the simulator: a Deployment taken over by a Rollout, its bad inputs, and the
migration's capacity (never fewer available pods than before, at any step)."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.api.rollout import parse_rollout
from rollout.engine import Observed, decide
from rollout.engine.decide import current_revision
from rollout.engine.types import ScaleDeployment
from rollout.engine.validation import claims_of
from tests.manifests import adopting_manifest, deployment_manifest, rollout_manifest
from tests.sim import T0, Sim


def adopting(scale_down="progressively", replicas=5, deployment_replicas=5, strategy=None):
    sim = Sim(adopting_manifest(scale_down=scale_down, replicas=replicas, strategy=strategy))
    sim.deployment = deployment_manifest(replicas=deployment_replicas)
    sim.deployment_available = deployment_replicas
    return sim


def invalid_message(decision):
    condition = decision.status.condition("InvalidSpec")
    assert condition is not None and condition.status == "True", decision.status.message
    return condition.message


def test_the_rollout_takes_the_deployments_template_and_selector():
    sim = adopting()
    sim.reconcile()
    with_template = rollout_manifest(replicas=5)  # the same template, written in the Rollout
    assert sim.status["currentRevision"] == current_revision(parse_rollout(with_template).rollout)
    assert sim.status["selector"] == "app=web"
    [rs] = sim.replicasets.values()
    assert rs.spec == 5  # the first revision: stable at once, at full scale beside the Deployment


def test_template_and_workload_ref_together_are_invalid():
    manifest = rollout_manifest()
    manifest["spec"]["workloadRef"] = {"name": "web"}
    decision = Sim(manifest).reconcile()
    message = invalid_message(decision)
    assert "spec.template and spec.workloadRef are mutually exclusive" in message
    assert not decision.actions


def test_neither_template_nor_workload_ref_is_invalid():
    manifest = rollout_manifest()
    del manifest["spec"]["template"]
    message = invalid_message(Sim(manifest).reconcile())
    assert "one of spec.template or spec.workloadRef is required" in message


def test_selector_beside_workload_ref_is_invalid():
    manifest = adopting_manifest()
    manifest["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    sim = Sim(manifest)
    sim.deployment = deployment_manifest()
    assert "spec.selector is taken from the Deployment" in invalid_message(sim.reconcile())


def test_a_missing_deployment_is_invalid_and_nothing_moves():
    decision = Sim(adopting_manifest(deployment="gone")).reconcile()
    assert invalid_message(decision) == "spec.workloadRef.name: Deployment shop/gone not found"
    assert not decision.actions
    assert decision.status.phase == "Degraded"


def test_a_deployment_whose_selector_an_older_rollout_owns_is_invalid():
    older = rollout_manifest("web-old")
    older["spec"]["selector"] = {"matchLabels": {"app": "web"}}  # the Deployment's pods
    older["spec"]["template"]["metadata"]["labels"] = {"app": "web"}
    older["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z"
    sim = adopting()
    sim.manifest["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    sim.others = (claims_of(parse_rollout(older).rollout),)
    decision = sim.reconcile()
    message = invalid_message(decision)
    assert message.startswith("spec.workloadRef.name: the selector 'app=web' of Deployment shop/web")
    assert "Rollout shop/web-old (older)" in message
    assert not decision.actions and sim.deployment["spec"]["replicas"] == 5


def test_a_deployment_another_rollout_took_over_is_invalid():
    older = adopting_manifest("web-old")
    older["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z"
    sim = adopting()
    sim.manifest["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    sim.others = (claims_of(parse_rollout(older).rollout),)
    message = invalid_message(sim.reconcile())
    assert "Deployment shop/web is already taken over by Rollout shop/web-old (older)" in message


def test_never_keeps_the_deployments_replicas():
    sim = adopting("never")
    sim.settle()
    assert sim.status["phase"] == "Healthy"
    assert sim.deployment["spec"]["replicas"] == 5
    assert not any(isinstance(a, ScaleDeployment) for d in sim.decisions for a in d.actions)


def test_onsuccess_scales_to_zero_only_once_healthy():
    sim2 = adopting("onsuccess")
    sim2.reconcile()
    for _ in range(4):  # the Rollout's pods one at a time: not Healthy yet, the Deployment stays
        rollout_rs = next(iter(sim2.replicasets.values()))
        rollout_rs.available += 1
        sim2.tick()
        sim2.reconcile()
        assert sim2.deployment["spec"]["replicas"] == 5
    next(iter(sim2.replicasets.values())).available += 1
    decision = sim2.reconcile()
    assert sim2.status["phase"] == "Healthy"
    assert [a for a in decision.actions if isinstance(a, ScaleDeployment)] == [ScaleDeployment("web", 0)]
    assert any(e.reason == "WorkloadScaledDown" and "onsuccess" in e.message for e in decision.events)


def test_progressively_scales_down_as_the_rollouts_pods_become_available():
    sim = adopting("progressively")
    sim.reconcile()
    rs = next(iter(sim.replicasets.values()))
    seen = []
    for _ in range(5):
        rs.available += 1
        sim.tick()
        sim.reconcile()
        seen.append(sim.deployment["spec"]["replicas"])
    assert seen == [4, 3, 2, 1, 0]


def test_a_change_to_the_deployments_template_goes_through_the_strategy():
    canary = {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}], "maxSurge": 1, "maxUnavailable": 0}}
    sim = adopting(strategy=canary)
    sim.settle()
    v1 = sim.status["stableRevision"]
    assert sim.deployment["spec"]["replicas"] == 0
    sim.set_image("web:2")
    v2 = sim.revision_for("web:2")
    sim.settle()
    assert sim.status["currentRevision"] == v2 != v1
    assert sim.status["stableRevision"] == v1
    assert sim.status["phase"] == "Paused"  # at the canary's pause: a new revision, steps and all
    assert sim.spec_of(v2) == 1 and sim.spec_of(v1) == 4  # 20% of 5, no trafficRouting
    assert sim.deployment["spec"]["replicas"] == 0  # scaled down stays down


def test_the_deployment_is_only_ever_scaled_down_by_the_engine():
    sim = adopting("progressively", deployment_replicas=2)  # fewer than the Rollout wants
    sim.reconcile()
    decision = decide(
        parse_rollout(copy.deepcopy(sim.manifest)),
        Observed(replicasets=sim.observed().replicasets, workload=sim.observed().workload),
        [],
        T0,
    )
    assert not [a for a in decision.actions if isinstance(a, ScaleDeployment)]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 8),
    st.sampled_from(["progressively", "onsuccess"]),
    st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=30),
)
def test_migration_never_loses_available_pods(replicas, scale_down, rounds):
    """A Deployment with all its pods available becomes a Rollout: at no step are fewer pods
    available (the Deployment's and the Rollout's together) than before, whatever the pace of
    readiness and crashes between the actions and the status write."""
    sim = adopting(scale_down, replicas=replicas, deployment_replicas=replicas)
    for ready, crash in rounds:
        sim.reconcile(lose_status=crash)
        assert sim.deployment_available + sim.available_total() >= replicas
        sim.pods_ready(ready)
        sim.tick()
    sim.settle()
    assert sim.deployment_available + sim.available_total() >= replicas
    assert sim.status["phase"] == "Healthy"
    assert sim.deployment["spec"]["replicas"] == 0
    assert sim.available_total() == replicas


def test_a_stable_service_moves_to_the_rollout_only_once_it_has_every_replica():
    """An unpinned Service selects the Deployment's pods too: pinning it to the Rollout's revision
    before that revision has all its replicas would leave users fewer pods."""
    canary = {
        "canary": {"stableService": "web-stable", "canaryService": "web-canary", "steps": [{"pause": {}}]}
    }
    sim = adopting(strategy=canary)
    sim.services = {"web-stable": {"app": "web"}, "web-canary": {"app": "web"}}
    sim.reconcile()
    [rs] = sim.replicasets.values()
    for _ in range(5):
        pinned = sim.services["web-stable"].get("rollout.dev/revision")
        behind = sim.available_total() + (0 if pinned else sim.deployment_available)
        assert behind >= 5  # pods behind the stable Service
        assert pinned is None  # not before the revision has 5
        assert "stays on the Deployment's pods" in sim.status["message"]
        rs.available += 1
        sim.tick()
        sim.reconcile()
    sim.settle()
    assert sim.services["web-stable"]["rollout.dev/revision"] == rs.revision
    assert sim.status["phase"] == "Healthy" and sim.deployment["spec"]["replicas"] == 0
