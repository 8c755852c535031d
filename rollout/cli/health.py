"""What the CLI says about a Rollout's state: the same health as the Argo CD script
(rollout/argocd/health.lua) and which commands make sense now (as its actions' discovery), so
`rollout status` and `rollout promote` agree with what Argo CD shows. A test runs both on the
captured fixtures and compares."""

from __future__ import annotations

from typing import Any

from rollout.api.vocabulary import BLUE_GREEN_PAUSE, CANARY_PAUSE, INVALID_SPEC, PROMOTABLE_PAUSES, USER_PAUSE


def _pauses(status: dict[str, Any]) -> list[str]:
    return [str(p.get("reason")) for p in status.get("pauseConditions") or []]


def _ends_by_itself(obj: dict[str, Any], reason: str) -> bool:
    strategy = (obj.get("spec") or {}).get("strategy") or {}
    status = obj.get("status") or {}
    if reason == CANARY_PAUSE and "canary" in strategy and status.get("currentStepIndex") is not None:
        steps = strategy["canary"].get("steps") or []
        index = status["currentStepIndex"]
        step = steps[index] if 0 <= index < len(steps) else None
        return bool(step and step.get("pause") is not None and step["pause"].get("duration") is not None)
    if reason == BLUE_GREEN_PAUSE and "blueGreen" in strategy:
        bg = strategy["blueGreen"]
        return bg.get("autoPromotionEnabled") is not False and bool(bg.get("autoPromotionSeconds"))
    return False


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """(Healthy | Progressing | Suspended | Degraded, message)."""
    status = obj.get("status")
    generation = (obj.get("metadata") or {}).get("generation")
    if not status or status.get("observedGeneration") is None:
        return "Progressing", "Waiting for the rollout controller to observe the Rollout"
    observed = status["observedGeneration"]
    if generation is not None and observed < generation:
        return (
            "Progressing",
            f"Waiting for the rollout controller to observe generation {generation} (observed {observed}); "
            f"last status: {status.get('message', '')}",
        )
    message = str(status.get("message", ""))
    invalid = any(
        c.get("type") == INVALID_SPEC and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if status.get("phase") == "Degraded" or status.get("aborted") is True or invalid:
        return "Degraded", message
    if status.get("phase") == "Paused":
        held = any(not _ends_by_itself(obj, reason) for reason in _pauses(status))
        return ("Suspended" if held else "Progressing"), message
    desired = (obj.get("spec") or {}).get("replicas", 1)
    if (
        status.get("phase") == "Healthy"
        and status.get("stableRevision") is not None
        and status.get("stableRevision") == status.get("currentRevision")
        and (status.get("availableReplicas") or 0) >= desired
    ):
        return "Healthy", message
    return "Progressing", message


def updating(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    stable, current = status.get("stableRevision"), status.get("currentRevision")
    return bool(stable and current and stable != current and status.get("aborted") is not True)


def refusal(action: str, obj: dict[str, Any]) -> str | None:
    """Why `action` makes no sense for the Rollout as it is now; None when it does."""
    status = obj.get("status") or {}
    strategy = (obj.get("spec") or {}).get("strategy") or {}
    pauses = _pauses(status)
    if action == "promote":
        if not updating(obj):
            return "no update is in progress"
        if not any(p in PROMOTABLE_PAUSES for p in pauses):
            return "nothing waits for promotion (no pause step, inconclusive analysis or blue/green preview)"
    elif action == "promote-full":
        if not updating(obj):
            return "no update is in progress"
        if "canary" not in strategy and "blueGreen" not in strategy:
            return "a rolling update has no steps or gates to skip"
    elif action == "abort":
        if status.get("aborted") is True:
            return "it is already aborted"
        if not updating(obj) and not status.get("restartedAt"):
            return "no update or restart is in progress"
    elif action == "retry":
        if status.get("aborted") is not True:
            return "it is not aborted"
    elif action == "pause":
        if USER_PAUSE in pauses:
            return "it is already paused by `rollout pause`"
    elif action == "resume":
        if USER_PAUSE not in pauses:
            return "it is not paused by `rollout pause` (a pause step is passed with `rollout promote`)"
    elif action == "restart":
        return _restart_refusal(obj, status, pauses)
    return None


def _restart_refusal(obj: dict[str, Any], status: dict[str, Any], pauses: list[str]) -> str | None:
    """A restart replaces the stable pods of a Rollout at rest: Healthy, nothing else under way."""
    if status.get("restartedAt"):
        return "a restart is already running"
    if updating(obj):
        return "an update is in progress (it replaces the pods anyway)"
    if status.get("aborted") is True:
        return "it is aborted"
    if pauses:
        return "it is paused"
    if status.get("phase") != "Healthy":
        return "it is not Healthy"
    if int((obj.get("spec") or {}).get("replicas", 1)) < 2:
        return "it has a single replica (its eviction would leave no Ready pod; scale to 2 or more)"
    return None
