"""An autoscaler (an HPA writing spec.replicas through the scale subresource) changing the scale
mid-canary, on the simulator: the canary's share follows the new scale, the weight on the routes
stays the step's, and stable is never scaled to nothing while users are on it."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.manifests import canary_strategy
from tests.unit.scenarios import canary_sim

WEIGHT = 40


def paused_canary(routed):
    steps = [{"setWeight": WEIGHT}, {"pause": {}}]
    sim = canary_sim(
        canary_strategy(steps=steps) if routed else canary_strategy(steps=steps, routing=None), replicas=5
    )
    stable = sim.status["stableRevision"]
    sim.set_image("web:2")
    sim.settle()
    assert sim.status["phase"] == "Paused"
    return sim, stable, sim.revision_for("web:2")


def autoscale(sim, replicas):
    sim.manifest["spec"]["replicas"] = replicas
    sim.settle(rounds=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(st.integers(1, 12), min_size=1, max_size=6))
def test_the_canary_share_follows_an_autoscaler(routed, scales):
    sim, stable, canary_revision = paused_canary(routed)
    for replicas in scales:
        previous_writes = len(sim.traffic_writes)
        autoscale(sim, replicas)
        assert sim.status["phase"] == "Paused"
        assert sim.spec_of(canary_revision) == math.ceil(replicas * WEIGHT / 100)
        if routed:
            # stable keeps the whole scale (its users' 60% and more); the routes are not rewritten
            assert sim.spec_of(stable) == replicas
            assert len(sim.traffic_writes) == previous_writes
            assert sim.status["canary"]["weight"] == WEIGHT
        else:
            # the share of pods is the weight, rounded; never every pod on the canary
            assert sim.spec_of(stable) == max(replicas - sim.spec_of(canary_revision), 1)
            assert sim.status["canary"]["weight"] < 100  # as the status reports the share of pods
        assert sim.available_total() == sim.spec_of(stable) + sim.spec_of(canary_revision)


def test_scaled_down_to_one_without_routes_stable_keeps_a_pod():
    sim, stable, canary_revision = paused_canary(routed=False)
    autoscale(sim, 1)
    assert (sim.spec_of(stable), sim.spec_of(canary_revision)) == (1, 1)  # 50%, not 100% canary
    autoscale(sim, 10)
    assert (sim.spec_of(stable), sim.spec_of(canary_revision)) == (6, 4)
