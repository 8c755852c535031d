"""The field mapping of `rollout convert`, as data: for every field of an Argo Rollouts or Flagger
object, where it goes in this project's objects, or why it is not carried over.

The converters (argo.py, flagger.py) are driven by these rules through walk.py: a `copy` rule
moves the value as it is, a `custom` rule is read by the converter's own code (the target says
where it lands), a `drop` rule names a field that is not carried over and why. A field no rule
names is reported as unknown. `migration_table_markdown()` renders the same rules as the
migration table of the documentation (docs/migration-table.md; `python -m rollout.convert`
prints it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rollout.api.templates import KNOWN_PROVIDERS

How = Literal["copy", "custom", "drop"]
# Named where a provider is not supported: this project's providers as the API declares them.
SUPPORTED_PROVIDERS = f"providers: {', '.join(KNOWN_PROVIDERS)}"


@dataclass(frozen=True)
class Rule:
    """One source field. `source` is a path in the source object, `[]` standing for any list
    index and `*` for any map key; `target` is the path it lands on (its `[]` take the source's
    indices in order), or a description for a `custom` rule; `note` says how, or why not."""

    source: str
    target: str | None
    how: How = "copy"
    note: str = ""


def copy(source: str, target: str | None = None, note: str = "") -> Rule:
    return Rule(source, target if target is not None else source, "copy", note)


def custom(source: str, target: str, note: str = "") -> Rule:
    return Rule(source, target, "custom", note)


def drop(source: str, why: str) -> Rule:
    return Rule(source, None, "drop", why)


# Metadata: what a person writes is kept, what the API server writes is not.
SERVER_SET = "written by the API server; a new object gets its own"


def metadata_rules() -> list[Rule]:
    return [
        copy("metadata.name"),
        copy("metadata.namespace"),
        copy("metadata.labels"),
        copy("metadata.annotations"),
        custom(
            "metadata.generateName",
            "metadata.name",
            "without a name, the name (its trailing `-` removed): a converted object is applied, not created",
        ),
        *(
            drop(f"metadata.{field}", SERVER_SET)
            for field in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")
        ),
        drop("metadata.ownerReferences", "they name the owners of the source object, not of the new one"),
        drop("metadata.finalizers", "they belong to the controller that set them"),
        drop("status", "written by the controller"),
    ]


HASH_ARGS = (
    "the built-in arguments canary-hash and stable-hash are the ReplicaSet hashes (the argument is left out)"
)


def _analysis_rules(prefix: str) -> list[Rule]:
    """An Argo RolloutAnalysis (background, step, pre/post-promotion) at `prefix`."""
    arg = f"{prefix}.args[].valueFrom"
    return [
        copy(f"{prefix}.templates[].templateName", f"{prefix}.templates[].name"),
        copy(f"{prefix}.templates[].clusterScope"),
        copy(f"{prefix}.args[].name"),
        copy(f"{prefix}.args[].value"),
        copy(f"{arg}.fieldRef.fieldPath"),
        drop(f"{arg}.podTemplateHashValue", HASH_ARGS),
        copy(f"{prefix}.startingStep"),
        copy(f"{prefix}.dryRun"),
        copy(f"{prefix}.measurementRetention"),
        drop(f"{prefix}.analysisRunMetadata", "analysis runs carry no user metadata here"),
    ]


_ALB = "the AWS ALB router is not supported (routers: gatewayAPI, istio, nginx)"
ARGO_ROUTERS_UNSUPPORTED = {
    "alb": _ALB,
    "smi": "the SMI router is not supported (routers: gatewayAPI, istio, nginx)",
    "ambassador": "the Ambassador router is not supported (routers: gatewayAPI, istio, nginx)",
    "traefik": "the Traefik router is not supported (routers: gatewayAPI, istio, nginx)",
    "apisix": "the APISIX router is not supported (routers: gatewayAPI, istio, nginx)",
    "appMesh": "the App Mesh router is not supported (routers: gatewayAPI, istio, nginx)",
}

_CANARY = "spec.strategy.canary"
_BLUE_GREEN = "spec.strategy.blueGreen"
_TR = f"{_CANARY}.trafficRouting"
_STEP = f"{_CANARY}.steps[]"
_NOT_REVISION = "a knob of Argo Rollouts' own scale-down bookkeeping; this project keeps no such limit"

ARGO_ROLLOUT: list[Rule] = [
    *metadata_rules(),
    copy("spec.replicas"),
    copy("spec.selector"),
    copy("spec.template"),
    copy("spec.workloadRef.apiVersion"),
    copy("spec.workloadRef.kind"),
    copy("spec.workloadRef.name"),
    copy("spec.workloadRef.scaleDown"),
    copy("spec.minReadySeconds"),
    copy("spec.revisionHistoryLimit"),
    copy("spec.paused"),
    copy("spec.progressDeadlineSeconds"),
    copy("spec.progressDeadlineAbort"),
    copy("spec.rollbackWindow.revisions"),
    drop("spec.restartAt", "a one-time request, not a setting: use `rollout restart NAME`"),
    drop("spec.analysis.successfulRunHistoryLimit", "analysis runs are kept as this project decides"),
    drop("spec.analysis.unsuccessfulRunHistoryLimit", "analysis runs are kept as this project decides"),
    # Canary.
    copy(f"{_CANARY}.stableService"),
    copy(f"{_CANARY}.canaryService"),
    copy(f"{_CANARY}.maxSurge"),
    copy(f"{_CANARY}.maxUnavailable"),
    copy(f"{_CANARY}.scaleDownDelaySeconds"),
    copy(f"{_CANARY}.abortScaleDownDelaySeconds"),
    drop(f"{_CANARY}.scaleDownDelayRevisionLimit", _NOT_REVISION),
    copy(f"{_CANARY}.dynamicStableScale"),
    copy(f"{_CANARY}.minPodsPerReplicaSet"),
    copy(f"{_CANARY}.canaryMetadata"),
    copy(f"{_CANARY}.stableMetadata"),
    copy(f"{_CANARY}.antiAffinity"),
    drop(f"{_CANARY}.pingPong", "ping-pong Services are not supported: use stableService and canaryService"),
    drop(
        f"{_CANARY}.replicaProgressThreshold",
        "a step waits for all the canary's pods to be available",
    ),
    *_analysis_rules(f"{_CANARY}.analysis"),
    copy(f"{_STEP}.setWeight"),
    copy(f"{_STEP}.pause"),
    copy(f"{_STEP}.setCanaryScale"),
    copy(f"{_STEP}.setHeaderRoute.name"),
    copy(f"{_STEP}.setHeaderRoute.match[].headerName", f"{_STEP}.setHeaderRoute.match[].header"),
    copy(f"{_STEP}.setHeaderRoute.match[].headerValue.exact", f"{_STEP}.setHeaderRoute.match[].exact"),
    copy(f"{_STEP}.setHeaderRoute.match[].headerValue.regex", f"{_STEP}.setHeaderRoute.match[].regex"),
    copy(f"{_STEP}.setHeaderRoute.match[].headerValue.prefix", f"{_STEP}.setHeaderRoute.match[].prefix"),
    copy(f"{_STEP}.setMirrorRoute.name"),
    copy(f"{_STEP}.setMirrorRoute.percentage", f"{_STEP}.setMirrorRoute.percent"),
    drop(
        f"{_STEP}.setMirrorRoute.match",
        "a mirror route here copies a share of all the route's requests; a request match is not supported",
    ),
    *_analysis_rules(f"{_STEP}.analysis"),
    drop(
        f"{_STEP}.experiment",
        "Experiments are not supported; the step is left out and the steps after it move up",
    ),
    drop(f"{_STEP}.plugin", "step plugins are not supported; the step is left out"),
    # Traffic routing.
    copy(f"{_TR}.istio.virtualService.name"),
    copy(f"{_TR}.istio.virtualService.routes"),
    copy(f"{_TR}.istio.virtualService.tcpRoutes[].port", f"{_TR}.istio.virtualService.tcpRoutes[]"),
    drop(
        f"{_TR}.istio.virtualService.tlsRoutes",
        "TLS routes of a VirtualService are not supported (http and tcp routes are)",
    ),
    custom(
        f"{_TR}.istio.virtualServices",
        f"{_TR}.istio.virtualService",
        "one VirtualService is supported: a list of one becomes virtualService; more is not carried over",
    ),
    copy(f"{_TR}.istio.destinationRule.name"),
    copy(f"{_TR}.istio.destinationRule.stableSubsetName", f"{_TR}.istio.destinationRule.stableSubset"),
    copy(f"{_TR}.istio.destinationRule.canarySubsetName", f"{_TR}.istio.destinationRule.canarySubset"),
    copy(f"{_TR}.nginx.stableIngress"),
    custom(
        f"{_TR}.nginx.stableIngresses",
        f"{_TR}.nginx.stableIngress",
        "one stable Ingress is supported: a list of one becomes stableIngress; more is not carried over",
    ),
    drop(f"{_TR}.nginx.annotationPrefix", "the canary Ingress uses ingress-nginx's own prefix"),
    drop(
        f"{_TR}.nginx.additionalIngressAnnotations",
        "the canary Ingress carries only the annotations this project writes",
    ),
    drop(
        f"{_TR}.nginx.canaryIngressAnnotations",
        "the canary Ingress carries only the annotations this project writes",
    ),
    custom(
        f"{_TR}.plugins.argoproj-labs/gatewayAPI.httpRoute",
        f"{_TR}.gatewayAPI.httpRoutes[].name",
        "the Gateway API plugin's route becomes a built-in gatewayAPI route",
    ),
    custom(
        f"{_TR}.plugins.argoproj-labs/gatewayAPI.httpRoutes[].name", f"{_TR}.gatewayAPI.httpRoutes[].name"
    ),
    drop(
        f"{_TR}.plugins.argoproj-labs/gatewayAPI.httpRoutes[].useHeaderRoutes",
        "header routes are added to every route named here",
    ),
    custom(f"{_TR}.plugins.argoproj-labs/gatewayAPI.grpcRoute", f"{_TR}.gatewayAPI.grpcRoutes[].name"),
    custom(f"{_TR}.plugins.argoproj-labs/gatewayAPI.tcpRoute", f"{_TR}.gatewayAPI.tcpRoutes[].name"),
    drop(
        f"{_TR}.plugins.argoproj-labs/gatewayAPI.namespace",
        "routes are read in the Rollout's namespace",
    ),
    drop(f"{_TR}.plugins.argoproj-labs/gatewayAPI.configMap", "no ConfigMap is kept for routes"),
    drop(f"{_TR}.plugins.*", "traffic router plugins are not supported, apart from argoproj-labs/gatewayAPI"),
    *(drop(f"{_TR}.{router}", why) for router, why in ARGO_ROUTERS_UNSUPPORTED.items()),
    drop(
        f"{_TR}.managedRoutes",
        "header and mirror routes need no list of their names here: setHeaderRoute and "
        "setMirrorRoute name them",
    ),
    drop(f"{_TR}.maxTrafficWeight", "weights are percentages (0-100)"),
    # Blue/green.
    copy(f"{_BLUE_GREEN}.activeService"),
    copy(f"{_BLUE_GREEN}.previewService"),
    copy(f"{_BLUE_GREEN}.previewReplicaCount"),
    copy(f"{_BLUE_GREEN}.autoPromotionEnabled"),
    copy(f"{_BLUE_GREEN}.autoPromotionSeconds"),
    copy(f"{_BLUE_GREEN}.scaleDownDelaySeconds"),
    copy(f"{_BLUE_GREEN}.abortScaleDownDelaySeconds"),
    drop(f"{_BLUE_GREEN}.scaleDownDelayRevisionLimit", _NOT_REVISION),
    drop(f"{_BLUE_GREEN}.maxUnavailable", "the preview revision is brought up in full before the switch"),
    copy(f"{_BLUE_GREEN}.activeMetadata"),
    copy(f"{_BLUE_GREEN}.previewMetadata"),
    copy(f"{_BLUE_GREEN}.antiAffinity"),
    *_analysis_rules(f"{_BLUE_GREEN}.prePromotionAnalysis"),
    *_analysis_rules(f"{_BLUE_GREEN}.postPromotionAnalysis"),
]

_M = "spec.metrics[]"
_P = f"{_M}.provider"
# Argo Rollouts' providers this project has no counterpart for.
ARGO_PROVIDERS_UNSUPPORTED = ("wavefront", "skywalking", "plugin")
# This project's providers with no Argo Rollouts counterpart to convert from.
OWN_PROVIDERS = ("compare",)


def _not_yet(name: str) -> Rule:
    return drop(
        f"{_P}.{name}",
        f"provider {name} is not supported yet ({SUPPORTED_PROVIDERS}); the metric is left out",
    )


def _vendor_rules() -> list[Rule]:
    """Argo Rollouts' datadog, newRelic, graphite, cloudWatch, influxdb and job providers, for those
    the API declares (rollout/api/templates.py KNOWN_PROVIDERS); the others are not supported yet.
    Argo reads their credentials from Secrets by fixed names and keys; here a provider names its
    Secret keys, in the Rollout's namespace (argo.py writes those references)."""
    dd, nr, gr, cw = f"{_P}.datadog", f"{_P}.newRelic", f"{_P}.graphite", f"{_P}.cloudWatch"
    secret_name = "in the Rollout's namespace"
    by_provider: dict[str, list[Rule]] = {
        "datadog": [
            copy(f"{dd}.apiVersion"),
            copy(f"{dd}.query"),
            copy(f"{dd}.queries"),
            copy(f"{dd}.formula"),
            copy(f"{dd}.aggregator"),
            copy(f"{dd}.interval", f"{dd}.window"),
            copy(f"{dd}.requestTimeout", f"{dd}.timeout"),
            custom(
                f"{dd}.secretRef.name",
                f"{dd}.apiKeySecretRef, {dd}.appKeySecretRef",
                "keys api-key and app-key of that Secret (default `datadog`) " + secret_name,
            ),
            drop(f"{dd}.secretRef.namespaced", f"the Secret is read {secret_name}"),
        ],
        "newRelic": [
            copy(f"{nr}.query"),
            copy(f"{nr}.timeout", note="seconds"),
            custom(
                f"{nr}.profile",
                f"{nr}.accountIdSecretRef, {nr}.userKeySecretRef",
                "keys account-id and personal-api-key of the profile's Secret (default `newrelic`) "
                + secret_name
                + "; the region is not read from it: set provider.newRelic.region for eu",
            ),
        ],
        "graphite": [copy(f"{gr}.address"), copy(f"{gr}.query", f"{gr}.target")],
        # The same shape; a JobSpec with ttlSecondsAfterFinished or suspend is refused by lint.
        "job": [copy(f"{_P}.job.metadata"), copy(f"{_P}.job.spec")],
        "cloudWatch": [copy(f"{cw}.interval"), copy(f"{cw}.metricDataQueries")],
        "influxdb": [
            drop(
                f"{_P}.influxdb",
                "Argo Rollouts reads its address, organization and token from the profile's Secret: "
                "write them into provider.influxdb (address, language: flux, org, tokenSecretRef); "
                "the metric is left out",
            )
        ],
    }
    rules: list[Rule] = [
        drop(
            f"{_P}.kayenta",
            "Kayenta is a service of its own; the canary judge (provider.compare) compares the "
            "canary with stable in the controller: write the metric with it",
        )
    ]
    for name, mapped in by_provider.items():
        rules += mapped if name in KNOWN_PROVIDERS else [_not_yet(name)]
    return rules + [_not_yet(name) for name in ARGO_PROVIDERS_UNSUPPORTED]


