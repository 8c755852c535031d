"""AnalysisTemplate and ClusterAnalysisTemplate: the metrics a Rollout is gated on.

A template is read by the controller whenever a Rollout refers to it (analysis steps, background
analysis, blue/green hooks); its CRD in crds/ is generated from these models. Shape errors are
rejected by the API server; what needs more than a schema (a condition that does not parse, an
argument no one provides) is an InvalidSpec on the Rollout that uses the template.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, ClassVar, Literal

from jsonpath_ng.ext import parse as parse_json_path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from rollout.api.base import Duration, SpecModel, parse_duration
from rollout.api.rollout import SpecError, field_path
from rollout.api.spec import DryRun, MeasurementRetention, SecretKeyRef

NonNegative = Annotated[int, Field(ge=0)]
_WHOLE_PLACEHOLDER = re.compile(r"^\{\{\s*args\.[A-Za-z0-9_.-]+\s*\}\}$")
_WEB_URL = re.compile(r"^https?://[^/?#]+", re.IGNORECASE)
_QUERY_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Graphite's from/until: now, a relative time (-5min, -1h, -2d) or seconds since the epoch.
_GRAPHITE_TIME = re.compile(
    r"now|-\d+(s|sec|seconds?|min|minutes?|h|hours?|d|days?|w|weeks?|mon|months?|y|years?)|\d{1,12}"
)


def _duration_or_arg(value: Any) -> Any:
    if isinstance(value, str) and _WHOLE_PLACEHOLDER.match(value):
        return value
    parse_duration(value)
    return value


def _count_or_arg(value: Any) -> Any:
    if isinstance(value, str) and _WHOLE_PLACEHOLDER.match(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("count must be a positive integer or an argument such as '{{args.count}}'")
    return value


# interval, initialDelay and count may be given by an argument, so that one template serves
# quick checks and long soaks alike; the value is checked when the arguments are known.
DurationOrArg = Annotated[int | str, BeforeValidator(_duration_or_arg)]
CountOrArg = Annotated[int | str, BeforeValidator(_count_or_arg)]


class HeaderValueFrom(SpecModel):
    secret_key_ref: SecretKeyRef


class RequestHeader(SpecModel):
    """An HTTP header sent with each query: a literal `value`, or one read from a Secret in the
    Rollout's namespace (an Authorization token, typically)."""

    key: str = Field(min_length=1)
    value: str | None = None
    value_from: HeaderValueFrom | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RequestHeader:
        if (self.value is None) == (self.value_from is None):
            raise ValueError("a header needs exactly one of value or valueFrom")
        return self


class PrometheusProvider(SpecModel):
    # Falls back to the controller's --prometheus-address.
    address: str | None = None
    query: str = Field(min_length=1)
    timeout: Duration = "10s"
    headers: list[RequestHeader] = Field(default_factory=list)
    insecure: bool = False  # skip TLS certificate verification


class PrometheusMetric(SpecModel):
    """`provider: {prometheus: {...}}`."""

    kind: ClassVar[str] = "prometheus"
    prometheus: PrometheusProvider

    @property
    def config(self) -> PrometheusProvider:
        return self.prometheus


class WebProvider(SpecModel):
    """An HTTP API answering JSON. `{{args.NAME}}` may stand in the url (escaped for where it
    stands), in header values and inside the strings of the JSON `body`."""

    url: str = Field(min_length=1)
    method: Literal["GET", "POST"] = "GET"
    headers: list[RequestHeader] = Field(default_factory=list)
    body: str | None = None  # JSON text, sent with POST
    timeout: Duration = "10s"
    # Picks the value out of the answer; several matches are a list. `$`: the whole answer.
    json_path: str = Field(default="$", min_length=1)
    insecure: bool = False  # skip TLS certificate verification

    @model_validator(mode="after")
    def _well_formed(self) -> WebProvider:
        scheme, _, rest = self.url.partition("://")
        if scheme.lower() not in ("http", "https") or not rest or rest[0] in "/?#":
            raise ValueError(f"url {self.url!r} must start with http:// or https:// and a host")
        if self.body is not None:
            if self.method != "POST":
                raise ValueError("a body is sent with method POST only")
            try:
                json.loads(self.body)
            except ValueError as exc:
                raise ValueError(
                    f'body is not JSON ({exc}); arguments go inside its strings: "{{{{args.name}}}}"'
                ) from exc
        try:
            parse_json_path(self.json_path)
        except Exception as exc:  # jsonpath-ng raises plain Exceptions for lexer errors
            raise ValueError(f"jsonPath {self.json_path!r} is not a JSONPath: {exc}") from exc
        return self


