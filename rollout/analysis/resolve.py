"""From a Rollout's `analysis` reference to the concrete metrics a run measures: templates looked
up (namespaced or cluster-scoped), arguments merged (template defaults < built-ins < the
Rollout's own) and substituted, and every problem reported with its field path.

The Rollout's own arguments are a literal `value`, a field of the Rollout (`valueFrom.fieldRef`)
or a key of a Secret (`valueFrom.secretKeyRef`, read by the controller: rollout/analysis/
measure.py); a secret value is substituted like any other, and each resolved metric carries the
secret values so that every message quoting it masks them (rollout/analysis/masking.py).
`dryRun` and `measurementRetention` (the template's, then the Rollout's) mark each metric."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from rollout.analysis.args import PLACEHOLDER, ArgError, placeholders, substitute_condition
from rollout.analysis.expressions import check
from rollout.analysis.masking import mask
from rollout.analysis.provider import Request
from rollout.analysis.providers import PROVIDERS
from rollout.api.base import parse_duration
from rollout.api.rollout import Rollout, SpecError
from rollout.api.spec import FIELD_PATH, AnalysisRefs, DryRun, MeasurementRetention, RolloutAnalysis
from rollout.api.status import RolloutStatus
from rollout.api.templates import AnalysisTemplateSpec, Metric
from rollout.api.vocabulary import BACKGROUND

# An error measurement of a metric without an interval is tried again after this many seconds.
ERROR_RETRY_SECONDS = 10.0
# Measurements kept in status per metric without a measurementRetention (counts cover all).
DEFAULT_RETENTION = 10


@dataclass(frozen=True)
class TemplateKey:
    name: str
    cluster_scope: bool = False

    def __str__(self) -> str:
        kind = "ClusterAnalysisTemplate" if self.cluster_scope else "AnalysisTemplate"
        return f"{kind} {self.name}"


# What the controller found for a template: its spec, a line saying why it cannot be read, or None.
TemplateLookup = Mapping[TemplateKey, AnalysisTemplateSpec | str | None]


@dataclass(frozen=True)
class ResolvedMetric:
    name: str
    template: str  # "AnalysisTemplate success-rate", for messages
    provider: str  # the provider kind, a key of providers.PROVIDERS
    request: Request = field(repr=False)  # what that provider resolved the metric's config to
    interval: float | None
    count: int | None  # None: measured until the analysis ends
    initial_delay: float
    success_condition: str | None
    failure_condition: str | None
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    dry_run: bool = False  # measured and shown, never deciding the run's phase
    retention: int = DEFAULT_RETENTION  # measurements kept in status
    # Values of the Rollout's secret arguments: masked in every message (never in repr).
    secrets: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def query(self) -> str:
        """What is asked, as quoted in messages (the PromQL query, the URL), secrets masked."""
        return self.masked(self.request.text)

    def masked(self, text: str) -> str:
        return mask(text, self.secrets) if self.secrets else text

    @property
    def retry_after(self) -> float:
        return self.interval if self.interval is not None else ERROR_RETRY_SECONDS


def analysis_refs(rollout: Rollout) -> AnalysisRefs:
    """Every analysis the spec asks for, as its strategy declares them: run name -> (field path,
    reference)."""
    return rollout.spec.strategy.chosen.analyses()


@dataclass(frozen=True)
class SecretRef:
    """A header of a metric whose value comes from a Secret, with where it is written."""

    path: str  # the Rollout's reference to the template: spec....analysis.templates[0]
    template: TemplateKey
    field: str  # in the template: metrics[0].provider.prometheus.headers[1].valueFrom.secretKeyRef
    header: str
    secret: str
    key: str
    run: str = ""  # the analysis it belongs to: a step's run, background, pre-/post-promotion


def secret_refs(rollout: Rollout, templates: TemplateLookup) -> list[SecretRef]:
    """Every Secret key the analysis headers of the Rollout's (readable) templates refer to."""
    refs: list[SecretRef] = []
    for run, (path, ref) in analysis_refs(rollout).items():
        for index, template_ref in enumerate(ref.templates):
            key = TemplateKey(template_ref.name, template_ref.cluster_scope)
            spec = templates.get(key)
            if spec is None or isinstance(spec, str):
                continue  # reported by resolve()
            for m, metric in enumerate(spec.metrics):
                kind = metric.provider.kind
                for use in PROVIDERS[kind].secret_uses(metric.provider.config):
                    refs.append(
                        SecretRef(
                            f"{path}.templates[{index}]",
                            key,
                            f"metrics[{m}].provider.{kind}.{use.field}",
                            use.header,
                            use.ref.name,
                            use.ref.key,
                            run,
                        )
                    )
    return refs


