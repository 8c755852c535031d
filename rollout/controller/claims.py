"""What the other Rollouts of a namespace claim (Services, route rules, selectors), read while
observing so that validation can find two Rollouts managing the same thing.

The claims are read off the cached Rollouts and kept per (uid, generation): a spec is parsed
once per change, not once per reconcile of every other Rollout of its namespace."""

from __future__ import annotations

from typing import Any

from rollout.api.rollout import parse_rollout
from rollout.engine.types import Claims
from rollout.engine.validation import claims_of, selectors_overlap
from rollout.kube import ROLLOUTS, Kube

_MEMO_LIMIT = 20_000
_memo: dict[tuple[str, str, int], Claims | None] = {}


def claims_for(raw: dict[str, Any] | None) -> Claims | None:
    """The claims of one Rollout object; None when its spec cannot be read (it claims nothing:
    it moves nothing either)."""
    if raw is None:
        return None
    meta = raw.get("metadata") or {}
    key = (str(meta.get("uid", "")), str(meta.get("name", "")), int(meta.get("generation") or 0))
    if key in _memo:
        return _memo[key]
    rollout = parse_rollout(raw).rollout
    found = None if rollout is None else claims_of(rollout)
    if len(_memo) >= _MEMO_LIMIT:
        _memo.clear()
    _memo[key] = found
    return found


def overlapping(one: Claims, other: Claims) -> bool:
    """Whether two Rollouts claim anything in common (a change to one concerns the other)."""
    return (
        bool(one.services & other.services)
        or bool(one.rules & other.rules)
        or bool(one.workload and one.workload == other.workload)
        or selectors_overlap(one, other)
    )


async def observe_others(kube: Kube, namespace: str, name: str) -> tuple[Claims, ...]:
    """The claims of every other readable Rollout in the namespace."""
    found: list[Claims] = []
    for raw in await kube.peek_all(ROLLOUTS, namespace):
        if (raw.get("metadata") or {}).get("name") == name:
            continue
        claims = claims_for(raw)
        if claims is not None:
            found.append(claims)
    return tuple(found)