class WebMetric(SpecModel):
    """`provider: {web: {...}}`."""

    kind: ClassVar[str] = "web"
    web: WebProvider

    @property
    def config(self) -> WebProvider:
        return self.web


class DatadogProvider(SpecModel):
    """Datadog metrics (rollout/analysis/datadog.py): API v1, one `query` over the last `window`;
    or v2 (the default), `queries` by name combined by a `formula` (one `query` alone is its own
    formula). The API and application keys are read from Secrets. `{{args.NAME}}` may stand in
    the queries, limited to the characters of a Datadog tag."""

    # The API host of the Datadog site: https://api.datadoghq.eu, https://api.us5.datadoghq.com, ...
    address: str = "https://api.datadoghq.com"
    api_version: Literal["v1", "v2"] = "v2"
    query: str | None = Field(default=None, min_length=1)
    queries: dict[str, str] = Field(default_factory=dict)
    formula: str | None = Field(default=None, min_length=1)
    window: Duration = "5m"  # how far back the series is read
    # How the points of the one series become the result.
    aggregator: Literal["last", "avg", "min", "max", "sum"] = "last"
    timeout: Duration = "10s"  # over the whole measurement, waits on a rate limit included
    api_key_secret_ref: SecretKeyRef  # sent as DD-API-KEY
    app_key_secret_ref: SecretKeyRef  # sent as DD-APPLICATION-KEY

    @model_validator(mode="after")
    def _one_shape(self) -> DatadogProvider:
        if self.api_version == "v1":
            if self.query is None or self.queries or self.formula is not None:
                raise ValueError("apiVersion v1 takes one query (no queries or formula)")
        elif (self.query is None) == (not self.queries):
            raise ValueError("apiVersion v2 takes either query or queries (with a formula)")
        elif self.queries and self.formula is None:
            raise ValueError("queries need a formula that combines them, such as 'a / b'")
        elif self.query is not None and self.formula is not None:
            raise ValueError("a formula combines named queries: give queries, not query")
        bad = [name for name in self.queries if not _QUERY_NAME.fullmatch(name)]
        if bad:
            raise ValueError(
                f"query names are lowercase letters, digits and _ (from a letter): {', '.join(bad)}"
            )
        if not _WEB_URL.match(self.address):
            raise ValueError(f"address {self.address!r} must start with http:// or https:// and a host")
        return self


class DatadogMetric(SpecModel):
    """`provider: {datadog: {...}}`."""

    kind: ClassVar[str] = "datadog"
    datadog: DatadogProvider

    @property
    def config(self) -> DatadogProvider:
        return self.datadog


class NewRelicProvider(SpecModel):
    """An NRQL query through New Relic's NerdGraph API (rollout/analysis/newrelic.py), with the
    account ID and a user key read from Secrets. `{{args.NAME}}` may stand inside an NRQL
    string literal ('...', escaped for it) or as a plain number or name."""

    query: str = Field(min_length=1)  # NRQL
    region: Literal["us", "eu"] = "us"
    address: str | None = None  # the NerdGraph URL, instead of the region's
    # The field of the one result row to take; without it, the row's one numeric field.
    result_key: str | None = Field(default=None, min_length=1)
    timeout: Duration = "10s"
    account_id_secret_ref: SecretKeyRef
    user_key_secret_ref: SecretKeyRef  # a user key (NRAK-...), sent as API-Key

    @model_validator(mode="after")
    def _well_formed(self) -> NewRelicProvider:
        if self.address is not None and not _WEB_URL.match(self.address):
            raise ValueError(f"address {self.address!r} must start with http:// or https:// and a host")
        return self


class NewRelicMetric(SpecModel):
    """`provider: {newRelic: {...}}`."""

    kind: ClassVar[str] = "newRelic"
    new_relic: NewRelicProvider

    @property
    def config(self) -> NewRelicProvider:
        return self.new_relic


