"""The compare provider (`provider: {compare: {...}}`): each query's range data over the window,
once for the canary and once for the reference side, pooled per side.

Resolve (pure, before anything is measured) fills the template's arguments, then each side's
placeholders: {{side.revision}} (the side's pod-template hash), {{side.pods}} (a regex of its pod
names: <rollout>-<hash>-<suffix>) and {{side.role}} (the value of the `role` label the Rollout's
canaryMetadata / stableMetadata put on the side's pods; InvalidSpec without one), each escaped
for where it stands as arguments are. Measure (in a worker thread) asks Prometheus for both sides over
[now - window, now] every `step`, and hands the samples to the judge (rollout/analysis/judge.py,
called by the bookkeeping in runs.py), which turns them into a score.

The reference side is the stable pods (`against: stable`) or the canary's baseline (`against:
baseline`: fresh pods of the stable template started with the canary, canary.baselineService;
built-in argument baseline-hash), whose pods carry no role label."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.analysis.args import PLACEHOLDER, ArgError, placeholders, substitute_query
from rollout.analysis.judge import Criteria, JudgeSettings, QueryCriteria, scipy_stats
from rollout.analysis.prometheus import Prometheus
from rollout.analysis.provider import NoData, SecretUse, header_uses
from rollout.api.base import parse_duration
from rollout.api.templates import SIDE_PLACEHOLDER, CompareProvider, RequestHeader, percent, window_problem

# Generated pod names end in five characters of this alphabet (Kubernetes' generateName).
POD_SUFFIX = "[bcdfghjklmnpqrstvwxz2456789]{5}"


@dataclass(frozen=True)
class Side:
    """What a side's placeholders stand for."""

    name: str  # its role: canary, stable or baseline
    revision: str
    rollout: str
    role: str | None  # the value of the `role` label its pods carry, if the Rollout sets one

    def values(self) -> dict[str, str]:
        values = {"revision": self.revision, "pods": self.pods()}
        if self.role is not None:
            values["role"] = self.role
        return values

    def pods(self) -> str:
        # A pod is named <ReplicaSet>-<suffix>, the ReplicaSet <rollout>-<revision>
        # (rollout/workload/replicasets.py, not imported: it depends on the engine).
        return f"{self.rollout}-{self.revision}-{POD_SUFFIX}" if self.rollout else ""


@dataclass(frozen=True)
class SideQueries:
    """One compare query for both sides; with `totals`, `canary` and `reference` count the events
    and `totals` the (canary, reference) totals (a counts query: instant queries)."""

    name: str
    canary: str
    reference: str
    totals: tuple[str, str] | None = None


@dataclass(frozen=True)
class CompareRequest:
    """Both sides' queries, resolved; `text` (quoted in messages) is the canary side's."""

    queries: tuple[SideQueries, ...]
    settings: JudgeSettings
    window: float
    step: float
    address: str | None
    timeout: float
    headers: tuple[RequestHeader, ...]
    insecure: bool
    # Why there is nothing to compare against (no stable revision yet), or "".
    no_reference: str = ""

    @property
    def text(self) -> str:
        return "; ".join(f"{q.name}: {q.canary}" for q in self.queries)


def _sides(args: Mapping[str, str], against: str) -> tuple[Side, Side]:
    canary = args.get("canary-hash", "")
    if not canary:
        raise ArgError("the canary's revision is unknown (built-in argument canary-hash)")
    if against == "baseline" and "baseline-service" not in args:
        raise ArgError(
            "compare.against is baseline, but the Rollout runs no baseline: set "
            "spec.strategy.canary.baselineService (or compare against stable)"
        )
    rollout = args.get("rollout", "")
    return (
        Side("canary", canary, rollout, args.get("canary-role")),
        # A baseline is not running yet (or any more): "" here, NoData when measured.
        Side(against, args.get(f"{against}-hash", ""), rollout, args.get(f"{against}-role")),
    )


def _seconds(value: int | str, args: Mapping[str, str], field: str) -> float:
    """A duration given as such or by an argument ('{{args.window}}')."""
    whole = PLACEHOLDER.fullmatch(value.strip()) if isinstance(value, str) else None
    try:
        return parse_duration(args[whole.group(1)] if whole else value)
    except ValueError as exc:
        raise ArgError(f"{field}: {exc}") from exc


