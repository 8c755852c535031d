"""Command annotations applied to the status: abort, retry, pause, resume, promote, restart.

The controller has already removed each annotation from the Rollout before the engine sees it, so
a command is applied at most once; every command leaves an Event saying what it did."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from rollout.api.status import RolloutStatus
from rollout.api.vocabulary import USER_PAUSE
from rollout.engine.restart import start_restart
from rollout.engine.status_conditions import add_pause, remove_pause
from rollout.engine.strategies import forget_progress
from rollout.engine.types import Command, Event, PodState


def apply_commands(
    status: RolloutStatus,
    commands: Iterable[Command],
    *,
    in_progress: bool,
    now: datetime,
    promote: Callable[[Command], Event] | None = None,
    pods: Sequence[PodState] | None = None,
    replicas: int = 0,
) -> list[Event]:
    """Apply each command to the status; `promote` is the strategy's own (None: nothing to pass),
    `pods` the stable revision's as observed and `replicas` the Rollout's (a restart starts from
    them)."""
    events: list[Event] = []
    for command in commands:
        if command.kind == "abort":
            if not in_progress and status.restarted_at is not None:
                status.restarted_at = None  # the brake stops a restart too
                events.append(Event("Normal", "RestartCancelled", "Restart stopped by rollout.dev/abort"))
            elif not in_progress:
                events.append(
                    Event("Normal", "AbortIgnored", "Abort: no update in progress, nothing to abort")
                )
            elif not status.aborted:
                status.aborted = True
                status.abort_reason = "aborted by the rollout.dev/abort command"
                events.append(
                    Event(
                        "Warning",
                        "RolloutAborted",
                        f"Aborted by command: returning to stable revision {status.stable_revision}",
                    )
                )
            else:
                events.append(Event("Normal", "AbortIgnored", "Abort: the rollout is already aborted"))
        elif command.kind == "retry":
            if status.aborted:
                status.aborted = False
                status.abort_reason = ""
                status.last_progress_at = now
                forget_progress(status)  # a canary from step 1, a blue/green waiting for promotion
                status.analysis_runs = []  # and every analysis runs again
                events.append(
                    Event("Normal", "RolloutRetried", f"Retrying revision {status.current_revision}")
                )
            else:
                events.append(Event("Normal", "RetryIgnored", "Retry: the rollout is not aborted"))
        elif command.kind == "pause":
            if add_pause(status, USER_PAUSE, now):
                events.append(Event("Normal", "RolloutPaused", "Paused by the rollout.dev/pause command"))
            else:
                events.append(Event("Normal", "PauseIgnored", "Pause: already paused by rollout.dev/pause"))
        elif command.kind == "resume":
            if remove_pause(status, USER_PAUSE):
                status.last_progress_at = now
                events.append(Event("Normal", "RolloutResumed", "Resumed by the rollout.dev/resume command"))
            else:
                events.append(Event("Normal", "ResumeIgnored", "Resume: no user pause to clear"))
        elif command.kind == "restart":
            events.append(start_restart(status, pods, replicas, in_progress=in_progress, now=now))
        elif command.kind == "promote" and promote is not None:
            events.append(promote(command))
        elif command.kind == "promote":
            # A rolling update has no pause steps or gates to pass yet; say so rather than guess.
            events.append(
                Event(
                    "Normal",
                    "PromoteIgnored",
                    f"Promote ({command.value or 'step'}): nothing is waiting "
                    "for promotion in a rolling update",
                )
            )
    return events
