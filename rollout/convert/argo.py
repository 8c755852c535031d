"""Argo Rollouts (`argoproj.io/v1alpha1`) to this project: a Rollout becomes a Rollout, an
AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun an AnalysisTemplate of the same name.

Most fields are renamed or kept by the rules of mapping.py (walk.py applies them); the code here
does what a rule cannot: the single-item lists (`virtualServices`, `stableIngresses`), the
Gateway API plugin, and leaving out what would not be valid once a field is gone (an argument
without a value, a metric without a provider, a condition that does not read here).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from rollout.analysis.expressions import check
from rollout.api.templates import KNOWN_PROVIDERS
from rollout.convert.mapping import ARGO_ROLLOUT, ARGO_TEMPLATE, SUPPORTED_PROVIDERS
from rollout.convert.result import Conversion, dig, name_from_prefix, name_of, new_object
from rollout.convert.walk import Dropped, compact, walk

ROUTING = "spec.strategy.canary.trafficRouting"
GATEWAY_PLUGIN = "argoproj-labs/gatewayAPI"
TEMPLATE_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun")
_ARG = re.compile(r"^\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}$")


def _one_of_list(routing: dict[str, Any], router: str, plural: str, singular: str) -> list[Dropped]:
    """`virtualServices: [x]` is `virtualService: x`; a list of more is not carried over."""
    block = routing.get(router)
    if not isinstance(block, dict) or plural not in block:
        return []
    items = block.pop(plural)
    if isinstance(items, list) and len(items) == 1 and singular not in block:
        block[singular] = items[0]
        return []
    why = f"{len(items) if isinstance(items, list) else 'a non-list of'} items: one is supported"
    return [Dropped(f"{ROUTING}.{router}.{plural}", why)]


def _gateway_plugin(plugin: Any, routing_out: dict[str, Any]) -> None:
    """The Gateway API plugin's route names as the built-in gatewayAPI router's."""
    if not isinstance(plugin, dict):
        return
    gateway: dict[str, list[dict[str, str]]] = {}
    http = [r.get("name") for r in plugin.get("httpRoutes") or [] if isinstance(r, dict)]
    names = {
        "httpRoutes": [plugin.get("httpRoute"), *http],
        "grpcRoutes": [plugin.get("grpcRoute")],
        "tcpRoutes": [plugin.get("tcpRoute")],
    }
    for field, found in names.items():
        kept = [{"name": str(name)} for name in found if name]
        if kept:
            gateway[field] = kept
    if gateway:
        routing_out["gatewayAPI"] = gateway


def _analyses(strategy: dict[str, Any]) -> list[dict[str, Any]]:
    found = [strategy.get(k) for k in ("analysis", "prePromotionAnalysis", "postPromotionAnalysis")]
    found += [step.get("analysis") for step in strategy.get("steps") or [] if isinstance(step, dict)]
    return [a for a in found if isinstance(a, dict)]


def convert_rollout(doc: dict[str, Any]) -> Conversion:
    """A Rollout as this project's; refused when both template and workloadRef are set."""
    result = Conversion("Rollout", name_of(doc))
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    if spec.get("template") and spec.get("workloadRef"):
        result.refused = (
            "spec.template and spec.workloadRef are both set: the pod template comes from one of "
            "them; remove the other"
        )
        return result
    source = copy.deepcopy(doc)
    routing = dig(source, "spec", "strategy", "canary", "trafficRouting")
    if isinstance(routing, dict):
        result.dropped += _one_of_list(routing, "istio", "virtualServices", "virtualService")
        result.dropped += _one_of_list(routing, "nginx", "stableIngresses", "stableIngress")
    out = new_object("Rollout")
    result.dropped += walk(source, ARGO_ROLLOUT, out)
    name_from_prefix(source, out)
    plugin = dig(routing, "plugins", GATEWAY_PLUGIN)
    if plugin is not None:
        canary_out = out["spec"].setdefault("strategy", {}).setdefault("canary", {})
        _gateway_plugin(plugin, canary_out.setdefault("trafficRouting", {}))
    for strategy in (dig(out, "spec", "strategy") or {}).values():
        if not isinstance(strategy, dict):
            continue
        for analysis in _analyses(strategy):  # an argument whose value was dropped is left out
            analysis["args"] = [
                a
                for a in analysis.get("args", [])
                if isinstance(a, dict) and ("value" in a or "valueFrom" in a)
            ]
            if not analysis["args"]:
                del analysis["args"]
        if strategy.get("trafficRouting") == {}:  # only unsupported routers: none
            del strategy["trafficRouting"]
        if not strategy.get("trafficRouting"):
            result.dropped += _routeless_steps(strategy)
            if strategy.pop("dynamicStableScale", None) is not None:
                why = "it needs trafficRouting, and no router was carried over"
                result.dropped.append(Dropped("spec.strategy.canary.dynamicStableScale", why))
    result.objects.append(compact(out))
    return result


