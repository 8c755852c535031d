"""The CloudWatch provider: one GetMetricData call per measurement, through boto3.

Resolved with the other metrics (pure): an argument in a metric's namespace, name, dimensions,
stat, unit or label is substituted as it is (each is an API parameter of its own, so a value
cannot reach another one); in a math `expression` it may only be a plain token (a number or a
name), as nothing there quotes it. Credentials are the usual AWS chain, or static keys read from
Secrets (handed to `measure` like header values, see measure.py).

Measured by the controller in a worker thread: the queries over the last `interval`, newest
first; the value is the newest datapoint of the query that returns data. Several series
answered where one is expected is an Error saying how many; none, or a series without
datapoints, is no data (Inconclusive). Throttling and transient errors are retried by
botocore's standard retry mode, with as many attempts (and socket timeouts) as fit in the
metric's `timeout`. boto3 is imported on the first measurement, not with the controller (it
costs some 25 MiB of memory a controller without CloudWatch metrics would carry for nothing)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rollout.analysis.args import PLACEHOLDER, ArgError, placeholders
from rollout.analysis.expressions import Result
from rollout.analysis.provider import NoData, QueryError, SecretUse, header_uses, logged
from rollout.api.base import parse_duration
from rollout.api.templates import (
    CloudWatchProvider,
    CloudWatchQuery,
    HeaderValueFrom,
    RequestHeader,
    SecretKeyRef,
)

# The names under which Secret values reach `measure` (see measure.request_headers).
ACCESS_KEY_ID = "accessKeyId"
SECRET_ACCESS_KEY = "secretAccessKey"
SESSION_TOKEN = "sessionToken"
_PLAIN_TOKEN = re.compile(r"^[A-Za-z0-9_.:]+$")
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class CloudWatchRequest:
    """GetMetricData's queries with the arguments filled in, as boto3 takes them."""

    queries: tuple[dict[str, Any], ...]
    interval: float
    region: str | None
    endpoint: str | None
    timeout: float
    headers: tuple[RequestHeader, ...]  # the credentials' Secret references

    @property
    def text(self) -> str:
        return "; ".join(_describe(q) for q in self.queries if q.get("ReturnData", True))


def _describe(query: Mapping[str, Any]) -> str:
    if "Expression" in query:
        return f"{query['Id']} = {query['Expression']}"
    stat = query["MetricStat"]
    metric = stat["Metric"]
    dimensions = ",".join(f"{d['Name']}={d['Value']}" for d in metric.get("Dimensions", []))
    return (
        f"{metric['Namespace']} {metric['MetricName']}{{{dimensions}}} {stat['Stat']} per {stat['Period']}s"
    )


def _value(name: str, args: Mapping[str, str]) -> str:
    if name not in args:
        raise ArgError(f"argument {name!r} has no value (give it in the Rollout's analysis args)")
    return args[name]


def _fill(text: str, args: Mapping[str, str]) -> str:
    """A parameter of its own: the value as it is."""
    return PLACEHOLDER.sub(lambda m: _value(m.group(1), args), text)


def _fill_expression(expression: str, args: Mapping[str, str]) -> str:
    def token(match: re.Match[str]) -> str:
        value = _value(match.group(1), args)
        if not _PLAIN_TOKEN.match(value):
            raise ArgError(
                f"argument {match.group(1)!r} = {value!r} is used in a CloudWatch expression, "
                "where only numbers and names are allowed"
            )
        return value

    return PLACEHOLDER.sub(token, expression)


def _query(query: CloudWatchQuery, args: Mapping[str, str]) -> dict[str, Any]:
    built: dict[str, Any] = {"Id": query.id, "ReturnData": query.return_data}
    if query.label is not None:
        built["Label"] = _fill(query.label, args)
    if query.period is not None:
        built["Period"] = query.period
    if query.expression is not None:
        built["Expression"] = _fill_expression(query.expression, args)
        return built
    assert query.metric_stat is not None
    stat = query.metric_stat
    metric: dict[str, Any] = {
        "Namespace": _fill(stat.metric.namespace, args),
        "MetricName": _fill(stat.metric.metric_name, args),
    }
    if stat.metric.dimensions:
        metric["Dimensions"] = [
            {"Name": _fill(d.name, args), "Value": _fill(d.value, args)} for d in stat.metric.dimensions
        ]
    built["MetricStat"] = {"Metric": metric, "Period": stat.period, "Stat": _fill(stat.stat, args)}
    if stat.unit is not None:
        built["MetricStat"]["Unit"] = _fill(stat.unit, args)
    return built


def _credential(key: str, ref: SecretKeyRef | None) -> list[RequestHeader]:
    return [] if ref is None else [RequestHeader(key=key, value_from=HeaderValueFrom(secret_key_ref=ref))]


def retry_budget(timeout: float) -> tuple[int, float]:
    """Attempts and the socket timeout of each, so that the worst case fits in `timeout`: in
    botocore's standard mode the wait after a throttled attempt n is at most 2**(n-1) s, so n
    attempts wait at most 2**(n-1) - 1 s in all; those waits get at most half the timeout."""
    attempts = 1
    while attempts < MAX_ATTEMPTS and 2**attempts - 1 <= timeout / 2:
        attempts += 1
    waits = 2 ** (attempts - 1) - 1
    return attempts, max((timeout - waits) / attempts, 0.1)


