"""`rollout lint -f PATH…`: offline checks of Rollouts and AnalysisTemplates for a GitOps
repository's CI, with no cluster: the CRD schema (what the API server would reject), the API
models (unknown or mistyped fields, which a server would silently prune), and the controller's
own validation (the InvalidSpec messages, with field paths). Each problem is said once: where the
schema and the models find one at the same field path, one line. `-f` takes what kubectl's takes:
a file, a directory (`-R`: and those below it), `-` for standard input.

References are checked against the other documents of the same run: a route, DestinationRule
or AnalysisTemplate given in the files is read as the controller would read it; one that is not
given is assumed to exist (`rollout check` verifies it on the live cluster)."""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import jsonschema
import yaml
from pydantic import ValidationError

from rollout.analysis.resolve import (
    SecretArgValues,
    TemplateKey,
    Unreadable,
    analysis_refs,
    arg_secret_keys,
    resolve_all,
    rollout_args,
    secret_refs,
    template_keys,
)
from rollout.api.crds import all_crds, openapi_validator
from rollout.api.rollout import ObjectMeta, ParsedRollout, SpecError, errors_from, parse_rollout
from rollout.api.templates import parse_template, template_errors
from rollout.cli.session import CliError
from rollout.engine.decide import current_revision
from rollout.engine.types import Observed, ObservedRoute
from rollout.engine.validation import referenced_services, validate
from rollout.engine.workload import with_workload
from rollout.traffic.base import ObservedPins
from rollout.traffic.bindings import pin_bindings, probe_state, route_bindings
from rollout.workload.deployments import deployment_state

KINDS = ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate")


def _schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for crd in all_crds().values():
        version = crd["spec"]["versions"][0]
        schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


def _path(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


# What the schema says of an object's number of properties ("... has too many properties"): at a
# metric's provider, the model says which kinds it holds.
COUNTING = frozenset({"minProperties", "maxProperties"})


def schema_errors(validator: jsonschema.Draft4Validator, doc: dict[str, Any]) -> list[tuple[SpecError, bool]]:
    """What the API server would reject, each at its field path, and whether it only counts
    properties. A missing field is said at its own path, as the model and the API server say it
    (`spec.workloadRef.name: Required value`), not at the object that lacks it."""
    found = []
    for error in validator.iter_errors({k: v for k, v in doc.items() if k != "status"}):
        parts, message = list(error.absolute_path), error.message
        if error.validator == "required":
            missing = [p for p in error.validator_value if message == f"{p!r} is a required property"]
            if missing:
                parts, message = [*parts, missing[0]], "Required value"
        found.append((SpecError(_path(parts), message), error.validator in COUNTING))
    return found


def _order(error: SpecError) -> tuple[list[tuple[int, int, str]], str]:
    """Field path order, list indices as numbers (`steps[2]` before `steps[10]`)."""
    parts = re.findall(r"\[(\d+)\]|([^.\[]+)", error.path)
    return [(0, int(index), "") if index else (1, 0, name) for index, name in parts], error.message


def once(schema: list[tuple[SpecError, bool]], model: Sequence[SpecError]) -> list[SpecError]:
    """An object's problems with each field path said by one check. When the schema and the model
    both find a problem at a path, the schema's words are kept: they name the value and the limit
    (`120 is greater than the maximum of 100`, where the model says `Input should be less than or
    equal to 100`); unless all the schema says there is how many properties an object has, where
    the model names what is wrong (a provider of two kinds). Other paths keep what either says."""
    at_schema: dict[str, list[tuple[SpecError, bool]]] = {}
    for error, counting in schema:
        at_schema.setdefault(error.path, []).append((error, counting))
    at_model: dict[str, list[SpecError]] = {}
    for error in model:
        at_model.setdefault(error.path, []).append(error)
    kept: list[SpecError] = []
    for path, errors in at_schema.items():
        only_counts = all(counting for _, counting in errors)
        kept += at_model[path] if path in at_model and only_counts else [error for error, _ in errors]
    kept += [error for path, errors in at_model.items() if path not in at_schema for error in errors]
    return sorted(dict.fromkeys(kept), key=_order)


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"  # `-f -`
STDIN_NAME = "<stdin>"  # how its documents are named: `<stdin>#2` for the second one


def manifest_files(directory: Path, recursive: bool) -> list[Path]:
    """A directory's .yaml, .yml and .json files sorted by name, as kubectl reads them; with
    `recursive` those of its subdirectories too, each in its place in the order (symbolic links to
    directories are not followed, so a link to a parent cannot loop)."""
    found = []
    for entry in sorted(directory.iterdir()):
        if entry.is_dir():
            if recursive and not entry.is_symlink():
                found += manifest_files(entry, recursive)
        elif entry.suffix in MANIFEST_SUFFIXES:
            found.append(entry)
    return found


def sources(files: list[str], recursive: bool, stdin: TextIO) -> list[tuple[str, str]]:
    """(name, text) of each file that `-f` names, in the order given: a file, a directory's
    manifest files, or `-` for standard input (read once, so it may be named once)."""
    if files.count(STDIN) > 1:
        raise CliError("-f - (standard input) can be given once", code=2)
    read: list[tuple[str, str]] = []
    for name in files:
        if name == STDIN:
            read.append((STDIN_NAME, stdin.read()))
            continue
        path = Path(name)
        if not path.is_dir():
            read.append((str(path), _read(path)))
            continue
        try:
            found = manifest_files(path, recursive)
        except OSError as exc:
            raise CliError(f"cannot read {exc.filename or path}: {exc.strerror}") from exc
        if not found:
            below = " (or below it)" if recursive else ""
            raise CliError(f"no .yaml, .yml or .json file in {path}{below}")
        read += [(str(file), _read(file)) for file in found]
    return read


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"cannot read {path}: not UTF-8 text") from exc


