"""Status helpers shared by the strategies: conditions and pause reasons, with transition times."""

from __future__ import annotations

from datetime import datetime

from rollout.api.status import Condition, ConditionStatus, PauseCondition, RolloutStatus


def set_condition(
    status: RolloutStatus, type_: str, state: ConditionStatus, reason: str, message: str, now: datetime
) -> bool:
    """Set a condition; returns True when its status or reason changed (worth an Event)."""
    existing = status.condition(type_)
    if existing is None:
        status.conditions.append(
            Condition(
                type=type_,
                status=state,
                reason=reason,
                message=message,
                last_transition_time=now,
                last_update_time=now,
            )
        )
        return True
    changed = existing.status != state or existing.reason != reason
    if existing.status != state:
        existing.last_transition_time = now
    if changed or existing.message != message:
        existing.last_update_time = now
    existing.status, existing.reason, existing.message = state, reason, message
    return changed


def remove_condition(status: RolloutStatus, type_: str) -> bool:
    before = len(status.conditions)
    status.conditions = [c for c in status.conditions if c.type != type_]
    return len(status.conditions) != before


def add_pause(status: RolloutStatus, reason: str, now: datetime) -> bool:
    if status.paused_by(reason):
        return False
    status.pause_conditions.append(PauseCondition(reason=reason, start_time=now))
    return True


def remove_pause(status: RolloutStatus, reason: str) -> bool:
    before = len(status.pause_conditions)
    status.pause_conditions = [p for p in status.pause_conditions if p.reason != reason]
    return len(status.pause_conditions) != before
