"""Where status and the cluster disagree about the stable revision (pure; decide() calls it before
any strategy runs).

Status is the controller's only memory, but a status can be lost (deleted by hand, an object
restored without it) or stale (restored from a backup, written by another version). The users'
Service (a canary's stableService, a blue/green's activeService) shows which revision users are
on, so it decides when status has no stable revision, or names one users are not on:
- first deploy is only when the Rollout owns no ReplicaSet at all;
- a stable revision is recovered from the users' Service when it selects a revision that has
  available pods; failing that, from the ReplicaSet with the most available pods;
- the recovered status starts afresh: traffic back on stable, the steps from the beginning, every
  analysis again. The new revision is never taken as stable unless users are already on it.
A status that records a move toward the revision it rolls out (a canary completing, a blue/green
switched) is trusted: the Service then legitimately selects that revision before status says it
is stable. Users on the current revision are a move in flight too (a switch whose status write
was lost): status' stable revision stays the safe point."""

from __future__ import annotations

from dataclasses import dataclass

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import Rollout
from rollout.api.status import RolloutStatus
from rollout.engine.strategies import strategy_of
from rollout.engine.types import Observed


@dataclass(frozen=True)
class Recovered:
    revision: str
    evidence: str  # what in the cluster shows it, for the Event


def users_service(rollout: Rollout) -> str | None:
    """The Service users are on: the stable one of the strategy's pair (None: it has none)."""
    return rollout.spec.strategy.chosen.services().stable or None


def serving(rollout: Rollout, observed: Observed) -> Recovered | None:
    """The revision the users' Service selects, when an owned ReplicaSet of it has available pods."""
    service = users_service(rollout)
    if not service:
        return None
    pinned = (observed.services.get(service) or {}).get(REVISION_LABEL)
    rs = next((r for r in observed.replicasets if r.revision == pinned), None)
    if rs is None or rs.available == 0:
        return None
    return Recovered(rs.revision, f"Service {service} selects it ({rs.available} available pods)")


def recover_stable(rollout: Rollout, observed: Observed, current: str) -> Recovered:
    """The stable revision as the cluster shows it (status has none, but ReplicaSets exist). Users
    on the current revision while another one still runs is a completion or switch in flight
    whose analysis status no longer records: the other revision is the safe point."""
    running = [
        rs
        for rs in observed.replicasets
        if rs.revision != current and (rs.spec_replicas or rs.available) and not rs.baseline_of
    ]
    found = serving(rollout, observed)
    if found is not None and (found.revision != current or not running):
        return found
    if not running:
        return Recovered(current, "no other revision runs")
    # Most available pods, then most wanted, then the oldest.
    best = min(running, key=lambda rs: (-rs.available, -rs.spec_replicas, rs.created_at))
    return Recovered(best.revision, f"ReplicaSet {best.name} has the most available pods ({best.available})")


def disagreement(
    rollout: Rollout, status: RolloutStatus, observed: Observed, current: str
) -> Recovered | None:
    """The revision users are on, when status names another stable revision and records no move
    toward it (see the module docstring); None when status and cluster agree. Users already on
    the current revision are a move in flight (or a status some writes behind): status' stable
    revision stays the safe point, since no record says the current one passed its analysis."""
    found = serving(rollout, observed)
    if found is None or status.stable_revision is None or found.revision in (status.stable_revision, current):
        return None
    if found.revision == status.current_revision and strategy_of(rollout).moving_users(rollout, status):
        return None
    return found
