"""Datadog's metrics query API and New Relic's NerdGraph, played by local aiohttp apps for the
providers' tests: neither service can run here. Each app checks every request as the vendor
documents it (method, path, query parameters or JSON body, authentication headers) and records
what it found wrong in `violations` (a test asserts that list is empty); it answers with the
documented response shapes, chosen by `answer`: a normal answer with `value`, an empty series,
several series, an error body, or (Datadog) a 429 with the rate limit headers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

API_KEY = "dd-api-key-0123"
APP_KEY = "dd-app-key-4567"
NR_USER_KEY = "NRAK-TESTKEY0123456789"
NR_ACCOUNT = 1234567


class DatadogAPI:
    """GET /api/v1/query (from, to: epoch seconds; query) and POST /api/v2/query/timeseries
    (JSON:API body, from/to in epoch milliseconds), both with DD-API-KEY and DD-APPLICATION-KEY."""

    def __init__(self) -> None:
        self.answer = "ok"  # ok | empty | several | nulls | error | rate-limited
        self.value = 0.5
        self.delay = 0.0  # seconds before answering
        self.rate_limited_times = 0  # that many 429s before the answer
        self.reset_seconds = 1
        self.seen: list[dict[str, Any]] = []
        self.violations: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/v1/query", self.v1)
        app.router.add_route("*", "/api/v2/query/timeseries", self.v2)
        return app

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if (
            request.headers.get("DD-API-KEY") != API_KEY
            or request.headers.get("DD-APPLICATION-KEY") != APP_KEY
        ):
            return web.json_response({"errors": ["Forbidden"]}, status=403)
        return None

    async def _refusal(self) -> web.Response | None:
        await asyncio.sleep(self.delay)
        if self.rate_limited_times > 0 or self.answer == "rate-limited":
            self.rate_limited_times -= 1
            headers = {
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Period": "10",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(self.reset_seconds),
                "X-RateLimit-Name": "query",
            }
            return web.json_response(
                {"errors": ["Rate limit of 100 requests in 10 seconds reached."]}, status=429, headers=headers
            )
        if self.answer == "error":
            return web.json_response({"errors": ["Error parsing query: unexpected token '('"]}, status=400)
        return None

    def _violation(self, what: str) -> web.Response:
        self.violations.append(what)
        return web.json_response({"errors": [what]}, status=400)

    def _series_count(self) -> int:
        return {"empty": 0, "several": 3}.get(self.answer, 1)

    async def v1(self, request: web.Request) -> web.Response:
        self.seen.append({"version": "v1", "method": request.method, "query": dict(request.query)})
        if request.method != "GET":
            return self._violation(f"/api/v1/query takes GET, not {request.method}")
        params = request.query
        missing = [p for p in ("from", "to", "query") if p not in params]
        if missing:
            return self._violation(f"missing query parameters {missing}")
        if not (params["from"].isdigit() and params["to"].isdigit()):
            return self._violation("from and to are integers (seconds since the epoch)")
        start, end = int(params["from"]), int(params["to"])
        if not (start < end <= time.time() + 5) or end > 10**11:
            return self._violation(f"from {start} / to {end} are not a past window in epoch seconds")
        auth = self._check_auth(request)
        if auth is not None:
            return auth
        refusal = await self._refusal()
        if refusal is not None:
            return refusal
        values = [self.value - 0.2, None, self.value] if self.answer != "nulls" else [None, None]
        series = [
            {
                "metric": "trace.http.request.errors",
                "display_name": "trace.http.request.errors",
                "expression": params["query"],
                "scope": f"service:web{i}",
                "aggr": "sum",
                "interval": 60,
                "length": len(values),
                "start": start * 1000,
                "end": end * 1000,
                "pointlist": [[(start + 60 * j) * 1000.0, v] for j, v in enumerate(values)],
                "tag_set": [f"service:web{i}"],
                "unit": None,
                "attributes": {},
            }
            for i in range(self._series_count())
        ]
        return web.json_response(
            {
                "status": "ok",
                "res_type": "time_series",
                "query": params["query"],
                "from_date": start * 1000,
                "to_date": end * 1000,
                "group_by": ["service"] if len(series) > 1 else [],
                "message": "",
                "series": series,
            }
        )

    async def v2(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return self._violation(f"/api/v2/query/timeseries takes POST, not {request.method}")
        if request.content_type != "application/json":
            return self._violation(f"Content-Type {request.content_type}, not application/json")
        body = await request.json()
        self.seen.append({"version": "v2", "method": request.method, "body": body})
        data = body.get("data") or {}
        attributes = data.get("attributes") or {}
        if data.get("type") != "timeseries_request":
            return self._violation("data.type must be timeseries_request")
        start, end = attributes.get("from"), attributes.get("to")
        if not (isinstance(start, int) and isinstance(end, int) and start < end):
            return self._violation("data.attributes.from/to are integers, from before to")
        if end < 10**11:
            return self._violation("data.attributes.from/to are epoch milliseconds")
        queries = attributes.get("queries") or []
        if not queries or any(
            q.get("data_source") != "metrics" or not q.get("query") or not q.get("name") for q in queries
        ):
            return self._violation("each query needs data_source metrics, a query and a name")
        names = {q["name"] for q in queries}
        formulas = attributes.get("formulas") or []
        if len(formulas) != 1 or not any(name in formulas[0].get("formula", "") for name in names):
            return self._violation("one formula over the named queries is expected")
        auth = self._check_auth(request)
        if auth is not None:
            return auth
        refusal = await self._refusal()
        if refusal is not None:
            return refusal
        count = self._series_count()
        times = [start + 60_000 * j for j in range(3)]
        values = [self.value - 0.2, None, self.value] if self.answer != "nulls" else [None, None, None]
        return web.json_response(
            {
                "data": {
                    "type": "timeseries_response",
                    "attributes": {
                        "series": [
                            {
                                "group_tags": [f"service:web{i}"] if count > 1 else [],
                                "query_index": 0,
                                "unit": None,
                            }
                            for i in range(count)
                        ],
                        "times": times if count else [],
                        "values": [values for _ in range(count)],
                    },
                }
            }
        )


class NerdGraph:
    """POST /graphql with API-Key: a GraphQL query over actor.account(id).nrql(query), the
    account ID and the NRQL given as variables."""

    def __init__(self) -> None:
        self.answer = "ok"  # ok | empty | facet | several-fields | nulls | graphql-error
        self.delay = 0.0  # seconds before answering
        self.rate_limited_times = 0  # the next N requests are answered 429
        self.retry_after: str | None = "1"  # that 429's Retry-After (None: not sent)
        self.results: list[dict[str, Any]] = [{"count": 0.5}]
        self.seen: list[dict[str, Any]] = []
        self.violations: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/graphql", self.graphql)
        return app

    def _violation(self, what: str) -> web.Response:
        self.violations.append(what)
        return web.json_response({"errors": [{"message": what}]}, status=400)

    async def graphql(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return self._violation(f"NerdGraph takes POST, not {request.method}")
        if request.content_type != "application/json":
            return self._violation(f"Content-Type {request.content_type}, not application/json")
        body = await request.json()
        self.seen.append({"headers": dict(request.headers), "body": body})
        if request.headers.get("API-Key") != NR_USER_KEY:
            # NerdGraph answers an unknown key with a GraphQL error, not an HTTP status.
            return web.json_response(
                {"errors": [{"message": "Invalid API key", "extensions": {"errorClass": "UNAUTHENTICATED"}}]}
            )
        query, variables = body.get("query", ""), body.get("variables") or {}
        for needed in ("actor", "account(id: $accountId)", "nrql(query: $nrql", "results"):
            if needed not in query:
                return self._violation(f"the GraphQL query lacks {needed!r}")
        if not isinstance(variables.get("accountId"), int) or not isinstance(variables.get("nrql"), str):
            return self._violation("variables accountId (an Int) and nrql (a string) are expected")
        if variables["accountId"] != NR_ACCOUNT:
            return web.json_response(
                {
                    "data": {"actor": {"account": None}},
                    "errors": [{"message": "Account not found or access denied"}],
                }
            )
        await asyncio.sleep(self.delay)
        if self.rate_limited_times:
            self.rate_limited_times -= 1
            headers = {} if self.retry_after is None else {"Retry-After": self.retry_after}
            return web.json_response(
                {"errors": [{"message": "Too many requests"}]}, status=429, headers=headers
            )
        if self.answer == "graphql-error":
            return web.json_response(
                {
                    "data": {"actor": {"account": {"nrql": None}}},
                    "errors": [
                        {"message": "NRQL Syntax Error: Error at line 1 position 8, unexpected 'FORM'"}
                    ],
                }
            )
        results = {
            "ok": self.results,
            "empty": [],
            "facet": [{"facet": "web-1", "count": 1}, {"facet": "web-2", "count": 2}],
            "several-fields": [{"count": 3, "average.duration": 0.2}],
            "nulls": [{"average.duration": None}],
        }[self.answer]
        return web.json_response({"data": {"actor": {"account": {"nrql": {"results": results}}}}})
