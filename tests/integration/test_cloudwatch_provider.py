"""provider.cloudWatch against moto's server (a real AWS API emulator): datapoints put with
PutMetricData are read back through the provider's real boto3 client; a proxy in front of moto
answers Throttling the way CloudWatch does, to see botocore's retries within the timeout."""

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import web

from rollout.analysis.cloudwatch import ACCESS_KEY_ID, PROVIDER, SECRET_ACCESS_KEY
from rollout.analysis.provider import NoData, QueryError
from rollout.api.templates import parse_template
from tests.local_http import serving
from tests.metric_stores import MOTO_KEYS, MOTO_REGION, moto_cloudwatch
from tests.processes import free_port

KEYS = {ACCESS_KEY_ID: "AKIDFROMSECRET", SECRET_ACCESS_KEY: "secret-from-secret"}


@pytest.fixture
def cloudwatch():
    with moto_cloudwatch() as server:
        yield server


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch, tmp_path):
    """Only the credentials a test gives: none from the environment, files or an instance role."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def stat(id_, service="web-canary", *, return_data=True, name="Errors"):
    return {
        "id": id_,
        "returnData": return_data,
        "metricStat": {
            "metric": {
                "namespace": "Shop/Web",
                "metricName": name,
                "dimensions": [{"name": "Service", "value": service}],
            },
            "period": 60,
            "stat": "Sum",
        },
    }


def request(endpoint, queries, args=None, **extra):
    provider = {
        "cloudWatch": {"region": MOTO_REGION, "endpoint": endpoint, "metricDataQueries": queries, **extra}
    }
    spec = parse_template(
        {"spec": {"metrics": [{"name": "m", "successCondition": "result < 1", "provider": provider}]}}
    )
    assert not isinstance(spec, str), spec
    return PROVIDER.resolve(spec.metrics[0].provider.config, args or {})


def measure(req, credentials=KEYS):
    return PROVIDER.measure(req, credentials, {}, {"metric": "m"})


def test_the_newest_datapoint_of_the_query_returning_data(cloudwatch):
    cloudwatch.put("Shop/Web", "Errors", {"Service": "web-canary"}, [4.0], ago=200)
    cloudwatch.put("Shop/Web", "Errors", {"Service": "web-canary"}, [9.0], ago=20)
    cloudwatch.put("Shop/Web", "Errors", {"Service": "web-stable"}, [1.0], ago=20)
    queries = [stat("errors", "{{args.canary-service}}")]
    assert measure(request(cloudwatch.url, queries, {"canary-service": "web-canary"})) == 9.0
    assert measure(request(cloudwatch.url, queries, {"canary-service": "web-stable"})) == 1.0


def test_a_query_with_return_data_false_is_not_a_series_and_an_expression_is(cloudwatch):
    cloudwatch.put("Shop/Web", "Errors", {"Service": "web-canary"}, [6.0], ago=20)
    # moto's metric math evaluates an expression that names one query (no arithmetic).
    queries = [stat("errors", return_data=False), {"id": "total", "expression": "errors"}]
    assert measure(request(cloudwatch.url, queries)) == 6.0


def test_several_series_where_one_is_expected_is_an_error_with_the_count(cloudwatch):
    cloudwatch.put("Shop/Web", "Errors", {"Service": "web-canary"}, [1.0], ago=20)
    cloudwatch.put("Shop/Web", "Requests", {"Service": "web-canary"}, [100.0], ago=20)
    queries = [stat("errors"), stat("requests", name="Requests")]
    with pytest.raises(QueryError, match=r"^2 series answered where one is expected \(errors, requests\)"):
        measure(request(cloudwatch.url, queries))


def test_no_datapoints_in_the_window_is_no_data(cloudwatch):
    cloudwatch.put("Shop/Web", "Errors", {"Service": "web-canary"}, [3.0], ago=900)  # before the window
    with pytest.raises(NoData, match="series errors has no datapoints in the last 300s"):
        measure(request(cloudwatch.url, [stat("errors")]))


def test_without_credentials_anywhere_the_measurement_says_so(cloudwatch):
    said = r"no AWS credentials: set provider\.cloudWatch\.accessKeyIdSecretRef"
    with pytest.raises(QueryError, match=said):
        measure(request(cloudwatch.url, [stat("errors")]), credentials={})


def test_an_unreachable_endpoint_is_an_error_within_the_timeout():
    started = time.monotonic()
    with pytest.raises(QueryError, match=r"CloudWatch at http://127\.0\.0\.1:"):
        measure(request(f"http://127.0.0.1:{free_port()}", [stat("errors")], timeout="3s"))
    assert time.monotonic() - started < 3.5


class ThrottlingProxy:
    """Answers the first `throttled` calls as CloudWatch throttles (HTTP 400, code Throttling, in
    the AWS JSON 1.0 protocol the client speaks, with the query-compatible error header), then
    passes calls to moto; records each call's signing key id."""

    def __init__(self, backend: str, throttled: int) -> None:
        self.backend = backend
        self.throttled = throttled
        self.key_ids: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        # SigV4: "AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/monitoring/aws4_request, ..."
        credential = request.headers["Authorization"].split("Credential=")[1]
        self.key_ids.append(credential.split("/")[0])
        assert credential.split("/")[2:4] == [MOTO_REGION, "monitoring"]
        assert request.headers["X-Amz-Target"] == "GraniteServiceVersion20100801.GetMetricData"
        assert request.headers["Content-Type"] == "application/x-amz-json-1.0"
        if len(self.key_ids) <= self.throttled:
            return web.Response(
                status=400,
                body=json.dumps({"__type": "Throttling", "message": "Rate exceeded"}),
                headers={
                    "Content-Type": "application/x-amz-json-1.0",
                    "x-amzn-query-error": "Throttling;Sender",
                },
            )
        forwarded = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.backend + request.path_qs, data=body, headers=forwarded) as answer:
                kept = {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower() in ("content-type", "x-amzn-requestid")
                }
                return web.Response(status=answer.status, body=await answer.read(), headers=kept)


