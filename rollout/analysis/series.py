"""Time series answers of the vendor providers (datadog.py, graphite.py) made into one number:
exactly one series is expected (several is an Error naming how many, so a query that matches
more than the author meant never passes on one of them), and its non-null points are reduced by
the metric's `aggregator`; no series or no point is no data (Inconclusive)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import fmean
from typing import TypeVar

from rollout.analysis.provider import NoData, QueryError

Series = TypeVar("Series")

REDUCERS = {
    "last": lambda points: points[-1],
    "avg": fmean,
    "min": min,
    "max": max,
    "sum": math.fsum,
}


def one_series(series: Sequence[Series], what: str) -> Series:
    """The only series of an answer to `what`."""
    if not series:
        raise NoData(f"{what} returned no series")
    if len(series) > 1:
        raise QueryError(
            f"{what} returned {len(series)} series where one is expected: narrow the query "
            "(a tag or path that selects one) or aggregate the series into one"
        )
    return series[0]


def reduce_points(points: Sequence[float | int | None], aggregator: str, what: str) -> float:
    """The series' points in time order (None: no point there) as one value."""
    present = []
    for point in points:
        if point is None:
            continue
        if isinstance(point, bool) or not isinstance(point, int | float):
            raise QueryError(f"{what} returned a point that is not a number: {point!r}")
        if math.isfinite(point):  # NaN or Inf: no measurement there, as for Prometheus
            present.append(float(point))
    if not present:
        raise NoData(f"{what} returned a series without points in its window")
    return float(REDUCERS[aggregator](present))
