"""The API reference pages (Rollout, AnalysisTemplate), made from the pydantic models in rollout/api.

One section per model, reached from the root model: each field with its wire name, type, default,
validation and description. A field's description is, in order: its pydantic `description`, the
comment written beside or above it in the model, or its entry in fields.yaml (for the fields
whose meaning the code does not spell out). `undocumented()` lists fields with none of these and
`stale_notes()` entries of fields.yaml that no model has; the docs test requires both empty.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import textwrap
import tokenize
import types
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from rollout import API_VERSION
from rollout.api import base, templates
from rollout.api.spec import RolloutSpec
from rollout.api.status import RolloutStatus
from rollout.api.templates import AnalysisTemplateSpec
from rollout.docs.markdown import cell, table

NOTES_FILE = Path(__file__).with_name("fields.yaml")

# Types whose meaning is in a validator rather than in the annotation (rollout/api/base.py,
# templates.py).
VALIDATED_TYPES = {
    base._check_duration: "duration (`30s`, `2m`, `1h30m`, or seconds)",
    base._check_int_or_percent: "integer or percent (`25%`)",
    templates._duration_or_arg: "duration, or `{{args.NAME}}`",
    templates._count_or_arg: "integer, or `{{args.NAME}}`",
}
SCALARS = {str: "string", int: "integer", bool: "boolean", float: "number"}


@cache
def _notes() -> dict[str, str]:
    return yaml.safe_load(NOTES_FILE.read_text()) or {}


def _alias(name: str, info: FieldInfo) -> str:
    return info.alias or name


def _branches(annotation: Any) -> list[Any]:
    """The members of a union, without None."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The type under Annotated, and the Annotated metadata."""
    if get_origin(annotation) is Annotated:
        inner, *meta = get_args(annotation)
        deeper, more = _unwrap(inner)
        return deeper, [*meta, *more]
    return annotation, []


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation refers to, in order of appearance."""
    inner, _ = _unwrap(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return [inner]
    found: list[type[BaseModel]] = []
    for arg in get_args(inner):
        found += [m for m in _models_in(arg) if m not in found]
    return found


def _type_text(annotation: Any, own: tuple[Any, ...] = ()) -> str:
    """The type as a reader needs it; `own` is the field's metadata (where pydantic keeps the
    Annotated parts of a field's top-level type)."""
    for item in own:
        if isinstance(item, BeforeValidator) and item.func in VALIDATED_TYPES:
            return VALIDATED_TYPES[item.func]
    members = _branches(annotation)
    if len(members) > 1:
        return "one of " + ", ".join(_type_text(m) for m in members)
    inner, meta = _unwrap(members[0])
    for item in meta:
        if isinstance(item, BeforeValidator) and item.func in VALIDATED_TYPES:
            return VALIDATED_TYPES[item.func]
    if get_origin(inner) in (Union, types.UnionType):
        return _type_text(inner)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return f"[{inner.__name__}](#{inner.__name__.lower()})"
    if get_origin(inner) is Literal:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in get_args(inner))
    if get_origin(inner) is list:
        return f"list of {_type_text(get_args(inner)[0])}"
    if get_origin(inner) is dict:
        key, value = get_args(inner)
        if value is Any:
            return "object (any fields, kept as written)"
        return f"map of {_type_text(key)} to {_type_text(value)}"
    if inner is Any:
        return "any"
    if getattr(inner, "__name__", "") == "datetime":
        return "time (RFC 3339)"
    return SCALARS.get(inner, getattr(inner, "__name__", str(inner)))


def _constraint_text(item: Any) -> str | None:
    if isinstance(item, annotated_types.Ge):
        return f"≥ {item.ge}"
    if isinstance(item, annotated_types.Gt):
        return f"> {item.gt}"
    if isinstance(item, annotated_types.Le):
        return f"≤ {item.le}"
    if isinstance(item, annotated_types.Lt):
        return f"< {item.lt}"
    if isinstance(item, annotated_types.MinLen):
        return f"length ≥ {item.min_length}"
    if isinstance(item, annotated_types.MaxLen):
        return f"length ≤ {item.max_length}"
    if isinstance(item, FieldInfo):  # Annotated[int, Field(ge=1)] inside a union
        return ", ".join(filter(None, (_constraint_text(c) for c in item.metadata))) or None
    if isinstance(item, annotated_types.Interval):
        return ", ".join(filter(None, (_constraint_text(c) for c in item)))
    return None


def _constraints(annotation: Any, own: list[Any], prefix: str = "") -> list[str]:
    """Readable constraints of a field: its own Field(...) ones, those of its Annotated type, and
    those of its list items (prefixed `each`)."""
    out = [f"{prefix}{t}" for t in (_constraint_text(c) for c in own) if t]
    for member in _branches(annotation):
        inner, meta = _unwrap(member)
        out += [f"{prefix}{t}" for t in (_constraint_text(c) for c in meta) if t]
        if get_origin(inner) is list:
            out += _constraints(get_args(inner)[0], [], "each ")
    return list(dict.fromkeys(out))


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True, validated_data={})
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True, exclude_none=True, mode="json")
    if value is None:
        return "unset"
    return f"`{json.dumps(value)}`"


