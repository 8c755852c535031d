"""The `rollout.dev/restart` plan: which pod of the stable revision to evict next, if any.

Pure (no I/O, time passed in). A restart replaces the stable revision's pods that started before
the restart was asked for, one at a time: a pod is evicted only when every desired pod is Ready
and none is terminating, so each replacement is Ready before the next pod goes. No ReplicaSet and
no revision is made, so a restart never walks canary steps or analysis.

maxUnavailable: a restart takes at most one Ready pod down at a time (an old pod that is not Ready
goes first, costing nothing), which is within any maxUnavailable of 1 or more; with 0, a pod
cannot be restarted without being down for a moment, so one at a time is the least possible.

NOT WIRED YET: the controller needs to observe the stable revision's Pods and carry out
`EvictPod` (reconciler.py, owned by the controller rewrite), then call `plan_restart` from the
engine's decide step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PodState:
    """One pod of the stable revision, as the cluster reports it."""

    name: str
    started_at: datetime  # metadata.creationTimestamp
    ready: bool
    terminating: bool = False  # metadata.deletionTimestamp is set


@dataclass(frozen=True)
class EvictPod:
    name: str


@dataclass(frozen=True)
class RestartPlan:
    evict: EvictPod | None  # the pod to evict now, if any
    done: bool  # every pod started after the restart was asked for, and is Ready
    waiting: str = ""  # why nothing is evicted while not done


def plan_restart(pods: Sequence[PodState], *, replicas: int, restart_at: datetime) -> RestartPlan:
    """The next step of a restart asked for at `restart_at` of a revision wanting `replicas` pods."""
    live = [p for p in pods if not p.terminating]
    old = sorted((p for p in live if p.started_at < restart_at), key=lambda p: (p.started_at, p.name))
    ready = sum(1 for p in live if p.ready)
    if len(live) < len(pods):
        return RestartPlan(None, done=False, waiting="a pod is still terminating")
    if any(not p.ready for p in live if p.started_at >= restart_at) or len(live) < replicas:
        return RestartPlan(
            None, done=False, waiting=f"the last replacement is not Ready yet ({ready}/{replicas})"
        )
    if not old:
        return RestartPlan(None, done=True)
    # An old pod that is not Ready goes first: evicting it costs no availability.
    victim = next((p for p in old if not p.ready), old[0])
    return RestartPlan(EvictPod(victim.name), done=False)
