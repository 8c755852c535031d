"""Invariants of the rolling engine under random readiness, commands, crashes and restarts."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.api.base import resolve_int_or_percent
from rollout.engine import Command
from tests.manifests import rollout_manifest
from tests.sim import Sim

surge_or_unavailable = st.one_of(st.integers(0, 3), st.sampled_from(["0%", "25%", "50%", "100%"]))


@st.composite
def scenarios(draw):
    replicas = draw(st.integers(1, 8))
    surge = draw(surge_or_unavailable)
    unavailable = draw(surge_or_unavailable)
    if (
        resolve_int_or_percent(surge, replicas, round_up=True) == 0
        and resolve_int_or_percent(unavailable, replicas, round_up=False) == 0
    ):
        surge = 1
    # each round: how many pods become ready, and whether the controller crashes before its
    # status write (the actions happened, the status did not)
    rounds = draw(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=40))
    return replicas, surge, unavailable, rounds


def deployed(replicas, surge, unavailable):
    sim = Sim(
        rollout_manifest(
            replicas=replicas, strategy={"rolling": {"maxSurge": surge, "maxUnavailable": unavailable}}
        )
    )
    sim.settle()
    assert sim.status["phase"] == "Healthy"
    return sim


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_update_never_goes_below_min_available_or_above_surge(scenario):
    replicas, surge, unavailable, rounds = scenario
    min_available = replicas - resolve_int_or_percent(unavailable, replicas, round_up=False)
    max_total = replicas + resolve_int_or_percent(surge, replicas, round_up=True)
    sim = deployed(replicas, surge, unavailable)
    sim.set_image("web:2")
    for ready, crash in rounds:
        sim.reconcile(lose_status=crash)
        assert sim.available_total() >= min_available
        assert sum(rs.spec for rs in sim.replicasets.values()) <= max(max_total, replicas)
        sim.pods_ready(ready)
        sim.tick()
    sim.settle()
    assert sim.status["phase"] == "Healthy"
    assert sim.status["stableRevision"] == sim.status["currentRevision"]
    assert sim.spec_of(sim.status["currentRevision"]) == replicas
    assert sum(rs.spec for rs in sim.replicasets.values()) == replicas


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 39))
def test_abort_always_ends_with_stable_at_full_scale(scenario, abort_at):
    replicas, surge, unavailable, rounds = scenario
    sim = deployed(replicas, surge, unavailable)
    stable = sim.status["stableRevision"]
    sim.set_image("web:2")
    aborted = False
    for i, (ready, crash) in enumerate(rounds):
        commands = [Command("abort")] if i == min(abort_at, len(rounds) - 1) else []
        before = {rs.name: rs.spec for rs in sim.replicasets.values()}
        stable_ready = sum(rs.available for rs in sim.replicasets.values() if rs.revision == stable)
        # a crash may lose any status write but the one carrying the command (at most once)
        decision = sim.reconcile(*commands, lose_status=crash and not commands)
        aborted = aborted or bool(commands)
        if aborted:
            # while the stable revision is not fully available, nothing else is scaled down
            shrunk = [
                rs for rs in sim.replicasets.values() if rs.revision != stable and rs.spec < before[rs.name]
            ]
            assert not shrunk or stable_ready >= replicas, decision
        sim.pods_ready(ready)
        sim.tick()
    sim.settle()
    took_effect = any(e.reason == "RolloutAborted" for d in sim.decisions for e in d.events)
    if took_effect:
        assert sim.status["aborted"] is True and sim.status["phase"] == "Degraded"
        assert sim.status["stableRevision"] == stable
    else:  # the update had completed before the abort arrived
        stable = sim.status["stableRevision"]
    assert sim.spec_of(stable) == replicas
    assert sum(rs.available for rs in sim.replicasets.values() if rs.revision == stable) == replicas
    assert all(rs.spec == 0 for rs in sim.replicasets.values() if rs.revision != stable)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.lists(st.booleans(), min_size=40, max_size=40))
def test_restart_from_any_persisted_status_reaches_the_same_outcome(scenario, crashes):
    """A controller that loses its status write at random rounds (a crash between acting and
    writing) ends where an uninterrupted one does."""
    replicas, surge, unavailable, rounds = scenario
    smooth = deployed(replicas, surge, unavailable)
    bumpy = deployed(replicas, surge, unavailable)
    for sim in (smooth, bumpy):
        sim.set_image("web:2")
    for i, (ready, _) in enumerate(rounds):
        smooth.reconcile()
        bumpy.reconcile(lose_status=crashes[i])
        for sim in (smooth, bumpy):
            sim.pods_ready(ready)
            sim.tick()
    smooth.settle()
    bumpy.settle()
    for key in ("phase", "stableRevision", "currentRevision", "availableReplicas", "aborted"):
        assert smooth.status[key] == bumpy.status[key], key
    assert {rs.revision: rs.spec for rs in smooth.replicasets.values()} == {
        rs.revision: rs.spec for rs in bumpy.replicasets.values()
    }