@functools.lru_cache(maxsize=32)
def _client(
    region: str | None, endpoint: str | None, timeout: float, credentials: tuple[str | None, ...]
) -> Any:
    """A CloudWatch client per configuration (building one loads the service model: too slow
    for every measurement); boto3 clients may be shared between threads."""
    import boto3
    from botocore.config import Config

    access_key, secret_key, token = credentials
    attempts, socket_timeout = retry_budget(timeout)
    config = Config(
        # A connect and a read per attempt share the attempt's time.
        connect_timeout=socket_timeout / 2,
        read_timeout=socket_timeout / 2,
        retries={"mode": "standard", "total_max_attempts": attempts},
    )
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        region_name=region,
    )
    return session.client("cloudwatch", endpoint_url=endpoint, config=config)


class CloudWatchMetrics:
    """`provider.cloudWatch`: the provider seam for Amazon CloudWatch (see provider.py)."""

    kind = "cloudWatch"
    json_result = False

    def placeholders(self, config: CloudWatchProvider) -> set[str]:
        found: set[str] = set()
        for query in config.metric_data_queries:
            texts = [query.label or "", query.expression or ""]
            if query.metric_stat is not None:
                stat = query.metric_stat
                texts += [stat.metric.namespace, stat.metric.metric_name, stat.stat, stat.unit or ""]
                texts += [text for d in stat.metric.dimensions for text in (d.name, d.value)]
            for text in texts:
                found |= placeholders(text)
        return found

    def resolve(self, config: CloudWatchProvider, args: Mapping[str, str]) -> CloudWatchRequest:
        return CloudWatchRequest(
            queries=tuple(_query(q, args) for q in config.metric_data_queries),
            interval=parse_duration(config.interval),
            region=config.region,
            endpoint=config.endpoint,
            timeout=parse_duration(config.timeout),
            headers=self._credentials(config),
        )

    def secret_uses(self, config: CloudWatchProvider) -> list[SecretUse]:
        return [
            SecretUse(f"{use.header}SecretRef", use.header, use.ref)
            for use in header_uses(self._credentials(config))
        ]

    @staticmethod
    def _credentials(config: CloudWatchProvider) -> tuple[RequestHeader, ...]:
        return tuple(
            _credential(ACCESS_KEY_ID, config.access_key_id_secret_ref)
            + _credential(SECRET_ACCESS_KEY, config.secret_access_key_secret_ref)
            + _credential(SESSION_TOKEN, config.session_token_secret_ref)
        )

    def measure(
        self,
        request: CloudWatchRequest,
        headers: Mapping[str, str],
        clients: Mapping[str, Any],
        context: Mapping[str, str],
    ) -> Result:
        return logged(
            "cloudwatch measurement",
            lambda: _measure(request, headers),
            context,
            request=request.text,
        )


def _measure(request: CloudWatchRequest, credentials: Mapping[str, str]) -> float:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    keys = (
        credentials.get(ACCESS_KEY_ID),
        credentials.get(SECRET_ACCESS_KEY),
        credentials.get(SESSION_TOKEN),
    )
    where = f"CloudWatch{f' at {request.endpoint}' if request.endpoint else ''}"
    end = datetime.now(UTC)
    try:
        client = _client(request.region, request.endpoint, request.timeout, keys)
        answer = client.get_metric_data(
            MetricDataQueries=list(request.queries),
            StartTime=end - timedelta(seconds=request.interval),
            EndTime=end,
            ScanBy="TimestampDescending",
        )
    except NoRegionError as exc:
        raise QueryError(
            "no AWS region: set provider.cloudWatch.region, or AWS_REGION on the controller"
        ) from exc
    except NoCredentialsError as exc:
        # A client resolves the AWS chain once: built while none was there (a role not yet
        # mounted), it would never find one. The next measurement builds clients anew.
        _client.cache_clear()
        raise QueryError(
            "no AWS credentials: set provider.cloudWatch.accessKeyIdSecretRef and "
            "secretAccessKeySecretRef, or give the controller "
            "credentials (environment, a web identity or an instance role)"
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        tried = f" (after {attempts + 1} attempts)" if attempts else ""
        raise QueryError(
            f"{where} refused GetMetricData{tried}: {error.get('Code', '?')}: {error.get('Message', '')}"
        ) from exc
    except BotoCoreError as exc:  # unreachable, a timeout, an answer it cannot parse
        raise QueryError(f"{where}: {exc}") from exc
    return newest_value(answer, request.interval)


def newest_value(answer: Mapping[str, Any], interval: float) -> float:
    """The newest datapoint of the one series answered."""
    problems = [
        m.get("Value", "") for m in answer.get("Messages", []) if m.get("Code") != "MaxDatapointsReached"
    ]
    series = answer.get("MetricDataResults", [])
    failed = [s for s in series if s.get("StatusCode") in ("InternalError", "Forbidden")]
    if failed:
        said = "; ".join(problems + [m.get("Value", "") for s in failed for m in s.get("Messages", [])])
        raise QueryError(
            f"query {failed[0].get('Id')} answered {failed[0]['StatusCode']}: {said}".rstrip(": ")
        )
    if len(series) > 1:
        ids = ", ".join(str(s.get("Id")) for s in series)
        raise QueryError(
            f"{len(series)} series answered where one is expected ({ids}): set returnData: false "
            "on every query but the one the value comes from, or narrow the expression"
        )
    if not series:
        raise NoData("no series answered")
    points = sorted(zip(series[0].get("Timestamps", []), series[0].get("Values", []), strict=False))
    if not points:
        raise NoData(f"series {series[0].get('Id')} has no datapoints in the last {interval:g}s")
    return float(points[-1][1])


PROVIDER = CloudWatchMetrics()
