"""dynamicStableScale and minPodsPerReplicaSet on the engine (tests/sim.py): the stable
ReplicaSet follows its share of the traffic down and comes back up before traffic returns to it,
and at no moment does stable carry more traffic than its available pods can, at any weight, on
abort, after lost status writes and refused API calls."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import parse_rollout
from rollout.engine import Command, Observed, decide
from tests.manifests import canary_strategy, http_route_manifest, rollout_manifest, virtual_service_manifest
from tests.sim import T0, Sim
from tests.unit.scenarios import check_route, operations

SERVICES = {"web-stable": {"app": "web"}, "web-canary": {"app": "web"}}


def dynamic_sim(replicas=10, steps=None, **extra):
    strategy = canary_strategy(
        steps if steps is not None else [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}],
        scale_down_delay=5,
        dynamicStableScale=True,
        **extra,
    )
    sim = Sim(
        rollout_manifest(replicas=replicas, strategy=strategy),
        services=dict(SERVICES),
        routes={"web": http_route_manifest()},
    )
    sim.settle()
    return sim


def stable_rs(sim):
    revision = sim.services["web-stable"][REVISION_LABEL]
    return next(rs for rs in sim.replicasets.values() if rs.revision == revision)


def canary_available(sim):
    revision = sim.services["web-canary"].get(REVISION_LABEL)
    return sum(rs.available for rs in sim.replicasets.values() if rs.revision == revision)


def carried(sim, replicas):
    """Stable's available pods are enough for the share of traffic the route sends it, and the
    canary has an available pod whenever the route sends it any."""
    weight = check_route(sim.routes["web"])
    need = math.ceil(replicas * (100 - weight) / 100)
    return stable_rs(sim).available >= need and (weight == 0 or canary_available(sim) > 0)


def drive(sim, rounds=10, ready=None):
    """Reconcile, each time making `ready` pods available (all when None), checking at each
    moment that stable carries its share."""
    for _ in range(rounds):
        sim.reconcile()
        assert carried(sim, sim.manifest["spec"]["replicas"])
        sim.pods_ready(ready)
        sim.tick(1)


def test_stable_scales_down_as_the_canary_takes_traffic_and_up_before_it_gives_it_back():
    sim = dynamic_sim()
    sim.set_image("web:2")
    drive(sim)
    assert check_route(sim.routes["web"]) == 20 and sim.status["phase"] == "Paused"
    assert stable_rs(sim).spec == 8  # 80 % of 10 pods
    assert sim.status["canary"]["stableReplicas"] == 8
    sim.reconcile(Command("promote"))
    drive(sim)
    assert check_route(sim.routes["web"]) == 60 and stable_rs(sim).spec == 4
    # Abort: stable back to 10 first; traffic follows one available pod at a time.
    stable_revision = stable_rs(sim).revision
    sim.reconcile(Command("abort"))
    weights = []
    for _ in range(12):
        sim.reconcile()
        assert carried(sim, 10)
        weights.append(check_route(sim.routes["web"]))
        sim.pods_ready(1)
        sim.tick(1)
    assert weights[0] == 60 and weights[-1] == 0
    assert weights == sorted(weights, reverse=True) and len(set(weights)) > 3  # stepwise, never up
    assert stable_rs(sim).spec == 10 and stable_rs(sim).revision == stable_revision
    assert "stableReplicas" not in sim.status["canary"]
    # abortScaleDownDelaySeconds (5 s) after traffic is back, the canary goes.
    drive(sim, rounds=8)
    assert all(rs.spec == 0 for rs in sim.replicasets.values() if rs.revision != stable_revision)


def test_a_completed_canary_leaves_the_new_revision_at_full_scale_and_the_old_one_down():
    sim = dynamic_sim(steps=[{"setWeight": 50}, {"setWeight": 90}])
    sim.set_image("web:2")
    drive(sim, rounds=25)
    assert sim.status["phase"] == "Healthy" and check_route(sim.routes["web"]) == 0
    new = sim.revision_for("web:2")
    assert sim.status["stableRevision"] == new and stable_rs(sim).revision == new
    assert {rs.revision: rs.spec for rs in sim.replicasets.values()} == {
        sim.revision_for("web:1"): 0,
        new: 10,
    }


def test_min_pods_per_replica_set_floors_the_canary_and_the_scaled_stable():
    sim = dynamic_sim(
        steps=[{"setWeight": 5}, {"pause": {}}, {"setWeight": 95}, {"pause": {}}], minPodsPerReplicaSet=2
    )
    sim.set_image("web:2")
    drive(sim)
    canary = next(rs for rs in sim.replicasets.values() if rs.revision == sim.revision_for("web:2"))
    assert canary.spec == 2  # ceil(10 x 5 %) = 1, floored at 2
    sim.reconcile(Command("promote"))
    drive(sim)
    assert check_route(sim.routes["web"]) == 95 and stable_rs(sim).spec == 2  # 1 pod's need, floored


def test_a_new_revision_mid_canary_waits_for_stable_pods_before_the_old_canary_loses_traffic():
    sim = dynamic_sim()
    sim.set_image("web:2")
    drive(sim)
    sim.reconcile(Command("promote"))
    drive(sim)
    assert stable_rs(sim).spec == 4
    sim.set_image("web:3")
    sim.reconcile()
    assert check_route(sim.routes["web"]) == 60  # stable has 4 pods available: 40 % at most
    assert stable_rs(sim).spec == 10
    drive(sim, rounds=20, ready=1)
    assert sim.status["phase"] == "Paused" and check_route(sim.routes["web"]) == 20
    assert sim.services["web-canary"][REVISION_LABEL] == sim.revision_for("web:3")


def test_without_traffic_routing_both_fields_are_invalid_with_their_paths():
    strategy = canary_strategy([{"setWeight": 50}], None, dynamicStableScale=True, minPodsPerReplicaSet=2)
    decision = decide(parse_rollout(rollout_manifest(strategy=strategy)), Observed(), (), T0)
    invalid = decision.status.condition("InvalidSpec")
    assert invalid is not None and invalid.status == "True"
    assert (
        "spec.strategy.canary.dynamicStableScale: dynamicStableScale needs trafficRouting" in invalid.message
    )
    assert (
        "spec.strategy.canary.minPodsPerReplicaSet: minPodsPerReplicaSet needs trafficRouting"
        in invalid.message
    )
    assert any(e.reason == "InvalidSpec" and e.type == "Warning" for e in decision.events)
    assert not decision.actions


step = st.one_of(
    st.integers(0, 100).map(lambda w: {"setWeight": w}),
    st.just({"pause": {}}),
    st.integers(0, 20).map(lambda s: {"pause": {"duration": s}}),
    st.just({"setHeaderRoute": {"name": "dark", "match": [{"header": "x-canary", "exact": "1"}]}}),
)
operation = operations(
    4,
    20,
    st.tuples(st.just("fault"), st.integers(0, 3)),  # the API refuses an action, the rest skipped
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(step, min_size=1, max_size=6),
    st.integers(1, 8),
    st.integers(1, 3),
    st.lists(operation, min_size=1, max_size=40),
)
def test_stable_always_has_the_pods_for_its_traffic(steps, replicas, min_pods, script):
    sim = dynamic_sim(replicas=replicas, steps=steps, minPodsPerReplicaSet=min_pods)
    sim.set_image("web:2")
    for kind, value in script:
        commands = sim.operate(kind, value) if kind not in ("crash", "fault") else ()
        sim.reconcile(*commands, lose_status=kind == "crash", fail_from=value if kind == "fault" else None)
        assert carried(sim, replicas)
        if kind == "ready":
            sim.pods_ready(value)
        sim.tick(value if kind == "wait" else 1)
    sim.reconcile(Command("abort"))
    for _ in range(30):
        sim.reconcile()
        assert carried(sim, replicas)
        sim.pods_ready(1)
        sim.tick(1)
    assert check_route(sim.routes["web"]) == 0
    assert stable_rs(sim).spec == replicas == stable_rs(sim).available


def test_with_istio_subsets_and_no_canary_service_the_old_canary_keeps_its_share_until_stable_can():
    routing = {
        "istio": {
            "virtualService": {"name": "web", "routes": ["primary"]},
            "destinationRule": {"name": "web", "stableSubset": "stable", "canarySubset": "canary"},
        }
    }
    strategy = canary_strategy([{"setWeight": 60}, {"pause": {}}], routing, dynamicStableScale=True)
    del strategy["canary"]["stableService"], strategy["canary"]["canaryService"]
    route = virtual_service_manifest()
    for entry in route["spec"]["http"][1]["route"]:
        entry["destination"] = {"host": "web", "subset": entry["destination"]["host"].removeprefix("web-")}
    sim = Sim(
        rollout_manifest(replicas=10, strategy=strategy),
        routes={"web": route},
        subsets={"stable": {"app": "web"}, "canary": {"app": "web"}},
    )
    sim.settle()
    v1 = sim.status["stableRevision"]

    def weights():
        return [r["weight"] for r in sim.routes["web"]["spec"]["http"][1]["route"]]

    def stable_pods():
        return next(rs for rs in sim.replicasets.values() if rs.revision == v1)

    sim.set_image("web:2")
    for _ in range(10):
        sim.reconcile()
        sim.pods_ready()
        sim.tick(1)
    assert weights() == [40, 60] and stable_pods().spec == 4
    sim.set_image("web:3")
    seen = []
    for _ in range(25):
        sim.reconcile()
        w = weights()
        assert stable_pods().available >= math.ceil(10 * w[0] / 100), (w, stable_pods())
        seen.append(w[1])
        sim.pods_ready(1)
        sim.tick(1)
    assert seen[0] == 60 and 0 in seen  # web:2 kept its share until stable had its pods back
    assert sim.subsets["canary"][REVISION_LABEL] == sim.revision_for("web:3") and weights() == [40, 60]
