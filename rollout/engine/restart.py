"""The `rollout.dev/restart` command: the stable revision's pods replaced one at a time.

Pure (no I/O, time passed in). decide.py calls `start_restart` for the command and
`advance_restart` on every reconcile; the controller reads the stable revision's pods only while
`status.restartedAt` is set (Observed.pods) and carries out `EvictPod` through the Eviction API.

A restart replaces the pods that started before the restart was asked for, one at a time: a pod
is evicted only when every desired pod is Ready and none is terminating, so each replacement is
Ready before the next pod goes. No ReplicaSet and no revision is made, so a restart never walks
canary steps or analysis. It starts only on a Rollout at rest (no update in progress, not
aborted, not paused); an update started meanwhile or an abort stops it (the update replaces the
pods anyway), a pause holds it.

maxUnavailable: a restart takes at most one Ready pod down at a time (an old pod that is not Ready
goes first, costing nothing; a disruption budget that is short of Ready pods refuses even that, and
the restart then waits, ending as failed at the progress deadline), which is within any
maxUnavailable of 1 or more; with 0, a pod cannot be restarted without being down for a moment,
so one at a time is the least possible. A single replica is not restarted: its eviction would
leave the Service without a Ready pod."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rollout.api.status import RolloutStatus
from rollout.engine.types import Action, Event, EvictPod, PodState, ReplicaSetState

__all__ = ["EvictPod", "PodState", "RestartPlan", "RestartStep", "advance_restart", "plan_restart"]

# How soon a running restart looks again when nothing triggers it (ReplicaSet status changes do).
RESTART_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class RestartPlan:
    evict: EvictPod | None  # the pod to evict now, if any
    done: bool  # every pod started after the restart was asked for, and is Ready
    waiting: str = ""  # why nothing is evicted while not done


def plan_restart(
    pods: Sequence[PodState], *, replicas: int, restart_at: datetime, available: int | None = None
) -> RestartPlan:
    """The next step of a restart asked for at `restart_at` of a revision wanting `replicas` pods;
    `available` is the ReplicaSet's count (a Ready pod counts only after minReadySeconds)."""
    live = [p for p in pods if not p.terminating]
    old = sorted((p for p in live if p.started_at < restart_at), key=lambda p: (p.started_at, p.name))
    ready = sum(1 for p in live if p.ready)
    if len(live) < len(pods):
        return RestartPlan(None, done=False, waiting="a pod is still terminating")
    if any(not p.ready for p in live if p.started_at >= restart_at) or len(live) < replicas:
        return RestartPlan(
            None, done=False, waiting=f"the last replacement is not Ready yet ({ready}/{replicas})"
        )
    if available is not None and available < ready:
        return RestartPlan(
            None,
            done=False,
            waiting=f"the last replacement is Ready, not yet available ({available}/{replicas})",
        )
    if not old:
        return RestartPlan(None, done=True)
    # An old pod that is not Ready goes first: evicting it costs no availability.
    victim = next((p for p in old if not p.ready), old[0])
    return RestartPlan(EvictPod(victim.name), done=False)


def start_restart(
    status: RolloutStatus,
    pods: Sequence[PodState] | None,
    replicas: int,
    *,
    in_progress: bool,
    now: datetime,
) -> Event:
    """The command: record from when pods count as replaced, or say why it is refused."""
    refused = (
        f"a restart asked at {status.restarted_at:%Y-%m-%dT%H:%M:%SZ} is still running"
        if status.restarted_at is not None
        else f"with {replicas} replica(s), evicting a pod would leave users without a Ready pod; "
        "scale to 2 or more first"
        if replicas < 2
        else f"revision {status.current_revision} is being rolled out (it replaces the pods anyway)"
        if in_progress
        else "the rollout is aborted; retry or update it first"
        if status.aborted
        else "the rollout is paused; resume it first"
        if status.pause_conditions
        else ""
    )
    if refused:
        return Event("Normal", "RestartIgnored", f"Restart: {refused}; nothing restarted")
    status.restarted_at = restart_time(pods or (), now)
    return Event(
        "Normal",
        "RestartStarted",
        f"Restarting the pods of stable revision {status.stable_revision} created before "
        f"{status.restarted_at:%Y-%m-%dT%H:%M:%SZ}, one at a time",
    )


