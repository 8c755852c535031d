"""provider.influxdb. InfluxQL against a real InfluxDB 1.x (`influxd` from Debian's `influxdb`
package, HTTP authentication on, points written through its line-protocol endpoint). Flux needs
InfluxDB 2.x, which Debian does not package: it is tested against a local HTTP server that checks
each request as the 2.x API documents `POST /api/v2/query` (the org parameter, `Authorization:
Token`, a JSON body with the query and an annotated-CSV dialect) and answers with the documented
shapes (annotated CSV, an empty answer, a JSON error body, an error table in the CSV)."""

import asyncio
import time

import pytest
from aiohttp import web

from rollout.analysis.influxdb import PROVIDER
from rollout.analysis.provider import NoData, QueryError
from rollout.api.templates import parse_template
from tests.local_http import serving
from tests.metric_stores import influxd


@pytest.fixture(scope="module")
def influx():
    with influxd() as server:
        now = int(time.time())
        server.write(
            [
                f"http_requests,service=web-canary,code=200 count=97i {now - 40}",
                f"http_requests,service=web-canary,code=500 count=3i {now - 40}",
                f"http_requests,service=web-stable,code=200 count=50i {now - 40}",
                # A tag value with a quote and a backslash: an argument must reach it escaped.
                f"http_requests,service=it's\\web,code=500 count=7i {now - 40}",
                f"latency,service=web-canary p99=0.21 {now - 50}",
                f"latency,service=web-canary p99=0.35 {now - 20}",
            ]
        )
        yield server


def request(provider, args=None):
    spec = parse_template(
        {
            "spec": {
                "metrics": [
                    {"name": "m", "successCondition": "result < 1", "provider": {"influxdb": provider}}
                ]
            }
        }
    )
    assert not isinstance(spec, str), spec
    return PROVIDER.resolve(spec.metrics[0].provider.config, args or {})


def influxql(server, query, **extra):
    secret = {"name": "influx", "key": "x"}
    return {
        "address": server.url,
        "database": server.database,
        "query": query,
        "usernameSecretRef": secret,
        "passwordSecretRef": secret,
        **extra,
    }


def measure(req, credentials):
    return PROVIDER.measure(req, credentials, {}, {"metric": "m"})


def user(server):
    return {"username": server.user[0], "password": server.user[1]}


ERRORS = (
    'SELECT sum("count") FROM "http_requests" '
    "WHERE \"service\" = '{{args.service}}' AND \"code\" = '500' AND time > now() - 5m"
)


def test_influxql_one_value_with_arguments_in_a_string_literal(influx):
    assert measure(request(influxql(influx, ERRORS), {"service": "web-canary"}), user(influx)) == 3.0
    # The value arrives escaped and matches the tag exactly, quote and backslash included.
    assert measure(request(influxql(influx, ERRORS), {"service": "it's\\web"}), user(influx)) == 7.0


def test_influxql_an_argument_cannot_leave_its_string(influx):
    injected = "nothing' OR \"service\" = 'web-canary"
    with pytest.raises(NoData, match="the query answered no series"):
        measure(request(influxql(influx, ERRORS), {"service": injected}), user(influx))


def test_influxql_an_argument_as_a_quoted_identifier(influx):
    query = 'SELECT last("{{args.field}}") FROM "latency" WHERE time > now() - {{args.window}}'
    assert measure(request(influxql(influx, query), {"field": "p99", "window": "5m"}), user(influx)) == 0.35


def test_influxql_several_rows_are_a_list_oldest_first(influx):
    query = 'SELECT "p99" FROM "latency" WHERE time > now() - 5m'
    assert measure(request(influxql(influx, query)), user(influx)) == [0.21, 0.35]


def test_influxql_several_series_where_one_is_expected_is_an_error_with_the_count(influx):
    query = 'SELECT sum("count") FROM "http_requests" WHERE time > now() - 5m GROUP BY "service"'
    with pytest.raises(QueryError, match=r"^3 series answered where one is expected"):
        measure(request(influxql(influx, query)), user(influx))


def test_influxql_no_points_is_no_data(influx):
    query = 'SELECT sum("count") FROM "http_requests" WHERE time > now() - 5m AND "service" = \'gone\''
    with pytest.raises(NoData):
        measure(request(influxql(influx, query)), user(influx))


def test_influxql_a_rejected_query_and_a_wrong_password_are_errors_saying_why(influx):
    with pytest.raises(QueryError, match="error parsing query"):
        measure(request(influxql(influx, "SELEC 1")), user(influx))
    with pytest.raises(QueryError, match="answered HTTP 401: authorization failed"):
        measure(
            request(influxql(influx, ERRORS), {"service": "web-canary"}),
            {"username": "rollout", "password": "no"},
        )
    with pytest.raises(QueryError, match="database not found"):
        req = request(influxql(influx, 'SELECT "p99" FROM "latency"', database="other"))
        measure(req, user(influx))


# --- Flux, against the documented 2.x API ----------------------------------------------------------

