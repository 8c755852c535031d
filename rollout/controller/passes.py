"""When one reconcile decides a second time before it writes status (reconciler.py).

A route or Service write changes what the next decision reads at once: the weight is then
observed, so the step can be recorded and its pause started. Without a second pass that took one
more status write, whose watch event woke one more reconcile, at every weight step. A reconcile
therefore decides again, from the caches its writes went into, after a pass that moved traffic.

The second pass may act only where acting ahead of the status write is as safe as it would be in
the next reconcile: creating the current revision's ReplicaSet, or scaling it up on a routed
canary (its pods take no traffic until a route says so). A second pass that wants anything else
(another traffic move, a scale-down) is dropped and the next reconcile decides it, so a crash
before the status write never leaves the cluster more than one traffic move ahead of the
status, as before."""

from __future__ import annotations

from collections.abc import Sequence

from rollout.engine.types import (
    Action,
    CreateReplicaSet,
    Observed,
    PinRevision,
    PinService,
    ScaleReplicaSet,
    SetTraffic,
)

# Passes of one reconcile at most: the one that moves traffic and one that records it.
MAX_PASSES = 2


def decides_again(actions: Sequence[Action]) -> bool:
    """The pass moved traffic (or pinned what traffic goes to): the next decision reads its effect."""
    return any(isinstance(a, SetTraffic | PinService | PinRevision) for a in actions)


def may_act_ahead(actions: Sequence[Action], observed: Observed, current: str, routed: bool) -> bool:
    """The follow-up pass's actions can run before the first pass's status is written."""
    sizes = {rs.name: (rs.revision, rs.spec_replicas) for rs in observed.replicasets}
    for action in actions:
        if isinstance(action, CreateReplicaSet) and action.revision == current:
            continue
        if isinstance(action, ScaleReplicaSet) and routed:
            revision, replicas = sizes.get(action.name, ("", 0))
            if revision == current and action.replicas >= replicas:
                continue
        return False
    return True
