"""The Rollout object as the controller reads it: metadata it needs, spec, status.

`parse_rollout` turns a raw object from the API server into a Rollout or a list of spec errors,
each with the field path a person would look at (for example `spec.strategy.canary.steps[2]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rollout.api.spec import RolloutSpec
from rollout.api.status import RolloutStatus


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


def _errors_from(exc: ValidationError, prefix: tuple[str, ...]) -> list[SpecError]:
    errors = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        errors.append(SpecError(field_path(prefix + tuple(err["loc"])), message))
    return errors


def parse_status(raw: dict[str, Any]) -> RolloutStatus:
    """The stored status; a status this version cannot read starts afresh rather than failing."""
    try:
        return RolloutStatus.model_validate(raw.get("status") or {})
    except ValidationError:
        return RolloutStatus()


@dataclass(frozen=True)
class ParsedRollout:
    """A Rollout as read from the API server: `rollout` is None when the spec has `errors`."""

    meta: ObjectMeta
    status: RolloutStatus
    rollout: Rollout | None
    errors: tuple[SpecError, ...] = ()


def parse_rollout(raw: dict[str, Any]) -> ParsedRollout:
    meta = ObjectMeta.model_validate(raw.get("metadata") or {})
    status = parse_status(raw)
    try:
        spec = RolloutSpec.model_validate(raw.get("spec") or {})
    except ValidationError as exc:
        return ParsedRollout(meta, status, None, tuple(_errors_from(exc, ("spec",))))
    return ParsedRollout(meta, status, Rollout(metadata=meta, spec=spec, status=status))