def _routeless_steps(strategy: dict[str, Any]) -> list[Dropped]:
    """Header and mirror routes need a router: without one their steps are left out. The steps
    still hold the holes of those the walk left out, so an index is the source's."""
    dropped, kept = [], []
    for index, step in enumerate(strategy.get("steps") or []):
        kind = next((k for k in ("setHeaderRoute", "setMirrorRoute") if k in (step or {})), None)
        if kind is None:
            kept.append(step)
        else:
            dropped.append(
                Dropped(f"spec.strategy.canary.steps[{index}].{kind}", "no traffic router was carried over")
            )
    if dropped:
        strategy["steps"] = kept
    return dropped


def _web(web: dict[str, Any], source: dict[str, Any], path: str) -> str | None:
    """Argo's web fields in this project's terms; why the metric must be left out, or None."""
    if "jsonBody" in source:
        web["body"] = json.dumps(source["jsonBody"], separators=(",", ":"))
    method = str(source.get("method") or "GET").upper()
    if method not in ("GET", "POST"):
        return f"{path}.method: {method} is not supported (GET and POST are)"
    web["method"] = method
    if "body" in web and method != "POST":
        return f"{path}: a body is sent with method POST only"
    json_path = source.get("jsonPath")
    if isinstance(json_path, str):
        text = json_path.strip()
        web["jsonPath"] = text[1:-1].strip() if text.startswith("{") and text.endswith("}") else text
    return None


def _whole_arg(value: Any) -> str | None:
    """The argument's name when `value` is nothing but `{{args.NAME}}`."""
    match = _ARG.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def _limits(metric: dict[str, Any], defaults: dict[str, str], path: str) -> list[Dropped]:
    """A limit given by an argument takes the template's default for it (limits here are numbers)."""
    dropped = []
    for field in ("failureLimit", "inconclusiveLimit", "consecutiveErrorLimit"):
        name = _whole_arg(metric.get(field))
        if name is None:
            continue
        if defaults.get(name, "").isdigit():
            metric[field] = int(defaults[name])
        else:
            del metric[field]
            why = f"a limit from an argument ({name}, no number as default) is not supported: default applies"
            dropped.append(Dropped(f"{path}.{field}", why))
    return dropped


# Where Argo Rollouts finds a vendor's credentials: the Secret's default name, the field naming
# another, and the keys, each under the field of this project's provider that refers to it.
VENDOR_SECRETS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "datadog": (
        "datadog",
        ("secretRef", "name"),
        {"apiKeySecretRef": "api-key", "appKeySecretRef": "app-key"},
    ),
    "newRelic": (
        "newrelic",
        ("profile",),
        {"accountIdSecretRef": "account-id", "userKeySecretRef": "personal-api-key"},
    ),
}


def _vendor_secrets(provider: dict[str, Any], source: dict[str, Any]) -> None:
    """A vendor provider's Secret references, as Argo Rollouts would have found the keys."""
    for kind, (default, field, keys) in VENDOR_SECRETS.items():
        if kind in provider:
            name = dig(source, kind, *field) or default
            provider[kind].update({ref: {"name": str(name), "key": key} for ref, key in keys.items()})


