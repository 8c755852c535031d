"""The InfluxDB provider: one InfluxQL query (1.x, `GET /query`) or one Flux query (2.x,
`POST /api/v2/query`) per measurement.

Resolved with the other metrics (pure): an argument inside a string literal is escaped for that
literal (InfluxQL '...': backslash and quote; Flux "...": backslash, quote and the `${`
interpolation), inside an InfluxQL quoted identifier "..." for the identifier; anywhere else it
may only be a plain token (a number, a duration, a name). Username and password (InfluxQL) or
the token (Flux) are read from Secrets and handed to `measure` like header values (measure.py).

Measured by the controller in a worker thread. InfluxQL goes through `requests` against the
1.x HTTP API: the `influxdb` 1.x client package is archived by its maintainers (no release since
2024), and the API is one GET answering JSON. Flux goes through `influxdb-client`, InfluxData's
2.x client, which parses the annotated CSV answer into tables. In both, one series (an InfluxQL
series, a Flux table) is expected: several is an Error with the count, none or only nulls is no
data (Inconclusive); one row is a number, several rows a list of numbers (oldest first).
Nothing is retried within a measurement: errors are retried at the metric's next interval
within consecutiveErrorLimit. influxdb-client is imported on the first Flux measurement, not with
the controller (with numpy it costs some 40 MiB of memory)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
import urllib3

from rollout.analysis.args import PLACEHOLDER, ArgError, placeholders
from rollout.analysis.expressions import Result
from rollout.analysis.provider import NoData, QueryError, SecretUse, header_uses, logged
from rollout.api.base import parse_duration
from rollout.api.templates import HeaderValueFrom, InfluxDBProvider, RequestHeader, SecretKeyRef

if TYPE_CHECKING:
    from influxdb_client.rest import ApiException as InfluxApiException

SNIPPET = 160  # characters of an unexpected answer quoted in a message
_PLAIN_TOKEN = re.compile(r"^[A-Za-z0-9_.:]+$")
# The quoted parts of each language, or a placeholder outside them.
_INFLUXQL_PARTS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|" + PLACEHOLDER.pattern, re.DOTALL)
_FLUX_PARTS = re.compile(r"\"(?:[^\"\\]|\\.)*\"|" + PLACEHOLDER.pattern, re.DOTALL)


@dataclass(frozen=True)
class InfluxRequest:
    """A query with its arguments filled in, and where it goes."""

    address: str
    language: str  # influxql | flux
    query: str
    database: str | None
    retention_policy: str | None
    org: str | None
    timeout: float
    headers: tuple[RequestHeader, ...]  # the credentials' Secret references

    @property
    def text(self) -> str:
        return self.query


def _value(name: str, args: Mapping[str, str]) -> str:
    if name not in args:
        raise ArgError(f"argument {name!r} has no value (give it in the Rollout's analysis args)")
    return args[name]


def escape_influxql_string(value: str) -> str:
    """`value` as the inside of an InfluxQL string literal '...'."""
    return value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")


def escape_influxql_identifier(value: str) -> str:
    """`value` as the inside of an InfluxQL quoted identifier "..."."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_flux_string(value: str) -> str:
    """`value` as the inside of a Flux string literal "..." (where `${` starts an interpolation)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _substitute(
    query: str, args: Mapping[str, str], parts: re.Pattern[str], escapes: Mapping[str, Callable[[str], str]]
) -> str:
    def fill(match: re.Match[str]) -> str:
        if match.group(1) is not None:  # a bare placeholder, outside any quotes
            value = _value(match.group(1), args)
            if not _PLAIN_TOKEN.match(value):
                raise ArgError(
                    f"argument {match.group(1)!r} = {value!r} is used outside a quoted string, "
                    "where only numbers, durations and names are allowed"
                )
            return value
        quoted = match.group(0)
        escape = escapes[quoted[0]]
        return PLACEHOLDER.sub(lambda m: escape(_value(m.group(1), args)), quoted)

    return parts.sub(fill, query)


def substitute_influxql(query: str, args: Mapping[str, str]) -> str:
    escapes = {"'": escape_influxql_string, '"': escape_influxql_identifier}
    return _substitute(query, args, _INFLUXQL_PARTS, escapes)


def substitute_flux(query: str, args: Mapping[str, str]) -> str:
    return _substitute(query, args, _FLUX_PARTS, {'"': escape_flux_string})


def _credential(key: str, ref: SecretKeyRef | None) -> list[RequestHeader]:
    return [] if ref is None else [RequestHeader(key=key, value_from=HeaderValueFrom(secret_key_ref=ref))]


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:SNIPPET] + ("..." if len(flat) > SNIPPET else ""))


class InfluxDBMetrics:
    """`provider.influxdb`: the provider seam for InfluxQL and Flux (see provider.py)."""

    kind = "influxdb"
    json_result = False

    def placeholders(self, config: InfluxDBProvider) -> set[str]:
        return placeholders(config.query)

    def resolve(self, config: InfluxDBProvider, args: Mapping[str, str]) -> InfluxRequest:
        substitute = substitute_influxql if config.language == "influxql" else substitute_flux
        return InfluxRequest(
            address=config.address.rstrip("/"),
            language=config.language,
            query=substitute(config.query, args),
            database=config.database,
            retention_policy=config.retention_policy,
            org=config.org,
            timeout=parse_duration(config.timeout),
            headers=self._credentials(config),
        )

    def secret_uses(self, config: InfluxDBProvider) -> list[SecretUse]:
        return [
            SecretUse(f"{use.header}SecretRef", use.header, use.ref)
            for use in header_uses(self._credentials(config))
        ]

    @staticmethod
    def _credentials(config: InfluxDBProvider) -> tuple[RequestHeader, ...]:
        return tuple(
            _credential("username", config.username_secret_ref)
            + _credential("password", config.password_secret_ref)
            + _credential("token", config.token_secret_ref)
        )

    def measure(
        self,
        request: InfluxRequest,
        headers: Mapping[str, str],
        clients: Mapping[str, Any],
        context: Mapping[str, str],
    ) -> Result:
        measure = _measure_influxql if request.language == "influxql" else _measure_flux
        return logged(
            "influxdb measurement",
            lambda: measure(request, headers),
            context,
            query=request.text,
            address=request.address,
        )


def _number(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise QueryError(f"the series holds a value that is not a number: {_snippet(str(raw))}")
    return float(raw)


def _one_or_list(values: list[float], what: str) -> Result:
    if not values:
        raise NoData(f"{what} holds no values (only nulls)")
    return values[0] if len(values) == 1 else values


def _measure_influxql(request: InfluxRequest, credentials: Mapping[str, str]) -> Result:
    params = {"db": request.database or "", "q": request.query, "epoch": "ms"}
    if request.retention_policy:
        params["rp"] = request.retention_policy
    auth = None
    if "username" in credentials:
        auth = (credentials["username"], credentials.get("password", ""))
    where = f"InfluxDB at {request.address}"
    try:
        response = requests.get(
            f"{request.address}/query",
            params=params,
            auth=auth,
            timeout=request.timeout,
            allow_redirects=False,
        )
    except requests.Timeout as exc:
        raise QueryError(f"{where} did not answer within {request.timeout:g}s") from exc
    except requests.ConnectionError as exc:
        raise QueryError(f"{where} is unreachable (connection failed)") from exc
    except requests.RequestException as exc:
        raise QueryError(f"{where}: {exc}") from exc
    try:
        answer = response.json()
    except ValueError:
        said = f"HTTP {response.status_code} with a body that is not JSON"
        raise QueryError(f"{where} answered {said}: {_snippet(response.text)}") from None
    if not isinstance(answer, dict):
        raise QueryError(f"{where} answered JSON that is not a query answer: {_snippet(response.text)}")
    if response.status_code != 200 or "error" in answer:
        raise QueryError(
            f"{where} answered HTTP {response.status_code}: {answer.get('error', _snippet(response.text))}"
        )
    return influxql_value(answer)


def influxql_value(answer: Mapping[str, Any]) -> Result:
    """The value of a 1.x /query answer holding one statement's one series of one value column."""
    results = answer.get("results")
    if not isinstance(results, list) or not results:
        raise QueryError(f"the answer has no results: {_snippet(str(answer))}")
    if len(results) > 1:
        raise QueryError(f"the query holds {len(results)} statements; a metric is one statement")
    result = results[0]
    if result.get("error"):
        raise QueryError(f"query rejected by InfluxDB: {result['error']}")
    series = result.get("series") or []
    if not series:
        raise NoData("the query answered no series")
    if len(series) > 1:
        tags = [s.get("tags") for s in series[:3]]
        raise QueryError(
            f"{len(series)} series answered where one is expected (first tags: {tags}); "
            "narrow the WHERE clause or drop the GROUP BY tags"
        )
    columns = [c for c in series[0].get("columns", []) if c != "time"]
    if len(columns) != 1:
        raise QueryError(f"the series has columns {columns}; a metric selects one value column")
    at = series[0]["columns"].index(columns[0])
    rows = series[0].get("values") or []
    values = [_number(row[at]) for row in rows if row[at] is not None]
    return _one_or_list(values, f"series {series[0].get('name', '')!r}")


