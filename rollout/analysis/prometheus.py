"""The Prometheus provider: one instant query per measurement, through prometheus-api-client
(and the range queries of the compare provider, rollout/analysis/compare.py).

Called by the controller (in a worker thread) for each measurement that is due. Connection
failures, timeouts and 5xx answers are retried with tenacity a few times within the
measurement; what still fails becomes an error measurement (counted toward
consecutiveErrorLimit by the bookkeeping), and a 4xx (a bad query) fails at once. Whatever else
does not look like a Prometheus answer (HTML from a proxy, JSON without `data.result`, a matrix,
a value that is not a number or is out of any sane range) is an error with a message saying
what came back, never a value. Each query, its duration and its outcome go to the
structured log."""

from __future__ import annotations

import ast
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import requests
import structlog
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from urllib3.util.retry import Retry

from rollout.analysis.args import placeholders, substitute_query
from rollout.analysis.expressions import Result
from rollout.analysis.provider import QueryError, SecretUse, header_uses
from rollout.api.base import parse_duration
from rollout.api.templates import PrometheusProvider, RequestHeader

log = structlog.get_logger("rollout.analysis")

# A finite value beyond this is an overflow or a sentinel, not a measurement (float64 ends at 1.8e308).
MAX_MAGNITUDE = 1e300
SNIPPET = 120  # characters of an unexpected value quoted in a message
T = TypeVar("T")
_BODY = re.compile(r"\((b(?:'.*'|\".*\"))\)$", re.DOTALL)


@dataclass(frozen=True)
class PrometheusRequest:
    """A PromQL query with its arguments filled in (label values escaped for their literal)."""

    query: str
    address: str | None
    timeout: float
    headers: tuple[RequestHeader, ...]
    insecure: bool

    @property
    def text(self) -> str:
        return self.query


class PrometheusMetrics:
    """`provider.prometheus`: the provider seam for PromQL (see rollout/analysis/provider.py)."""

    kind = "prometheus"
    json_result = False

    def placeholders(self, config: PrometheusProvider) -> set[str]:
        return placeholders(config.query)

    def resolve(self, config: PrometheusProvider, args: Mapping[str, str]) -> PrometheusRequest:
        return PrometheusRequest(
            query=substitute_query(config.query, args),
            address=config.address,
            timeout=parse_duration(config.timeout),
            headers=tuple(config.headers),
            insecure=config.insecure,
        )

    def secret_uses(self, config: PrometheusProvider) -> list[SecretUse]:
        return header_uses(config.headers)

    def measure(
        self,
        request: PrometheusRequest,
        headers: Mapping[str, str],
        clients: Mapping[str, Any],
        context: Mapping[str, str],
    ) -> Result:
        client: Prometheus = clients["prometheus"]
        return client.query(
            request.query,
            address=request.address,
            timeout=request.timeout,
            headers=headers,
            insecure=request.insecure,
            context=context,
        )


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    return isinstance(exc, PrometheusApiClientException) and "HTTP Status Code 5" in str(exc)


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:SNIPPET] + ("..." if len(flat) > SNIPPET else ""))


def _number(raw: Any) -> float:
    """A sample value as Prometheus writes it ("0.5", "NaN", "+Inf"); NaN and Inf are kept (no
    data), anything else that is not a sane number is an error."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise QueryError(f"the result holds a value that is not a number: {_snippet(str(raw))}")
    try:
        value = float(raw)
    except ValueError:
        raise QueryError(f"the result holds a value that is not a number: {_snippet(str(raw))}") from None
    if math.isfinite(value) and abs(value) > MAX_MAGNITUDE:
        raise QueryError(
            f"the result holds {value:.6g}, beyond any sane measurement (|value| > {MAX_MAGNITUDE:g}): "
            "an overflow or a sentinel value"
        )
    return value


def parse_result(data: Any) -> Result:
    """A scalar as a float, an instant vector as a list of floats (NaN and Inf kept as such)."""
    if isinstance(data, list) and any(isinstance(s, dict) and "values" in s for s in data):
        raise QueryError("the query returns a range vector (matrix); use an instant vector or a scalar")
    if isinstance(data, list) and len(data) == 2 and not isinstance(data[0], dict):
        return _number(data[1])  # resultType scalar: [time, "value"]
    if isinstance(data, list) and all(isinstance(s, dict) for s in data):
        values = []
        for sample in data:
            pair = sample.get("value")
            if not isinstance(pair, list) or len(pair) != 2:
                raise QueryError(f"a sample of the result has no [time, value]: {_snippet(str(sample))}")
            values.append(_number(pair[1]))
        return values
    raise QueryError(f"unexpected result from Prometheus: {_snippet(str(data))}")


def parse_matrix(data: Any) -> list[list[float]]:
    """A range query's answer (resultType matrix) as each series' values."""
    if not isinstance(data, list) or not all(isinstance(s, dict) and "values" in s for s in data):
        raise QueryError(f"expected a range vector (matrix) from a range query: {_snippet(str(data))}")
    series = []
    for sample in data:
        points = sample["values"]
        if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
            raise QueryError(f"a series of the result has no [time, value] pairs: {_snippet(str(sample))}")
        series.append([_number(point[1]) for point in points])
    return series


def _logged(value: Any) -> Any:
    """What the structured log shows of a value: a range answer as its sample counts."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return {"series": len(value), "samples": sum(len(v) for v in value)}
    return value