def _metric_problem(
    metric: dict[str, Any], source: dict[str, Any], path: str, dropped: list[Dropped]
) -> str | None:
    """Why a converted metric cannot stand, or None; conditions that do not apply go to `dropped`."""
    provider = metric.get("provider") or {}
    _vendor_secrets(provider, source.get("provider") or {})
    if "job" in provider:
        policy = dig(provider, "job", "spec", "template", "spec", "restartPolicy")
        if policy not in ("Never", "OnFailure"):
            why = "a Job's pod needs Never or OnFailure (Kubernetes refuses a Job with any other)"
            return f"{path}.provider.job.spec.template.spec.restartPolicy: {policy or 'not set'}: {why}"
        # Argo Rollouts judges a Job by its outcome too and evaluates no condition on it; the API
        # here refuses one, so a condition written anyway is named and left behind.
        for field in ("successCondition", "failureCondition"):
            metric.pop(field, None)
            if field in source:
                dropped.append(Dropped(f"{path}.{field}", "a job metric is judged by its Job's outcome"))
        return None
    if _whole_arg(dig(provider, "web", "url")):
        why = "a url given whole by an argument is not supported: write it in the template"
        return f"{path}.provider.web.url: {why}"
    if not provider:
        kinds = [str(k) for k in source.get("provider") or {}]
        if any(kind in KNOWN_PROVIDERS for kind in kinds):  # its own line says why
            return f"{path}.provider: {', '.join(kinds)} could not be carried over"
        given = ", ".join(kinds) or "none given"
        return f"{path}.provider: {given}: not supported yet ({SUPPORTED_PROVIDERS})"
    if "web" in provider:
        problem = _web(provider["web"], dig(source, "provider", "web") or {}, f"{path}.provider.web")
        if problem:
            return problem
    for field in ("successCondition", "failureCondition"):
        if field in source:
            why = check(str(source[field]), any_json="web" in provider)
            if why:
                return f"{path}.{field}: does not read in this project's condition language: {why}"
            metric[field] = source[field]
    if "successCondition" not in metric and "failureCondition" not in metric:
        return f"{path}: a metric needs a successCondition or a failureCondition"
    return None


def convert_template(doc: dict[str, Any]) -> Conversion:
    """AnalysisTemplate and ClusterAnalysisTemplate keep their kind; an AnalysisRun's template
    part becomes an AnalysisTemplate of the run's name."""
    kind = "ClusterAnalysisTemplate" if doc.get("kind") == "ClusterAnalysisTemplate" else "AnalysisTemplate"
    result = Conversion(str(doc.get("kind")), name_of(doc))
    out = new_object(kind)
    result.dropped += walk(doc, ARGO_TEMPLATE, out)
    name_from_prefix(doc, out)
    out = compact(out)
    sources = dig(doc, "spec", "metrics") or []
    defaults = {str(a.get("name")): str(a["value"]) for a in out["spec"].get("args", []) if "value" in a}
    kept = []
    for position, metric in enumerate(out["spec"].get("metrics", [])):
        index = next(
            (i for i, m in enumerate(sources) if isinstance(m, dict) and m.get("name") == metric.get("name")),
            position,
        )
        result.dropped += _limits(metric, defaults, f"spec.metrics[{index}]")
        problem = _metric_problem(metric, sources[index], f"spec.metrics[{index}]", result.dropped)
        if problem is None:
            kept.append(metric)
        else:
            result.dropped.append(Dropped(f"spec.metrics[{index}]", f"the metric is left out: {problem}"))
    if not kept:
        result.refused = "no metric could be carried over" + (
            f" ({result.dropped[-1].why})" if result.dropped else ""
        )
        return result
    out["spec"]["metrics"] = kept
    result.objects.append(out)
    return result