class GraphiteProvider(SpecModel):
    """A Graphite render API query (rollout/analysis/graphite.py): one `target` expression read
    from `from` until `until`. `{{args.NAME}}` may stand in the target as one path node, or
    inside a quoted string argument of a function."""

    address: str = Field(min_length=1)  # graphite-web's base URL
    target: str = Field(min_length=1)
    from_: str = Field(default="-5min", alias="from")
    until: str = "now"
    aggregator: Literal["last", "avg", "min", "max", "sum"] = "last"
    timeout: Duration = "10s"
    headers: list[RequestHeader] = Field(default_factory=list)
    insecure: bool = False  # skip TLS certificate verification

    @model_validator(mode="after")
    def _well_formed(self) -> GraphiteProvider:
        if not _WEB_URL.match(self.address):
            raise ValueError(f"address {self.address!r} must start with http:// or https:// and a host")
        for name, value in (("from", self.from_), ("until", self.until)):
            if not _GRAPHITE_TIME.fullmatch(value):
                raise ValueError(
                    f"{name} {value!r} is not a Graphite time: now, a relative time such as -5min "
                    "or -1h, or seconds since the epoch"
                )
        return self


class GraphiteMetric(SpecModel):
    """`provider: {graphite: {...}}`."""

    kind: ClassVar[str] = "graphite"
    graphite: GraphiteProvider

    @property
    def config(self) -> GraphiteProvider:
        return self.graphite


class CloudWatchDimension(SpecModel):
    name: str = Field(min_length=1)
    value: str = Field(min_length=1)


class CloudWatchMetricName(SpecModel):
    namespace: str = Field(min_length=1)
    metric_name: str = Field(min_length=1)
    dimensions: list[CloudWatchDimension] = Field(default_factory=list)


class CloudWatchMetricStat(SpecModel):
    metric: CloudWatchMetricName
    period: int = Field(ge=1)  # seconds
    stat: str = Field(min_length=1)  # Average, Sum, p99, ...
    unit: str | None = None


class CloudWatchQuery(SpecModel):
    """One of GetMetricData's MetricDataQueries: a metric's statistic or a math expression over
    the other queries (by their ids)."""

    id: str = Field(pattern=r"^[a-z][A-Za-z0-9_]*$")
    metric_stat: CloudWatchMetricStat | None = None
    expression: str | None = Field(default=None, min_length=1)
    label: str | None = None
    period: int | None = Field(default=None, ge=1)  # an expression's period, in seconds
    return_data: bool = True  # as in GetMetricData: the value comes from the query returning data

    @model_validator(mode="after")
    def _stat_or_expression(self) -> CloudWatchQuery:
        if (self.metric_stat is None) == (self.expression is None):
            raise ValueError(f"query {self.id!r} needs exactly one of metricStat or expression")
        return self


class CloudWatchProvider(SpecModel):
    """Amazon CloudWatch GetMetricData: the queries over the last `interval`, the newest value of
    the one query that returns data. `{{args.NAME}}` may stand in the metric's names and
    dimensions (each an API parameter of its own) and, as a plain token, in expressions."""

    metric_data_queries: list[CloudWatchQuery] = Field(min_length=1)
    interval: Duration = "5m"  # the window read back from now
    region: str | None = None  # falls back to the AWS chain (AWS_REGION, the profile)
    # An override (a VPC endpoint, an emulator); https://monitoring.<region>.amazonaws.com otherwise.
    endpoint: str | None = None
    # Static keys from Secrets; without them the usual AWS chain applies (environment, a web
    # identity / IRSA, the instance or pod role).
    access_key_id_secret_ref: SecretKeyRef | None = None
    secret_access_key_secret_ref: SecretKeyRef | None = None
    session_token_secret_ref: SecretKeyRef | None = None
    timeout: Duration = "10s"  # the whole measurement, throttling retries included

    @model_validator(mode="after")
    def _consistent(self) -> CloudWatchProvider:
        ids = [q.id for q in self.metric_data_queries]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"metricDataQueries ids must be unique; repeated: {', '.join(repeated)}")
        if not any(q.return_data for q in self.metric_data_queries):
            raise ValueError("no query returns data: set returnData: true on the one the value comes from")
        if self.endpoint is not None and not re.match(r"^https?://[^/?#]", self.endpoint):
            raise ValueError(f"endpoint {self.endpoint!r} must start with http:// or https:// and a host")
        if (self.access_key_id_secret_ref is None) != (self.secret_access_key_secret_ref is None):
            raise ValueError("accessKeyIdSecretRef and secretAccessKeySecretRef are given together")
        if self.session_token_secret_ref is not None and self.access_key_id_secret_ref is None:
            raise ValueError("sessionTokenSecretRef needs accessKeyIdSecretRef and secretAccessKeySecretRef")
        return self