class CompareMetrics:
    """`provider.compare`: the provider seam (rollout/analysis/provider.py) for the judge."""

    kind = "compare"
    json_result = False

    def placeholders(self, config: CompareProvider) -> set[str]:
        used = set().union(*(placeholders(text) for q in config.queries for text in q.texts))
        for value in (config.window, config.step):
            used |= placeholders(value) if isinstance(value, str) else set()
        return used

    def resolve(self, config: CompareProvider, args: Mapping[str, str]) -> CompareRequest:
        canary, reference = _sides(args, config.against)
        queries = []
        for index, query in enumerate(config.queries):
            field = f"compare.queries[{index}].{'counts' if query.counts else 'query'}"
            uses_role = any("role" in SIDE_PLACEHOLDER.findall(text) for text in query.texts)
            if uses_role and config.against == "baseline":
                raise ArgError(
                    f"{field} uses {{{{side.role}}}}, but the baseline's pods carry no role label; "
                    "against the baseline use {{side.revision}} or {{side.pods}}"
                )
            if uses_role:
                missing = [side.name for side in (canary, reference) if side.role is None]
                if missing:
                    raise ArgError(
                        f"{field} uses {{{{side.role}}}}, but the Rollout sets no `role` label for "
                        f"the {' and '.join(missing)} pods (canaryMetadata/stableMetadata)"
                    )
            per_side = [
                (
                    substitute_query(filled, canary.values(), SIDE_PLACEHOLDER, "side value"),
                    substitute_query(filled, reference.values(), SIDE_PLACEHOLDER, "side value"),
                )
                for filled in (substitute_query(text, args) for text in query.texts)
            ]
            events = per_side[0]
            totals = per_side[1] if query.counts else None
            queries.append(SideQueries(query.name, *events, totals))
        no_reference = ""
        if not reference.revision or reference.revision == canary.revision:
            no_reference = f"no {config.against} revision other than the canary's to compare against"
        settings = JudgeSettings(
            against=config.against,
            marginal=config.marginal_score,
            passing=config.pass_score,
            queries=tuple(
                QueryCriteria(
                    q.name,
                    Criteria(q.direction, percent(q.tolerance), q.min_samples, q.confidence),
                    q.weight,
                    counts=q.counts is not None,
                )
                for q in config.queries
            ),
        )
        endpoint = config.prometheus
        window, step = _seconds(config.window, args, "window"), _seconds(config.step, args, "step")
        problem = window_problem(window, step)
        if problem:
            raise ArgError(problem)
        return CompareRequest(
            queries=tuple(queries),
            settings=settings,
            window=window,
            step=step,
            address=endpoint.address,
            timeout=parse_duration(endpoint.timeout),
            headers=tuple(endpoint.headers),
            insecure=endpoint.insecure,
            no_reference=no_reference,
        )

    def secret_uses(self, config: CompareProvider) -> list[SecretUse]:
        return [
            SecretUse(f"prometheus.{use.field}", use.header, use.ref)
            for use in header_uses(config.prometheus.headers)
        ]

    def measure(
        self,
        request: CompareRequest,
        headers: Mapping[str, str],
        clients: Mapping[str, Any],
        context: Mapping[str, str],
    ) -> dict[str, dict[str, list[float]]]:
        """{query name: {"canary": samples, "reference": samples}}, every series of a side
        pooled (a counts query: [events, total] per side, see _counts); a provider error raises
        QueryError (an Error measurement)."""
        if request.no_reference:
            raise NoData(request.no_reference)
        scipy_stats()  # imported here, in the measuring thread, not by the judge on the event loop
        client: Prometheus = clients["prometheus"]
        end = datetime.fromtimestamp(time.time(), UTC)
        start = end - timedelta(seconds=request.window)
        pooled: dict[str, dict[str, list[float]]] = {}
        for query in request.queries:
            if query.totals is not None:
                pooled[query.name] = _counts(client, request, query, query.totals, headers, context)
                continue
            pooled[query.name] = {}
            for side, text in (("canary", query.canary), ("reference", query.reference)):
                series = client.query_range(
                    text,
                    start,
                    end,
                    request.step,
                    address=request.address,
                    timeout=request.timeout,
                    headers=headers,
                    insecure=request.insecure,
                    context={**context, "side": side},
                )
                pooled[query.name][side] = [value for values in series for value in values]
        return pooled


def _counts(
    client: Prometheus,
    request: CompareRequest,
    query: SideQueries,
    totals: tuple[str, str],
    headers: Mapping[str, str],
    context: Mapping[str, str],
) -> dict[str, list[float]]:
    """A counts query's [events, total] per side (instant queries, each summed over its series);
    events without a series are 0, a side whose total has no series is left out (no data)."""
    counted: dict[str, list[float]] = {}
    for side, events, total in (
        ("canary", query.canary, totals[0]),
        ("reference", query.reference, totals[1]),
    ):
        summed = [
            _summed(
                client.query(
                    text,
                    address=request.address,
                    timeout=request.timeout,
                    headers=headers,
                    insecure=request.insecure,
                    context={**context, "side": side, "count": what},
                )
            )
            for what, text in (("events", events), ("total", total))
        ]
        events_counted, total_counted = summed
        if total_counted is not None:
            # An error counter that never fired has no series with that label: no events.
            counted[side] = [events_counted or 0.0, total_counted]
    return counted


def _summed(result: float | list[float]) -> float | None:
    """An instant answer summed over its series; None when it has none (no such requests yet)."""
    if isinstance(result, list):
        return sum(result) if result else None
    return result


PROVIDER = CompareMetrics()