def _filled(value: int | str, args: Mapping[str, str]) -> int | str:
    whole = PLACEHOLDER.fullmatch(value.strip()) if isinstance(value, str) else None
    return args[whole.group(1)] if whole else value


def _seconds(value: int | str | None, args: Mapping[str, str], field: str) -> float | None:
    if value is None:
        return None
    filled = _filled(value, args)
    try:
        return parse_duration(filled)
    except ValueError as exc:
        raise ArgError(f"{field}: {exc}") from exc


def _count(value: int | str | None, args: Mapping[str, str]) -> int | None:
    if value is None:
        return None
    filled = _filled(value, args)
    if isinstance(filled, str):
        if not filled.strip().isdigit() or int(filled) < 1:
            raise ArgError(f"count: {filled!r} is not a positive integer")
        return int(filled)
    return filled


def template_keys(rollout: Rollout) -> set[TemplateKey]:
    return {
        TemplateKey(t.name, t.cluster_scope)
        for _, ref in analysis_refs(rollout).values()
        for t in ref.templates
    }


def builtin_args(
    rollout: Rollout, stable: str | None, current: str, baseline: str | None = None
) -> dict[str, str]:
    """The arguments every template gets; the Services are the strategy's pair (a blue/green's
    active and preview Services; empty without Services). A canary with baselineService also
    gets baseline-service and baseline-hash (`baseline`: its revision while it runs, else "")."""
    services = rollout.spec.strategy.chosen.services()
    builtins = {
        "namespace": rollout.metadata.namespace,
        "rollout": rollout.metadata.name,
        "stable-hash": stable or "",
        "canary-hash": current,
        "stable-service": services.stable,
        "canary-service": services.canary,
    }
    if services.baseline:
        builtins |= {"baseline-service": services.baseline, "baseline-hash": baseline or ""}
    # The `role` label each side's pods carry (canaryMetadata / stableMetadata), for the compare
    # provider's {{side.role}}; absent when the Rollout sets none.
    roles = rollout.spec.strategy.chosen.role_metadata(stable, current, None)
    for side, revision in (("canary", current), ("stable", stable)):
        held = roles.get(revision or "")
        if held is not None and "role" in held.metadata.labels:
            builtins[f"{side}-role"] = held.metadata.labels["role"]
    return builtins


@dataclass(frozen=True)
class Unreadable:
    """Why a Secret key an argument names cannot be used (missing, denied, not text)."""

    why: str


# The Secret keys the Rollout's arguments name, as the controller read them: (Secret, key) ->
# the decoded value, or why there is none.
SecretArgValues = Mapping[tuple[str, str], str | Unreadable]


@dataclass(frozen=True)
class ArgValues:
    """The Rollout's own arguments of one analysis: name -> value, and the secret values."""

    values: dict[str, str]
    secret: frozenset[str] = field(default=frozenset(), repr=False)


def _field_value(rollout: Rollout, path: str) -> str | None:
    match = FIELD_PATH.match(path)
    if match is None:  # the model refuses these; kept for a direct caller
        return None
    meta = rollout.metadata
    if match.group(1):
        return str(getattr(meta, match.group(1)))
    found: dict[str, str] = getattr(meta, match.group(2))
    return found.get(match.group(4))


def rollout_args(
    rollout: Rollout, ref: RolloutAnalysis, path: str, secret_values: SecretArgValues | None
) -> tuple[ArgValues, list[SpecError]]:
    """The Rollout's arguments of `ref` with their values; a field or Secret key that gives none is
    an error at the argument's field path (Secret values never appear in it)."""
    values: dict[str, str] = {}
    secret: set[str] = set()
    errors: list[SpecError] = []
    namespace = rollout.metadata.namespace
    for index, arg in enumerate(ref.args):
        at = f"{path}.args[{index}]"
        if arg.value is not None:
            values[arg.name] = arg.value
            continue
        assert arg.value_from is not None
        secret_ref, field_ref = arg.value_from.secret_key_ref, arg.value_from.field_ref
        if field_ref is not None:
            value = _field_value(rollout, field_ref.field_path)
            if value is None:
                errors.append(
                    SpecError(
                        f"{at}.valueFrom.fieldRef.fieldPath",
                        f"{field_ref.field_path!r}: the Rollout has no such label or annotation",
                    )
                )
                continue
            values[arg.name] = value
            continue
        assert secret_ref is not None
        found = None if secret_values is None else secret_values.get((secret_ref.name, secret_ref.key))
        if not isinstance(found, str):
            why = found.why if found is not None else "not read"
            errors.append(
                SpecError(
                    f"{at}.valueFrom.secretKeyRef",
                    f"Secret {namespace}/{secret_ref.name} key {secret_ref.key!r}: {why}",
                )
            )
            continue
        values[arg.name] = found
        secret.add(found)
    return ArgValues(values, frozenset(secret)), errors


