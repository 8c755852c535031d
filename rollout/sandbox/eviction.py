"""The emulated API server's pods/eviction (policy/v1 Eviction), with PodDisruptionBudgets.

A real server evicts (deletes) the pod and answers 201, or answers 429 when a budget covering
the pod allows no disruption now. Budgets are judged here on the spot, as the disruption
controller would have them in status: the pods the budget's `matchLabels` select (matchExpressions
are not read), the Ready ones counted healthy, and `minAvailable` / `maxUnavailable` as a number
or a percentage of the selected pods. A pod that is not Ready goes while the budget is healthy
(its Ready pods at least what it must keep: the default `unhealthyPodEvictionPolicy`,
IfHealthyBudget), or always with AlwaysAllow. A pod that more than one budget covers cannot be
evicted (500, as a real server says). Deletion is immediate (no grace period)."""

from __future__ import annotations

import math
from typing import Any

import kmock

PODS = kmock.resource("v1/pods")
PDBS = kmock.resource("policy/v1/poddisruptionbudgets")


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _selects(budget: dict[str, Any], pod: dict[str, Any]) -> bool:
    wanted = (((budget.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def _count(value: Any, of: int, *, up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = float(value[:-1]) * of / 100
        return math.ceil(share) if up else math.floor(share)
    return int(value)


def _controller(pod: dict[str, Any]) -> str | None:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return next((r.get("uid") for r in refs if r.get("controller")), None)


def disruptions_allowed(budget: dict[str, Any], pods: list[dict[str, Any]], scales: dict[str, int]) -> int:
    """Healthy pods beyond what the budget must keep; `scales`: controller uid -> its replicas."""
    selected = [p for p in pods if _selects(budget, p)]
    healthy = sum(1 for p in selected if _ready(p))
    owners = {_controller(p) for p in selected}
    expected = (
        sum(scales[uid] for uid in owners if uid is not None)
        if owners and all(uid in scales for uid in owners)
        else len(selected)
    )
    spec = budget.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        keep = expected - _count(spec["maxUnavailable"], expected, up=True)
    else:
        keep = _count(spec.get("minAvailable", 1), expected, up=True)
    return healthy - keep


def evict(
    pod: dict[str, Any],
    pods: list[dict[str, Any]],
    budgets: list[dict[str, Any]],
    scales: dict[str, int],
) -> None:
    """Raise the 429 a real server gives when a budget forbids evicting `pod` now."""
    covering = [b for b in budgets if _selects(b, pod)]
    if len(covering) > 1:
        raise kmock.KubernetesError(
            status=500,
            reason="InternalError",
            message="This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support.",
        )
    if not covering:
        return
    budget = covering[0]
    allowed = disruptions_allowed(budget, pods, scales)
    policy = (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy", "IfHealthyBudget")
    if allowed >= 1 or (not _ready(pod) and (policy == "AlwaysAllow" or allowed >= 0)):
        return
    name = budget["metadata"]["name"]
    raise kmock.KubernetesError(
        status=429,
        reason="TooManyRequests",
        message="Cannot evict pod as it would violate the pod's disruption budget.",
        details={
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {name} needs more healthy pods "
                    "to allow a disruption now",
                }
            ]
        },
    )
