"""The Datadog provider: one metrics query per measurement, through Datadog's own Python client
(datadog-api-client).

Resolved with the other metrics (pure): an argument in a query is limited to the characters of
a Datadog tag (letters, digits, _ - : . /), so a value can neither leave the scope `{...}` it
sits in nor add a function or another query. Measured by the controller in a worker thread: API
v1 reads `query` over the last `window` (MetricsApi.query_metrics, GET /api/v1/query), v2 the
`formula` over named `queries` (MetricsApi.query_timeseries_data, POST
/api/v2/query/timeseries). Exactly one series is expected (series.py); its points are reduced
by `aggregator`. A 429 is retried (tenacity) after the X-RateLimit-Reset seconds Datadog sends,
as long as that fits in the metric's timeout; any other failure is an Error measurement. The
client is imported on the first measurement, not with the controller (some 17 MiB of memory)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_before_delay

from rollout.analysis.args import PLACEHOLDER, ArgError, placeholders
from rollout.analysis.expressions import Result
from rollout.analysis.provider import NoData, QueryError, SecretUse, logged
from rollout.analysis.series import one_series, reduce_points
from rollout.api.base import parse_duration
from rollout.api.templates import DatadogProvider, HeaderValueFrom, RequestHeader

if TYPE_CHECKING:
    from datadog_api_client import ApiClient
    from datadog_api_client.exceptions import ApiException

API_KEY_HEADER = "DD-API-KEY"
APP_KEY_HEADER = "DD-APPLICATION-KEY"
RESET_HEADER = "x-ratelimit-reset"  # seconds until the rate limit resets (Datadog's docs)
SNIPPET = 200
# A Datadog tag's characters: an argument can be a tag value or a name, nothing that quotes,
# groups, separates or calls.
_TAG_VALUE = re.compile(r"[A-Za-z0-9_\-:./]+")


@dataclass(frozen=True)
class DatadogRequest:
    """A Datadog query with its arguments filled in; `headers` name the keys' Secrets."""

    api_version: str
    address: str
    queries: tuple[tuple[str, str], ...]  # (name, text) pairs; one query is named "a"
    formula: str | None  # None: the one query as it is
    window: float
    aggregator: str
    timeout: float
    headers: tuple[RequestHeader, ...]

    @property
    def text(self) -> str:
        if self.formula is None:  # one query, its own formula in v2
            return self.queries[0][1]
        asked = ", ".join(f"{name}: {query}" for name, query in self.queries)
        return f"{self.formula} where {asked}"


