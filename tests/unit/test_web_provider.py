"""provider.web against a real local HTTP server (aiohttp): arguments escaped for where they stand,
headers from Secrets, jsonPath over the answer, and every bad answer an Error or no data, never a
pass."""

import asyncio
import base64
import json
from datetime import UTC, datetime

import pytest
from aiohttp import web

from rollout.analysis.args import ArgError
from rollout.analysis.measure import measure_one
from rollout.analysis.provider import NoData, QueryError
from rollout.analysis.resolve import TemplateKey, resolve, secret_refs
from rollout.analysis.runs import QueryResult, assess, record
from rollout.analysis.web import PROVIDER
from rollout.api.rollout import parse_rollout
from rollout.api.status import AnalysisRun
from rollout.api.templates import parse_template
from tests.local_http import serving
from tests.manifests import rollout_manifest

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def echo(request: web.Request) -> web.Response:
    body = await request.text()
    return web.json_response(
        {
            "data": {"ok": True, "score": 0.95},
            "path": request.raw_path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "body": json.loads(body) if body else None,
        }
    )


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(3)
    return web.json_response({"ok": True})


async def trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"ok": ')
    for _ in range(12):  # each read well within the timeout, the whole answer not
        await asyncio.sleep(0.25)
        await response.write(b" ")
    await response.write(b"true}")
    return response


ROUTES = {
    "/ok": lambda r: web.json_response({"data": {"ok": True, "score": 0.97, "checks": [{"ok": True}]}}),
    "/fail": lambda r: web.json_response({"data": {"ok": False, "score": 0.42}}),
    "/garbage": lambda r: web.Response(text="<html><body>Sign in</body></html>", content_type="text/html"),
    "/nan": lambda r: web.Response(text='{"data": {"ok": NaN}}', content_type="application/json"),
    "/down": lambda r: web.Response(status=503, text="upstream connect error"),
    "/missing": lambda r: web.Response(status=404, text="no such check"),
    "/moved": lambda r: web.Response(status=302, headers={"Location": "/login"}),
    "/items": lambda r: web.json_response({"items": [{"p99": 0.1}, {"p99": 0.3}]}),
}


@pytest.fixture
async def server():
    app = web.Application()
    for path, handler in ROUTES.items():

        async def handle(request, handler=handler):
            return handler(request)

        app.router.add_route("*", path, handle)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_route("*", "/slow", slow)
    app.router.add_route("*", "/trickle", trickle)
    async with serving(app) as base:
        yield base


def config(**web_fields):
    metric = {"name": "health", "successCondition": "result == true", "provider": {"web": web_fields}}
    return parse_template({"spec": {"metrics": [metric]}}).metrics[0].provider.config


async def measure(args=None, headers=None, **web_fields):
    request = PROVIDER.resolve(config(**web_fields), args or {})
    return await asyncio.to_thread(PROVIDER.measure, request, headers or {}, {}, {})


# --- resolving: each argument escaped for where it stands ----------------------------------------


def test_url_arguments_are_one_percent_encoded_component():
    request = PROVIDER.resolve(
        config(url="http://{{args.svc}}.shop.svc:8080/checks/{{args.name}}?rev={{args.rev}}"),
        {"svc": "web-canary", "name": "a/../b", "rev": "x&admin=1#frag"},
    )
    assert request.url == "http://web-canary.shop.svc:8080/checks/a%2F..%2Fb?rev=x%26admin%3D1%23frag"
    with_port = PROVIDER.resolve(config(url="https://{{args.host}}/x"), {"host": "checks.qa:8443"})
    assert with_port.url == "https://checks.qa:8443/x"
    assert request.text == f"GET {request.url}"


@pytest.mark.parametrize("host", ["evil.com/x?", "user@evil.com", "h:1:2", "h:x", "a b", "[::1]"])
def test_an_argument_in_the_host_takes_host_name_characters_only(host):
    with pytest.raises(ArgError, match="url's host"):
        PROVIDER.resolve(config(url="http://{{args.h}}/health"), {"h": host})