def _documents(name: str, text: str) -> list[Any]:
    """A file's documents: JSON for a .json file (or standard input that starts as JSON does;
    PyYAML reads most JSON but not tab indentation), else a YAML stream."""
    if name.endswith(".json") or (name == STDIN_NAME and text.lstrip().startswith(("{", "["))):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            if name != STDIN_NAME:
                raise CliError(f"{name}: not JSON: {exc}") from exc
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise CliError(f"{name}: not YAML: {str(exc).splitlines()[0]}") from exc


def load(read: list[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    """(where, document) for each document of each file: `file.yaml#2` for the second one."""
    documents = []
    for name, text in read:
        for index, doc in enumerate(d for d in _documents(name, text) if d is not None):
            if not isinstance(doc, dict):
                raise CliError(f"{name}#{index + 1}: not a Kubernetes object")
            documents.append((f"{name}#{index + 1}", doc))
    return documents


def _meta(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = _meta(doc)
    return str(doc.get("kind")), str(meta.get("namespace") or "default"), str(meta.get("name"))


def _observed(rollout: Any, given: dict[tuple[str, str, str], dict[str, Any]]) -> Observed:
    """The world as the files show it; what they do not show is assumed to be there."""
    namespace = rollout.metadata.namespace or "default"
    services: dict[str, Any] = {name: {} for name in referenced_services(rollout).values()}
    probe = probe_state(rollout)
    routes: list[ObservedRoute | None] = []
    for binding in route_bindings(rollout):
        route = given.get((binding.kind, namespace, binding.name))
        routes.append(
            binding.observed(route, probe)
            if route is not None
            else ObservedRoute(binding.kind, binding.name, binding.path)
        )
    pins: list[ObservedPins | None] = []
    for pin_binding in pin_bindings(rollout):  # DestinationRule subsets
        document = given.get((pin_binding.pinner.kind, namespace, pin_binding.name))
        pins.append(
            pin_binding.observed(document)
            if document is not None
            else ObservedPins(pin_binding.pinner.kind, pin_binding.name, pin_binding.path)
        )
    templates: dict[TemplateKey, Any] = {}
    for key in template_keys(rollout):
        kind = "ClusterAnalysisTemplate" if key.cluster_scope else "AnalysisTemplate"
        found = given.get((kind, "default" if key.cluster_scope else namespace, key.name))
        if found is not None:
            templates[key] = parse_template(found)
    secrets: dict[str, frozenset[str] | None] = {}
    for ref in secret_refs(rollout, templates):  # Secrets are seldom in Git: assumed unless given
        secret = given.get(("Secret", namespace, ref.secret))
        keys = {*((secret or {}).get("data") or {}), *((secret or {}).get("stringData") or {})}
        secrets[ref.secret] = (
            frozenset(keys) if secret is not None else secrets.get(ref.secret, frozenset()) | {ref.key}
        )
    return Observed(
        services=services,
        routes=tuple(routes),
        pins=tuple(pins),
        analysis_templates=templates,
        secrets=secrets,
    )


# An argument's Secret that is not in the files: assumed to hold a plain value (a value that
# cannot stand where the query puts it is found on the cluster, by the controller).
ASSUMED_SECRET_VALUE = "secret"


def _secret_arg_values(rollout: Any, given: dict[tuple[str, str, str], dict[str, Any]]) -> SecretArgValues:
    """The values of the Secret keys the Rollout's arguments name, from a Secret in the files, else
    assumed (Secrets are seldom in Git)."""
    namespace = rollout.metadata.namespace
    values: dict[tuple[str, str], str | Unreadable] = {}
    for name, key in arg_secret_keys(rollout):
        secret = given.get(("Secret", namespace, name))
        if secret is None:
            values[(name, key)] = ASSUMED_SECRET_VALUE
            continue
        plain = dict(secret.get("stringData") or {})
        encoded = dict(secret.get("data") or {})
        if key in plain:
            values[(name, key)] = str(plain[key])
        elif key in encoded:
            try:
                values[(name, key)] = base64.b64decode(str(encoded[key]), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                values[(name, key)] = Unreadable("the value is not base64-encoded UTF-8 text")
        else:
            values[(name, key)] = Unreadable("the Secret has no such key")
    return values


def _parse(doc: dict[str, Any]) -> tuple[ParsedRollout | None, list[SpecError]]:
    """The Rollout as the controller reads it, or None, and the model's problems with it. Metadata
    the API server would refuse (no name, not an object) is said at its path, and the spec is
    still read for its own problems."""
    try:
        ObjectMeta.model_validate(doc.get("metadata") or {})
    except ValidationError as exc:
        parsed = parse_rollout({**doc, "metadata": {"name": "?"}})
        return None, errors_from(exc, ("metadata",)) + list(parsed.errors)
    parsed = parse_rollout(doc)
    return parsed, list(parsed.errors)


def _semantic(
    parsed: ParsedRollout,
    where: str,
    documents: list[tuple[str, dict[str, Any]]],
    given: dict[tuple[str, str, str], dict[str, Any]],
) -> list[SpecError]:
    """The controller's own checks of a Rollout the model reads (its InvalidSpec messages), and
    the resolution of its analysis templates when all of them are given."""
    if parsed.rollout is None:
        return []
    # An object in the Rollout's own file is the one it means (two files may each hold their own
    # `storefront` route); else any file's.
    source = where.rsplit("#", 1)[0]
    own = {_key(d): d for w, d in documents if w.rsplit("#", 1)[0] == source}
    known = {**given, **own}
    ref = parsed.rollout.spec.workload_ref
    if ref is not None and parsed.rollout.spec.template is None:
        namespace = parsed.rollout.metadata.namespace or "default"
        deployment = known.get(("Deployment", namespace, ref.name))
        if deployment is None:
            return []  # its template is in a Deployment not given: assumed right
        parsed = with_workload(parsed, deployment_state(deployment))
        if parsed.rollout is None:
            return list(parsed.errors)
    observed = _observed(parsed.rollout, known)
    found = validate(parsed.rollout, observed)
    if len(observed.analysis_templates) == len(template_keys(parsed.rollout)):  # all given
        revision = current_revision(parsed.rollout)
        secret_values = _secret_arg_values(parsed.rollout, known)
        _, unresolved = resolve_all(
            parsed.rollout, observed.analysis_templates, revision, revision, secret_values
        )
        found += unresolved
    else:  # an argument from the Rollout's own fields needs no template to be checked
        for path, ref in analysis_refs(parsed.rollout).values():
            _, problems = rollout_args(parsed.rollout, ref, path, None)
            found += [p for p in problems if p.path.endswith(".valueFrom.fieldRef.fieldPath")]
    return found


def problems(documents: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One line per problem: `where: field.path: what is wrong`. The schema's and the model's
    problems are said once per field path; the controller's checks run whenever the model reads
    the Rollout, whatever the schema found elsewhere (a quoted number, say)."""
    validators = {kind: openapi_validator(schema) for kind, schema in _schemas().items()}
    given = {_key(doc): doc for _, doc in documents}
    for (kind, _, name), doc in list(given.items()):
        if kind == "ClusterAnalysisTemplate":  # cluster-scoped: found whatever namespace is written
            given[kind, "default", name] = doc
    found: list[str] = []
    for where, doc in documents:
        kind = doc.get("kind")
        if kind not in KINDS:
            continue
        label = f"{where} {kind} {_meta(doc).get('name', '?')}"
        schema = schema_errors(validators[str(kind)], doc)
        if kind == "Rollout":
            parsed, model = _parse(doc)
            found += [f"{label}: {e}" for e in once(schema, model)]
            if parsed is not None:
                found += [f"{label}: {e}" for e in _semantic(parsed, where, documents, given)]
        else:
            found += [f"{label}: {e}" for e in once(schema, template_errors(doc))]
    return found


def lint(files: list[str], out: TextIO, recursive: bool = False, stdin: TextIO | None = None) -> int:
    read = sources(files, recursive, stdin if stdin is not None else sys.stdin)
    documents = load(read)
    checked = [d for _, d in documents if d.get("kind") in KINDS]
    if not checked:
        named = [STDIN_NAME if f == STDIN else f for f in files]
        raise CliError(f"no Rollout or AnalysisTemplate in {', '.join(named)}")
    found = problems(documents)
    for line in found:
        print(line, file=out)
    print(
        f"{len(checked)} object(s) checked: " + (f"{len(found)} problem(s)" if found else "no problems"),
        file=out,
    )
    return 1 if found else 0