class Prometheus:
    """Queries any Prometheus by address; `default_address` is the controller's fallback."""

    def __init__(
        self, default_address: str | None = None, *, attempts: int = 3, backoff: float = 0.2
    ) -> None:
        self.default_address = default_address
        self.attempts = attempts
        self.backoff = backoff

    def address_for(self, address: str | None) -> str:
        chosen = address or self.default_address
        if not chosen:
            raise QueryError(
                "no Prometheus address: set provider.prometheus.address in the template "
                "or --prometheus-address on the controller"
            )
        return chosen

    def query(
        self,
        query: str,
        *,
        address: str | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        insecure: bool = False,
        context: Mapping[str, str] | None = None,
    ) -> Result:
        """An instant query: a number or a list of numbers."""
        return self._ask(
            query,
            lambda client: parse_result(client.custom_query(query)),
            address=address,
            timeout=timeout,
            headers=headers,
            insecure=insecure,
            context=context,
        )

    def query_range(
        self,
        query: str,
        start: datetime,
        end: datetime,
        step: float,
        *,
        address: str | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        insecure: bool = False,
        context: Mapping[str, str] | None = None,
    ) -> list[list[float]]:
        """A range query: each series' values from `start` to `end`, one every `step` seconds
        (NaN and Inf kept as such: the judge counts and drops them). The step goes as a float
        number of seconds: Prometheus parses "1.5" but not "1.5s" as a duration."""
        return self._ask(
            query,
            lambda client: parse_matrix(
                client.custom_query_range(query, start_time=start, end_time=end, step=f"{step:g}")
            ),
            address=address,
            timeout=timeout,
            headers=headers,
            insecure=insecure,
            context=context,
        )

    def _ask(
        self,
        query: str,
        call: Callable[[PrometheusConnect], T],
        *,
        address: str | None,
        timeout: float,
        headers: Mapping[str, str] | None,
        insecure: bool,
        context: Mapping[str, str] | None,
    ) -> T:
        url = self.address_for(address).rstrip("/")
        # Retries are tenacity's (below), so that each attempt is logged and bounded the same way.
        client = PrometheusConnect(
            url=url, headers=dict(headers or {}), disable_ssl=insecure, retry=Retry(total=0), timeout=timeout
        )
        started = time.monotonic()
        attempt = 0
        try:
            for attempt_state in Retrying(
                retry=retry_if_exception(_transient),
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=self.backoff, max=2.0),
                reraise=True,
            ):
                with attempt_state:
                    attempt = attempt_state.retry_state.attempt_number
                    value = call(client)
        except QueryError as exc:
            self._log(query, url, started, attempt, context, error=str(exc))
            raise
        except (
            requests.RequestException,
            PrometheusApiClientException,
            ValueError,
            KeyError,
            TypeError,
        ) as exc:
            message = _describe(exc, url)
            self._log(query, url, started, attempt, context, error=message)
            raise QueryError(message) from exc
        self._log(query, url, started, attempt, context, value=_logged(value))
        return value

    @staticmethod
    def _log(
        query: str,
        url: str,
        started: float,
        attempts: int,
        context: Mapping[str, str] | None,
        *,
        value: Result | None = None,
        error: str = "",
    ) -> None:
        fields = dict(context or {})
        seconds = round(time.monotonic() - started, 4)
        if error:
            log.warning(
                "prometheus query failed",
                query=query,
                address=url,
                seconds=seconds,
                attempts=attempts,
                error=error,
                **fields,
            )
        else:
            log.info(
                "prometheus query",
                query=query,
                address=url,
                seconds=seconds,
                attempts=attempts,
                value=value,
                **fields,
            )


def _describe(exc: Exception, url: str) -> str:
    if isinstance(exc, requests.ConnectionError):
        return f"Prometheus at {url} is unreachable (connection failed)"
    if isinstance(exc, requests.Timeout):
        return f"Prometheus at {url} did not answer in time"
    # The client decodes a 200 answer as JSON and takes data.result from it: anything else (a
    # proxy's HTML login page, an error document) fails there.
    if isinstance(exc, ValueError) and not isinstance(exc, PrometheusApiClientException):
        return (
            f"Prometheus at {url} answered HTTP 200 with a body that is not JSON; "
            "is the address a Prometheus API (not a proxy's login or error page)?"
        )
    if isinstance(exc, KeyError | TypeError):
        return f"Prometheus at {url} answered JSON without data.result: not a Prometheus query answer"
    text = str(exc)
    # The client puts the response body's repr in its message; Prometheus explains a rejected
    # query in that body's JSON "error" field.
    body = _BODY.search(text)
    if body:
        try:
            explained = json.loads(ast.literal_eval(body.group(1)))["error"]
        except (ValueError, SyntaxError, KeyError, TypeError):
            explained = None
        if explained:
            return f"query rejected by Prometheus: {explained}"
    return text[:300]


PROVIDER = PrometheusMetrics()