@pytest.mark.parametrize("value", ["a\r\nX-Admin: 1", "a\nb", "a\rb"])
def test_a_header_value_with_a_line_break_is_refused(value):
    with pytest.raises(ArgError, match="line break"):
        PROVIDER.resolve(
            config(url="http://h/x", headers=[{"key": "X-Rev", "value": "{{args.v}}"}]), {"v": value}
        )


def test_body_arguments_are_substituted_in_the_parsed_json_never_spliced():
    body = '{"query": "rev={{args.rev}}", "{{args.key}}": ["{{args.rev}}", 1]}'
    request = PROVIDER.resolve(
        config(url="http://h/x", method="POST", body=body), {"rev": 'x", "admin": true, "y": "', "key": "k"}
    )
    sent = json.loads(request.body)
    assert sent == {"query": 'rev=x", "admin": true, "y": "', "k": ['x", "admin": true, "y": "', 1]}


def test_a_body_that_is_not_json_or_with_get_is_invalid_in_the_template():
    bad = {"spec": {"metrics": [{"name": "m", "successCondition": "result", "provider": {"web": {}}}]}}
    bad["spec"]["metrics"][0]["provider"]["web"] = {
        "url": "http://h/x",
        "method": "POST",
        "body": '{"n": {{args.n}}}',
    }
    assert "body is not JSON" in parse_template(bad)
    bad["spec"]["metrics"][0]["provider"]["web"] = {"url": "http://h/x", "body": "{}"}
    assert "with method POST only" in parse_template(bad)
    bad["spec"]["metrics"][0]["provider"]["web"] = {"url": "h/x"}
    assert "must start with http:// or https://" in parse_template(bad)
    bad["spec"]["metrics"][0]["provider"]["web"] = {"url": "http://h/x", "jsonPath": "$.["}
    assert "is not a JSONPath" in parse_template(bad)


# --- measuring against a real server --------------------------------------------------------------


async def test_success_and_failure_values_are_picked_by_json_path(server):
    assert await measure(url=f"{server}/ok", jsonPath="$.data.ok") is True
    assert await measure(url=f"{server}/fail", jsonPath="$.data.ok") is False
    assert await measure(url=f"{server}/ok", jsonPath="$.data.score") == 0.97
    assert await measure(url=f"{server}/ok", jsonPath="$.data") == {
        "ok": True,
        "score": 0.97,
        "checks": [{"ok": True}],
    }
    assert await measure(url=f"{server}/items", jsonPath="$.items[*].p99") == [0.1, 0.3]


async def test_a_json_path_matching_nothing_is_no_data(server):
    with pytest.raises(NoData, match=r"jsonPath \$.data.missing matched nothing in the answer of GET"):
        await measure(url=f"{server}/ok", jsonPath="$.data.missing")


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/garbage", "answered HTTP 200 with a body that is not JSON: '<html><body>Sign in"),
        ("/nan", "with a body that is not JSON"),
        ("/down", "answered HTTP 503: 'upstream connect error'"),
        ("/missing", "answered HTTP 404"),
        ("/moved", "answered HTTP 302 (to /login)"),
    ],
)
async def test_bad_answers_are_errors_saying_what_came_back(server, path, said):
    with pytest.raises(QueryError, match="^GET http://127.0.0.1:[0-9]+" + path) as caught:
        await measure(url=f"{server}{path}", jsonPath="$.data.ok")
    assert said in str(caught.value)


@pytest.mark.parametrize("path", ["/slow", "/trickle"])
async def test_an_answer_slower_than_the_timeout_is_an_error(server, path):
    with pytest.raises(QueryError, match="did not answer within 1s"):
        await measure(url=f"{server}{path}", jsonPath="$.ok", timeout="1s")


async def test_an_unreachable_url_is_an_error():
    with pytest.raises(QueryError, match="unreachable"):
        await measure(url="http://127.0.0.1:9/health")


# --- through the controller's Secret plumbing and the bookkeeping ----------------------------------