async def proxy(cloudwatch, throttled):
    front = ThrottlingProxy(cloudwatch.url, throttled)
    app = web.Application()
    app.router.add_post("/{tail:.*}", front.handle)
    return front, app


async def test_throttling_is_retried_within_the_timeout_with_the_secrets_keys(cloudwatch):
    cloudwatch.put("Shop/Web", "Errors", {"Service": "web-canary"}, [2.0], ago=20)
    front, app = await proxy(cloudwatch, throttled=2)
    async with serving(app) as url:
        req = request(url, [stat("errors")], timeout="10s")
        assert await asyncio.to_thread(measure, req) == 2.0
    # Two throttled answers, then the call that moto answered: all signed with the Secret's key.
    assert front.key_ids == ["AKIDFROMSECRET"] * 3


async def test_throttling_past_the_attempts_the_timeout_holds_is_an_error(cloudwatch):
    front, app = await proxy(cloudwatch, throttled=100)
    async with serving(app) as url:
        req = request(url, [stat("errors")], timeout="4s")
        started = time.monotonic()
        with pytest.raises(
            QueryError, match=r"refused GetMetricData \(after 2 attempts\): Throttling: Rate exceeded"
        ):
            await asyncio.to_thread(measure, req)
        assert time.monotonic() - started < 4
    assert len(front.key_ids) == 2  # a 4 s timeout holds 2 attempts (and at most 1 s of backoff)


def test_the_ambient_aws_chain_is_used_once_it_is_there(cloudwatch, monkeypatch):
    cloudwatch.put("Shop/Web", "Errors", {"Service": "web-canary"}, [5.0], ago=20)
    req = request(cloudwatch.url, [stat("errors")])
    with pytest.raises(QueryError, match="no AWS credentials"):
        measure(req, credentials={})
    # The controller's credentials appear (a role mounted late): the next measurement finds them.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_KEYS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_KEYS[1])
    assert measure(req, credentials={}) == 5.0


def test_without_a_region_anywhere_the_measurement_says_so(cloudwatch):
    with pytest.raises(QueryError, match=r"no AWS region: set provider\.cloudWatch\.region"):
        measure(request(None, [stat("errors")], region=None))