class CloudWatchMetric(SpecModel):
    """`provider: {cloudWatch: {...}}`."""

    kind: ClassVar[str] = "cloudWatch"
    cloud_watch: CloudWatchProvider

    @property
    def config(self) -> CloudWatchProvider:
        return self.cloud_watch


class InfluxDBProvider(SpecModel):
    """InfluxDB: an InfluxQL query (1.x `/query`, with `database`) or a Flux query (2.x
    `/api/v2/query`, with `org`). `{{args.NAME}}` inside a string literal (and, in InfluxQL, a
    quoted identifier) is escaped for it; elsewhere only a plain token is allowed."""

    address: str = Field(min_length=1)  # http://influxdb:8086
    language: Literal["influxql", "flux"] = "influxql"
    query: str = Field(min_length=1)
    database: str | None = None  # InfluxQL: the `db` parameter
    retention_policy: str | None = None  # InfluxQL: the `rp` parameter
    org: str | None = None  # Flux: the organization name or id
    token_secret_ref: SecretKeyRef | None = None  # Flux: sent as `Authorization: Token ...`
    username_secret_ref: SecretKeyRef | None = None  # InfluxQL: HTTP basic authentication
    password_secret_ref: SecretKeyRef | None = None
    timeout: Duration = "10s"

    @model_validator(mode="after")
    def _fits_its_language(self) -> InfluxDBProvider:
        scheme, _, rest = self.address.partition("://")
        if scheme.lower() not in ("http", "https") or not rest or rest[0] in "/?#":
            raise ValueError(f"address {self.address!r} must start with http:// or https:// and a host")
        if self.language == "influxql":
            if not self.database:
                raise ValueError("an influxql query needs database")
            if self.org is not None or self.token_secret_ref is not None:
                raise ValueError(
                    "org and tokenSecretRef are for language flux (InfluxQL takes usernameSecretRef "
                    "and passwordSecretRef)"
                )
            if (self.username_secret_ref is None) != (self.password_secret_ref is None):
                raise ValueError("usernameSecretRef and passwordSecretRef are given together")
        else:
            if not self.org:
                raise ValueError("a flux query needs org")
            if self.database or self.retention_policy or self.username_secret_ref or self.password_secret_ref:
                raise ValueError(
                    "database, retentionPolicy, usernameSecretRef and passwordSecretRef are for "
                    "language influxql (Flux takes org and tokenSecretRef)"
                )
        return self


class InfluxDBMetric(SpecModel):
    """`provider: {influxdb: {...}}`."""

    kind: ClassVar[str] = "influxdb"
    influxdb: InfluxDBProvider

    @property
    def config(self) -> InfluxDBProvider:
        return self.influxdb


class JobMetadata(SpecModel):
    """Labels and annotations the measurement's Job carries (beside the controller's own)."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


# A JobSpec is large; its pod template is kept as is (validated by the API server when the Job
# is created), except what the controller relies on: a pod that ends, so the Job does.
class _Preserved(SpecModel):
    """Fields beside the declared ones are kept as written (preserved in the CRD too)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})


def _ending_restart_policy(value: Any) -> Any:
    if value not in ("Never", "OnFailure"):
        raise ValueError(
            f"restartPolicy must be Never or OnFailure, not {value!r} (a Job's pod must end for "
            "the measurement to have an outcome)"
        )
    return value


class JobPodSpec(_Preserved):
    restart_policy: Annotated[Literal["Never", "OnFailure"], BeforeValidator(_ending_restart_policy)]


class JobPodTemplate(_Preserved):
    spec: JobPodSpec


def _no_ttl(value: Any) -> Any:
    if value is not None:
        raise ValueError(
            "the controller deletes a measurement's Job itself once it has read the outcome; a Job "
            "removed before that (ttlSecondsAfterFinished) would be run again: leave it out"
        )
    return value


