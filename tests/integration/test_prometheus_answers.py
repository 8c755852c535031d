"""A Prometheus that answers garbage: a real HTTP server on 127.0.0.1 (aiohttp) stands in for it
and answers each shape; the provider (`Prometheus.query`) and the bookkeeping (`runs.record`)
together must make every one an Error (garbage) or Inconclusive (no data), never Successful."""

import asyncio
import json

import pytest
from aiohttp import web

from rollout.analysis.prometheus import Prometheus, QueryError
from rollout.analysis.runs import QueryResult, record
from rollout.api.status import AnalysisRun
from tests.analysis_metrics import one_metric
from tests.local_http import serving
from tests.sim import T0


def vector(*values, result_type="vector"):
    result = [{"metric": {"pod": f"p{i}"}, "value": [1700000000.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": result_type, "result": result}}


JSON = "application/json"
# query -> (HTTP status, content type, body)
ANSWERS = {
    "html": (200, "text/html", "<html><head><title>Sign in</title></head><body>Please log in</body></html>"),
    "error-body": (
        200,
        JSON,
        json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}),
    ),
    "no-data-field": (200, JSON, json.dumps({"status": "success"})),
    "not-an-object": (200, JSON, json.dumps([1, 2, 3])),
    "matrix": (
        200,
        JSON,
        json.dumps(
            {
                "status": "success",
                "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "1"], [2, "1"]]}]},
            }
        ),
    ),
    "string": (
        200,
        JSON,
        json.dumps({"status": "success", "data": {"resultType": "string", "result": [1, "hi"]}}),
    ),
    "huge": (200, JSON, json.dumps(vector("1e308"))),
    "huge-negative": (200, JSON, json.dumps(vector("0.5", "-1.5e305"))),
    "plus-inf": (200, JSON, json.dumps(vector("+Inf"))),
    "nan": (200, JSON, json.dumps(vector("NaN"))),
    "empty": (200, JSON, json.dumps(vector())),
    "non-numeric": (200, JSON, json.dumps(vector("fast"))),
    "null-value": (200, JSON, json.dumps(vector(None))),
    "sample-without-value": (
        200,
        JSON,
        json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}),
    ),
    "scalar-garbage": (
        200,
        JSON,
        json.dumps({"status": "success", "data": {"resultType": "scalar", "result": [1, "oops"]}}),
    ),
    "html-500": (502, "text/html", "<html><body>502 Bad Gateway</body></html>"),
    "good": (200, JSON, json.dumps(vector("0.999"))),
}


@pytest.fixture
async def garbage_prometheus():
    async def query(request):
        status, kind, body = ANSWERS[request.query["query"]]
        return web.Response(status=status, text=body, content_type=kind)

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    async with serving(app) as base:
        yield base


# query -> (phase, what the message must say)
EXPECTED = {
    "html": ("Error", "answered HTTP 200 with a body that is not JSON; is the address a Prometheus API"),
    "error-body": ("Error", "answered JSON without data.result: not a Prometheus query answer"),
    "no-data-field": ("Error", "answered JSON without data.result"),
    "not-an-object": ("Error", "answered JSON without data.result"),
    "matrix": ("Error", "the query returns a range vector (matrix)"),
    "string": ("Error", "the result holds a value that is not a number: 'hi'"),
    "huge": ("Error", "the result holds 1e+308, beyond any sane measurement"),
    "huge-negative": ("Error", "the result holds -1.5e+305, beyond any sane measurement"),
    "plus-inf": ("Inconclusive", "no data: the query returned [inf] (not a number)"),
    "nan": ("Inconclusive", "no data: the query returned [nan] (not a number)"),
    "empty": ("Inconclusive", "no data: the query returned an empty result"),
    "non-numeric": ("Error", "the result holds a value that is not a number: 'fast'"),
    "null-value": ("Error", "the result holds a value that is not a number: 'None'"),
    "sample-without-value": ("Error", "a sample of the result has no [time, value]"),
    "scalar-garbage": ("Error", "the result holds a value that is not a number: 'oops'"),
    "html-500": ("Error", "HTTP Status Code 502 (b'<html><body>502 Bad Gateway</body></html>')"),
}


async def measured(address, query):
    """What the controller does for one measurement: query, then a QueryResult (value or error)."""
    prometheus = Prometheus(address, attempts=2, backoff=0.01)
    try:
        value = await asyncio.to_thread(prometheus.query, query, timeout=5)
    except QueryError as exc:
        return QueryResult("step-2", "r", "rate", T0, error=str(exc))
    return QueryResult("step-2", "r", "rate", T0, value=value)


@pytest.mark.parametrize("query", sorted(EXPECTED))
async def test_a_garbage_answer_is_an_error_or_no_data_never_a_pass(garbage_prometheus, query):
    phase, said = EXPECTED[query]
    result = await measured(garbage_prometheus, query)
    # Any number at all would pass this metric: only the provider and the bookkeeping stand between
    # a garbage answer and a promotion.
    metric = one_metric(successCondition="len(result) == 0 or result[0] > -1e309")
    run = AnalysisRun(name="step-2", revision="r", started_at=T0)
    measurement = record(run, metric, result)
    assert measurement.phase == phase, measurement
    assert said in measurement.message
    assert run.metrics[0].successful == 0
    if phase == "Error":
        assert result.value is None and run.metrics[0].error == 1
        assert measurement.message.startswith("query failed: ")


async def test_a_garbage_answer_raises_a_query_error_from_the_provider(garbage_prometheus):
    for query, (phase, said) in EXPECTED.items():
        if phase != "Error":
            continue
        with pytest.raises(QueryError) as caught:
            await asyncio.to_thread(Prometheus(garbage_prometheus, attempts=1).query, query)
        assert said in str(caught.value) and len(str(caught.value)) < 400, query


async def test_a_sane_answer_still_passes(garbage_prometheus):
    result = await measured(garbage_prometheus, "good")
    run = AnalysisRun(name="step-2", revision="r", started_at=T0)
    assert result.value == [0.999]
    assert record(run, one_metric(), result).phase == "Successful"
