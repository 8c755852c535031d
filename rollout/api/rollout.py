"""The Rollout object as the controller reads it: metadata it needs, spec, status.

`parse_rollout` turns a raw object from the API server into a Rollout or a list of spec errors,
each with the field path a person would look at (for example `spec.strategy.canary.steps[2]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rollout.api.spec import RolloutSpec
from rollout.api.status import Condition, RolloutStatus


class ObjectMeta(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    resource_version: str = Field(default="", alias="resourceVersion")
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    deletion_timestamp: str | None = Field(default=None, alias="deletionTimestamp")
    creation_timestamp: str = Field(default="", alias="creationTimestamp")


class Rollout(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metadata: ObjectMeta
    spec: RolloutSpec
    status: RolloutStatus = Field(default_factory=RolloutStatus)


@dataclass(frozen=True)
class SpecError:
    """One problem with a Rollout's spec, at a field path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def field_path(loc: tuple[int | str, ...]) -> str:
    """`('spec', 'strategy', 'canary', 'steps', 2)` -> `spec.strategy.canary.steps[2]`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue  # pydantic's names for validator wrappers and union branches, not fields
        else:
            path += f".{part}" if path else str(part)
    return path


def errors_from(exc: ValidationError, prefix: tuple[str, ...]) -> list[SpecError]:
    """Each of pydantic's errors as a SpecError, its path below `prefix`."""
    errors = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        errors.append(SpecError(field_path(prefix + tuple(err["loc"])), message))
    return errors


def parse_status(raw: dict[str, Any]) -> tuple[RolloutStatus, tuple[SpecError, ...]]:
    """The stored status, or the problems that make it unreadable (each at its field path).
    Unknown fields are ignored; a known field with a value this version does not understand (a
    newer phase, a hand edit, a restored backup) makes the whole status unreadable: acting on a
    part of it could promote a canary that no analysis passed."""
    stored = raw.get("status") or {}
    if not isinstance(stored, dict):
        return RolloutStatus(), (SpecError("status", f"expected an object, got {type(stored).__name__}"),)
    try:
        return RolloutStatus.model_validate(stored), ()
    except ValidationError as exc:
        return RolloutStatus(), tuple(errors_from(exc, ("status",)))


def readable_conditions(raw: dict[str, Any]) -> list[Condition]:
    """The conditions of a stored status that can be read, even when the rest of it cannot."""
    stored = raw.get("status")
    items = stored.get("conditions") if isinstance(stored, dict) else None
    conditions = []
    for item in items if isinstance(items, list) else []:
        try:
            conditions.append(Condition.model_validate(item))
        except ValidationError:
            continue
    return conditions


@dataclass(frozen=True)
class ParsedRollout:
    """A Rollout as read from the API server: `rollout` is None when the spec has `errors`;
    `status_errors` says why the stored status cannot be read (it then reads as empty)."""

    meta: ObjectMeta
    status: RolloutStatus
    rollout: Rollout | None
    errors: tuple[SpecError, ...] = ()
    status_errors: tuple[SpecError, ...] = ()
    conditions: tuple[Condition, ...] = ()  # of an unreadable status, those that can be read


def parse_rollout(raw: dict[str, Any]) -> ParsedRollout:
    meta = ObjectMeta.model_validate(raw.get("metadata") or {})
    status, status_errors = parse_status(raw)
    held = (status_errors, tuple(readable_conditions(raw)) if status_errors else ())
    try:
        spec = RolloutSpec.model_validate(raw.get("spec") or {})
    except ValidationError as exc:
        return ParsedRollout(meta, status, None, tuple(errors_from(exc, ("spec",))), *held)
    rollout = Rollout(metadata=meta, spec=spec, status=status)
    return ParsedRollout(meta, status, rollout, (), *held)
