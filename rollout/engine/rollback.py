"""spec.rollbackWindow: going back to a revision that was stable not long ago skips the steps and
the analysis, as a `promote: full` given at once would. Called by decide: `remember` after the
strategy ran (the stable revision it replaced goes into status.stable_history), `fast_track` when
a revision starts. A new revision is never fast-tracked; rollout.dev/abort still returns to stable."""

from __future__ import annotations

from rollout.api.rollout import Rollout
from rollout.api.status import RolloutStatus
from rollout.engine.moves import Moves
from rollout.engine.types import Command, Event


def window(rollout: Rollout) -> int:
    return rollout.spec.rollback_window.revisions if rollout.spec.rollback_window is not None else 0


def remember(rollout: Rollout, status: RolloutStatus, previous_stable: str | None) -> None:
    """The stable revision replaced during this decision heads the history, which keeps as many
    revisions as the window (none without one)."""
    history = [r for r in status.stable_history if r != status.stable_revision]
    if previous_stable and previous_stable != status.stable_revision:
        history = [previous_stable, *(r for r in history if r != previous_stable)]
    status.stable_history = history[: window(rollout)]


def fast_track(rollout: Rollout, status: RolloutStatus, strategy: Moves, events: list[Event]) -> None:
    """A revision just started: within the window, it completes without steps or analysis."""
    current, limit = status.current_revision, window(rollout)
    if current is None or current == status.stable_revision or current not in status.stable_history[:limit]:
        return
    back = status.stable_history.index(current) + 1
    why = (
        f"revision {current} was stable {back} stable revision(s) ago, within "
        f"spec.rollbackWindow.revisions ({limit}): it already ran in production, so its steps and "
        "analysis are skipped"
    )
    status.fast_tracked = why
    strategy.promote(Command("promote", "full"))
    events.append(Event("Normal", "RollbackFastTracked", f"Rollback to {current} fast-tracked: {why}"))
