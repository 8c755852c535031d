"""The Graphite provider: one render API query per measurement (GET /render?target=...&from=...
&until=...&format=json on graphite-web).

Resolved with the other metrics (pure): an argument standing bare in the target is one path
node (letters, digits, _ and -): no dot to reach another branch, no wildcard, brace, bracket,
parenthesis or comma to widen the match or add a function; one inside a quoted string argument
of a function ('...' or "...") may hold anything but a quote or a backslash, so it cannot end
that string. Measured by the controller in a worker thread (http.py; headers, from Secrets
too, are sent as given): exactly one series is expected (series.py) and its non-null points are
reduced by `aggregator`. A non-2xx answer, a timeout or an answer that is not a render answer is
an Error; no series or only null points is no data (Inconclusive)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollout.analysis.args import PLACEHOLDER, ArgError, placeholders
from rollout.analysis.expressions import Result
from rollout.analysis.http import exchange, snippet
from rollout.analysis.provider import QueryError, SecretUse, header_uses, logged
from rollout.analysis.series import one_series, reduce_points
from rollout.api.base import parse_duration
from rollout.api.templates import GraphiteProvider, RequestHeader

MAX_ANSWER_BYTES = 4 * 1024 * 1024
_STRING_OR_PLACEHOLDER = re.compile(r"'[^']*'|\"[^\"]*\"|" + PLACEHOLDER.pattern)
_PATH_NODE = re.compile(r"[A-Za-z0-9_-]+")
_STRING_BREAKS = ("'", '"', "\\", "\n", "\r", "\0")


def _value(name: str, args: Mapping[str, str]) -> str:
    if name not in args:
        raise ArgError(f"argument {name!r} has no value (give it in the Rollout's analysis args)")
    return args[name]


def substitute_target(target: str, args: Mapping[str, str]) -> str:
    """Each argument checked for where it stands in the target (see the module's docstring)."""

    def fill(match: re.Match[str]) -> str:
        if match.group(1) is not None:  # a bare placeholder: part of a metric path
            value = _value(match.group(1), args)
            if not _PATH_NODE.fullmatch(value):
                raise ArgError(
                    f"argument {match.group(1)!r} = {value!r} stands in a Graphite metric path, where it "
                    "is one path node: letters, digits, _ and - only (no dots, wildcards, braces or "
                    "function syntax)"
                )
            return value

        def inner(placeholder: re.Match[str]) -> str:
            value = _value(placeholder.group(1), args)
            if any(ch in value for ch in _STRING_BREAKS):
                raise ArgError(
                    f"argument {placeholder.group(1)!r} = {value!r} stands in a quoted string of the "
                    "Graphite target, where quotes, backslashes and line breaks cannot be given"
                )
            return value

        return PLACEHOLDER.sub(inner, match.group(0))

    return _STRING_OR_PLACEHOLDER.sub(fill, target)


@dataclass(frozen=True)
class GraphiteRequest:
    """A render query with its target filled in."""

    address: str
    target: str
    from_: str
    until: str
    aggregator: str
    timeout: float
    headers: tuple[RequestHeader, ...]
    insecure: bool

    @property
    def text(self) -> str:
        return self.target


class GraphiteMetrics:
    """`provider.graphite`: the provider seam for Graphite's render API (see provider.py)."""

    kind = "graphite"
    json_result = False

    def placeholders(self, config: GraphiteProvider) -> set[str]:
        return placeholders(config.target)

    def resolve(self, config: GraphiteProvider, args: Mapping[str, str]) -> GraphiteRequest:
        return GraphiteRequest(
            address=config.address.rstrip("/"),
            target=substitute_target(config.target, args),
            from_=config.from_,
            until=config.until,
            aggregator=config.aggregator,
            timeout=parse_duration(config.timeout),
            headers=tuple(config.headers),
            insecure=config.insecure,
        )

    def secret_uses(self, config: GraphiteProvider) -> list[SecretUse]:
        return header_uses(config.headers)

    def measure(
        self,
        request: GraphiteRequest,
        headers: Mapping[str, str],
        clients: Mapping[str, Any],
        context: Mapping[str, str],
    ) -> Result:
        return logged(
            "graphite query",
            lambda: _measure(request, headers),
            context,
            target=request.target,
            address=request.address,
        )


def _measure(request: GraphiteRequest, headers: Mapping[str, str]) -> float:
    what = f"Graphite target {request.target!r}"
    answer = exchange(
        "GET",
        f"{request.address}/render",
        what=what,
        timeout=request.timeout,
        max_bytes=MAX_ANSWER_BYTES,
        headers={"Accept": "application/json", **headers},
        params={"target": request.target, "from": request.from_, "until": request.until, "format": "json"},
        insecure=request.insecure,
    )
    try:
        rendered = json.loads(answer.text)
    except ValueError as exc:
        raise QueryError(
            f"{what}: Graphite answered a body that is not JSON: {snippet(answer.text)}"
        ) from exc
    if not isinstance(rendered, list) or not all(isinstance(s, dict) and "datapoints" in s for s in rendered):
        raise QueryError(f"{what}: Graphite's answer is not a render answer: {snippet(answer.text)}")
    series: dict[str, Any] = one_series(rendered, what)
    try:
        points = [value for value, _ in series["datapoints"]]
    except (TypeError, ValueError):
        raise QueryError(f"{what}: a datapoint is not [value, timestamp]: {snippet(answer.text)}") from None
    return reduce_points(points, request.aggregator, what)


PROVIDER = GraphiteMetrics()
