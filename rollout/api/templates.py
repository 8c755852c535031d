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
    field_validator,
    model_validator,
)

from rollout.api.base import Duration, SpecModel, parse_duration
from rollout.api.rollout import SpecError, field_path
from rollout.api.spec import SecretKeyRef

NonNegative = Annotated[int, Field(ge=0)]
_WHOLE_PLACEHOLDER = re.compile(r"^\{\{\s*args\.[A-Za-z0-9_.-]+\s*\}\}$")


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


class CompareQuery(SpecModel):
    """One compared metric: its query template and how it is judged."""

    name: str = Field(min_length=1)
    query: str = Field(min_length=1)
    # Which way is worse: `increase` (latency, errors), `decrease` (throughput), or `either`.
    direction: Literal["increase", "decrease", "either"] = "increase"
    # How much worse than the reference median is still fine.
    tolerance: Percent = "0%"
    # Fewer finite samples than this on either side: NoData (never a pass).
    min_samples: int = Field(default=10, ge=3)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    weight: float = Field(default=1.0, gt=0)

    @field_validator("query")
    @classmethod
    def _per_side(cls, query: str) -> str:
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


class CompareProvider(SpecModel):
    """The canary judged against a reference side over the latest `window`."""

    # The reference side: the stable pods (a fresh `baseline` side is a later addition).
    against: Literal["stable"] = "stable"
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
    | Annotated[CompareMetric, Tag("compare")]
)
KNOWN_PROVIDERS = ("prometheus", "web", "compare")


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
        conditions = self.success_condition or self.failure_condition
        if self.provider.kind == "compare":
            if conditions:
                raise ValueError(
                    "a compare metric is judged by its score (marginalScore, passScore); "
                    "it takes no successCondition or failureCondition"
                )
        elif not conditions:
            raise ValueError("a metric needs a successCondition, a failureCondition or both")
        return self


class TemplateArg(SpecModel):
    """An argument the template's queries use as `{{args.<name>}}`; `value` is its default."""

    name: str = Field(min_length=1)
    value: str | None = None


class AnalysisTemplateSpec(SpecModel):
    args: list[TemplateArg] = Field(default_factory=list)
    metrics: list[Metric] = Field(min_length=1)

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
