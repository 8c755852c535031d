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


def start(sim):
    """The command's reconcile evicts nothing (restartedAt is stored first) and looks again at
    once; the decision of that next look."""
    started = sim.reconcile(Command("restart"))
    assert "RestartStarted" in reasons(started), reasons(started)
    assert not any(isinstance(a, EvictPod) for a in started.actions) and started.requeue_after == 0.0
    return sim.reconcile()


def test_a_restart_evicts_one_pod_at_a_time_until_every_pod_is_new():
    sim = healthy()
    stable = sim.status["stableRevision"]
    sim.now = sim.now.replace(microsecond=500_000)
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -30, True))
    started = sim.reconcile(Command("restart"))
    assert reasons(started)[:1] == ["RestartStarted"] and started.actions == []
    first = sim.reconcile()
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
    assert start(sim).actions == [EvictPod("a")]


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
    assert start(sim).actions == [EvictPod("a")]
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
    assert start(sim).actions == [EvictPod("a")]
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
    assert start(sim).actions == [EvictPod("a")]
    sim.pods = pods(sim, ("b", -60, True), ("c", -0.5, True), ("a2", 0, True))
    assert sim.reconcile().actions == [EvictPod("b")]
    sim.pods = pods(sim, ("c", -0.5, True), ("a2", 0, True), ("b2", 0, True))
    assert "RestartCompleted" in reasons(sim.reconcile())


def test_a_single_replica_is_not_restarted():
    """Evicting the only pod would leave the Service without a Ready endpoint."""
    sim = Sim(rollout_manifest(replicas=1))
    sim.settle()
    sim.pods = pods(sim, ("a", -90, True))
    refused = sim.reconcile(Command("restart"))
    assert "RestartIgnored" in reasons(refused) and "restartedAt" not in sim.status
    assert "scale to 2 or more first" in refused.events[-1].message
    assert sim.reconcile().actions == []


def test_a_restart_that_replaces_nothing_for_the_progress_deadline_fails_and_ends():
    sim = healthy()
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -30, True))
    assert start(sim).actions == [EvictPod("a")]
    sim.tick()
    sim.pods = pods(sim, ("b", -61, True), ("c", -31, True), ("a2", 0, False))  # never Ready
    sim.tick(599)
    assert sim.reconcile().actions == [] and "restartedAt" in sim.status
    sim.tick(2)
    failed = sim.reconcile()
    assert "RestartFailed" in reasons(failed) and "restartedAt" not in sim.status
    message = next(e.message for e in failed.events if e.reason == "RestartFailed")
    assert "no pod replaced for 600s" in message and "not Ready yet" in message
    assert "restarting" not in sim.status["message"]
    assert sim.reconcile().actions == []


def test_abort_at_rest_stops_a_running_restart():
    sim = healthy()
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -30, True))
    start(sim)
    stopped = sim.reconcile(Command("abort"))
    assert "RestartCancelled" in reasons(stopped) and "restartedAt" not in sim.status
    assert not any(isinstance(a, EvictPod) for a in stopped.actions)
    assert sim.status["phase"] == "Healthy" and not sim.status.get("aborted")


def test_a_replacement_ready_but_not_yet_available_holds_the_next_eviction():
    """minReadySeconds: the ReplicaSet counts a Ready pod available only after it."""
    sim = healthy()
    sim.pods = pods(sim, ("a", -90, True), ("b", -60, True), ("c", -30, True))
    assert start(sim).actions == [EvictPod("a")]
    stable = next(iter(sim.replicasets.values()))
    stable.available = 2  # a2 Ready, within minReadySeconds
    sim.pods = pods(sim, ("b", -61, True), ("c", -31, True), ("a2", 0, True))
    held = sim.reconcile()
    assert held.actions == [] and "not yet available (2/3)" in sim.status["message"]
    stable.available = 3
    assert sim.reconcile().actions == [EvictPod("b")]
