"""CRD generation: turns the pydantic models into structural OpenAPI v3 schemas for crds/.

Pydantic's JSON schema uses `$ref`, `anyOf` with null and titles; a Kubernetes structural schema
allows none of these, so they are resolved here. Defaults are left to the controller (not written
by the API server), which keeps what users store in Git exactly what they wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import BaseModel

from rollout import GROUP, VERSION
from rollout.api.spec import RolloutSpec
from rollout.api.status import RolloutStatus
from rollout.api.templates import AnalysisTemplateSpec

_DROP = {"title", "default", "discriminator"}


def openapi_validator(schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    """A validator of a CRD's openAPIV3Schema with the API server's reading of it: OpenAPI v3.0
    keeps JSON Schema draft 4's boolean exclusiveMinimum / exclusiveMaximum (draft 7 reads a
    `true` there as the number 1)."""
    return jsonschema.Draft4Validator(schema)


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of one model (aliases as property names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs)


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("x-rollout-one-kind"):
        return _one_kind(node, defs)
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _convert({**target, **extra}, defs)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        types = sorted(b.get("type", "") for b in branches)
        if types == ["integer", "string"]:
            return {**_convert(rest, defs), "x-kubernetes-int-or-string": True}
        if len(branches) == 1:
            return _convert({**branches[0], **rest}, defs)
        raise ValueError(f"cannot express union {node['anyOf']} in a structural schema")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "const":  # a one-value Literal: OpenAPI v3 in a CRD has no `const`
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema's numeric bound is OpenAPI v3.0's bound with a boolean flag (the API
            # server refuses the CRD otherwise).
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = _convert(value, defs)
    # Structural schemas forbid `additionalProperties` beside `properties`; unknown fields are
    # pruned by the API server instead.
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("additionalProperties", None)
        out["type"] = "object"
    return out


def _one_kind(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A union of objects with one key each (a metric's provider kinds): one object holding
    exactly one of those keys. Unknown keys are kept so the controller can name them."""
    rest = {k: v for k, v in node.items() if k != "x-rollout-one-kind"}
    branches = rest.get("oneOf") or rest.get("anyOf") or [rest]
    properties: dict[str, Any] = {}
    for branch in branches:
        properties.update(_convert(branch, defs).get("properties") or {})
    return {
        "type": "object",
        "properties": properties,
        "minProperties": 1,
        "maxProperties": 1,
        "x-kubernetes-preserve-unknown-fields": True,
    }


def _object_schema(spec: type[BaseModel], status: type[BaseModel] | None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": structural(spec),
    }
    if status is not None:
        properties["status"] = structural(status)
    return {"openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": properties}}


AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _crd(
    kind: str, plural: str, scope: str, short_names: list[str], version: dict[str, Any], **names: Any
) -> dict[str, Any]:
    """A CRD of the rollout.dev group with one served and stored version (`version` adds the
    schema, subresources and printer columns); `names` adds to spec.names (categories)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "listKind": f"{kind}List",
                "shortNames": short_names,
                **names,
            },
            "versions": [{"name": VERSION, "served": True, "storage": True, **version}],
        },
    }


def analysis_template_crd(kind: str, plural: str, scope: str, short_names: list[str]) -> dict[str, Any]:
    version = {"schema": _object_schema(AnalysisTemplateSpec, None), "additionalPrinterColumns": [AGE_COLUMN]}
    return _crd(kind, plural, scope, short_names, version)


def rollout_crd() -> dict[str, Any]:
    version = {
        "schema": _object_schema(RolloutSpec, RolloutStatus),
        "subresources": {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector",
            },
        },
        "additionalPrinterColumns": [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Step", "type": "integer", "jsonPath": ".status.currentStepIndex"},
            {"name": "Weight", "type": "integer", "jsonPath": ".status.canary.weight"},
            {"name": "Stable", "type": "string", "jsonPath": ".status.stableRevision"},
            {"name": "Current", "type": "string", "jsonPath": ".status.currentRevision"},
            {"name": "Active", "type": "string", "jsonPath": ".status.blueGreen.activeRevision"},
            {"name": "Preview", "type": "string", "jsonPath": ".status.blueGreen.previewRevision"},
            {"name": "Message", "type": "string", "jsonPath": ".status.message"},
            AGE_COLUMN,
            # -o wide: the pods' role labels, and the stable scale while a dynamic canary runs.
            {"name": "Roles", "type": "string", "jsonPath": ".status.roles", "priority": 1},
            {
                "name": "Stable-Pods",
                "type": "integer",
                "jsonPath": ".status.canary.stableReplicas",
                "priority": 1,
            },
        ],
    }
    return _crd("Rollout", "rollouts", "Namespaced", ["ro"], version, categories=["all"])


def all_crds() -> dict[str, dict[str, Any]]:
    """File name in crds/ -> CRD document."""
    return {
        f"{GROUP}_rollouts.yaml": rollout_crd(),
        f"{GROUP}_analysistemplates.yaml": analysis_template_crd(
            "AnalysisTemplate", "analysistemplates", "Namespaced", ["at"]
        ),
        f"{GROUP}_clusteranalysistemplates.yaml": analysis_template_crd(
            "ClusterAnalysisTemplate", "clusteranalysistemplates", "Cluster", ["cat"]
        ),
    }


def render(crd: dict[str, Any]) -> str:
    header = "# Generated by `rollout crds` from rollout/api; do not edit by hand.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=120)


def write_crds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, crd in all_crds().items():
        path = directory / filename
        path.write_text(render(crd))
        written.append(path)
    return written
