"""AnalysisTemplate and ClusterAnalysisTemplate: the metrics a Rollout is gated on.

A template is read by the controller whenever a Rollout refers to it (analysis steps, background
analysis, blue/green hooks); its CRD in crds/ is generated from these models. Shape errors are
rejected by the API server; what needs more than a schema (a condition that does not parse, an
argument no one provides) is an InvalidSpec on the Rollout that uses the template.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from rollout.api.base import Duration, SpecModel, parse_duration
from rollout.api.rollout import field_path

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


class SecretKeyRef(SpecModel):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class HeaderValueFrom(SpecModel):
    secret_key_ref: SecretKeyRef


class PrometheusHeader(SpecModel):
    """An HTTP header sent with each query: a literal `value`, or one read from a Secret in the
    Rollout's namespace (an Authorization token, typically)."""

    key: str = Field(min_length=1)
    value: str | None = None
    value_from: HeaderValueFrom | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PrometheusHeader:
        if (self.value is None) == (self.value_from is None):
            raise ValueError("a header needs exactly one of value or valueFrom")
        return self


class PrometheusProvider(SpecModel):
    # Falls back to the controller's --prometheus-address.
    address: str | None = None
    query: str = Field(min_length=1)
    timeout: Duration = "10s"
    headers: list[PrometheusHeader] = Field(default_factory=list)
    insecure: bool = False  # skip TLS certificate verification


KNOWN_PROVIDERS = ("prometheus",)


def _open_provider_schema(schema: dict[str, Any]) -> None:
    """In the CRD, a provider kind this version does not declare (one a newer version adds) is
    kept rather than pruned or rejected, so that the Rollout can say which kind it does not know."""
    schema.pop("required", None)
    schema["x-kubernetes-preserve-unknown-fields"] = True


class MetricProvider(SpecModel):
    model_config = ConfigDict(json_schema_extra=_open_provider_schema)

    prometheus: PrometheusProvider

    @model_validator(mode="before")
    @classmethod
    def _known_kind(cls, data: Any) -> Any:
        """A provider this controller does not know (`datadog: {...}`, or `{}`, which is what a
        real API server leaves of one after pruning) is named as such, never taken as a pass."""
        if isinstance(data, dict) and not any(kind in data for kind in KNOWN_PROVIDERS):
            found = ", ".join(sorted(str(k) for k in data))
            given = f"unknown provider kind {found}" if found else "no provider kind given"
            raise ValueError(
                f"{given} (a kind the CRD does not declare is pruned by the API server to {{}}); "
                f"this controller measures with: {', '.join(KNOWN_PROVIDERS)}"
            )
        return data


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
        if not self.success_condition and not self.failure_condition:
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


def parse_template(raw: dict[str, Any]) -> AnalysisTemplateSpec | str:
    """A template object's spec, or one readable line saying what is wrong with it."""
    try:
        return _TemplateObject.model_validate(raw).spec
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(tuple(first["loc"]))  # the location starts at `spec` already
        return f"{where}: {first['msg'].removeprefix('Value error, ')}"
