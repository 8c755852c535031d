"""The emulator's eviction rules (rollout/sandbox/eviction.py) as a real API server applies them:
a Ready pod goes only with a disruption to spare, a pod that is not Ready only while the budget
is healthy (IfHealthyBudget, the default) or always (AlwaysAllow), and a pod two budgets cover
not at all."""

import kmock
import pytest

from rollout.sandbox.eviction import evict

OWNER = "rs-uid"


def pod(name, ready):
    return {
        "metadata": {
            "name": name,
            "labels": {"app": "api"},
            "ownerReferences": [{"uid": OWNER, "controller": True}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def budget(name="api", **spec):
    return {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "api"}}, **spec}}


def status_of(pod_, pods, budgets):
    try:
        evict(pod_, pods, budgets, {OWNER: len(pods)})
    except kmock.KubernetesError as exc:
        return exc.status
    return 201


@pytest.mark.parametrize(
    ("ready", "policy", "expected"),
    [
        ((True, True, True), None, {"a": 201}),  # one of three may go
        ((True, True, False), None, {"a": 429, "c": 201}),  # budget healthy: only the unready
        ((True, False, False), None, {"a": 429, "c": 429}),  # budget unhealthy: none
        ((True, False, False), "AlwaysAllow", {"a": 429, "c": 201}),
    ],
)
def test_a_budget_of_one_unavailable(ready, policy, expected):
    pods = [pod(n, r) for n, r in zip("abc", ready, strict=True)]
    extra = {"unhealthyPodEvictionPolicy": policy} if policy else {}
    budgets = [budget(maxUnavailable=1, **extra)]
    by_name = {p["metadata"]["name"]: p for p in pods}
    assert {name: status_of(by_name[name], pods, budgets) for name in expected} == expected


def test_a_pod_two_budgets_cover_is_not_evicted():
    pods = [pod(n, True) for n in "abc"]
    budgets = [budget("one", maxUnavailable=1), budget("two", maxUnavailable=2)]
    assert status_of(pods[0], pods, budgets) == 500