SCORE_OK = 'result["data"]["score"] >= {{args.min}} and result["data"]["ok"]'


def web_template(url, **extra):
    return parse_template(
        {
            "spec": {
                "args": [{"name": "min", "value": "0.9"}],
                "metrics": [
                    {
                        "name": "score",
                        "successCondition": SCORE_OK,
                        "provider": {
                            "web": {
                                "url": url,
                                "method": "POST",
                                "jsonPath": "$",
                                "headers": [
                                    {
                                        "key": "Authorization",
                                        "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}},
                                    },
                                    {"key": "X-Rollout", "value": "{{args.rollout}}"},
                                ],
                                "body": '{"revision": "{{args.canary-hash}}"}',
                                **extra,
                            }
                        },
                    }
                ],
            }
        }
    )


async def test_a_web_metric_measured_through_the_controller_with_a_secret_header(server):
    strategy = {"canary": {"steps": [{"analysis": {"templates": [{"name": "t"}]}}]}}
    rollout = parse_rollout(rollout_manifest(strategy=strategy)).rollout
    lookup = {TemplateKey("t"): web_template(f"{server}/echo/{{{{args.rollout}}}}?ns={{{{args.namespace}}}}")}
    refs = secret_refs(rollout, lookup)
    assert [(r.field, r.secret, r.key) for r in refs] == [
        ("metrics[0].provider.web.headers[0].valueFrom.secretKeyRef", "api", "token")
    ]
    ref = rollout.spec.strategy.canary.steps[0].analysis
    builtins = {"rollout": "web", "namespace": "shop", "canary-hash": 'r"1'}
    metrics, errors = resolve(ref, "spec.strategy.canary.steps[0].analysis", lookup, builtins, bounded=True)
    assert not errors, errors
    secrets = {"api": {"token": base64.b64encode(b"Bearer s3cret").decode()}}
    result = await measure_one(secrets, None, rollout, "step-1", "r1", metrics[0], T0)
    assert not result.error, result.error
    assert result.value["path"] == "/echo/web?ns=shop"
    assert result.value["headers"]["Authorization"] == "Bearer s3cret"
    assert result.value["headers"]["X-Rollout"] == "web"
    assert result.value["headers"]["Content-Type"] == "application/json"
    assert result.value["body"] == {"revision": 'r"1'}
    run = AnalysisRun(name="step-1", revision="r1", started_at=T0)
    assert record(run, metrics[0], result).phase == "Successful"
    assert assess(run, metrics, T0) == "Successful"
    assert (
        'meets successCondition \'result["data"]["score"] >= 0.9'
        in run.metric("score").measurements[0].message
    )


async def test_a_timeout_and_no_data_through_the_controller_are_error_and_inconclusive(server):
    strategy = {"canary": {"steps": [{"analysis": {"templates": [{"name": "t"}]}}]}}
    rollout = parse_rollout(rollout_manifest(strategy=strategy)).rollout
    ref = rollout.spec.strategy.canary.steps[0].analysis
    run = AnalysisRun(name="step-1", revision="r1", started_at=T0)
    secrets = {"api": {"token": base64.b64encode(b"t").decode()}}
    for url, extra, phase, said in (
        (f"{server}/slow", {"timeout": "1s"}, "Error", "did not answer within 1s"),
        (f"{server}/down", {}, "Error", "answered HTTP 503"),
        (
            f"{server}/echo/x",
            {"jsonPath": "$.nothing"},
            "Inconclusive",
            "no data: jsonPath $.nothing matched nothing",
        ),
    ):
        lookup = {TemplateKey("t"): web_template(url, **extra)}
        metrics, errors = resolve(
            ref, "spec.x", lookup, {"rollout": "web", "canary-hash": "r1"}, bounded=True
        )
        assert not errors, errors
        result = await measure_one(secrets, None, rollout, "step-1", "r1", metrics[0], T0)
        measurement = record(run, metrics[0], result)
        assert measurement.phase == phase and said in measurement.message
    assert isinstance(result, QueryResult) and result.value is None
