"""The pure engine: given a Rollout, what was observed and the time, decide the next actions and
status. No I/O and no clock of its own; the controller feeds it and carries out its decisions."""

from rollout.engine.decide import decide
from rollout.engine.types import Command, Decision, Observed, ReplicaSetState

__all__ = ["Command", "Decision", "Observed", "ReplicaSetState", "decide"]