# AnalysisTemplate, ClusterAnalysisTemplate, and the template part of an AnalysisRun.
ARGO_TEMPLATE: list[Rule] = [
    *metadata_rules(),
    copy("spec.args[].name"),
    copy("spec.args[].value"),
    drop(
        "spec.args[].valueFrom",
        "template arguments from a Secret or a field are not supported: read a Secret with "
        "headers[].valueFrom.secretKeyRef, or give the value in the Rollout",
    ),
    copy("spec.dryRun"),
    copy("spec.measurementRetention"),
    drop("spec.terminate", "an AnalysisRun's state, not part of its template"),
    copy(f"{_M}.name"),
    copy(f"{_M}.interval"),
    copy(f"{_M}.initialDelay"),
    copy(f"{_M}.count"),
    custom(
        f"{_M}.successCondition",
        f"{_M}.successCondition",
        "kept as written when it reads in this project's condition language (`result[0] >= 0.95`, "
        "`len(result) > 0`); otherwise the metric is left out",
    ),
    custom(f"{_M}.failureCondition", f"{_M}.failureCondition", "as successCondition"),
    copy(f"{_M}.failureLimit"),
    copy(f"{_M}.inconclusiveLimit"),
    copy(f"{_M}.consecutiveErrorLimit"),
    drop(f"{_M}.consecutiveSuccessLimit", "a metric passes on its measurements, not on a run of successes"),
    copy(f"{_P}.prometheus.address"),
    copy(f"{_P}.prometheus.query"),
    copy(f"{_P}.prometheus.timeout", note="seconds, as Argo Rollouts gives them"),
    copy(f"{_P}.prometheus.insecure"),
    copy(f"{_P}.prometheus.headers[].key"),
    copy(f"{_P}.prometheus.headers[].value"),
    drop(f"{_P}.prometheus.authentication", "SigV4 and OAuth2 are not supported: use a header"),
    drop(f"{_P}.prometheus.rangeQuery", "instant queries only"),
    copy(f"{_P}.web.url"),
    custom(
        f"{_P}.web.method", f"{_P}.web.method", "GET and POST; PUT is not supported (the metric is left out)"
    ),
    copy(f"{_P}.web.headers[].key"),
    copy(f"{_P}.web.headers[].value"),
    copy(f"{_P}.web.body"),
    custom(f"{_P}.web.jsonBody", f"{_P}.web.body", "the object written as JSON text"),
    copy(f"{_P}.web.timeoutSeconds", f"{_P}.web.timeout"),
    custom(f"{_P}.web.jsonPath", f"{_P}.web.jsonPath", "`{$.a.b}` becomes the JSONPath `$.a.b`"),
    copy(f"{_P}.web.insecure"),
    *_vendor_rules(),
]