TOKEN = "flux-token-from-secret"
CSV_ONE = (
    "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string\r\n"
    "#group,false,false,true,true,false,false,true,true,true\r\n"
    "#default,_result,,,,,,,,\r\n"
    ",result,table,_start,_stop,_time,_value,_field,_measurement,service\r\n"
    ",,0,2026-12-06T08:00:00Z,2026-12-06T08:05:00Z,2026-12-06T08:04:00Z,0.012,rate,errors,web-canary\r\n"
    "\r\n"
)
CSV_TWO_TABLES = CSV_ONE.replace("\r\n\r\n", "\r\n") + (
    ",,1,2026-12-06T08:00:00Z,2026-12-06T08:05:00Z,2026-12-06T08:04:00Z,0.001,rate,errors,web-stable\r\n\r\n"
)
CSV_ERROR = (
    "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n"
    ',"runtime error: bucket ""app"" not found",\r\n\r\n'
)


class InfluxDB2:
    """POST /api/v2/query as the InfluxDB 2.x API documents it; `answer` is (status, content
    type, body). A request that is not as documented is answered 400 with what is wrong."""

    def __init__(self) -> None:
        self.answer: tuple[int, str, str] = (200, "text/csv; charset=utf-8", CSV_ONE)
        self.seen: list[dict] = []

    async def query(self, request: web.Request) -> web.Response:
        problems = []
        if request.headers.get("Authorization") != f"Token {TOKEN}":
            return web.json_response({"code": "unauthorized", "message": "unauthorized access"}, status=401)
        if request.query.get("org") != "shop-org":
            problems.append(f"org parameter {request.query.get('org')!r}")
        if request.content_type != "application/json":
            problems.append(f"content type {request.content_type}")
        body = await request.json()
        dialect = body.get("dialect") or {}
        if not isinstance(body.get("query"), str):
            problems.append("no query")
        if not {"datatype", "group", "default"} <= set(dialect.get("annotations", [])):
            problems.append(f"annotations {dialect.get('annotations')}")
        if dialect.get("header") is False or dialect.get("delimiter", ",") != ",":
            problems.append("not comma-separated with a header")
        self.seen.append({"query": body.get("query"), "headers": dict(request.headers)})
        if problems:
            return web.json_response({"code": "invalid", "message": "; ".join(problems)}, status=400)
        status, content_type, text = self.answer
        return web.Response(status=status, body=text.encode(), headers={"Content-Type": content_type})


@pytest.fixture
async def influx2():
    server = InfluxDB2()
    app = web.Application()
    app.router.add_post("/api/v2/query", server.query)
    async with serving(app) as url:
        server.url = url
        yield server


FLUX = (
    'from(bucket: "app") |> range(start: -{{args.window}}) '
    '|> filter(fn: (r) => r.service == "{{args.service}}")'
)


def flux(server, query=FLUX):
    token = {"name": "influx", "key": "token"}
    return {"address": server.url, "language": "flux", "org": "shop-org", "query": query} | {
        "tokenSecretRef": token
    }


async def measure_flux(server, args=None, token=TOKEN):
    req = request(flux(server), args or {"window": "5m", "service": "web-canary"})
    return await asyncio.to_thread(measure, req, {"token": token})


async def test_flux_one_table_is_its_value_and_the_request_is_as_documented(influx2):
    assert await measure_flux(influx2, {"window": "5m", "service": 'we"b ${x}'}) == 0.012
    [seen] = influx2.seen
    assert seen["query"] == (
        'from(bucket: "app") |> range(start: -5m) |> filter(fn: (r) => r.service == "we\\"b \\${x}")'
    )


async def test_flux_several_tables_where_one_is_expected_is_an_error_with_the_count(influx2):
    influx2.answer = (200, "text/csv; charset=utf-8", CSV_TWO_TABLES)
    with pytest.raises(QueryError, match=r"^2 tables \(series\) answered where one is expected"):
        await measure_flux(influx2)


async def test_flux_an_empty_answer_is_no_data(influx2):
    influx2.answer = (200, "text/csv; charset=utf-8", "")
    with pytest.raises(NoData, match="no tables"):
        await measure_flux(influx2)


async def test_flux_errors_say_what_influxdb_said(influx2):
    influx2.answer = (
        400,
        "application/json",
        '{"code":"invalid","message":"compilation failed: undefined identifier fro"}',
    )
    with pytest.raises(QueryError, match="answered HTTP 400: compilation failed: undefined identifier fro"):
        await measure_flux(influx2)
    influx2.answer = (200, "text/csv; charset=utf-8", CSV_ERROR)
    with pytest.raises(QueryError, match='query failed in InfluxDB: runtime error: bucket "app" not found'):
        await measure_flux(influx2)
    with pytest.raises(QueryError, match="answered HTTP 401: unauthorized access"):
        await measure_flux(influx2, token="wrong")


async def test_flux_a_table_without_a_value_column_is_an_error_naming_its_columns(influx2):
    renamed = CSV_ONE.replace(",_value,", ",ratio,")
    influx2.answer = (200, "text/csv; charset=utf-8", renamed)
    with pytest.raises(QueryError, match="the table has no _value column"):
        await measure_flux(influx2)


@pytest.mark.parametrize("language", ["influxql", "flux"])
async def test_a_server_slower_than_the_timeout_is_an_error(language):
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow)
    async with serving(app) as url:
        if language == "influxql":
            provider = {"address": url, "database": "app", "query": "SELECT 1", "timeout": "1s"}
        else:
            provider = {"address": url, "language": "flux", "org": "o", "query": "x", "timeout": "1s"}
        started = time.monotonic()
        with pytest.raises(QueryError, match=r"did not answer within 1s"):
            await asyncio.to_thread(measure, request(provider), {})
        assert time.monotonic() - started < 2.5
