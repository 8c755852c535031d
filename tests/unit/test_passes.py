"""When a reconcile decides again before writing status (controller/passes.py): after a traffic
move only, and acting ahead of the status only where the next reconcile's act would be as safe."""

from rollout.controller.passes import decides_again, may_act_ahead
from rollout.engine.types import (
    CreateReplicaSet,
    DeleteReplicaSet,
    Observed,
    PinRevision,
    PinService,
    ReplicaSetState,
    ScaleReplicaSet,
    SetTraffic,
)
from rollout.traffic.base import TrafficState

OBSERVED = Observed(
    replicasets=(
        ReplicaSetState(name="web-old", revision="old", spec_replicas=4, replicas=4, ready=4, available=4),
        ReplicaSetState(name="web-new", revision="new", spec_replicas=1, replicas=1, ready=1, available=1),
    )
)


def test_a_traffic_move_or_a_pin_is_decided_again_and_nothing_else():
    assert decides_again([SetTraffic(TrafficState(weight=20))])
    assert decides_again([PinService("web-canary", "new")])
    assert decides_again([PinRevision("canary", "new")])
    assert not decides_again([CreateReplicaSet("new", 1)])
    assert not decides_again([ScaleReplicaSet("web-new", 2)])
    assert not decides_again([])


def test_recording_what_was_written_or_growing_the_canary_may_go_ahead_of_the_status():
    assert may_act_ahead([], OBSERVED, "new", routed=True)
    assert may_act_ahead([CreateReplicaSet("new", 1)], OBSERVED, "new", routed=False)
    assert may_act_ahead([ScaleReplicaSet("web-new", 3)], OBSERVED, "new", routed=True)


def test_another_traffic_move_a_scale_down_or_any_other_revision_waits_for_the_next_reconcile():
    assert not may_act_ahead([SetTraffic(TrafficState(weight=60))], OBSERVED, "new", routed=True)
    assert not may_act_ahead([PinService("web-stable", "new")], OBSERVED, "new", routed=True)
    assert not may_act_ahead([ScaleReplicaSet("web-old", 0)], OBSERVED, "new", routed=True)
    assert not may_act_ahead([ScaleReplicaSet("web-new", 0)], OBSERVED, "new", routed=True)
    assert not may_act_ahead([DeleteReplicaSet("web-old")], OBSERVED, "new", routed=True)
    assert not may_act_ahead([CreateReplicaSet("old", 4)], OBSERVED, "new", routed=True)
    # Without a router the canary's pods take traffic as they become ready: its growth is a move.
    assert not may_act_ahead([ScaleReplicaSet("web-new", 3)], OBSERVED, "new", routed=False)
    # One act that may not go ahead holds back the whole pass.
    assert not may_act_ahead(
        [ScaleReplicaSet("web-new", 3), ScaleReplicaSet("web-old", 2)], OBSERVED, "new", routed=True
    )
