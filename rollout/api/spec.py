"""The Rollout spec: what a user writes. The CRD schema in crds/ is generated from these models.

Cross-field rules that a CRD schema cannot express (exactly one strategy, exactly one action per
step, selector vs. template labels) are model validators here, so that a violation is reported as
InvalidSpec with the field path; references to other objects are checked by the engine. Each
strategy's model (a StrategyConfig) also declares what the spec refers to: its Services, its
analyses and its trafficRouting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from rollout.api.base import Duration, IntOrPercent, SpecModel
from rollout.api.vocabulary import BACKGROUND, POST_PROMOTION, PRE_PROMOTION, step_run_name

Weight = Annotated[int, Field(ge=0, le=100)]
NonNegative = Annotated[int, Field(ge=0)]


class LabelSelectorRequirement(SpecModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)


class LabelSelector(SpecModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and not (present and labels[req.key] in req.values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True

    def as_query(self) -> str:
        """The selector in the string form of `kubectl get -l` and the scale subresource."""
        parts = [f"{key}={value}" for key, value in sorted(self.match_labels.items())]
        for req in self.match_expressions:
            if req.operator in ("In", "NotIn"):
                parts.append(f"{req.key} {req.operator.lower()} ({','.join(req.values)})")
            else:
                parts.append(req.key if req.operator == "Exists" else f"!{req.key}")
        return ",".join(parts)


class PodTemplateMetadata(SpecModel):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PodTemplate(SpecModel):
    metadata: PodTemplateMetadata = Field(default_factory=PodTemplateMetadata)
    # A full PodSpec schema is too large for a CRD: kept as is and validated by the API server
    # when the ReplicaSet is created.
    spec: dict[str, Any] = Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})


class AnalysisTemplateRef(SpecModel):
    name: str = Field(min_length=1)
    cluster_scope: bool = False


class SecretKeyRef(SpecModel):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


# The Rollout fields an argument may take its value from (the downward API's spelling).
FIELD_PATH = re.compile(r"""^metadata\.(?:(name|namespace)|(labels|annotations)\[(['"])(.+)\3\])$""")
FIELD_PATHS = "metadata.name, metadata.namespace, metadata.labels['KEY'], metadata.annotations['KEY']"


class ObjectFieldRef(SpecModel):
    field_path: str = Field(min_length=1)

    @model_validator(mode="after")
    def _known(self) -> ObjectFieldRef:
        if not FIELD_PATH.match(self.field_path):
            raise ValueError(f"fieldPath {self.field_path!r} is not supported; use one of {FIELD_PATHS}")
        return self


class ArgValueFrom(SpecModel):
    """Where an argument's value comes from: a key of a Secret in the Rollout's namespace (never
    shown: masked as *** wherever the query is quoted), or a field of the Rollout itself."""

    secret_key_ref: SecretKeyRef | None = None
    field_ref: ObjectFieldRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ArgValueFrom:
        if (self.secret_key_ref is None) == (self.field_ref is None):
            raise ValueError("valueFrom needs exactly one of secretKeyRef or fieldRef")
        return self


class AnalysisArg(SpecModel):
    name: str = Field(min_length=1)
    value: str | None = None
    value_from: ArgValueFrom | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AnalysisArg:
        if (self.value is None) == (self.value_from is None):
            raise ValueError(f"argument {self.name!r} needs exactly one of value or valueFrom")
        return self


# The most measurements status keeps for one metric (measurementRetention's limit): the run's
# whole share (rollout/engine/bounds.py, MEASUREMENTS_PER_RUN), so that one metric may use it all.
MAX_RETENTION = 100


def _retention_limit(value: int) -> int:
    if value > MAX_RETENTION:
        raise ValueError(
            f"limit {value} is above {MAX_RETENTION}, the most measurements status keeps for one metric"
        )
    return value


class DryRun(SpecModel):
    """Metrics measured and shown but never deciding the rollout: `metricName` is a regular
    expression matched against the whole metric name (`.*`: every metric)."""

    metric_name: str = Field(min_length=1)

    @model_validator(mode="after")
    def _a_pattern(self) -> DryRun:
        try:
            re.compile(self.metric_name)
        except re.error as exc:
            raise ValueError(f"metricName {self.metric_name!r} is not a regular expression: {exc}") from exc
        return self


class MeasurementRetention(SpecModel):
    """How many of its latest measurements status keeps for the metrics `metricName` matches (a
    regular expression, as in dryRun); the counts always cover every measurement."""

    metric_name: str = Field(min_length=1)
    limit: Annotated[
        int, Field(ge=1, json_schema_extra={"maximum": MAX_RETENTION}), AfterValidator(_retention_limit)
    ]

    @model_validator(mode="after")
    def _a_pattern(self) -> MeasurementRetention:
        try:
            re.compile(self.metric_name)
        except re.error as exc:
            raise ValueError(f"metricName {self.metric_name!r} is not a regular expression: {exc}") from exc
        return self


class RolloutAnalysis(SpecModel):
    templates: list[AnalysisTemplateRef] = Field(min_length=1)
    args: list[AnalysisArg] = Field(default_factory=list)
    starting_step: NonNegative | None = None
    # Added to the templates' own (for the same metric the Rollout's retention wins).
    dry_run: list[DryRun] = Field(default_factory=list)
    measurement_retention: list[MeasurementRetention] = Field(default_factory=list)


class PauseStep(SpecModel):
    duration: Duration | None = None


class SetCanaryScale(SpecModel):
    """Canary replicas as a count, as a percent of spec.replicas, or (matchTrafficWeight: true)
    following the traffic weight again."""

    replicas: NonNegative | None = None
    weight: Weight | None = None
    match_traffic_weight: bool | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SetCanaryScale:
        kinds = [k for k in ("replicas", "weight") if getattr(self, k) is not None]
        if self.match_traffic_weight:
            kinds.append("matchTrafficWeight")
        if len(kinds) != 1:
            raise ValueError(
                "setCanaryScale needs exactly one of replicas, weight or matchTrafficWeight: true"
            )
        return self


class HeaderMatch(SpecModel):
    header: str = Field(min_length=1)
    exact: str | None = None
    regex: str | None = None
    prefix: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> HeaderMatch:
        kinds = [k for k in ("exact", "regex", "prefix") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a header match needs exactly one of exact, regex or prefix")
        return self


class SetHeaderRoute(SpecModel):
    """Requests matching every `match` go to the canary only; an empty `match` removes the route."""

    name: str = Field(min_length=1)
    match: list[HeaderMatch] = Field(default_factory=list)


class SetMirrorRoute(SpecModel):
    """Mirror `percent`% (default 100) of the traffic to the canary; `percent: 0` removes it."""

    name: str = Field(min_length=1)
    percent: Weight | None = None


STEP_ACTIONS = ("set_weight", "pause", "set_canary_scale", "set_header_route", "set_mirror_route", "analysis")


class CanaryStep(SpecModel):
    set_weight: Weight | None = None
    pause: PauseStep | None = None
    set_canary_scale: SetCanaryScale | None = None
    set_header_route: SetHeaderRoute | None = None
    set_mirror_route: SetMirrorRoute | None = None
    analysis: RolloutAnalysis | None = None

    @model_validator(mode="after")
    def _one_action(self) -> CanaryStep:
        actions = [a for a in STEP_ACTIONS if getattr(self, a) is not None]
        if not actions:
            # What a real API server leaves of a step type it does not know: an empty object.
            raise ValueError(
                "step has no action (unknown step type?); use one of setWeight, pause, "
                "setCanaryScale, setHeaderRoute, setMirrorRoute, analysis"
            )
        if len(actions) > 1:
            raise ValueError("a step must have exactly one action")
        return self


class RouteRef(SpecModel):
    name: str = Field(min_length=1)
    rule: str | None = None


class GatewayAPIRouting(SpecModel):
    http_routes: list[RouteRef] = Field(default_factory=list)
    grpc_routes: list[RouteRef] = Field(default_factory=list)
    tcp_routes: list[RouteRef] = Field(default_factory=list)


class IstioVirtualService(SpecModel):
    name: str = Field(min_length=1)
    routes: list[str] = Field(default_factory=list)
    tcp_routes: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list)


class IstioDestinationRule(SpecModel):
    name: str = Field(min_length=1)
    stable_subset: str = Field(min_length=1)
    canary_subset: str = Field(min_length=1)


class IstioRouting(SpecModel):
    virtual_service: IstioVirtualService
    destination_rule: IstioDestinationRule | None = None


class NginxRouting(SpecModel):
    """ingress-nginx: the Ingress users reach the stable Service through; never modified."""

    stable_ingress: str = Field(min_length=1)


class TrafficRouting(SpecModel):
    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")
    istio: IstioRouting | None = None
    nginx: NginxRouting | None = None


@dataclass(frozen=True)
class ServicePair:
    """The two Services a strategy pins to revisions, with the spec fields naming them: a canary's
    stableService and canaryService, a blue/green's activeService and previewService. Validation
    checks they exist, the controller reads them, analysis gets them as built-in arguments, the
    routes send to them, and recovery reads from `stable` which revision users are on. An empty
    name is a Service not set (a rolling update has neither)."""

    path: str  # spec.strategy.<field>, for errors
    stable: str = ""  # the Service users are on: stableService, activeService
    canary: str = ""  # the Service the new revision is reached on: canaryService, previewService
    stable_field: str = ""
    canary_field: str = ""
    # A canary's baselineService: the fresh pods of the stable template run beside the canary.
    baseline: str = ""
    baseline_field: str = ""

    def named(self) -> dict[str, str]:
        """Field path -> Service name, for each Service the spec names."""
        named = (
            (self.stable_field, self.stable),
            (self.canary_field, self.canary),
            (self.baseline_field, self.baseline),
        )
        return {f"{self.path}.{field}": name for field, name in named if name}


class PodMetadata(SpecModel):
    """Labels and annotations put on the pods of one role (canary or stable, active or preview)
    while they hold it, and taken off when the role changes, without restarting a pod. They are
    not part of the revision and no Service selects on them."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PreferredAntiAffinity(SpecModel):
    weight: int = Field(ge=1, le=100)


class RequiredAntiAffinity(SpecModel):
    pass


class AntiAffinity(SpecModel):
    """Keep the new revision's pods off the nodes of the stable (active) revision's pods while
    both run, so one bad node does not take down both: preferred (with a weight) or required.
    Not part of the revision; dropped from the template once the revision is alone."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    preferred_during_scheduling_ignored_during_execution: PreferredAntiAffinity | None = None
    required_during_scheduling_ignored_during_execution: RequiredAntiAffinity | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> AntiAffinity:
        kinds = [
            self.preferred_during_scheduling_ignored_during_execution,
            self.required_during_scheduling_ignored_during_execution,
        ]
        if sum(k is not None for k in kinds) != 1:
            raise ValueError(
                "set exactly one of preferredDuringSchedulingIgnoredDuringExecution and "
                "requiredDuringSchedulingIgnoredDuringExecution"
            )
        return self

    @property
    def required(self) -> bool:
        return self.required_during_scheduling_ignored_during_execution is not None


@dataclass(frozen=True)
class RoleMetadata:
    """A role's pod metadata and the spec field it comes from."""

    path: str
    metadata: PodMetadata


# Where a strategy refers to analysis: run name (rollout/api/vocabulary.py) -> (field path, reference).
AnalysisRefs = dict[str, tuple[str, RolloutAnalysis]]


class StrategyConfig(SpecModel):
    # What every strategy's spec declares besides its own fields: the Services it pins, the
    # analyses it runs and the trafficRouting its routes follow. Every layer reads these here
    # (resolution, routing, validation, recovery, the controller) instead of asking which
    # strategy it is; the engine's side of each strategy is in rollout/engine/strategies.py.
    # (A comment, not a docstring: pydantic would put a docstring into the CRD schema.)

    field: ClassVar[str]  # the name under spec.strategy: rolling, canary, blueGreen

    @property
    def path(self) -> str:
        return f"spec.strategy.{self.field}"

    def services(self) -> ServicePair:
        return ServicePair(self.path)

    def analyses(self) -> AnalysisRefs:
        return {}

    def routing(self) -> TrafficRouting | None:
        return None

    def role_fields(self) -> dict[str, PodMetadata]:
        """Field path -> the pod metadata of each role the spec sets."""
        return {}

    def separation(self) -> AntiAffinity | None:
        """The anti-affinity of the new revision's pods to the stable revision's (None: none)."""
        return getattr(self, "anti_affinity", None)

    def role_metadata(self, stable: str | None, current: str, active: str | None) -> dict[str, RoleMetadata]:
        """Revision -> the pod metadata of the role it holds now; a revision of no role, or of a
        role without metadata, is absent."""
        return {}


def _roles(path: str, *held: tuple[str | None, str, PodMetadata | None]) -> dict[str, RoleMetadata]:
    """The first role a revision holds wins (a revision that is stable is not also the canary)."""
    out: dict[str, RoleMetadata] = {}
    for revision, field, metadata in held:
        if revision and revision not in out and metadata is not None:
            out[revision] = RoleMetadata(f"{path}.{field}", metadata)
    return out


class RollingStrategy(StrategyConfig):
    field: ClassVar[str] = "rolling"

    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"
    analysis: RolloutAnalysis | None = None

    def analyses(self) -> AnalysisRefs:
        return {} if self.analysis is None else {BACKGROUND: (f"{self.path}.analysis", self.analysis)}


class CanaryStrategy(StrategyConfig):
    field: ClassVar[str] = "canary"

    stable_service: str | None = None
    canary_service: str | None = None
    traffic_routing: TrafficRouting | None = None
    analysis: RolloutAnalysis | None = None
    steps: list[CanaryStep] = Field(default_factory=list)
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = 0
    scale_down_delay_seconds: NonNegative = 30
    abort_scale_down_delay_seconds: NonNegative = 30
    # With trafficRouting: stable scaled to the share of traffic it carries, not kept at full.
    dynamic_stable_scale: bool = False
    # With trafficRouting: fewest pods of the canary (once it has any) and of a scaled stable.
    min_pods_per_replica_set: Annotated[int, Field(ge=1)] | None = None
    canary_metadata: PodMetadata | None = None
    stable_metadata: PodMetadata | None = None
    anti_affinity: AntiAffinity | None = None
    baseline_service: str | None = None

    def services(self) -> ServicePair:
        return ServicePair(
            self.path,
            self.stable_service or "",
            self.canary_service or "",
            "stableService",
            "canaryService",
            self.baseline_service or "",
            "baselineService" if self.baseline_service else "",
        )

    def role_fields(self) -> dict[str, PodMetadata]:
        fields = {"canaryMetadata": self.canary_metadata, "stableMetadata": self.stable_metadata}
        return {f"{self.path}.{field}": m for field, m in fields.items() if m is not None}

    def role_metadata(self, stable: str | None, current: str, active: str | None) -> dict[str, RoleMetadata]:
        return _roles(
            self.path,
            (stable, "stableMetadata", self.stable_metadata),
            (current, "canaryMetadata", self.canary_metadata),
        )

    def analyses(self) -> AnalysisRefs:
        refs: AnalysisRefs = {}
        if self.analysis is not None:
            refs[BACKGROUND] = (f"{self.path}.analysis", self.analysis)
        for index, step in enumerate(self.steps):
            if step.analysis is not None:
                refs[step_run_name(index)] = (f"{self.path}.steps[{index}].analysis", step.analysis)
        return refs

    def routing(self) -> TrafficRouting | None:
        return self.traffic_routing


class BlueGreenStrategy(StrategyConfig):
    field: ClassVar[str] = "blueGreen"

    active_service: str = Field(min_length=1)
    preview_service: str | None = None
    preview_replica_count: NonNegative | None = None
    auto_promotion_enabled: bool = True
    auto_promotion_seconds: NonNegative | None = None
    pre_promotion_analysis: RolloutAnalysis | None = None
    post_promotion_analysis: RolloutAnalysis | None = None
    scale_down_delay_seconds: NonNegative = 30
    abort_scale_down_delay_seconds: NonNegative = 30
    traffic_routing: TrafficRouting | None = None
    active_metadata: PodMetadata | None = None
    preview_metadata: PodMetadata | None = None
    anti_affinity: AntiAffinity | None = None

    def services(self) -> ServicePair:
        return ServicePair(
            self.path, self.active_service, self.preview_service or "", "activeService", "previewService"
        )

    def role_fields(self) -> dict[str, PodMetadata]:
        fields = {"activeMetadata": self.active_metadata, "previewMetadata": self.preview_metadata}
        return {f"{self.path}.{field}": m for field, m in fields.items() if m is not None}

    def role_metadata(self, stable: str | None, current: str, active: str | None) -> dict[str, RoleMetadata]:
        return _roles(
            self.path,
            (active or stable, "activeMetadata", self.active_metadata),
            (current, "previewMetadata", self.preview_metadata),
        )

    def analyses(self) -> AnalysisRefs:
        hooks = (
            (PRE_PROMOTION, self.pre_promotion_analysis, "prePromotionAnalysis"),
            (POST_PROMOTION, self.post_promotion_analysis, "postPromotionAnalysis"),
        )
        return {name: (f"{self.path}.{field}", ref) for name, ref, field in hooks if ref is not None}

    def routing(self) -> TrafficRouting | None:
        return self.traffic_routing


class Strategy(SpecModel):
    # One field per strategy, each a StrategyConfig; exactly one is set (rolling by default).

    rolling: RollingStrategy | None = None
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None

    @model_validator(mode="after")
    def _one_strategy(self) -> Strategy:
        chosen = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(chosen) > 1:
            *names, last = (f.field for f in self.configs())
            raise ValueError(f"choose exactly one strategy: {', '.join(names)} or {last}")
        if not chosen:
            self.rolling = RollingStrategy()
        return self

    @classmethod
    def configs(cls) -> list[type[StrategyConfig]]:
        """The model of every strategy, in field order."""
        return [get_args(info.annotation)[0] for info in cls.model_fields.values()]

    @property
    def chosen(self) -> StrategyConfig:
        """The strategy the spec names (the validator leaves exactly one set)."""
        return next(c for c in (getattr(self, name) for name in type(self).model_fields) if c is not None)


class WorkloadRef(SpecModel):
    """A Deployment whose pod template and selector the Rollout takes (instead of spec.template);
    `scaleDown` says when the Deployment's own pods go: never (a trial side by side), onsuccess
    (to 0 once the Rollout is Healthy), progressively (as the Rollout's pods become available)."""

    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    name: str = Field(min_length=1)
    scale_down: Literal["never", "onsuccess", "progressively"] = "progressively"


class RollbackWindow(SpecModel):
    """Going back to one of the last `revisions` stable revisions (by undo or by Git) skips the
    steps and the analysis: that revision already ran in production."""

    revisions: NonNegative = 0


# The moments a webhook can be told about (rollout/notify/messages.py maps Event reasons to them).
NotificationTrigger = Literal["Started", "StepCompleted", "Paused", "AnalysisFailed", "Aborted", "Completed"]
NOTIFICATION_TRIGGERS: tuple[str, ...] = get_args(NotificationTrigger)


class WebhookUrlFrom(SpecModel):
    secret_key_ref: SecretKeyRef


class Webhook(SpecModel):
    """A POST to the URL held by a Secret (in the Rollout's namespace for spec.notifications, in
    the ConfigMap's for the controller-wide config) on each of `triggers` (default: all);
    `format` json (the default) or slack (a Slack-compatible `text`)."""

    name: str = Field(min_length=1)
    url_from: WebhookUrlFrom
    triggers: list[NotificationTrigger] | None = Field(default=None, min_length=1)
    format: Literal["json", "slack"] = "json"

    def wants(self, trigger: str) -> bool:
        return self.triggers is None or trigger in self.triggers


class Notifications(SpecModel):
    webhooks: list[Webhook] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Notifications:
        names = [w.name for w in self.webhooks]
        if len(set(names)) != len(names):
            raise ValueError(f"webhook names must be unique, got {names}")
        return self


class RolloutSpec(SpecModel):
    replicas: NonNegative = 1
    # Both required unless workloadRef names a Deployment to take them from.
    selector: LabelSelector | None = None
    template: PodTemplate | None = None
    workload_ref: WorkloadRef | None = None
    min_ready_seconds: NonNegative = 0
    revision_history_limit: NonNegative = 10
    progress_deadline_seconds: Annotated[int, Field(ge=1)] = 600
    progress_deadline_abort: bool = False
    paused: bool = False
    strategy: Strategy = Field(default_factory=Strategy)
    rollback_window: RollbackWindow | None = None
    notifications: Notifications | None = None

    @model_validator(mode="after")
    def _template_or_workload(self) -> RolloutSpec:
        if self.workload_ref is not None:
            if self.template is not None:
                raise ValueError(
                    "spec.template and spec.workloadRef are mutually exclusive: the pod template "
                    "comes from the Deployment named by workloadRef; remove one"
                )
            if self.selector is not None:
                raise ValueError(
                    "spec.selector is taken from the Deployment named by spec.workloadRef; remove it"
                )
        elif self.template is None:
            raise ValueError("one of spec.template or spec.workloadRef is required")
        elif self.selector is None:
            raise ValueError("spec.selector is required with spec.template")
        return self
