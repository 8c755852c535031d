"""The strategy registry: every update strategy the controller knows, each in its own module under
rollout/engine/ exporting `STRATEGY` (rolling.py, canary.py, bluegreen.py). Shaped like the
router registry (rollout/traffic/registry.py).

A strategy is two halves. Its spec model (a `StrategyConfig` in rollout/api/spec.py, one field of
`Strategy`) declares what the spec refers to: its Services (the stable/canary or active/preview
pair), its analyses and its trafficRouting, which the layers below the engine (analysis
resolution, routing, the controller's observation, metrics) read from the spec itself. Its
entry here says what the engine does with it: its moves, its own validation, its pause
reasons, what recovery trusts, and where its steps stand for notifications. decide(),
validation, recovery, commands and notifications ask the registry; none of them names a
strategy.

Adding a strategy: its module here (a `Moves` subclass and `STRATEGY`), one entry in MODULES,
its model and field in rollout/api/spec.py, and its pause reasons in rollout/api/vocabulary.py."""

from __future__ import annotations

from importlib import import_module
from typing import Protocol

from rollout.api.rollout import Rollout, SpecError
from rollout.api.spec import StrategyConfig
from rollout.api.status import RolloutStatus
from rollout.engine.moves import Moves
from rollout.engine.steps import StepProgress
from rollout.engine.types import Observed
from rollout.traffic.routing import Routing

MODULES = ("rolling", "canary", "bluegreen")


class UpdateStrategy(Protocol):
    """One strategy: `spec.strategy.<config.field>`."""

    config: type[StrategyConfig]  # its spec model
    pause_reasons: tuple[str, ...]  # the pauses it adds itself (rollout/api/vocabulary.py)
    moves: type[Moves]  # one decision of the strategy, which decide() runs

    def config_errors(self, rollout: Rollout, routing: Routing | None, observed: Observed) -> list[SpecError]:
        """What is wrong with its own part of the spec (beyond the schema and the checks every
        strategy shares, which validation.py makes)."""
        ...

    def moving_users(self, rollout: Rollout, status: RolloutStatus) -> bool:
        """Status records users moving onto the current revision (a canary completing, a
        blue/green switched): recovery then trusts status over the users' Service."""
        ...

    def forget_progress(self, status: RolloutStatus) -> None:
        """Forget its progress toward the current revision (a new revision, a retry)."""
        ...

    def step_progress(self, rollout: Rollout, status: RolloutStatus) -> StepProgress | None:
        """Where its steps stand, for notifications (None: it has no steps)."""
        ...


STRATEGIES: tuple[UpdateStrategy, ...] = tuple(
    import_module(f"rollout.engine.{module}").STRATEGY for module in MODULES
)


def strategy_of(rollout: Rollout) -> UpdateStrategy:
    """The strategy the spec names."""
    config = type(rollout.spec.strategy.chosen)
    return next(s for s in STRATEGIES if s.config is config)


def pause_reasons() -> list[str]:
    """The pauses any strategy adds itself, which a new revision clears (a changed spec may have
    left another strategy's)."""
    return [reason for strategy in STRATEGIES for reason in strategy.pause_reasons]


def forget_progress(status: RolloutStatus) -> None:
    """Every strategy forgets its progress: the status may still hold another strategy's (the
    spec changed strategy), and none of it applies to a revision starting afresh."""
    for strategy in STRATEGIES:
        strategy.forget_progress(status)
