"""Which measurements are due now, across the open runs of a Rollout (pure). The controller
queries them; the engine test simulator answers them with scripted values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rollout.analysis.resolve import (
    BACKGROUND,
    ResolvedMetric,
    TemplateLookup,
    analysis_refs,
    builtin_args,
    resolve,
)
from rollout.analysis.runs import due
from rollout.api.rollout import Rollout
from rollout.api.status import RolloutStatus


@dataclass(frozen=True)
class DueMeasurement:
    run: str
    revision: str
    metric: ResolvedMetric


def due_measurements(
    rollout: Rollout, status: RolloutStatus, templates: TemplateLookup, current: str, now: datetime
) -> list[DueMeasurement]:
    refs = analysis_refs(rollout)
    builtins = builtin_args(rollout, status.stable_revision, current)
    out = []
    for run in status.analysis_runs:
        if run.finished_at is not None or run.revision != current or run.name not in refs:
            continue
        path, ref = refs[run.name]
        metrics, errors = resolve(ref, path, templates, builtins, bounded=run.name != BACKGROUND)
        if errors:
            continue  # the engine reports them as InvalidSpec
        out += [
            DueMeasurement(run.name, run.revision, m) for m in due(run.model_copy(deep=True), metrics, now)
        ]
    return out
