"""Flagger (`flagger.app/v1beta1`) to this project: a Canary becomes a Rollout with a workloadRef
to its target Deployment, and its metrics an AnalysisTemplate `<canary>-analysis`.

Flagger's analysis modes become strategies: weights (stepWeight up to maxWeight, or stepWeights)
a canary of setWeight and pause steps; `iterations` with `match` an A/B canary of header routes;
`iterations` alone blue/green, analysed before the switch. Flagger checks its metrics every
`interval` and rolls back after `threshold` failed checks: here each metric is measured every
`interval` and fails after `threshold` failures. The Services are those Flagger generated
(`<service>-primary`, `<service>-canary`); the route is the one it generated (named after the
Service) or the Ingress it was given. A MetricTemplate is read where a Canary names it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from rollout.api.base import parse_duration
from rollout.api.templates import KNOWN_PROVIDERS
from rollout.convert.mapping import (
    FLAGGER_CANARY,
    FLAGGER_METRIC_TEMPLATE,
    FLAGGER_WEBHOOKS_UNSUPPORTED,
    SUPPORTED_PROVIDERS,
)
from rollout.convert.result import Conversion, dig, name_from_prefix, name_of, new_object
from rollout.convert.walk import Dropped, walk

# Flagger's MetricTemplate provider types that this project has a provider for, by its name here.
FLAGGER_TYPES = {
    "datadog": "datadog",
    "cloudwatch": "cloudWatch",
    "newrelic": "newRelic",
    "graphite": "graphite",
    "influxdb": "influxdb",
}

DEFAULT_INTERVAL = "1m"  # Flagger's default for analysis.interval and a metric's range
DEFAULT_PROVIDER = "istio"  # Flagger's default --mesh-provider
BUILTIN_METRICS = ("request-success-rate", "request-duration")
SUPPORTED_ROUTERS = ("istio", "gatewayapi", "nginx", "kubernetes")

# Flagger's built-in metrics, measured on the canary only: its Service's requests (istio), its
# pods by name (`<rollout>-<canary-hash>-...`, gatewayapi and kubernetes, which Flagger reads
# from the application's own http_request_duration_seconds), the canary's upstream of the
# Ingress (nginx). The facts (metric and label names, units) are those Flagger documents;
# request-duration is in milliseconds like Flagger's thresholds.
_ISTIO_SELECTOR = (
    'reporter="destination", destination_service_namespace="{{args.namespace}}", '
    'destination_service_name="{{args.canary-service}}"'
)
_POD_SELECTOR = (
    'kubernetes_namespace="{{args.namespace}}", '
    'kubernetes_pod_name=~"{{args.rollout}}-{{args.canary-hash}}-[0-9a-zA-Z]+"'
)
_NGINX_SELECTOR = 'namespace="{{args.namespace}}", ingress="INGRESS", canary!=""'
BUILTIN_QUERIES: dict[str, dict[str, str]] = {
    "istio": {
        "request-success-rate": (
            f'sum(rate(istio_requests_total{{{_ISTIO_SELECTOR}, response_code!~"5.*"}}[WINDOW])) / '
            f"sum(rate(istio_requests_total{{{_ISTIO_SELECTOR}}}[WINDOW])) * 100"
        ),
        "request-duration": (
            f"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket"
            f"{{{_ISTIO_SELECTOR}}}[WINDOW])) by (le))"
        ),
    },
    "http": {
        "request-success-rate": (
            f'sum(rate(http_request_duration_seconds_count{{{_POD_SELECTOR}, status!~"5.*"}}[WINDOW])) / '
            f"sum(rate(http_request_duration_seconds_count{{{_POD_SELECTOR}}}[WINDOW])) * 100"
        ),
        "request-duration": (
            f"histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket"
            f"{{{_POD_SELECTOR}}}[WINDOW])) by (le)) * 1000"
        ),
    },
    "nginx": {
        "request-success-rate": (
            f'sum(rate(nginx_ingress_controller_requests{{{_NGINX_SELECTOR}, status!~"5.*"}}[WINDOW])) / '
            f"sum(rate(nginx_ingress_controller_requests{{{_NGINX_SELECTOR}}}[WINDOW])) * 100"
        ),
        "request-duration": (
            f"sum(rate(nginx_ingress_controller_ingress_upstream_latency_seconds_sum"
            f"{{{_NGINX_SELECTOR}}}[WINDOW])) / sum(rate("
            f"nginx_ingress_controller_ingress_upstream_latency_seconds_count"
            f"{{{_NGINX_SELECTOR}}}[WINDOW])) * 1000"
        ),
    },
}
_QUERY_FAMILY = {"istio": "istio", "gatewayapi": "http", "kubernetes": "http", "nginx": "nginx"}
_PLACEHOLDER = re.compile(r"\{\{\s*(variables\.)?([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")

MetricTemplates = dict[tuple[str, str], dict[str, Any]]  # (namespace, name) -> MetricTemplate


def router_of(provider: str) -> str:
    """`gatewayapi:v1beta1` is gatewayapi; an App Mesh or Gloo variant is named as it is."""
    return "gatewayapi" if provider.startswith("gatewayapi") else provider


def _weights(analysis: dict[str, Any]) -> list[int]:
    """The canary weights Flagger steps through: stepWeights, or stepWeight up to maxWeight."""
    if analysis.get("stepWeights"):
        return [int(w) for w in analysis["stepWeights"]]
    step = int(analysis.get("stepWeight") or 0)
    if step <= 0:
        return []
    top = int(analysis.get("maxWeight") or 100)
    weights, weight = [], 0
    while weight < top:
        weight = min(weight + step, top)
        weights.append(weight)
    return weights


class _Canary:
    """One Canary's conversion, its parts kept together while the steps are built."""

    def __init__(
        self, doc: dict[str, Any], templates: MetricTemplates, deployments: dict[str, Any], provider: str
    ) -> None:
        self.doc = copy.deepcopy(doc)
        spec = self.doc.setdefault("spec", {})
        if "canaryAnalysis" in spec and "analysis" not in spec:  # Flagger's older name
            spec["analysis"] = spec.pop("canaryAnalysis")
        self.spec: dict[str, Any] = spec
        self.analysis: dict[str, Any] = spec.get("analysis") or {}
        self.name = name_of(doc)
        self.namespace = str(dig(doc, "metadata", "namespace") or "default")
        self.result = Conversion("Canary", self.name)
        self.templates = templates
        self.deployments = deployments
        self.provider = str(spec.get("provider") or provider)
        self.router = router_of(self.provider)
        self.service = str(dig(spec, "service", "name") or dig(spec, "targetRef", "name") or self.name)
        self.interval = str(self.analysis.get("interval") or DEFAULT_INTERVAL)

    def drop(self, path: str, why: str) -> None:
        self.result.dropped.append(Dropped(path, why))

    def routing(self) -> dict[str, Any] | None:
        if self.router != "nginx" and dig(self.spec, "ingressRef", "name"):
            self.drop(
                "spec.ingressRef.name", f"an Ingress is routed through with nginx only, not {self.provider}"
            )
        if self.router == "istio":
            return {"istio": {"virtualService": {"name": self.service}}}
        if self.router == "gatewayapi":
            return {"gatewayAPI": {"httpRoutes": [{"name": self.service}]}}
        if self.router == "nginx":
            ingress = dig(self.spec, "ingressRef", "name")
            if ingress:
                return {"nginx": {"stableIngress": str(ingress)}}
            self.drop("spec.provider", "nginx without spec.ingressRef.name: no Ingress to route through")
        elif self.router != "kubernetes":
            self.drop(
                "spec.provider",
                f"the {self.provider} router is not supported (routers: istio, gatewayapi, nginx); "
                "without one the canary's share is its share of the pods",
            )
        return None

    def query(self, index: int, metric: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        """The Prometheus provider and query of a metric, or None (said why)."""
        path = f"spec.analysis.metrics[{index}]"
        name = str(metric.get("name"))
        provider: dict[str, Any] = {}
        ref = metric.get("templateRef")
        if isinstance(ref, dict):
            key = (str(ref.get("namespace") or self.namespace), str(ref.get("name")))
            template = self.templates.get(key)
            if template is None:
                self.drop(
                    f"{path}.templateRef",
                    f"MetricTemplate {key[0]}/{key[1]} is not among the files converted",
                )
                return None
            kind = str(dig(template, "spec", "provider", "type") or "prometheus")
            if kind != "prometheus":
                own = FLAGGER_TYPES.get(kind)
                why = (
                    f"a {kind} MetricTemplate is not converted (Flagger reads its credentials from "
                    f"a Secret of its own shape): write the metric with provider.{own} in an "
                    "AnalysisTemplate"
                    if own in KNOWN_PROVIDERS
                    else f"provider {kind} is not supported ({SUPPORTED_PROVIDERS})"
                )
                self.drop(f"{path}.templateRef", why)
                return None
            if dig(template, "spec", "provider", "address"):
                provider["address"] = str(template["spec"]["provider"]["address"])
            if dig(template, "spec", "provider", "insecureSkipVerify"):
                provider["insecure"] = True
            text = str(dig(template, "spec", "query") or "")
        elif metric.get("query"):
            text = str(metric["query"])
        elif name in BUILTIN_METRICS and self.router in _QUERY_FAMILY:
            text = BUILTIN_QUERIES[_QUERY_FAMILY[self.router]][name]
            text = text.replace("INGRESS", str(dig(self.spec, "ingressRef", "name") or ""))
        else:
            self.drop(path, f"built-in metric {name} has no query for the {self.provider} router here")
            return None
        window = str(metric.get("interval") or DEFAULT_INTERVAL)
        filled = self.fill(text.replace("[WINDOW]", f"[{window}]"), window, metric, path)
        return (provider, filled) if filled else None

    def fill(self, text: str, window: str, metric: dict[str, Any], path: str) -> str | None:
        """Flagger's query placeholders as values or this project's built-in arguments."""
        values = {
            "namespace": "{{args.namespace}}",
            "target": "{{args.rollout}}",
            "name": self.name,
            "service": self.service,
            "ingress": str(dig(self.spec, "ingressRef", "name") or ""),
            "route": self.service,
            "interval": window,
        }
        variables = metric.get("templateVariables") or {}
        missing: list[str] = []

        def one(match: re.Match[str]) -> str:
            source = variables if match.group(1) else values
            if match.group(2) not in source:
                missing.append(match.group(0))
                return match.group(0)
            return str(source[match.group(2)])

        filled = _PLACEHOLDER.sub(one, text)
        if missing or "{{" in filled.replace("{{args.", ""):
            self.drop(
                path, f"query placeholders not known here: {', '.join(missing) or 'a Go template action'}"
            )
            return None
        return filled.strip()

    def metrics(self, count: int | None) -> list[dict[str, Any]]:
        """The Canary's metrics as this project's, measured every `interval`; `count` times
        (blue/green's pre-promotion analysis) or until the steps end (None)."""
        threshold = int(self.analysis.get("threshold") or 1)
        out = []
        for index, metric in enumerate(self.analysis.get("metrics") or []):
            low, high = dig(metric, "thresholdRange", "min"), dig(metric, "thresholdRange", "max")
            if low is None and high is None and metric.get("threshold") is not None:  # Flagger's older form
                if metric.get("name") == "request-success-rate":
                    low = metric["threshold"]
                else:
                    high = metric["threshold"]
            if low is None and high is None:
                self.drop(f"spec.analysis.metrics[{index}]", "no thresholdRange: nothing to gate on")
                continue
            found = self.query(index, metric)
            if found is None:
                continue
            provider, text = found
            bounds = [f"result[0] >= {low}"] if low is not None else []
            bounds += [f"result[0] <= {high}"] if high is not None else []
            converted: dict[str, Any] = {
                "name": str(metric.get("name")),
                "interval": self.interval,
                "successCondition": " and ".join(bounds),
                "failureLimit": max(0, threshold - 1),
                "provider": {"prometheus": {**provider, "query": text}},
            }
            if count is not None:
                converted["count"] = count
            out.append(converted)
        return out

    def gates(self) -> set[str]:
        """The confirm webhooks carried over as gates; the other webhooks named as dropped."""
        found = set()
        for index, hook in enumerate(self.analysis.get("webhooks") or []):
            kind = str(hook.get("type") or "rollout")
            if kind in ("confirm-rollout", "confirm-promotion"):
                found.add(kind)
            else:
                why = FLAGGER_WEBHOOKS_UNSUPPORTED.get(
                    kind, f"webhook type {kind} is not known to the converter"
                )
                self.drop(f"spec.analysis.webhooks[{index}]", f"{kind} webhook {hook.get('name')}: {why}")
        return found


def _template(name: str, namespace: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    template = new_object("AnalysisTemplate")
    template["metadata"] = {"name": name, "namespace": namespace}
    template["spec"] = {"metrics": metrics}
    return template


def convert_canary(
    doc: dict[str, Any],
    templates: MetricTemplates,
    deployments: dict[str, Any],
    provider: str = DEFAULT_PROVIDER,
) -> Conversion:
    """A Canary as a Rollout (and its AnalysisTemplate); `templates` are the MetricTemplates and
    `deployments` the Deployments of the same conversion, by (namespace, name) and name;
    `provider` is Flagger's --mesh-provider, for a Canary that names none."""
    c = _Canary(doc, templates, deployments, provider)
    result = c.result
    if not c.spec.get("provider"):
        result.notes.append(
            f"spec.provider is not set: Flagger's --mesh-provider decides; taken as {provider} "
            "(`rollout convert --flagger-provider` says otherwise)"
        )
    target = c.spec.get("targetRef") or {}
    if target.get("kind", "Deployment") != "Deployment" or not target.get("name"):
        result.refused = (
            f"spec.targetRef: a {target.get('kind') or 'missing'} target; a Rollout takes its pods from a "
            "Deployment (workloadRef)"
        )
        return result
    rollout = new_object("Rollout")
    result.dropped += walk(c.doc, FLAGGER_CANARY, rollout)
    name_from_prefix(c.doc, rollout)
    spec = rollout["spec"]
    spec["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": str(target["name"])}
    deployment = c.deployments.get(f"{c.namespace}/{target['name']}")
    if deployment is not None and isinstance(dig(deployment, "spec", "replicas"), int):
        spec["replicas"] = deployment["spec"]["replicas"]
    else:
        result.notes.append(
            f"spec.replicas: Flagger takes the count from Deployment {target['name']} (or its "
            "autoscaler), which is not among the files: set it (default 1)"
        )
    routing = c.routing()
    result.notes.append(
        f"the Services named are those Flagger generated and owns (deleting the Canary deletes them): "
        f"keep them, and set their selectors to the pod labels of Deployment {target['name']} "
        "(Flagger's select `<name>-primary` pods, which the Rollout does not run)"
    )
    gates = c.gates()
    weights = _weights(c.analysis)
    iterations = int(c.analysis.get("iterations") or 0)
    matches = c.analysis.get("match") or []
    mode = _mode(c, weights, iterations, matches)
    if mode is None:
        result.refused = (
            "spec.analysis: neither weights (stepWeight, stepWeights) nor iterations: no analysis "
            "mode this project can follow"
        )
        return result
    if mode == "ab" and routing is None:
        result.refused = "A/B testing (analysis.match) needs a traffic router: istio, gatewayapi or nginx"
        return result
    if c.router == "kubernetes" and not iterations:
        iterations = 10  # as Flagger does for this provider
    template_name = f"{c.name}-analysis"
    analysis = {"templates": [{"name": template_name}]}
    if mode == "bluegreen":
        metrics = c.metrics(iterations)
        active = c.service if routing is None else f"{c.service}-primary"
        strategy: dict[str, Any] = {"activeService": active, "previewService": f"{c.service}-canary"}
        if routing is not None:
            strategy["trafficRouting"] = routing
        if metrics:
            strategy["prePromotionAnalysis"] = analysis
        if "confirm-promotion" in gates:
            strategy["autoPromotionEnabled"] = False
        if "confirm-rollout" in gates:
            c.drop("spec.analysis.webhooks", "confirm-rollout: a blue/green update here starts at once")
        spec["strategy"] = {"blueGreen": strategy}
    else:
        metrics = c.metrics(None)
        steps: list[dict[str, Any]] = [{"pause": {}}] if "confirm-rollout" in gates else []
        if mode == "canary":
            for weight in weights:
                steps += [{"setWeight": weight}, {"pause": {"duration": c.interval}}]
        else:
            steps += _header_steps(c, matches)
            seconds = int(parse_duration(c.interval) * iterations)
            steps.append({"pause": {"duration": f"{seconds}s"}})
        if "confirm-promotion" in gates:
            steps.append({"pause": {}})
        stable = f"{c.service}-primary" if c.router != "nginx" else c.service
        strategy = {"stableService": stable, "canaryService": f"{c.service}-canary"}
        if routing is not None:
            strategy["trafficRouting"] = routing
        if metrics:
            strategy["analysis"] = analysis
        strategy["steps"] = steps
        spec["strategy"] = {"canary": strategy}
    result.objects.append(rollout)
    if metrics:
        result.objects.append(_template(template_name, c.namespace, metrics))
    return result


def _mode(c: _Canary, weights: list[int], iterations: int, matches: list[Any]) -> str | None:
    """Flagger's analysis mode, in Flagger's order: the kubernetes provider is always blue/green;
    then `match` with `iterations` is A/B, `iterations` blue/green, weights a canary. What the
    mode does not use is named as not carried over."""
    ignored = "spec.analysis.stepWeight(s)"
    if c.router == "kubernetes":
        if matches:
            c.drop(
                "spec.analysis.match", "the kubernetes provider runs blue/green (Flagger ignores match too)"
            )
        if weights:
            c.drop(ignored, "the kubernetes provider runs blue/green (Flagger ignores weights too)")
        return "bluegreen"
    if matches and iterations:
        mode = "ab"
    elif iterations:
        mode = "bluegreen"
    elif weights:
        mode = "canary"
    else:
        return None
    if weights and mode != "canary":
        c.drop(ignored, "iterations are set: Flagger runs A/B or blue/green and ignores the weights")
    if matches and mode != "ab":
        c.drop("spec.analysis.match", "A/B testing needs iterations: without them Flagger ignores match")
    return mode


def _header_steps(c: _Canary, matches: list[Any]) -> list[dict[str, Any]]:
    """One setHeaderRoute step per Flagger match (its headers all must match)."""
    steps = []
    for index, match in enumerate(matches):
        headers = match.get("headers") if isinstance(match, dict) else None
        found = []
        for header, value in (headers or {}).items():
            kinds = [k for k in ("exact", "prefix", "regex") if isinstance(value, dict) and k in value]
            if len(kinds) == 1:
                found.append({"header": str(header), kinds[0]: str(value[kinds[0]])})
            else:
                c.drop(
                    f"spec.analysis.match[{index}].headers.{header}",
                    "one of exact, prefix or regex is supported",
                )
        if found:
            steps.append({"setHeaderRoute": {"name": f"{c.name}-ab-{index}", "match": found}})
    return steps


def convert_metric_template(doc: dict[str, Any], used_by: list[str]) -> Conversion:
    """A MetricTemplate is carried over inside the AnalysisTemplates of the Canaries naming it;
    on its own it writes nothing. Its fields are walked for those not carried over."""
    result = Conversion("MetricTemplate", name_of(doc))
    scratch: dict[str, Any] = {}
    result.dropped += walk(doc, FLAGGER_METRIC_TEMPLATE, scratch)
    if used_by:
        result.notes.append(f"carried over into the AnalysisTemplates of Canary {', '.join(used_by)}")
    else:
        result.notes.append("no Canary among the files names it: nothing written")
    return result