def _not_suspended(value: Any) -> Any:
    if value is True:
        raise ValueError("a suspended Job never runs: the measurement would wait forever")
    return value


class JobSpec(_Preserved):
    """A batch/v1 JobSpec; the fields the controller does not read are kept as written."""

    template: JobPodTemplate
    backoff_limit: NonNegative | None = None
    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = None
    ttl_seconds_after_finished: Annotated[int | None, BeforeValidator(_no_ttl)] = None
    suspend: Annotated[bool | None, BeforeValidator(_not_suspended)] = None


class JobProvider(SpecModel):
    """One Kubernetes Job per measurement: Complete is a Successful measurement, Failed a Failed
    one. `{{args.NAME}}` may stand in any string of `metadata` and `spec`."""

    metadata: JobMetadata = Field(default_factory=JobMetadata)
    spec: JobSpec


class JobMetric(SpecModel):
    """`provider: {job: {...}}`."""

    kind: ClassVar[str] = "job"
    job: JobProvider

    @property
    def config(self) -> JobProvider:
        return self.job


# `provider: {compare: {...}}`: a metric judged by comparing the canary's samples with a
# reference side's instead of a fixed threshold (statistics: rollout/analysis/judge.py; measuring:
# rollout/analysis/compare.py). Each query is a PromQL template evaluated once per side over the
# window (a range query), with {{side.revision}} (that side's pod-template hash), {{side.pods}} (a
# regex of its pod names) or {{side.role}} (the value of the `role` label canaryMetadata /
# stableMetadata put on its pods) standing for the side; a query without any of them would
# compare a series with itself and is rejected.
SIDE_PLACEHOLDER = re.compile(r"\{\{\s*side\.([A-Za-z]+)\s*\}\}")
SIDE_FIELDS = ("revision", "pods", "role")
_PERCENT = re.compile(r"^\d+(\.\d+)?%$")
# Prometheus answers at most 11,000 points per series of a range query.
MAX_POINTS = 11_000


def percent(text: str) -> float:
    """'5%' -> 0.05."""
    return float(text.rstrip("%")) / 100


def window_problem(window: float, step: float) -> str:
    """What is wrong with a compare window and step (in seconds), or ""."""
    if step <= 0 or window < step:
        return f"step ({step:g}s) must be positive and no longer than window ({window:g}s)"
    if window / step > MAX_POINTS:
        return f"window / step is over {MAX_POINTS} points, more than Prometheus answers"
    return ""


def _check_percent(value: str) -> str:
    if not _PERCENT.match(value):
        raise ValueError(f"{value!r} is not a percentage such as '5%'")
    return value


Percent = Annotated[str, AfterValidator(_check_percent)]


class PrometheusEndpoint(SpecModel):
    """Where the compare queries go; without `address`, the controller's --prometheus-address."""

    address: str | None = None
    timeout: Duration = "10s"
    headers: list[RequestHeader] = Field(default_factory=list)
    insecure: bool = False  # skip TLS certificate verification


def _per_side(query: str) -> str:
    used = SIDE_PLACEHOLDER.findall(query)
    unknown = sorted(set(used) - set(SIDE_FIELDS))
    if unknown:
        raise ValueError(
            f"unknown placeholder side.{unknown[0]}; a side offers: "
            + ", ".join(f"{{{{side.{f}}}}}" for f in SIDE_FIELDS)
        )
    if not used:
        raise ValueError(
            "the query has no per-side placeholder ({{side.revision}}, {{side.pods}} or "
            "{{side.role}}), so both sides would measure the same series"
        )
    return query


PerSideQuery = Annotated[str, Field(min_length=1), AfterValidator(_per_side)]


class CompareCounts(SpecModel):
    """A rate compared as counts: per side, how many `events` (errors) out of how many in `total`
    (requests) over the window, each an instant PromQL query such as
    sum(increase(http_requests_total{...}[{{args.window}}])). Judged by an exact test on the
    pooled counts, which sees a rise from 0.2 % to 0.4 % that per-step samples hide."""

    events: PerSideQuery
    total: PerSideQuery


