"""What the other Rollouts of a namespace claim (Services, route rules, selectors), read while
observing so that validation can find two Rollouts managing the same thing.

For now one LIST of the namespace's Rollouts per reconcile; watch-fed caches replace it later."""

from __future__ import annotations

from rollout.api.rollout import Rollout, parse_rollout
from rollout.controller.kube import ROLLOUTS, Kube
from rollout.engine.types import Claims
from rollout.engine.validation import claims_of


async def observe_others(kube: Kube, rollout: Rollout) -> tuple[Claims, ...]:
    """The claims of every other readable Rollout in the namespace (a spec that cannot be read
    claims nothing: it moves nothing either)."""
    found: list[Claims] = []
    for raw in await kube.list(ROLLOUTS, rollout.metadata.namespace):
        if (raw.get("metadata") or {}).get("name") == rollout.metadata.name:
            continue
        other = parse_rollout(raw).rollout
        if other is not None:
            found.append(claims_of(other))
    return tuple(found)
