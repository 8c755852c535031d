"""The New Relic provider: one NRQL query per measurement, through NerdGraph (New Relic's GraphQL
API: a POST of a GraphQL query with the user key in the `API-Key` header).

Resolved with the other metrics (pure): an argument inside an NRQL string literal ('...') is
escaped for it (backslash and quote), one inside a backquoted name may not hold a backquote, and
one outside both is limited to a number or a name; the NRQL then travels as a GraphQL variable,
never spliced into the GraphQL text. Measured by the controller in a worker thread, with the
account ID and user key read from Secrets: the answer's `data.actor.account.nrql.results` must
hold one row (several, from FACET or TIMESERIES, is an Error naming how many), and the value is
that row's `resultKey` or its one numeric field. GraphQL `errors`, a non-2xx answer, a timeout
or an answer that is not JSON is an Error; no row or a null value is no data."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollout.analysis.args import PLACEHOLDER, ArgError, placeholders
from rollout.analysis.expressions import Result
from rollout.analysis.http import exchange, snippet
from rollout.analysis.provider import NoData, QueryError, SecretUse, logged
from rollout.api.base import parse_duration
from rollout.api.templates import HeaderValueFrom, NewRelicProvider, RequestHeader

ENDPOINTS = {"us": "https://api.newrelic.com/graphql", "eu": "https://api.eu.newrelic.com/graphql"}
USER_KEY_HEADER = "API-Key"
# Not an HTTP header: the account ID travels in the GraphQL variables. Read from its Secret by
# the controller along with the key (measure.request_headers), under this name.
ACCOUNT_ID = "account ID"
GRAPHQL = (
    "query($accountId: Int!, $nrql: Nrql!, $timeout: Seconds) "
    "{ actor { account(id: $accountId) { nrql(query: $nrql, timeout: $timeout) { results } } } }"
)
MAX_ANSWER_BYTES = 1024 * 1024
NRQL_MAX_TIMEOUT = 120  # seconds: the longest synchronous NRQL query NerdGraph runs
# NRQL string literals ('...', backslash escapes) and backquoted names, or a bare placeholder.
_LITERAL_OR_PLACEHOLDER = re.compile(r"'(?:[^'\\]|\\.)*'|`[^`]*`|" + PLACEHOLDER.pattern, re.DOTALL)
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_.]+")


def _value(name: str, args: Mapping[str, str]) -> str:
    if name not in args:
        raise ArgError(f"argument {name!r} has no value (give it in the Rollout's analysis args)")
    return args[name]


def escape_nrql_string(value: str) -> str:
    """`value` as the inside of an NRQL '...' literal."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def substitute_nrql(query: str, args: Mapping[str, str]) -> str:
    """Each argument escaped for where it stands in the NRQL (see the module's docstring)."""

    def fill(match: re.Match[str]) -> str:
        if match.group(1) is not None:  # outside any literal
            value = _value(match.group(1), args)
            if not _PLAIN_TOKEN.fullmatch(value):
                raise ArgError(
                    f"argument {match.group(1)!r} = {value!r} is used outside an NRQL string literal, "
                    "where only numbers and names are allowed (put it inside '...' for a string)"
                )
            return value
        literal = match.group(0)

        def inner(placeholder: re.Match[str]) -> str:
            value = _value(placeholder.group(1), args)
            if literal[0] == "`":
                if "`" in value:
                    raise ArgError(f"argument {placeholder.group(1)!r} contains a backquote")
                return value
            return escape_nrql_string(value)

        return PLACEHOLDER.sub(inner, literal)

    return _LITERAL_OR_PLACEHOLDER.sub(fill, query)


@dataclass(frozen=True)
class NewRelicRequest:
    """An NRQL query with its arguments filled in; `headers` name the Secrets it reads."""

    query: str
    endpoint: str
    result_key: str | None
    timeout: float
    headers: tuple[RequestHeader, ...]

    @property
    def text(self) -> str:
        return self.query


