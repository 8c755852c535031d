"""`rollout convert`: Argo Rollouts and Flagger objects as this project's, with every field not
carried over named (mapping.py holds the rules, argo.py and flagger.py apply them).

`convert_documents` takes the documents of a run, each with where it was read
(`file.yaml#2`), and gives one Outcome per document: a Conversion, a line saying why it could not
be read, or nothing for an object that is not Argo Rollouts' or Flagger's (a Service, a route, a
Deployment): those stay as they are, and the converted Rollout names them as before. What is
written is checked as `rollout lint` checks it (rollout/cli/lint.py); an object that would not
pass is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollout.cli.lint import problems
from rollout.convert.argo import TEMPLATE_KINDS, convert_rollout, convert_template
from rollout.convert.flagger import DEFAULT_PROVIDER, MetricTemplates, convert_canary, convert_metric_template
from rollout.convert.mapping import migration_table_markdown
from rollout.convert.result import Conversion

__all__ = ["Outcome", "convert_documents", "migration_table_markdown"]

ARGO_GROUP = "argoproj.io"
FLAGGER_GROUP = "flagger.app"


@dataclass(frozen=True)
class Outcome:
    """What became of one document: `conversion`, or `error` (bad input), or neither (left as is)."""

    where: str
    conversion: Conversion | None = None
    error: str | None = None


def _group(doc: dict[str, Any]) -> str:
    api_version = str(doc.get("apiVersion") or "")
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def _namespace(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    return str((meta or {}).get("namespace") or "default") if isinstance(meta, dict) else "default"


def _name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    return str((meta or {}).get("name") or "") if isinstance(meta, dict) else ""


def _file(where: str) -> str:
    return where.rsplit("#", 1)[0]


def _problem(doc: Any) -> str | None:
    """Why a document is not a Kubernetes object, or None."""
    if not isinstance(doc, dict):
        return f"not a Kubernetes object (a YAML {type(doc).__name__})"
    if not doc.get("apiVersion") or not doc.get("kind"):
        return "not a Kubernetes object (no apiVersion or kind)"
    return None


def _checked(where: str, conversion: Conversion) -> Conversion:
    """The conversion, or its refusal when what it wrote would not pass `rollout lint` (the
    converter's own rules should prevent that; this says so instead of writing a bad object)."""
    if conversion.refused is not None or not conversion.objects:
        return conversion
    found = problems([(where, obj) for obj in conversion.objects])
    if found:
        first = found[0].split(": ", 1)[1] if ": " in found[0] else found[0]
        lost = ", ".join(d.path for d in conversion.dropped)
        conversion.refused = f"the result would not pass `rollout lint`: {first}" + (
            f" (not carried over: {lost})" if lost else ""
        )
        conversion.objects = []
    return conversion


def convert_documents(
    documents: list[tuple[str, Any]], flagger_provider: str = DEFAULT_PROVIDER
) -> list[Outcome]:
    """One Outcome per document, in order. `flagger_provider` is the router of a Canary without
    spec.provider (Flagger's --mesh-provider)."""
    objects = [(where, doc) for where, doc in documents if _problem(doc) is None]
    templates: MetricTemplates = {}
    own_templates: dict[str, MetricTemplates] = {}  # by file: the one in the Canary's file wins
    deployments: dict[str, dict[str, Any]] = {}
    for where, doc in objects:
        if _group(doc) == FLAGGER_GROUP and doc["kind"] == "MetricTemplate":
            templates[_namespace(doc), _name(doc)] = doc
            own_templates.setdefault(_file(where), {})[_namespace(doc), _name(doc)] = doc
        elif doc.get("kind") == "Deployment":
            deployments[f"{_namespace(doc)}/{_name(doc)}"] = doc
    users: dict[tuple[str, str], list[str]] = {}
    for _, doc in objects:
        if _group(doc) == FLAGGER_GROUP and doc["kind"] == "Canary":
            for metric in ((doc.get("spec") or {}).get("analysis") or {}).get("metrics") or []:
                ref = metric.get("templateRef") if isinstance(metric, dict) else None
                if isinstance(ref, dict):
                    key = (str(ref.get("namespace") or _namespace(doc)), str(ref.get("name")))
                    users.setdefault(key, []).append(_name(doc))
    outcomes = []
    for where, doc in documents:
        problem = _problem(doc)
        if problem is not None:
            outcomes.append(Outcome(where, error=problem))
            continue
        group, kind = _group(doc), doc["kind"]
        if group == ARGO_GROUP and kind == "Rollout":
            outcomes.append(Outcome(where, _checked(where, convert_rollout(doc))))
        elif group == ARGO_GROUP and kind in TEMPLATE_KINDS:
            outcomes.append(Outcome(where, _checked(where, convert_template(doc))))
        elif group == FLAGGER_GROUP and kind == "Canary":
            known = {**templates, **own_templates.get(_file(where), {})}
            converted = convert_canary(doc, known, deployments, flagger_provider)
            outcomes.append(Outcome(where, _checked(where, converted)))
        elif group == FLAGGER_GROUP and kind == "MetricTemplate":
            key = (_namespace(doc), _name(doc))
            outcomes.append(Outcome(where, convert_metric_template(doc, users.get(key, []))))
        elif group in (ARGO_GROUP, FLAGGER_GROUP):
            outcomes.append(
                Outcome(
                    where,
                    error=f"kind {kind} of {doc['apiVersion']} is not converted (Rollout, AnalysisTemplate, "
                    "ClusterAnalysisTemplate, AnalysisRun, Canary and MetricTemplate are)",
                )
            )
        else:
            outcomes.append(Outcome(where))
    return outcomes