class CompareQuery(SpecModel):
    """One compared metric: its query template (or counts) and how it is judged."""

    name: str = Field(min_length=1)
    # Samples over the window, one per series every step (a range query): Mann-Whitney U.
    query: PerSideQuery | None = None
    # Or a rate as counts over the window: the conditional test on the two counts.
    counts: CompareCounts | None = None
    # Which way is worse: `increase` (latency, errors), `decrease` (throughput), or `either`.
    direction: Literal["increase", "decrease", "either"] = "increase"
    # How much worse than the reference median (or rate, for counts) is still fine.
    tolerance: Percent = "0%"
    # Fewer finite samples than this on either side (for counts: fewer in `total`): NoData,
    # never a pass.
    min_samples: int = Field(default=10, ge=3)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    weight: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> CompareQuery:
        if (self.query is None) == (self.counts is None):
            raise ValueError(
                "give either `query` (samples) or `counts` (events out of total), not both or neither"
            )
        return self

    @property
    def texts(self) -> list[str]:
        """Every query template it holds."""
        if self.counts is not None:
            return [self.counts.events, self.counts.total]
        return [self.query or ""]


class CompareProvider(SpecModel):
    """The canary judged against a reference side over the latest `window`."""

    # The reference side: the stable pods, or the baseline (fresh pods of the stable template
    # started with the canary: the Rollout's canary.baselineService), which has no age bias.
    against: Literal["stable", "baseline"] = "stable"
    # The latest `window` is compared, one sample per series every `step` (make it at least the
    # query's rate window, so that samples do not overlap). Either may be an argument.
    window: DurationOrArg = "2m"
    step: DurationOrArg = "10s"
    marginal_score: float = Field(default=75, ge=0, le=100)
    pass_score: float = Field(default=95, ge=0, le=100)
    queries: list[CompareQuery] = Field(min_length=1, max_length=10)
    prometheus: PrometheusEndpoint = Field(default_factory=lambda: PrometheusEndpoint())

    @model_validator(mode="after")
    def _consistent(self) -> CompareProvider:
        if self.marginal_score > self.pass_score:
            raise ValueError(f"marginalScore {self.marginal_score:g} is above passScore {self.pass_score:g}")
        if not any(isinstance(v, str) and _WHOLE_PLACEHOLDER.match(v) for v in (self.window, self.step)):
            problem = window_problem(parse_duration(self.window), parse_duration(self.step))
            if problem:
                raise ValueError(problem)
        names = [q.name for q in self.queries]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"query names must be unique; repeated: {', '.join(repeated)}")
        return self


class CompareMetric(SpecModel):
    """`provider: {compare: {...}}`."""

    kind: ClassVar[str] = "compare"
    compare: CompareProvider

    @property
    def config(self) -> CompareProvider:
        return self.compare


# `provider` holds exactly one kind: one member per provider, tagged by its key. Each kind's
# measuring is in rollout/analysis (one module per provider, listed in providers.py).
ProviderKinds = (
    Annotated[PrometheusMetric, Tag("prometheus")]
    | Annotated[WebMetric, Tag("web")]
    | Annotated[DatadogMetric, Tag("datadog")]
    | Annotated[NewRelicMetric, Tag("newRelic")]
    | Annotated[GraphiteMetric, Tag("graphite")]
    | Annotated[CloudWatchMetric, Tag("cloudWatch")]
    | Annotated[InfluxDBMetric, Tag("influxdb")]
    | Annotated[JobMetric, Tag("job")]
    | Annotated[CompareMetric, Tag("compare")]
)
KNOWN_PROVIDERS = (
    "prometheus",
    "web",
    "datadog",
    "newRelic",
    "graphite",
    "cloudWatch",
    "influxdb",
    "job",
    "compare",
)
# Kinds whose measurement is a verdict of its own (no value for conditions to judge), and what
# judges it.
VERDICT_PROVIDERS = {
    "job": "its Job's outcome (Complete or Failed)",
    "compare": "its score (marginalScore, passScore)",
}


def _provider_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [kind for kind in KNOWN_PROVIDERS if kind in value]
        return found[0] if len(found) == 1 else None
    return getattr(value, "kind", None)


