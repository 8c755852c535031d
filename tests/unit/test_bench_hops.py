"""bench/hops.py: a first step cut into hops at what the bench saw, each hop's component."""

from bench.hops import first_step_hops, hop_rows


def test_each_rollouts_first_step_is_cut_at_its_new_replicaset_and_first_pod():
    hops = first_step_hops(
        updated={"app-1": 0.0, "app-10": 0.0, "app-2": 0.0},
        routed={"app-1": 5.0, "app-10": 9.0, "app-2": 3.0},
        replicasets_seen={"app-1-old": -60.0, "app-1-new": 1.0, "app-10-new": 2.0, "app-2-new": 0.5},
        replicasets_ready={"app-1-old": -50.0, "app-1-new": 4.0, "app-10-new": 8.5},  # app-2's not seen
        pods_seen={"app-1-new-aaaaa": 1.5, "app-1-new-bbbbb": 3.9, "app-10-new-ccccc": 3.0, "app-2-new-d": 1},
        pods_ready={"app-1-new-aaaaa": 2.0, "app-10-new-ccccc": 3.5, "app-2-new-d": 1.2},
        before={"app-1-old"},
    )
    # app-1: update 0 -> RS 1 -> pod 1.5 -> Ready 2 -> RS ready 4 -> 20% at 5; app-10 likewise;
    # app-2 left out (its ReplicaSet was never seen ready).
    assert hops == {
        "update -> ReplicaSet": [1.0, 2.0],
        "ReplicaSet -> Pod": [0.5, 1.0],
        "Pod -> Ready": [0.5, 0.5],
        "Ready -> ReplicaSet ready": [2.0, 5.0],
        "ReplicaSet ready -> 20%": [1.0, 0.5],
    }
    rows = {row["hop"]: row for row in hop_rows(hops)}
    assert rows["Ready -> ReplicaSet ready"]["component"] == "controller-manager"
    assert (
        rows["Ready -> ReplicaSet ready"]["mean s"] == 3.5
        and rows["Ready -> ReplicaSet ready"]["share"] == "50%"
    )
    assert rows["update -> ReplicaSet"]["component"] == "controller"


def test_a_hop_seen_backwards_through_two_watches_counts_as_zero():
    hops = first_step_hops(
        updated={"app-1": 0.0},
        routed={"app-1": 3.0},
        replicasets_seen={"app-1-new": 1.0},
        replicasets_ready={"app-1-new": 3.1},  # the route's watch was quicker than the ReplicaSets'
        pods_seen={"app-1-new-aaaaa": 1.2},
        pods_ready={"app-1-new-aaaaa": 1.4},
        before=set(),
    )
    assert hops["ReplicaSet ready -> 20%"] == [0.0]