_FA = "spec.analysis"
_FS = "spec.service"
_FW = f"{_FA}.webhooks[]"
_FLAGGER_GENERATED = (
    "Flagger generates its Services and route from this; the Rollout uses Services and a route that exist"
)
FLAGGER_ROUTERS = {
    "istio": "trafficRouting.istio.virtualService (named spec.service.name)",
    "gatewayapi": "trafficRouting.gatewayAPI.httpRoutes (named spec.service.name)",
    "nginx": "trafficRouting.nginx.stableIngress (spec.ingressRef.name)",
    "kubernetes": "no trafficRouting: blue/green switches the Service selectors",
}

FLAGGER_CANARY: list[Rule] = [
    *metadata_rules(),
    custom(
        "spec.targetRef.name",
        "spec.workloadRef.name",
        "the Rollout takes the Deployment's pod template; Flagger's `<name>-primary` Deployment "
        "is not used (delete it once the Rollout is Healthy)",
    ),
    custom("spec.targetRef.kind", "spec.workloadRef.kind", "Deployment only: a DaemonSet is refused"),
    custom("spec.targetRef.apiVersion", "spec.workloadRef.apiVersion"),
    custom(
        "spec.provider",
        "spec.strategy.*.trafficRouting",
        "istio, gatewayapi (any version suffix) and nginx become trafficRouting; kubernetes needs "
        "none; any other router is not carried over (the canary then splits by pod counts). "
        "Missing: Flagger's --mesh-provider decided; `rollout convert --flagger-provider` (default istio)",
    ),
    custom(
        "spec.service.name",
        "stableService/canaryService, activeService/previewService",
        "`<name>-primary` and `<name>-canary`, the Services Flagger generated (blue/green without a "
        "router: `<name>` is the active Service)",
    ),
    *(
        drop(f"{_FS}.{field}", _FLAGGER_GENERATED)
        for field in (
            "port",
            "portName",
            "targetPort",
            "portDiscovery",
            "appProtocol",
            "gateways",
            "gatewayRefs",
            "hosts",
            "trafficPolicy",
            "match",
            "retries",
            "headers",
            "corsPolicy",
            "rewrite",
            "timeout",
            "primary",
            "canary",
            "apex",
            "backends",
            "delegation",
            "mirror",
            "meshName",
        )
    ),
    custom("spec.ingressRef.name", f"{_TR}.nginx.stableIngress"),
    drop("spec.ingressRef.apiVersion", "an Ingress of networking.k8s.io/v1"),
    drop("spec.ingressRef.kind", "an Ingress"),
    drop("spec.routeRef", "Flagger's Knative route reference; Knative is not supported"),
    drop("spec.upstreamRef", "Flagger's Gloo upstream; Gloo is not supported"),
    drop(
        "spec.autoscalerRef",
        "point the HorizontalPodAutoscaler at the Rollout (its scale subresource) instead",
    ),
    copy("spec.progressDeadlineSeconds"),
    copy("spec.suspend", "spec.paused", "both hold the rollout where it is"),
    drop(
        "spec.skipAnalysis",
        "every update here runs its steps and analysis; `rollout promote --full` skips them",
    ),
    drop("spec.revertOnDeletion", "deleting a Rollout leaves its pods; nothing is reverted"),
    custom(f"{_FA}.interval", "pause durations, metric intervals", "the time between Flagger's checks"),
    custom(
        f"{_FA}.threshold", "metrics[].failureLimit", "threshold - 1 per metric (Flagger counts across all)"
    ),
    custom(
        f"{_FA}.stepWeight", "spec.strategy.canary.steps", "setWeight steps of stepWeight up to maxWeight"
    ),
    custom(f"{_FA}.maxWeight", "spec.strategy.canary.steps", "the last setWeight"),
    custom(f"{_FA}.stepWeights", "spec.strategy.canary.steps", "one setWeight step each"),
    custom(
        f"{_FA}.iterations",
        "blueGreen prePromotionAnalysis count, or the A/B step's pause",
        "without weights: blue/green (analysis `iterations` times, then the switch), or A/B with `match`",
    ),
    custom(
        f"{_FA}.match[].headers.*",
        f"{_CANARY}.steps[].setHeaderRoute",
        "each match becomes a setHeaderRoute step (exact, prefix, regex)",
    ),
    drop(f"{_FA}.match[].sourceLabels", "header routes match headers only"),
    drop(f"{_FA}.match[].uri", "header routes match headers only"),
    drop(f"{_FA}.match[].method", "header routes match headers only"),
    drop(f"{_FA}.match[].queryParams", "header routes match headers only"),
    drop(f"{_FA}.match[].ignoreUriCase", "header routes match headers only"),
    drop(f"{_FA}.stepWeightPromotion", "promotion sends all traffic to the new revision at once"),
    drop(f"{_FA}.primaryReadyThreshold", "a step waits for all pods of the revision to be available"),
    drop(f"{_FA}.canaryReadyThreshold", "a step waits for all pods of the revision to be available"),
    drop(f"{_FA}.mirror", "mirroring is a setMirrorRoute step here; Flagger's mirror phase has no step"),
    drop(
        f"{_FA}.mirrorWeight", "mirroring is a setMirrorRoute step here; Flagger's mirror phase has no step"
    ),
    drop(
        f"{_FA}.sessionAffinity", "session affinity (a cookie pinning users to the canary) is not supported"
    ),
    drop(f"{_FA}.alerts", "alerts go to spec.notifications webhooks, whose URL is read from a Secret"),
    custom(
        f"{_FA}.metrics[].name",
        "AnalysisTemplate `<canary>-analysis` metric",
        "request-success-rate and request-duration become the Prometheus queries Flagger runs for "
        "istio, gatewayapi, kubernetes and nginx; other names need templateRef or query",
    ),
    custom(f"{_FA}.metrics[].thresholdRange.min", "successCondition `result[0] >= min`"),
    custom(f"{_FA}.metrics[].thresholdRange.max", "successCondition `result[0] <= max`"),
    custom(
        f"{_FA}.metrics[].threshold",
        "successCondition",
        "Flagger's older single threshold: a minimum for request-success-rate, else a maximum",
    ),
    custom(f"{_FA}.metrics[].interval", "the query's range `[interval]` (default 1m)"),
    custom(f"{_FA}.metrics[].query", "provider.prometheus.query", "placeholders as in templateRef"),
    custom(
        f"{_FA}.metrics[].templateRef.name",
        "provider.prometheus (from the MetricTemplate)",
        "the MetricTemplate must be among the files converted",
    ),
    custom(f"{_FA}.metrics[].templateRef.namespace", "(where the MetricTemplate is looked up)"),
    custom(f"{_FA}.metrics[].templateVariables", "(filled into the query)"),
    custom(
        f"{_FW}.type",
        "pause steps, autoPromotionEnabled",
        "confirm-rollout: a first `pause: {}`; confirm-promotion: a last `pause: {}` (blue/green: "
        "autoPromotionEnabled: false); the gate is `rollout promote`, not the webhook",
    ),
    custom(f"{_FW}.name", "(named in messages)"),
    custom(f"{_FW}.url", "(not called; see type)"),
    custom(f"{_FW}.timeout", "(not called; see type)"),
    custom(f"{_FW}.metadata", "(not called; see type)"),
    custom(f"{_FW}.muteAlert", "(not called; see type)"),
    custom(f"{_FW}.retries", "(not called; see type)"),
]

