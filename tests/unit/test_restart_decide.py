"""The restart wired into the engine's decide step (pure, time passed in): the command starts it
only at rest, each reconcile evicts at most one pod and only once the last replacement is Ready,
the message counts progress, and an update or abort meanwhile stops it."""

from datetime import timedelta

from rollout.engine import Command
from rollout.engine.types import EvictPod, PodState
from tests.manifests import rollout_manifest
from tests.sim import Sim

CANARY = {
    "canary": {
        "stableService": "web-stable",
        "canaryService": "web-canary",
        "steps": [{"setWeight": 20}, {"pause": {}}],
    }
}


def healthy(strategy=None):
    sim = Sim(rollout_manifest(replicas=3, strategy=strategy))
    sim.services = {"web-stable": {"app": "web"}, "web-canary": {"app": "web"}}
    sim.settle()
    assert sim.status["phase"] == "Healthy"
    return sim


def pods(sim, *specs):
    """PodState per (name, seconds from now, ready)."""
    return tuple(PodState(n, sim.now + timedelta(seconds=s), ready) for n, s, ready in specs)


def reasons(decision):
    return [e.reason for e in decision.events]


def test_a_restart_evicts_one_pod_at_a_time_until_every_pod_is_new():
    sim = healthy()
    stable = sim.status["stableRevision"]
    sim.now = sim.now.replace(microsecond=500_000)
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -30, True))
    first = sim.reconcile(Command("restart"))
    assert reasons(first)[:1] == ["RestartStarted"]
    assert first.actions == [EvictPod("a")]
    # the newest pod's creation + 1 s: earlier than now, and on the API server's clock
    newest = sim.now.replace(microsecond=0) - timedelta(seconds=29)
    assert sim.status["restartedAt"] == newest.isoformat().replace("+00:00", "Z")
    assert sim.status["phase"] == "Progressing"
    assert sim.status["message"] == f"Revision {stable}: 3/3 available; restarting: 0/3 pods replaced"
    assert first.requeue_after is not None and first.requeue_after <= 1.0

    sim.tick()  # a's replacement exists but is not Ready: nothing goes
    sim.pods = pods(sim, ("b", -61, True), ("c", -31, True), ("a2", 0, False))
    waiting = sim.reconcile()
    assert waiting.actions == [] and "restartedAt" in sim.status
    assert sim.status["message"].endswith("the last replacement is not Ready yet (2/3)")

    sim.pods = pods(sim, ("b", -61, True), ("c", -31, True), ("a2", 0, True))
    assert sim.reconcile().actions == [EvictPod("b")]
    assert "restarting: 1/3 pods replaced" in sim.status["message"]

    sim.pods = pods(sim, ("a2", 0, True), ("b2", 0, True), ("c2", 0, True))
    done = sim.reconcile()
    assert done.actions == [] and "RestartCompleted" in reasons(done)
    assert "restartedAt" not in sim.status and sim.status["phase"] == "Healthy"
    assert sim.status["stableRevision"] == sim.status["currentRevision"] == stable


def test_a_restart_makes_no_replicaset_and_writes_no_traffic():
    sim = healthy(CANARY)
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -30, True))
    decision = sim.reconcile(Command("restart"))
    assert decision.actions == [EvictPod("a")]


def test_a_restart_during_an_update_is_refused():
    sim = healthy(CANARY)
    sim.set_image("web:2")
    sim.reconcile()
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -30, True))
    decision = sim.reconcile(Command("restart"))
    assert "RestartIgnored" in reasons(decision) and "RestartStarted" not in reasons(decision)
    assert not any(isinstance(a, EvictPod) for a in decision.actions)
    assert "restartedAt" not in sim.status


def test_a_restart_while_paused_is_refused_and_a_pause_holds_a_running_one():
    sim = healthy()
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -30, True))
    sim.reconcile(Command("pause"))
    refused = sim.reconcile(Command("restart"))
    assert "RestartIgnored" in reasons(refused) and "restartedAt" not in sim.status
    sim.reconcile(Command("resume"))
    assert sim.reconcile(Command("restart")).actions == [EvictPod("a")]
    sim.pods = pods(sim, ("b", -60, True), ("c", -30, True), ("a2", 1, True))
    held = sim.reconcile(Command("pause"))
    assert held.actions == [] and "restarting: 1/3 pods replaced (held while paused)" in sim.status["message"]
    assert sim.reconcile(Command("resume")).actions == [EvictPod("b")]


def test_a_second_restart_while_one_runs_is_ignored():
    sim = healthy()
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -30, True))
    sim.reconcile(Command("restart"))
    asked = sim.status["restartedAt"]
    sim.tick(5)
    again = sim.reconcile(Command("restart"))
    assert "RestartIgnored" in reasons(again) and sim.status["restartedAt"] == asked


def test_a_new_revision_stops_a_running_restart():
    sim = healthy(CANARY)
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -30, True))
    sim.reconcile(Command("restart"))
    sim.set_image("web:2")
    decision = sim.reconcile()
    assert "RestartCancelled" in reasons(decision)
    assert not any(isinstance(a, EvictPod) for a in decision.actions)
    assert "restartedAt" not in sim.status


def test_a_controller_clock_ahead_of_the_api_servers_does_not_evict_replacements_again():
    """Pods are stamped by the API server; here the controller's clock runs 10 s ahead of it."""
    sim = healthy()
    server = -10  # the API server's now, in seconds from the controller's
    sim.pods = pods(sim, ("a", server - 90, True), ("b", server - 60, True), ("c", server - 30, True))
    assert sim.reconcile(Command("restart")).actions == [EvictPod("a")]
    sim.tick()
    sim.pods = pods(sim, ("b", server - 61, True), ("c", server - 31, True), ("a2", server, True))
    assert sim.reconcile().actions == [EvictPod("b")]
    sim.pods = pods(sim, ("c", server - 31, True), ("a2", server, True), ("b2", server, True))
    assert sim.reconcile().actions == [EvictPod("c")]
    sim.pods = pods(sim, ("a2", server, True), ("b2", server, True), ("c2", server, True))
    done = sim.reconcile()
    assert done.actions == [] and "RestartCompleted" in reasons(done), "replacements are not evicted again"


def test_a_pod_made_within_the_second_of_the_restart_counts_as_new():
    """creationTimestamp has whole seconds: a pod stamped with the second of the command cannot be
    told from a replacement, so it is kept (it is that fresh anyway)."""
    sim = healthy()
    sim.now = sim.now.replace(microsecond=700_000)
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -0.5, True))
    assert sim.reconcile(Command("restart")).actions == [EvictPod("a")]
    sim.pods = pods(sim, ("b", -60, True), ("c", -0.5, True), ("a2", 0, True))
    assert sim.reconcile().actions == [EvictPod("b")]
    sim.pods = pods(sim, ("c", -0.5, True), ("a2", 0, True), ("b2", 0, True))
    assert "RestartCompleted" in reasons(sim.reconcile())
