"""The restart plan (rollout/engine/restart.py): one pod of the stable revision at a time, the
next only once the replacement is Ready, an old pod that is not Ready first."""

from datetime import UTC, datetime, timedelta

from rollout.engine.restart import EvictPod, PodState, plan_restart

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ASKED = T0 + timedelta(minutes=10)


def pod(name, minutes, ready=True, terminating=False):
    return PodState(name, T0 + timedelta(minutes=minutes), ready, terminating)


def plan(pods, replicas=3):
    return plan_restart(pods, replicas=replicas, restart_at=ASKED)


def test_oldest_pod_goes_first_when_all_are_ready():
    result = plan([pod("b", 2), pod("a", 1), pod("c", 3)])
    assert (result.evict, result.done) == (EvictPod("a"), False)


def test_the_next_pod_waits_for_the_replacement_to_be_ready():
    result = plan([pod("b", 2), pod("c", 3), pod("a2", 11, ready=False)])
    assert result.evict is None and not result.done
    assert result.waiting == "the last replacement is not Ready yet (2/3)"
    assert plan([pod("b", 2), pod("c", 3), pod("a2", 11)]).evict == EvictPod("b")


def test_nothing_goes_while_a_pod_terminates_or_one_is_missing():
    assert (
        plan([pod("a", 1, terminating=True), pod("b", 2), pod("c", 3)]).waiting
        == "a pod is still terminating"
    )
    assert plan([pod("b", 2), pod("c", 3)]).evict is None


def test_an_unready_old_pod_goes_first():
    assert plan([pod("a", 1), pod("b", 2, ready=False), pod("c", 3)]).evict == EvictPod("b")
    two_down = [pod("a", 1), pod("b", 2, ready=False), pod("c", 3, ready=False), pod("d", 4)]
    assert plan(two_down, replicas=4).evict == EvictPod("b")


def test_a_missing_pod_is_waited_for():
    result = plan([pod("a", 1), pod("b", 2), pod("c", 3)], replicas=4)
    assert result.evict is None and result.waiting == "the last replacement is not Ready yet (3/4)"


def test_done_once_every_pod_started_after_the_restart_and_is_ready():
    assert plan([pod("a2", 11), pod("b2", 12), pod("c2", 13)]).done
    assert not plan([pod("a2", 11), pod("b2", 12), pod("c", 3)]).done