def arg_secret_keys(rollout: Rollout) -> set[tuple[str, str]]:
    """Every (Secret, key) the Rollout's analysis arguments name."""
    return {
        (arg.value_from.secret_key_ref.name, arg.value_from.secret_key_ref.key)
        for _, ref in analysis_refs(rollout).values()
        for arg in ref.args
        if arg.value_from is not None and arg.value_from.secret_key_ref is not None
    }


def _matches(pattern: str, name: str) -> bool:
    """A dryRun / measurementRetention metricName against a metric's name: the whole name."""
    return re.fullmatch(pattern, name) is not None


@dataclass(frozen=True)
class _Marks:
    """dryRun and measurementRetention entries, each with the field path that gave it."""

    dry_run: Sequence[tuple[str, DryRun]]
    retention: Sequence[tuple[str, MeasurementRetention]]

    def unmatched(self, names: Sequence[str], where: str) -> list[SpecError]:
        entries: list[tuple[str, DryRun | MeasurementRetention]] = [*self.dry_run, *self.retention]
        return [
            SpecError(at, f"metricName {entry.metric_name!r} matches no metric of {where}")
            for at, entry in entries
            if not any(_matches(entry.metric_name, n) for n in names)
        ]

    def mark(self, metric: ResolvedMetric) -> ResolvedMetric:
        dry = any(_matches(e.metric_name, metric.name) for _, e in self.dry_run)
        limits = [e.limit for _, e in self.retention if _matches(e.metric_name, metric.name)]
        return replace(metric, dry_run=dry, retention=limits[-1] if limits else metric.retention)


def resolve(
    ref: RolloutAnalysis,
    path: str,
    templates: TemplateLookup,
    builtins: Mapping[str, str],
    *,
    bounded: bool,
    given: ArgValues | None = None,
) -> tuple[list[ResolvedMetric], list[SpecError]]:
    """The metrics of `ref`; `bounded` runs (steps, blue/green hooks) must end by themselves.
    `given`: the Rollout's arguments with their values (rollout_args); without it, the literal
    ones only."""
    if given is None:
        given = ArgValues({arg.name: arg.value for arg in ref.args if arg.value is not None})
    metrics: list[ResolvedMetric] = []
    errors: list[SpecError] = []
    rollout_marks = _Marks(
        [(f"{path}.dryRun[{i}].metricName", d) for i, d in enumerate(ref.dry_run)],
        [
            (f"{path}.measurementRetention[{i}].metricName", r)
            for i, r in enumerate(ref.measurement_retention)
        ],
    )
    seen: dict[str, str] = {}
    for index, template_ref in enumerate(ref.templates):
        key = TemplateKey(template_ref.name, template_ref.cluster_scope)
        at = f"{path}.templates[{index}]"
        spec = templates.get(key)
        if spec is None:
            errors.append(SpecError(at, f"{key} not found"))
            continue
        if isinstance(spec, str):
            errors.append(SpecError(at, f"{key} is not valid: {spec}"))
            continue
        args = {a.name: a.value for a in spec.args if a.value is not None} | dict(builtins) | given.values
        own_marks = _Marks(
            [(f"{at} ({key}): dryRun[{i}]", d) for i, d in enumerate(spec.dry_run)],
            [
                (f"{at} ({key}): measurementRetention[{i}]", r)
                for i, r in enumerate(spec.measurement_retention)
            ],
        )
        errors += own_marks.unmatched([m.name for m in spec.metrics], str(key))
        # The Rollout's entries come last: for the same metric its retention wins.
        marks = _Marks(
            [*own_marks.dry_run, *rollout_marks.dry_run], [*own_marks.retention, *rollout_marks.retention]
        )
        for metric in spec.metrics:
            where = f"{at} ({key}, metric {metric.name})"
            if metric.name in seen:
                errors.append(SpecError(at, f"metric {metric.name!r} is also defined by {seen[metric.name]}"))
                continue
            seen[metric.name] = str(key)
            resolved, problem = _resolve_metric(metric, str(key), args, bounded=bounded)
            if problem:
                errors.append(SpecError(where, mask(problem, given.secret)))
            elif resolved is not None:
                metrics.append(marks.mark(replace(resolved, secrets=given.secret)))
    if seen:
        errors += rollout_marks.unmatched(list(seen), "its templates")
    return metrics, errors


