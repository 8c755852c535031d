"""Which measurements are due now, across the open runs of a Rollout (pure). The controller
queries them; the engine test simulator answers them with scripted values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rollout.analysis.resolve import ResolvedAnalyses, ResolvedMetric
from rollout.analysis.runs import due
from rollout.api.status import RolloutStatus


@dataclass(frozen=True)
class DueMeasurement:
    run: str
    revision: str
    metric: ResolvedMetric


def due_measurements(
    analyses: ResolvedAnalyses, status: RolloutStatus, current: str, now: datetime
) -> list[DueMeasurement]:
    resolved, errors = analyses
    if errors:
        return []  # the engine reports them as InvalidSpec and measures nothing
    out = []
    for run in status.analysis_runs:
        if run.finished_at is None and run.revision == current and run.name in resolved:
            metrics = resolved[run.name]
            out += [
                DueMeasurement(run.name, run.revision, m)
                for m in due(run.model_copy(deep=True), metrics, now)
            ]
    return out