@cache
def _source_comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment written above it (contiguous `#` lines) or after it on its line."""
    try:
        source = textwrap.dedent(inspect.getsource(model))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    found: dict[str, str] = {}
    tree = ast.parse(source).body[0]
    if not isinstance(tree, ast.ClassDef):
        return {}
    for node in tree.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line >= 1 and lines[line - 1].strip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        beside = comments.get(node.end_lineno or node.lineno)
        text = " ".join(above + ([beside] if beside else []))
        if text:
            found[node.target.id] = text
    return found


def _description(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    return (
        info.description
        or _source_comments(model).get(name)
        or _notes().get(f"{model.__name__}.{_alias(name, info)}", "")
    )


def _reachable(root: type[BaseModel]) -> list[type[BaseModel]]:
    """The root model and every model its fields lead to, breadth first."""
    order = [root]
    for model in order:
        for info in model.model_fields.values():
            order += [m for m in _models_in(info.annotation) if m not in order]
            for item in info.metadata:  # Annotated[...] unions keep their members here too
                order += [m for m in _models_in(item) if m not in order]
    return order


def _model_about(model: type[BaseModel]) -> str:
    doc = inspect.getdoc(model) if model.__doc__ else ""
    note = _notes().get(model.__name__, "")
    return " ".join(part for part in (" ".join((doc or "").split()), note) if part)


def _section(model: type[BaseModel], path_hint: str) -> list[str]:
    out = [f"### {model.__name__}", ""]
    about = _model_about(model)
    if path_hint:
        out += [f"At `{path_hint}`.", ""]
    if about:
        out += [about, ""]
    if not model.model_fields:
        return [*out, "No fields: the key's presence is the setting.", ""]
    rows = []
    for name, info in model.model_fields.items():
        constraints = ", ".join(_constraints(info.annotation, list(info.metadata)))
        rows.append(
            [
                f"`{_alias(name, info)}`",
                _type_text(info.annotation, tuple(info.metadata)),
                _default_text(info),
                constraints or "—",
                cell(_description(model, name, info)) or "—",
            ]
        )
    return [*out, *table(["field", "type", "default", "validation", "description"], rows), ""]


def _paths(root: type[BaseModel], prefix: str) -> dict[type[BaseModel], str]:
    """The first field path at which each model appears (for the reader's bearings)."""
    paths = {root: prefix}
    queue = [root]
    for model in queue:
        for name, info in model.model_fields.items():
            targets = _models_in(info.annotation) + [m for i in info.metadata for m in _models_in(i)]
            inner, _ = _unwrap(_branches(info.annotation)[0])
            suffix = "[]" if get_origin(inner) is list else ""
            for target in targets:
                if target not in paths:
                    paths[target] = f"{paths[model]}.{_alias(name, info)}{suffix}"
                    queue.append(target)
    return paths


def _sections(root: type[BaseModel], prefix: str) -> list[str]:
    paths = _paths(root, prefix)
    out: list[str] = []
    for model in _reachable(root):
        out += _section(model, paths.get(model, ""))
    return out


HEADER = "<!-- Generated by `python -m rollout.docs` from rollout/api; do not edit by hand. -->\n"


def rollout_page() -> str:
    lines = [
        HEADER,
        "# Rollout API reference",
        "",
        f"`apiVersion: {API_VERSION}`, `kind: Rollout` (short name `ro`), namespaced, with the "
        "`status` and `scale` subresources. Every field of `spec` and `status`, one table per "
        "object; a type in a link is an object described further down. Durations are strings "
        "such as `30s`, `2m` or `1h30m`, or integer seconds. A field the controller does not "
        "know is refused (InvalidSpec, naming the field) rather than ignored.",
        "",
        "## spec",
        "",
        *_sections(RolloutSpec, "spec"),
        "## status",
        "",
        "Written by the controller only; it is all the controller remembers, so a restarted "
        "controller carries on from it.",
        "",
        *_sections(RolloutStatus, "status"),
    ]
    return "\n".join(lines).rstrip() + "\n"


def template_page() -> str:
    lines = [
        HEADER,
        "# AnalysisTemplate API reference",
        "",
        f"`apiVersion: {API_VERSION}`: `kind: AnalysisTemplate` (short name `at`, namespaced) and "
        "`kind: ClusterAnalysisTemplate` (short name `cat`, cluster-scoped) have the same `spec`. "
        "A Rollout names a cluster one with `clusterScope: true`.",
        "",
        "## spec",
        "",
        *_sections(AnalysisTemplateSpec, "spec"),
    ]
    return "\n".join(lines).rstrip() + "\n"


ROOTS = (RolloutSpec, RolloutStatus, AnalysisTemplateSpec)


def undocumented() -> list[str]:
    """`Model.field` of every field that has no description."""
    return [
        f"{model.__name__}.{_alias(name, info)}"
        for root in ROOTS
        for model in _reachable(root)
        for name, info in model.model_fields.items()
        if not _description(model, name, info)
    ]


def stale_notes() -> list[str]:
    """Entries of fields.yaml naming a model or field that does not exist."""
    known = {model.__name__: model for root in ROOTS for model in _reachable(root)}
    stale = []
    for key in _notes():
        model_name, _, field = key.partition(".")
        model = known.get(model_name)
        aliases = {_alias(n, i) for n, i in model.model_fields.items()} if model else set()
        if model is None or (field and field not in aliases):
            stale.append(key)
    return stale