def _resolve_metric(
    metric: Metric, template: str, args: Mapping[str, str], *, bounded: bool
) -> tuple[ResolvedMetric | None, str]:
    provider = PROVIDERS[metric.provider.kind]
    config = metric.provider.config
    declared = provider.placeholders(config)
    for text in (metric.success_condition, metric.failure_condition, metric.interval, metric.count):
        declared |= placeholders(text) if isinstance(text, str) else set()
    declared |= placeholders(metric.initial_delay) if isinstance(metric.initial_delay, str) else set()
    missing = sorted(declared - set(args))
    if missing:
        return None, f"argument(s) {', '.join(missing)} have no value (give them in the Rollout's args)"
    try:
        interval = _seconds(metric.interval, args, "interval")
        initial_delay = _seconds(metric.initial_delay, args, "initialDelay") or 0.0
        count = _count(metric.count, args)
    except ArgError as exc:
        return None, str(exc)
    if interval is None:
        count = count or 1
        if count > 1:
            return None, f"count {count} needs an interval between measurements"
    if bounded and count is None:
        return None, "an interval without a count never ends; an analysis step or hook needs a count"
    try:
        request = provider.resolve(config, args)
        success = substitute_condition(metric.success_condition, args) if metric.success_condition else None
        failure = substitute_condition(metric.failure_condition, args) if metric.failure_condition else None
    except ArgError as exc:
        return None, str(exc)
    for name, condition in (("successCondition", success), ("failureCondition", failure)):
        problem = check(condition, any_json=provider.json_result) if condition else None
        if problem:
            return None, f"{name} {problem}"
    return (
        ResolvedMetric(
            name=metric.name,
            template=template,
            provider=provider.kind,
            request=request,
            interval=interval,
            count=count,
            initial_delay=initial_delay,
            success_condition=success,
            failure_condition=failure,
            failure_limit=metric.failure_limit,
            inconclusive_limit=metric.inconclusive_limit,
            consecutive_error_limit=metric.consecutive_error_limit,
        ),
        "",
    )


class ResolvedAnalyses(NamedTuple):
    """Every analysis of the spec resolved: run name -> metrics, and all problems found."""

    metrics: dict[str, list[ResolvedMetric]]
    errors: list[SpecError]


def resolve_all(
    rollout: Rollout,
    templates: TemplateLookup,
    stable: str | None,
    current: str,
    secret_values: SecretArgValues | None = None,
    baseline: str | None = None,
) -> ResolvedAnalyses:
    """Every analysis of the spec resolved once: run name -> metrics, and all problems found.
    `secret_values`: the Secret keys the arguments name, as read (None: not read, so an argument
    from a Secret is an error). `baseline`: the canary's baseline revision while it runs."""
    builtins = builtin_args(rollout, stable, current, baseline)
    resolved: dict[str, list[ResolvedMetric]] = {}
    errors: list[SpecError] = []
    for name, (path, ref) in analysis_refs(rollout).items():
        given, problems = rollout_args(rollout, ref, path, secret_values)
        errors += problems
        metrics, problems = resolve(ref, path, templates, builtins, bounded=name != BACKGROUND, given=given)
        resolved[name] = metrics
        errors += problems
    return ResolvedAnalyses(resolved, errors)


def resolve_analyses(
    rollout: Rollout,
    status: RolloutStatus,
    templates: TemplateLookup,
    current: str,
    secret_values: SecretArgValues | None = None,
) -> ResolvedAnalyses:
    """The analyses of one reconcile, resolved once by whoever observes the cluster (the
    controller, which measures what is due with them; the engine decides with the same), with
    the stable revision the status read at the start of the reconcile names."""
    baseline = status.canary.baseline_revision if status.canary is not None else None
    stable = status.stable_revision or current
    return resolve_all(rollout, templates, stable, current, secret_values, baseline)