def _one_known_kind(data: Any) -> Any:
    """A provider this controller does not know (`datadog: {...}`, or `{}`), or more than one
    kind, is named as such, never taken as a pass."""
    if not isinstance(data, dict):
        return data
    kinds = sorted(str(k) for k in data)
    known = [k for k in kinds if k in KNOWN_PROVIDERS]
    if len(known) > 1:
        raise ValueError(f"a provider holds exactly one kind; found {', '.join(known)}")
    if not known:
        given = f"unknown provider kind {', '.join(kinds)}" if kinds else "no provider kind given"
        raise ValueError(
            f"{given} (a kind the CRD does not declare is pruned by the API server to {{}}); "
            f"this controller measures with: {', '.join(KNOWN_PROVIDERS)}"
        )
    return data


# In the CRD: an object with exactly one property (minProperties = maxProperties = 1) that keeps
# a kind this version does not declare, so that the Rollout can say which kind it does not know
# (rollout/api/crds.py renders the marker).
ONE_KIND = {"x-rollout-one-kind": True}
MetricProvider = Annotated[
    ProviderKinds,
    Discriminator(_provider_kind),
    BeforeValidator(_one_known_kind),
    Field(json_schema_extra=ONE_KIND),
]


class Metric(SpecModel):
    """One measurement series. Without `interval` it is measured once; with `interval` and no
    `count` it is measured until the analysis ends (background analysis only)."""

    name: str = Field(min_length=1)
    interval: DurationOrArg | None = None
    count: CountOrArg | None = None
    initial_delay: DurationOrArg | None = None
    success_condition: str | None = None
    failure_condition: str | None = None
    failure_limit: NonNegative = 0
    inconclusive_limit: NonNegative = 0
    consecutive_error_limit: NonNegative = 4
    provider: MetricProvider

    @model_validator(mode="after")
    def _has_condition(self) -> Metric:
        judged_by = VERDICT_PROVIDERS.get(self.provider.kind)
        if judged_by is not None:
            # The provider's own verdict decides: a condition would have no value to judge.
            if self.success_condition or self.failure_condition:
                raise ValueError(
                    f"a {self.provider.kind} metric is judged by {judged_by}; "
                    "it takes no successCondition or failureCondition"
                )
        elif not self.success_condition and not self.failure_condition:
            raise ValueError("a metric needs a successCondition, a failureCondition or both")
        return self


class TemplateArg(SpecModel):
    """An argument the template's queries use as `{{args.<name>}}`; `value` is its default."""

    name: str = Field(min_length=1)
    value: str | None = None


class AnalysisTemplateSpec(SpecModel):
    args: list[TemplateArg] = Field(default_factory=list)
    metrics: list[Metric] = Field(min_length=1)
    # Metrics measured and shown but never deciding (a Rollout's analysis may add more).
    dry_run: list[DryRun] = Field(default_factory=list)
    # Measurements kept in status per metric (default 10, at most 100).
    measurement_retention: list[MeasurementRetention] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> AnalysisTemplateSpec:
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metric names must be unique; repeated: {', '.join(duplicates)}")
        return self


class _TemplateObject(BaseModel):
    model_config = ConfigDict(extra="ignore")
    spec: AnalysisTemplateSpec


def _without_kind_tag(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """pydantic names the provider's union branch by its tag, which is also its field:
    `provider.web.web.url` is `provider.web.url` to the user."""
    out = list(loc)
    for i in range(len(out) - 2):
        if out[i] == "provider" and out[i + 1] == out[i + 2]:
            del out[i + 1]
            break
    return tuple(out)


def _spec_errors(exc: ValidationError) -> list[SpecError]:
    return [
        SpecError(field_path(_without_kind_tag(tuple(e["loc"]))), e["msg"].removeprefix("Value error, "))
        for e in exc.errors()  # each path starts at `spec` already
    ]


def parse_template(raw: dict[str, Any]) -> AnalysisTemplateSpec | str:
    """A template object's spec, or one readable line saying what is wrong with it."""
    try:
        return _TemplateObject.model_validate(raw).spec
    except ValidationError as exc:
        return str(_spec_errors(exc)[0])


def template_errors(raw: dict[str, Any]) -> list[SpecError]:
    """Every problem of a template object's spec, each at its field path (`rollout lint`)."""
    try:
        _TemplateObject.model_validate(raw)
    except ValidationError as exc:
        return _spec_errors(exc)
    return []