class NewRelicMetrics:
    """`provider.newRelic`: the provider seam for NRQL through NerdGraph (see provider.py)."""

    kind = "newRelic"
    json_result = False

    def placeholders(self, config: NewRelicProvider) -> set[str]:
        return placeholders(config.query)

    def resolve(self, config: NewRelicProvider, args: Mapping[str, str]) -> NewRelicRequest:
        return NewRelicRequest(
            query=substitute_nrql(config.query, args),
            endpoint=config.address or ENDPOINTS[config.region],
            result_key=config.result_key,
            timeout=parse_duration(config.timeout),
            headers=(
                RequestHeader(
                    key=USER_KEY_HEADER, value_from=HeaderValueFrom(secret_key_ref=config.user_key_secret_ref)
                ),
                RequestHeader(
                    key=ACCOUNT_ID, value_from=HeaderValueFrom(secret_key_ref=config.account_id_secret_ref)
                ),
            ),
        )

    def secret_uses(self, config: NewRelicProvider) -> list[SecretUse]:
        return [
            SecretUse("userKeySecretRef", USER_KEY_HEADER, config.user_key_secret_ref),
            SecretUse("accountIdSecretRef", ACCOUNT_ID, config.account_id_secret_ref),
        ]

    def measure(
        self,
        request: NewRelicRequest,
        headers: Mapping[str, str],
        clients: Mapping[str, Any],
        context: Mapping[str, str],
    ) -> Result:
        return logged(
            "newrelic query",
            lambda: _measure(request, headers),
            context,
            query=request.query,
            endpoint=request.endpoint,
        )


def _post(request: NewRelicRequest, headers: Mapping[str, str], what: str) -> Any:
    account = headers[ACCOUNT_ID].strip()
    if not re.fullmatch(r"[0-9]+", account):
        raise QueryError(f"{what}: the account ID read from its Secret is not a number")
    body = {
        "query": GRAPHQL,
        # NerdGraph's own NRQL timeout (at most 120 s there), so that New Relic stops a query
        # no one waits for.
        "variables": {
            "accountId": int(account),
            "nrql": request.query,
            "timeout": min(math.ceil(request.timeout), NRQL_MAX_TIMEOUT),
        },
    }
    sent = {USER_KEY_HEADER: headers[USER_KEY_HEADER], "Accept": "application/json"}
    answer = exchange(
        "POST",
        request.endpoint,
        what=what,
        timeout=request.timeout,
        max_bytes=MAX_ANSWER_BYTES,
        headers=sent,
        json_body=body,
    )
    try:
        return json.loads(answer.text)
    except ValueError as exc:
        raise QueryError(
            f"{what}: NerdGraph answered a body that is not JSON: {snippet(answer.text)}"
        ) from exc


def _measure(request: NewRelicRequest, headers: Mapping[str, str]) -> float:
    what = f"NRQL {request.query!r}"
    answer = _post(request, headers, what)
    if not isinstance(answer, dict):
        raise QueryError(f"{what}: NerdGraph's answer is not a GraphQL answer: {snippet(str(answer))}")
    if answer.get("errors"):
        messages = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in answer["errors"]
        )
        raise QueryError(f"{what}: NerdGraph answered errors: {messages[:300]}")
    try:
        results = answer["data"]["actor"]["account"]["nrql"]["results"]
    except (KeyError, TypeError):
        raise QueryError(
            f"{what}: NerdGraph's answer has no data.actor.account.nrql.results: {snippet(str(answer))}"
        ) from None
    if not isinstance(results, list):
        raise QueryError(f"{what}: nrql.results is not a list: {snippet(str(results))}")
    if not results:
        raise NoData(f"{what} returned no result rows")
    if len(results) > 1:
        raise QueryError(
            f"{what} returned {len(results)} result rows where one is expected (a FACET or TIMESERIES "
            "query answers one row per group or bucket): narrow or aggregate the query"
        )
    return _pick(results[0], request.result_key, what)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pick(row: Any, key: str | None, what: str) -> float:
    if not isinstance(row, dict):
        raise QueryError(f"{what}: a result row is not an object: {snippet(str(row))}")
    if key is not None:
        if row.get(key) is None:
            raise NoData(f"{what}: the result row has no value for resultKey {key!r} (it has {sorted(row)})")
        if not _number(row[key]):
            raise QueryError(f"{what}: resultKey {key!r} holds {snippet(str(row[key]))}, not a number")
        return float(row[key])
    numeric = {k: v for k, v in row.items() if _number(v)}
    if len(numeric) > 1:
        raise QueryError(
            f"{what}: the result row has {len(numeric)} numeric fields ({', '.join(sorted(numeric))}): "
            "set resultKey to the one to judge"
        )
    if not numeric:
        raise NoData(f"{what}: the result row holds no number ({snippet(json.dumps(row))})")
    return float(next(iter(numeric.values())))


PROVIDER = NewRelicMetrics()