def substitute_query(query: str, args: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in args:
            raise ArgError(f"argument {name!r} has no value (give it in the Rollout's analysis args)")
        value = args[name]
        if not _TAG_VALUE.fullmatch(value):
            raise ArgError(
                f"argument {name!r} = {value!r} is used in a Datadog query, where a value is limited "
                "to the characters of a tag (letters, digits, _ - : . /)"
            )
        return value

    return PLACEHOLDER.sub(fill, query)


def _secret_header(header: str, ref: Any) -> RequestHeader:
    return RequestHeader(key=header, value_from=HeaderValueFrom(secret_key_ref=ref))


class DatadogMetrics:
    """`provider.datadog`: the provider seam for Datadog metrics queries (see provider.py)."""

    kind = "datadog"
    json_result = False

    def placeholders(self, config: DatadogProvider) -> set[str]:
        found = placeholders(config.query or "") | placeholders(config.formula or "")
        for query in config.queries.values():
            found |= placeholders(query)
        return found

    def resolve(self, config: DatadogProvider, args: Mapping[str, str]) -> DatadogRequest:
        if config.query is not None:  # v1's query, or v2's one query named "a", its own formula
            queries: tuple[tuple[str, str], ...] = (("a", substitute_query(config.query, args)),)
            formula = None
        else:
            queries = tuple((name, substitute_query(q, args)) for name, q in sorted(config.queries.items()))
            formula = substitute_query(config.formula or "", args)
        return DatadogRequest(
            api_version=config.api_version,
            address=config.address.rstrip("/"),
            queries=queries,
            formula=formula,
            window=parse_duration(config.window),
            aggregator=config.aggregator,
            timeout=parse_duration(config.timeout),
            headers=(
                _secret_header(API_KEY_HEADER, config.api_key_secret_ref),
                _secret_header(APP_KEY_HEADER, config.app_key_secret_ref),
            ),
        )

    def secret_uses(self, config: DatadogProvider) -> list[SecretUse]:
        return [
            SecretUse("apiKeySecretRef", API_KEY_HEADER, config.api_key_secret_ref),
            SecretUse("appKeySecretRef", APP_KEY_HEADER, config.app_key_secret_ref),
        ]

    def measure(
        self,
        request: DatadogRequest,
        headers: Mapping[str, str],
        clients: Mapping[str, Any],
        context: Mapping[str, str],
    ) -> Result:
        return logged(
            "datadog query",
            lambda: _measure(request, headers),
            context,
            query=request.text,
            address=request.address,
        )


def _rate_limited(exc: BaseException) -> bool:
    from datadog_api_client.exceptions import ApiException

    return isinstance(exc, ApiException) and exc.status == 429


def _reset_seconds(exc: BaseException | None) -> float:
    """Datadog's X-RateLimit-Reset: seconds until the limit resets (1 s when it is not sent)."""
    found = {k.lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}.get(RESET_HEADER)
    try:
        return max(0.0, float(found)) if found is not None else 1.0
    except ValueError:
        return 1.0


def _wait_for_reset(state: RetryCallState) -> float:
    return _reset_seconds(state.outcome.exception() if state.outcome else None)


def _errors(exc: ApiException) -> str:
    """Datadog's error body: {"errors": ["..."]}; anything else quoted briefly."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(e) for e in body["errors"])[:SNIPPET]
    text = " ".join(str(body or exc.reason or "").split())
    return repr(text[:SNIPPET])


def _measure(request: DatadogRequest, headers: Mapping[str, str]) -> float:
    from datadog_api_client import ApiClient, Configuration
    from datadog_api_client.exceptions import ApiException, OpenApiException

    what = f"Datadog query {request.text!r}"
    configuration = Configuration(
        host=request.address,
        api_key={"apiKeyAuth": headers[API_KEY_HEADER], "appKeyAuth": headers[APP_KEY_HEADER]},
        # No retries by the client or by urllib3's pool (which would retry a read timeout 3 times,
        # past the metric's timeout): a 429 is retried below, within the timeout, and nothing else.
        retry_policy=urllib3.util.Retry(total=False),
    )
    deadline = time.monotonic() + request.timeout
    try:
        with ApiClient(configuration) as client:
            for attempt in Retrying(
                retry=retry_if_exception(_rate_limited),
                wait=_wait_for_reset,
                stop=stop_before_delay(request.timeout),
                reraise=True,
            ):
                with attempt:
                    remaining = max(0.1, deadline - time.monotonic())
                    answer = _ask(client, request, remaining)
    except ApiException as exc:
        if exc.status == 429:
            raise QueryError(
                f"{what}: rate limited by Datadog (HTTP 429; the limit resets in "
                f"{_reset_seconds(exc):g}s, past the metric's timeout of {request.timeout:g}s)"
            ) from exc
        raise QueryError(f"{what}: Datadog answered HTTP {exc.status}: {_errors(exc)}") from exc
    except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError to urllib3, too
        raise QueryError(f"{what}: Datadog at {request.address} is unreachable (connection failed)") from exc
    except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
        raise QueryError(
            f"{what}: Datadog at {request.address} did not answer within {request.timeout:g}s"
        ) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise QueryError(
            f"{what}: Datadog at {request.address} is unreachable ({type(exc).__name__})"
        ) from exc
    except (OpenApiException, ValueError, TypeError, KeyError) as exc:
        # The client checks the answer against Datadog's schema: one that does not fit is no answer.
        raise QueryError(f"{what}: Datadog's answer is not a metrics query answer: {exc}"[:400]) from exc
    return _value(answer, request, what)


def _ask(client: ApiClient, request: DatadogRequest, timeout: float) -> dict[str, Any]:
    from datadog_api_client.v1.api.metrics_api import MetricsApi as MetricsApiV1
    from datadog_api_client.v2.api.metrics_api import MetricsApi as MetricsApiV2
    from datadog_api_client.v2.model.metrics_data_source import MetricsDataSource
    from datadog_api_client.v2.model.metrics_timeseries_query import MetricsTimeseriesQuery
    from datadog_api_client.v2.model.query_formula import QueryFormula
    from datadog_api_client.v2.model.timeseries_formula_query_request import TimeseriesFormulaQueryRequest
    from datadog_api_client.v2.model.timeseries_formula_request import TimeseriesFormulaRequest
    from datadog_api_client.v2.model.timeseries_formula_request_attributes import (
        TimeseriesFormulaRequestAttributes,
    )
    from datadog_api_client.v2.model.timeseries_formula_request_queries import TimeseriesFormulaRequestQueries
    from datadog_api_client.v2.model.timeseries_formula_request_type import TimeseriesFormulaRequestType

    client.configuration.request_timeout = timeout  # what is left of the metric's timeout
    now = time.time()
    start = now - request.window
    if request.api_version == "v1":
        answer = MetricsApiV1(client).query_metrics(
            _from=int(start), to=int(now), query=request.queries[0][1]
        )
        return answer.to_dict()
    body = TimeseriesFormulaQueryRequest(
        data=TimeseriesFormulaRequest(
            type=TimeseriesFormulaRequestType.TIMESERIES_REQUEST,
            attributes=TimeseriesFormulaRequestAttributes(
                _from=int(start * 1000),
                to=int(now * 1000),
                queries=TimeseriesFormulaRequestQueries(
                    [
                        MetricsTimeseriesQuery(data_source=MetricsDataSource.METRICS, name=name, query=query)
                        for name, query in request.queries
                    ]
                ),
                formulas=[QueryFormula(formula=request.formula or request.queries[0][0])],
            ),
        )
    )
    return MetricsApiV2(client).query_timeseries_data(body=body).to_dict()


def _value(answer: dict[str, Any], request: DatadogRequest, what: str) -> float:
    if request.api_version == "v1":
        if answer.get("status") == "error" or answer.get("error"):
            raise QueryError(f"{what}: Datadog answered an error: {answer.get('error') or answer}"[:400])
        series: dict[str, Any] = one_series(answer.get("series") or [], what)
        points = [point[1] if len(point) > 1 else None for point in series.get("pointlist") or []]
        return reduce_points(points, request.aggregator, what)
    if answer.get("errors"):
        raise QueryError(f"{what}: Datadog answered an error: {answer['errors']}"[:400])
    attributes = (answer.get("data") or {}).get("attributes") or {}
    series = attributes.get("series") or []
    one_series(series, what)
    values = attributes.get("values") or []
    if not values:
        raise NoData(f"{what} returned a series without points in its window")
    return reduce_points(values[0], request.aggregator, what)


PROVIDER = DatadogMetrics()
