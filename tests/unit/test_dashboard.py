"""The dashboard's pure parts: which Hosts a loopback-bound server answers, the traffic and step
history kept from watch events, which changes concern a Rollout's page, and a list row."""

from rollout.dashboard.pages import condition_bands, invalid_spec, row
from rollout.dashboard.server import loopback_hosts
from rollout.dashboard.watching import History, Watches
from rollout.kube import EVENTS, REPLICASETS, ROLLOUTS


def test_loopback_hosts():
    assert loopback_hosts("127.0.0.1", 3100) == frozenset({"127.0.0.1:3100", "localhost:3100", "[::1]:3100"})
    assert "localhost:8080" in loopback_hosts("::1", 8080)
    assert loopback_hosts("0.0.0.0", 3100) is None  # in a cluster behind a Service: any Host
    assert loopback_hosts("10.1.2.3", 3100) is None


def canary(weight, index, revision="b"):
    return {
        "metadata": {"namespace": "shop", "name": "web"},
        "status": {"canary": {"weight": weight}, "currentStepIndex": index, "currentRevision": revision},
    }


def test_history_keeps_each_weight_change_and_when_each_step_was_entered():
    history = History()
    for at, (weight, index) in enumerate([(0, 0), (20, 1), (20, 1), (50, 2), (50, 3), (0, None)]):
        history.note(canary(weight, index), float(at))
    assert [(p.at, p.canary) for p in history.weights[("shop", "web")]] == [(0, 0), (1, 20), (3, 50), (5, 0)]
    assert history.steps[("shop", "web")]["b"] == {0: 0.0, 1: 1.0, 2: 3.0, 3: 4.0}
    history.forget(("shop", "web"))
    assert ("shop", "web") not in history.weights and ("shop", "web") not in history.steps


def test_a_row_says_what_rollout_list_says_and_the_invalid_spec_first():
    obj = {
        "metadata": {"namespace": "shop", "name": "web", "generation": 1},
        "spec": {"replicas": 4, "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}},
        "status": {
            "observedGeneration": 1,
            "phase": "Degraded",
            "message": "something else",
            "currentStepIndex": 1,
            "conditions": [
                {"type": "InvalidSpec", "status": "True", "message": "spec.strategy.canary.steps[1]: bad"}
            ],
        },
    }
    shown = row(obj)
    assert (shown["health"], shown["phase"]) == ("Degraded", "Degraded")
    assert shown["step"] == "2/2: pause (until promoted)"
    assert shown["message"] == invalid_spec(obj) == "spec.strategy.canary.steps[1]: bad"
    obj["status"]["conditions"][0]["status"] = "False"
    assert invalid_spec(obj) is None and row(obj)["message"] == "something else"


async def test_which_changes_concern_a_rollouts_page():
    watches = Watches(lambda: None, None)
    start = watches.generation
    rs = {"metadata": {"namespace": "shop", "name": "api-1a", "labels": {"rollout.dev/rollout": "api"}}}
    watches._on_change(REPLICASETS, ("shop", "api-1a"), None, rs)
    watches._on_change(ROLLOUTS, ("cart", "web"), None, canary(0, None))
    assert not watches.concerns(start, "shop", "web")  # another Rollout's, another namespace's
    event = {"metadata": {"namespace": "shop", "name": "e1"}, "involvedObject": {"name": "web-2b"}}
    watches._on_change(EVENTS, ("shop", "e1"), None, event)  # about web's ReplicaSet web-2b
    assert watches.concerns(start, "shop", "web")
    later = watches.generation
    assert not watches.concerns(later, "shop", "web")
    watches._wake()  # the connection changed: every page
    assert watches.concerns(later, "shop", "web")


def test_a_watch_ended_early_leaves_the_connection_shown_listed_a_cut_one_does_not():
    """A Rollouts watch the server ended early is watched again from its version (nothing is
    missed, no list follows): the pages must not say the connection is lost until a list that
    never comes. A cut watch (410, an error) does say so until the list."""
    from rollout.controller.cache import WatchEnded, WatchExpired

    watches = Watches(lambda: None, None)
    rollouts = type("Reflector", (), {"resource": ROLLOUTS, "namespace": None})()
    watches._listed(rollouts, [], 1)
    watches._failed(rollouts, WatchEnded(3, 12.0))
    assert watches.connection.listed and not watches.connection.problem
    watches._failed(rollouts, WatchExpired("too old resource version"))
    assert not watches.connection.listed and "listing again" in watches.connection.problem


def test_an_analysis_chart_is_shaded_by_the_metrics_own_condition():
    metric = {
        "measurements": [{"value": "[0.5]", "phase": "Failed"}, {"value": "[0.01]", "phase": "Successful"}]
    }
    bands = condition_bands(metric, {"successCondition": "result[0] <= 0.05"})
    assert (bands["lo"], bands["hi"]) == (0.0, 0.5)
    # 40 bands of 0.0125: the four below 0.05 pass, the rest fail.
    assert bands["passes"] == [True] * 4 + [False] * 36
    scalar = condition_bands({"measurements": [{"value": "120"}]}, {"failureCondition": "result > 100"})
    assert scalar["passes"][:33] == [True] * 33 and not any(scalar["passes"][34:])
    assert (
        condition_bands({"measurements": [{"value": '{"passed": true}'}]}, {"successCondition": "x"}) is None
    )
    assert condition_bands(metric, {}) is None  # the template could not be read
    assert condition_bands(metric, {"successCondition": "len(result) > 0"})["passes"] == [True] * 40
