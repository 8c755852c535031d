"""What every strategy is: `Moves`, one decision of a strategy, which decide() builds from the
strategy registry (strategies.py) and runs (`run()`), with the strategy's own `promote` and the
`where` of its status message. The rolling update (rolling.py) is one directly; the canary and
blue/green, which keep the stable revision beside the new one, share the moves of
side_by_side.py.

A strategy's moves append the actions they need to an `Outcome` and return whether what they ask
for is already observed, so a strategy reads as a sequence of `if not done: return`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rollout.api.rollout import Rollout
from rollout.api.spec import StrategyConfig
from rollout.api.status import RolloutStatus
from rollout.engine.gates import Analyses
from rollout.engine.types import Action, Command, Event, Observed
from rollout.traffic.routing import Routing


@dataclass
class Outcome:
    actions: list[Action] = field(default_factory=list)
    at_rest: bool = False  # stable == current, traffic on stable, stable fully available
    progressed: bool = False
    requeue_after: float | None = None
    waiting: str = ""  # what the strategy waits for, shown in the status message
    blocked: str = ""  # a route's own status stops the rollout
    stuck_baseline: str = ""  # the canary's baseline lacks available pods (named in a deadline abort)


class Moves:
    """One decision of a strategy: what it observed, and the Outcome it builds. `routing` is the
    Rollout's (routing_of), worked out once by decide()."""

    def __init__(
        self,
        rollout: Rollout,
        status: RolloutStatus,
        observed: Observed,
        current: str,
        now: datetime,
        events: list[Event],
        analyses: Analyses,
        routing: Routing | None,
    ) -> None:
        self.rollout, self.status, self.observed = rollout, status, observed
        self.current, self.now, self.events = current, now, events
        self.analyses = analyses
        self.routed = routing is not None
        self.replicas = rollout.spec.replicas
        self.by_revision = {rs.revision: rs for rs in observed.replicasets}
        self.out = Outcome()

    # --- what a strategy provides ----------------------------------------------------------

    @property
    def strategy(self) -> StrategyConfig:
        """Its part of the spec."""
        raise NotImplementedError

    def promote(self, command: Command) -> Event:
        """`rollout.dev/promote` (once an inconclusive analysis, if any, was passed first)."""
        raise NotImplementedError

    def where(self, phase: str) -> str:
        """Where the update stands, added to the Paused or Progressing status message."""
        raise NotImplementedError

    def waiting_when_paused(self, waiting: str) -> str:
        """What the strategy waits for, said in a Paused message too (nothing by default)."""
        return ""

    def run(self) -> Outcome:
        """This decision's moves: back to stable (at rest, aborted) or toward the current revision."""
        raise NotImplementedError

    # --- bookkeeping every strategy uses ----------------------------------------------------

    def healthy(self, revision: str | None) -> int:
        rs = self.by_revision.get(revision or "")
        return rs.healthy if rs is not None else 0

    def wake(self, seconds: float | None) -> None:
        if seconds is not None:
            current = self.out.requeue_after
            self.out.requeue_after = seconds if current is None else min(current, seconds)

    def look_again(self) -> None:
        self.out.progressed = True
        self.out.requeue_after = 0.0