# Why a webhook of a type other than the confirm gates is not carried over.
FLAGGER_WEBHOOKS_UNSUPPORTED = {
    "pre-rollout": (
        "a web metric here reads a JSON answer, and Flagger's hooks (the load tester) answer plain "
        "text: run the check as a web metric against a JSON endpoint"
    ),
    "rollout": (
        "a web metric here reads a JSON answer, and Flagger's hooks (the load tester) answer plain "
        "text: generate load outside the Rollout"
    ),
    "confirm-traffic-increase": "weights increase on the steps' timers; add `pause: {}` steps to gate them",
    "post-rollout": "use spec.notifications (trigger Completed)",
    "rollback": "use `rollout abort NAME`",
    "event": "use spec.notifications",
}

_MT = "spec.provider"
FLAGGER_METRIC_TEMPLATE: list[Rule] = [
    *metadata_rules(),
    custom("spec.query", "metrics[].provider.prometheus.query", "of each Canary that names it"),
    custom(
        _MT + ".type",
        "metrics[].provider.prometheus",
        "prometheus; datadog, cloudwatch, newrelic, graphite and influxdb templates are named, to be "
        "written with this project's provider of that name (their Secrets differ)",
    ),
    custom(_MT + ".address", "metrics[].provider.prometheus.address"),
    custom(_MT + ".insecureSkipVerify", "metrics[].provider.prometheus.insecure"),
    drop(_MT + ".secretRef", "give credentials as headers[].valueFrom.secretKeyRef of the template"),
    drop(_MT + ".region", "a cloud provider's region: write it in provider.cloudWatch.region"),
]

