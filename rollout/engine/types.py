"""What the engine reads (observed state, commands) and what it returns (actions, events, status)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from rollout.api.status import RolloutStatus

CommandKind = Literal["promote", "abort", "retry", "pause", "resume"]


@dataclass(frozen=True)
class ReplicaSetState:
    """One ReplicaSet of the Rollout, as the cluster reports it."""

    name: str
    revision: str
    spec_replicas: int
    replicas: int = 0
    ready: int = 0
    available: int = 0
    created_at: str = ""

    @property
    def healthy(self) -> int:
        """Available pods the ReplicaSet still wants (a scale-down leaves a few extra briefly)."""
        return min(self.available, self.spec_replicas)


@dataclass(frozen=True)
class Observed:
    """The world around one Rollout at the start of a reconcile."""

    replicasets: tuple[ReplicaSetState, ...] = ()
    # Services the spec refers to: name -> selector, or None when the Service does not exist.
    services: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    """A command annotation (`rollout.dev/<kind>: <value>`), already removed from the Rollout."""

    kind: CommandKind
    value: str = ""


@dataclass(frozen=True)
class CreateReplicaSet:
    revision: str
    replicas: int


@dataclass(frozen=True)
class ScaleReplicaSet:
    name: str
    replicas: int


@dataclass(frozen=True)
class DeleteReplicaSet:
    name: str


@dataclass(frozen=True)
class PinService:
    """Merge `rollout.dev/revision: <revision>` into the Service's selector."""

    service: str
    revision: str


Action = CreateReplicaSet | ScaleReplicaSet | DeleteReplicaSet | PinService


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Decision:
    status: RolloutStatus
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # Seconds until the engine wants to look again even if nothing changes (a deadline, a pause).
    requeue_after: float | None = None
