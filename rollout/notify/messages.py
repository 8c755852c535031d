"""What a notification says: the one table from Event reasons to triggers, and the JSON and
Slack bodies. Pure: the time is passed in, nothing is read or sent here (delivery.py sends)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from rollout.api.rollout import Rollout
from rollout.api.status import RolloutStatus
from rollout.engine.strategies import strategy_of
from rollout.engine.types import Event

Format = Literal["json", "slack"]

# Event reason (as the engine posts it) -> the trigger a webhook subscribes to. A notification
# is sent exactly when one of these Events is posted, so never twice for one moment.
TRIGGER_OF_REASON: dict[str, str] = {
    "NewRevision": "Started",  # a revision other than the stable one starts its update
    "RolloutRetried": "Started",  # an aborted revision starts again (rollout.dev/retry)
    "StepCompleted": "StepCompleted",  # a canary step is done
    "AwaitingPromotion": "Paused",  # a canary reached a pause step with no duration
    "PreviewReady": "Paused",  # a blue/green preview is ready and waits for promotion
    "AnalysisInconclusive": "Paused",  # an inconclusive analysis paused until rollout.dev/promote
    "AnalysisFailed": "AnalysisFailed",
    "AnalysisError": "AnalysisFailed",  # too many errors measuring: fails the analysis like a failure
    "RolloutAborted": "Aborted",  # by an analysis, the abort command, or the progress deadline
    "RolloutCompleted": "Completed",  # the revision is stable
}


def trigger_of(reason: str) -> str | None:
    return TRIGGER_OF_REASON.get(reason)


@dataclass(frozen=True)
class Notice:
    """One moment of one Rollout, as every webhook that wants its trigger is told."""

    namespace: str
    name: str
    trigger: str
    type: str  # of the Event: Normal or Warning
    reason: str
    message: str
    revision: str | None
    stable_revision: str | None
    phase: str | None
    step: int | None  # status.currentStepIndex: the steps done (a strategy with steps only)
    steps: int | None
    weight: int | None  # traffic weight the steps done set (a strategy with steps only)
    timestamp: datetime


def notice_of(rollout: Rollout, status: RolloutStatus, event: Event, now: datetime) -> Notice | None:
    """The notice for an Event just posted, None when no trigger names its reason."""
    trigger = trigger_of(event.reason)
    if trigger is None:
        return None
    progress = strategy_of(rollout).step_progress(rollout, status)
    return Notice(
        namespace=rollout.metadata.namespace,
        name=rollout.metadata.name,
        trigger=trigger,
        type=event.type,
        reason=event.reason,
        message=event.message,
        revision=status.current_revision,
        stable_revision=status.stable_revision,
        phase=status.phase,
        step=progress.step if progress is not None else None,
        steps=progress.steps if progress is not None else None,
        weight=progress.weight if progress is not None else None,
        timestamp=now,
    )


def json_body(notice: Notice) -> dict[str, Any]:
    return {
        "rollout": {"namespace": notice.namespace, "name": notice.name},
        "trigger": notice.trigger,
        "event": {"type": notice.type, "reason": notice.reason, "message": notice.message},
        "revision": notice.revision,
        "stableRevision": notice.stable_revision,
        "phase": notice.phase,
        "step": notice.step,
        "steps": notice.steps,
        "weight": notice.weight,
        "timestamp": notice.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def slack_text(notice: Notice) -> str:
    facts = [f"revision {notice.revision}"]
    if notice.steps is not None and notice.step is not None:
        facts.append(f"step {min(notice.step, notice.steps)}/{notice.steps}")
    if notice.weight is not None:
        facts.append(f"canary weight {notice.weight}%")
    mark = ":warning: " if notice.type == "Warning" else ""
    return (
        f"{mark}*{notice.trigger}* Rollout `{notice.namespace}/{notice.name}`: {notice.message} "
        f"({', '.join(facts)})"
    )


def body_of(notice: Notice, format_: Format) -> dict[str, Any]:
    """The JSON document POSTed: every field for `json`; for `slack`, only `text` (what Slack's
    incoming webhooks and the compatible ones of Mattermost or Rocket.Chat all accept)."""
    return {"text": slack_text(notice)} if format_ == "slack" else json_body(notice)
