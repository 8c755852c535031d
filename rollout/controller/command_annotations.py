"""Command annotations (`rollout.dev/promote`, `abort`, `retry`, `pause`, `resume`): read from the
Rollout and removed with a patch guarded by its resourceVersion *before* the engine acts on them,
so that a controller crash can never apply a command twice."""

from __future__ import annotations

from typing import Any, get_args

from rollout import GROUP
from rollout.engine.types import Command, CommandKind

COMMAND_KINDS: tuple[str, ...] = get_args(CommandKind)


def pending_commands(raw: dict[str, Any]) -> list[Command]:
    annotations = (raw.get("metadata") or {}).get("annotations") or {}
    commands = []
    for kind in COMMAND_KINDS:
        key = f"{GROUP}/{kind}"
        if key in annotations:
            commands.append(Command(kind=kind, value=str(annotations[key] or "")))  # type: ignore[arg-type]
    return commands


def removal_patch(raw: dict[str, Any], commands: list[Command]) -> dict[str, Any]:
    """A merge patch removing the annotations; the resourceVersion makes it fail (409) if the
    Rollout changed since it was read, so nobody's newer annotation is lost."""
    meta = raw.get("metadata") or {}
    return {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {f"{GROUP}/{c.kind}": None for c in commands},
        }
    }
