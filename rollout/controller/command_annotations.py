"""Command annotations (`rollout.dev/promote`, `abort`, `retry`, `pause`, `resume`, `restart`):
taken off the Rollout *before* the engine acts on them, and applied exactly once.

The patch that removes them (guarded by the resourceVersion, so nobody's newer annotation is
lost) writes them into `rollout.dev/commands-taken` under a fresh id, in the same write. The
status write that applies them records that id (`status.commandsApplied`). A reconcile that
finds taken commands whose id the status does not hold applies them (the process that took them
died, lost its shard, or met a conflict before its status write landed); one that finds the id
there leaves them, and takes the annotation off (as the reconcile that applied them does right
after its status write): a status lost later (a restore from a backup has none) cannot make old
commands look unapplied. So a command is neither lost nor applied twice, whichever process takes
it."""

from __future__ import annotations

import json
import uuid
from typing import Any, get_args

import structlog
from pydantic import BaseModel, ValidationError

from rollout import GROUP
from rollout.engine.types import Command, CommandKind

log = structlog.get_logger(__name__)

COMMAND_KINDS: tuple[str, ...] = get_args(CommandKind)
TAKEN_ANNOTATION = f"{GROUP}/commands-taken"


class TakenCommands(BaseModel):
    """The value of the commands-taken annotation."""

    id: str
    commands: list[tuple[CommandKind, str]]


def _annotations(raw: dict[str, Any]) -> dict[str, Any]:
    return (raw.get("metadata") or {}).get("annotations") or {}


def pending_commands(raw: dict[str, Any]) -> list[Command]:
    """The command annotations on the Rollout, not yet taken."""
    annotations = _annotations(raw)
    commands = []
    for kind in COMMAND_KINDS:
        key = f"{GROUP}/{kind}"
        if key in annotations:
            commands.append(Command(kind=kind, value=str(annotations[key] or "")))  # type: ignore[arg-type]
    return commands


def taken_id(raw: dict[str, Any]) -> str:
    """The id of the commands last taken off the Rollout ("" when none were)."""
    taken = _taken(raw)
    return "" if taken is None else taken.id


def unapplied_commands(raw: dict[str, Any]) -> list[Command]:
    """Commands taken off the Rollout whose application no status write has recorded yet."""
    taken = _taken(raw)
    status = raw.get("status")
    applied = status.get("commandsApplied") if isinstance(status, dict) else None
    if taken is None or taken.id == applied:
        return []
    return [Command(kind=kind, value=value) for kind, value in taken.commands]


def _taken(raw: dict[str, Any]) -> TakenCommands | None:
    value = _annotations(raw).get(TAKEN_ANNOTATION)
    if not value:
        return None
    try:
        return TakenCommands.model_validate_json(value)
    except ValidationError as exc:  # edited by hand: nothing to apply from it
        meta = raw.get("metadata") or {}
        log.warning(
            "unreadable annotation ignored",
            namespace=meta.get("namespace"),
            name=meta.get("name"),
            annotation=TAKEN_ANNOTATION,
            error=str(exc.errors()[0]["msg"]),
        )
        return None


def taking_patch(
    raw: dict[str, Any], commands: list[Command], unapplied: list[Command]
) -> tuple[dict[str, Any], str]:
    """A merge patch that removes the command annotations and records them, with the taken
    commands not yet applied, under a new id; and that id. The resourceVersion makes it fail
    (409) if the Rollout changed since it was read."""
    new_id = uuid.uuid4().hex[:16]
    taken = TakenCommands(id=new_id, commands=[(c.kind, c.value) for c in (*unapplied, *commands)])
    annotations: dict[str, Any] = {f"{GROUP}/{c.kind}": None for c in commands}
    annotations[TAKEN_ANNOTATION] = json.dumps(taken.model_dump(mode="json"), separators=(",", ":"))
    meta = raw.get("metadata") or {}
    return {"metadata": {"resourceVersion": meta.get("resourceVersion"), "annotations": annotations}}, new_id


def applied_taken_removal(raw: dict[str, Any]) -> dict[str, Any] | None:
    """A merge patch taking the commands-taken annotation off once the status holds its id;
    None while it does not (or there is none). Guarded by the resourceVersion."""
    taken = _taken(raw)
    status = raw.get("status")
    if taken is None or not isinstance(status, dict) or status.get("commandsApplied") != taken.id:
        return None
    return taken_removal(raw)


def taken_removal(raw: dict[str, Any]) -> dict[str, Any]:
    """A merge patch taking the commands-taken annotation off, guarded by the resourceVersion."""
    meta = raw.get("metadata") or {}
    return {
        "metadata": {"resourceVersion": meta.get("resourceVersion"), "annotations": {TAKEN_ANNOTATION: None}}
    }