TABLES: list[tuple[str, str, list[Rule]]] = [
    ("Argo Rollouts Rollout", "Rollout", ARGO_ROLLOUT),
    (
        "Argo Rollouts AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun",
        "AnalysisTemplate",
        ARGO_TEMPLATE,
    ),
    ("Flagger Canary", "Rollout and AnalysisTemplate", FLAGGER_CANARY),
    ("Flagger MetricTemplate", "AnalysisTemplate metrics", FLAGGER_METRIC_TEMPLATE),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def migration_table_markdown() -> str:
    """The mapping as Markdown: one table per source kind, one row per rule."""
    lines = [
        "# Migration table",
        "",
        "Generated from rollout/convert/mapping.py by `python -m rollout.convert`; "
        "`rollout convert` follows these rules and names every field it does not carry over.",
        "`[]` stands for any list index, `*` for any map key.",
    ]
    for title, kind, rules in TABLES:
        lines += ["", f"## {title}", "", f"| Source field | {kind} field | Notes |", "|---|---|---|"]
        for rule in rules:
            target = f"`{rule.target}`" if rule.how == "copy" else (rule.target or "—")
            note = rule.note if rule.how != "drop" else f"not carried over: {rule.note}"
            lines.append(f"| `{_cell(rule.source)}` | {_cell(target)} | {_cell(note)} |")
    lines += [
        "",
        "## Flagger webhooks by type",
        "",
        "| Type | Carried over as |",
        "|---|---|",
        "| `confirm-rollout` | a first `pause: {}` step (canary) |",
        "| `confirm-promotion` | a last `pause: {}` step (canary), "
        "`autoPromotionEnabled: false` (blue/green) |",
        *(
            f"| `{kind}` | not carried over: {_cell(why)} |"
            for kind, why in FLAGGER_WEBHOOKS_UNSUPPORTED.items()
        ),
    ]
    return "\n".join(lines) + "\n"