def _measure_flux(request: InfluxRequest, credentials: Mapping[str, str]) -> Result:
    from influxdb_client import InfluxDBClient
    from influxdb_client.client.flux_csv_parser import FluxCsvParserException, FluxQueryException
    from influxdb_client.rest import ApiException

    where = f"InfluxDB at {request.address}"
    try:
        with InfluxDBClient(
            url=request.address,
            token=credentials.get("token"),
            org=request.org,
            timeout=int(request.timeout * 1000),
            retries=urllib3.Retry(total=0),  # retried at the next interval, not within it
        ) as client:
            tables = client.query_api().query(request.query, org=request.org)
    except ApiException as exc:
        raise QueryError(f"{where} answered HTTP {exc.status}: {_api_message(exc)}") from exc
    except FluxQueryException as exc:
        raise QueryError(f"query failed in InfluxDB: {exc.message}") from exc
    except FluxCsvParserException as exc:
        raise QueryError(f"{where} answered CSV that is not a Flux answer: {exc}") from exc
    except urllib3.exceptions.HTTPError as exc:
        if isinstance(getattr(exc, "reason", exc), urllib3.exceptions.ReadTimeoutError | TimeoutError):
            raise QueryError(f"{where} did not answer within {request.timeout:g}s") from exc
        raise QueryError(f"{where} is unreachable: {exc}") from exc
    if not tables:
        raise NoData("the query answered no tables")
    if len(tables) > 1:
        raise QueryError(
            f"{len(tables)} tables (series) answered where one is expected; "
            "group() or filter the query down to one"
        )
    columns = [column.label for column in tables[0].columns]
    if "_value" not in columns:
        raise QueryError(f"the table has no _value column (columns: {', '.join(columns)})")
    values = []
    for record in tables[0].records:
        value = record.get_value()
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            values.append(_number(value))
    return _one_or_list(values, "the table")


def _api_message(exc: InfluxApiException) -> str:
    """InfluxDB 2.x explains an error in a JSON body's `message`."""
    try:
        return str(json.loads(exc.body)["message"])
    except (ValueError, TypeError, KeyError):
        return _snippet(str(exc.body or exc.reason))


PROVIDER = InfluxDBMetrics()