def restart_time(pods: Sequence[PodState], now: datetime) -> datetime:
    """Pods created before this time are replaced. creationTimestamp has whole seconds, so a
    replacement made within the second of the command must count as new: the time is rounded
    down. And it is the API server's clock that stamps pods: were the controller's clock ahead,
    a replacement would look older than the restart and be evicted again, without end; so the
    time is never later than the newest pod's creation plus one second."""
    asked = now.replace(microsecond=0)
    newest = max((p.started_at for p in pods), default=None)
    return asked if newest is None else min(asked, (newest + timedelta(seconds=1)).replace(microsecond=0))


@dataclass
class RestartStep:
    actions: list[Action] = field(default_factory=list)
    note: str = ""  # progress, for the status message ("restarting: 2/5 pods replaced")
    requeue_after: float | None = None

    @property
    def running(self) -> bool:
        return bool(self.note)


def advance_restart(
    status: RolloutStatus,
    stable: ReplicaSetState | None,
    pods: Sequence[PodState] | None,
    *,
    in_progress: bool,
    started_now: bool,
    deadline_seconds: float,
    now: datetime,
    events: list[Event],
) -> RestartStep:
    """The next move of a running restart (none when no restart runs). The reconcile that
    starts it evicts nothing: a pod goes only once `restartedAt` is stored, so a lost status
    write can never make a replacement look old. A restart that replaces no pod for
    `deadline_seconds` (a replacement never Ready, a budget that allows no eviction, a pod stuck
    terminating) ends as failed instead of holding the Rollout in Progressing."""
    restart_at = status.restarted_at
    if restart_at is None:
        return RestartStep()
    why_stop = (
        f"revision {status.current_revision} is being rolled out (it replaces the pods anyway)"
        if in_progress
        else "the rollout was aborted"
        if status.aborted
        else ""
    )
    if why_stop:
        status.restarted_at = None
        events.append(Event("Normal", "RestartCancelled", f"Restart stopped: {why_stop}"))
        return RestartStep()
    replicas = 0 if stable is None else stable.spec_replicas
    if started_now or pods is None:
        return RestartStep(note=f"restarting: 0/{replicas} pods replaced", requeue_after=0.0)
    available = None if stable is None else stable.available
    plan = plan_restart(pods, replicas=replicas, restart_at=restart_at, available=available)
    if plan.done:
        status.restarted_at = None
        events.append(
            Event(
                "Normal",
                "RestartCompleted",
                f"All {replicas} pods of revision {status.stable_revision} replaced and Ready",
            )
        )
        return RestartStep()
    replaced = sum(1 for p in pods if p.ready and not p.terminating and p.started_at >= restart_at)
    note = f"restarting: {min(replaced, replicas)}/{replicas} pods replaced"
    # Progress is the newest replacement (the API server stamps it); none yet: the start.
    progress_at = max([restart_at, *(p.started_at for p in pods if p.started_at >= restart_at)])
    if (now - progress_at).total_seconds() > deadline_seconds and not status.pause_conditions:
        status.restarted_at = None
        stuck = plan.waiting or "no pod could be evicted"
        events.append(
            Event(
                "Warning",
                "RestartFailed",
                f"Restart stopped: no pod replaced for {deadline_seconds:.0f}s "
                f"(progressDeadlineSeconds); {min(replaced, replicas)}/{replicas} replaced; {stuck}",
            )
        )
        return RestartStep()
    if status.pause_conditions:
        return RestartStep(note=f"{note} (held while paused)")
    if plan.waiting:
        note += f"; {plan.waiting}"
    actions: list[Action] = [plan.evict] if plan.evict is not None else []
    return RestartStep(actions=actions, note=note, requeue_after=RESTART_POLL_SECONDS)
