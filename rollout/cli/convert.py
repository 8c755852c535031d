"""`rollout convert -f PATH… [-R] [-o DIR] [--strict]`: Argo Rollouts and Flagger manifests as
this project's objects (rollout/convert does the converting).

The objects are written as YAML to standard output, or with `-o DIR` one file per input file
(its path below the directory given, or its name). Standard error gets one line per field not
carried over, per note, per object refused and per document that could not be read, each with
its file and document number (`canary.yaml#2`), then a count. Objects of other kinds (Services,
routes, Deployments) are not written: they stay as they are. Exit 1 when a document could not
be read or an object was refused (what did convert is still written), and with `--strict` when
any field was not carried over."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from rollout.cli.lint import STDIN, STDIN_NAME, sources
from rollout.cli.session import CliError
from rollout.convert import Outcome, convert_documents
from rollout.convert.flagger import DEFAULT_PROVIDER

STDIN_OUTPUT = "stdin.yaml"  # the file `-f -` is written to under `-o DIR`


@dataclass(frozen=True)
class Source:
    name: str  # as read: a path, or <stdin>
    output: Path  # its file under -o DIR
    text: str


def read_sources(files: list[str], recursive: bool, stdin: TextIO) -> list[Source]:
    read = []
    for given in files:
        for name, text in sources([given], recursive, stdin):
            if name == STDIN_NAME:
                output = Path(STDIN_OUTPUT)
            elif Path(given).is_dir():
                output = Path(name).relative_to(given)
            else:
                output = Path(Path(name).name)
            read.append(Source(name, output, text))
    return read


def documents_of(source: Source) -> tuple[list[tuple[str, Any]], list[str]]:
    """The file's documents, `name#n` each, and a line for a document that is not YAML (the
    documents before it are kept; a YAML stream cannot be read past an error). A .json file is
    read as JSON (PyYAML reads most JSON, but not tab indentation)."""
    if source.name.endswith(".json"):
        try:
            return [(f"{source.name}#1", json.loads(source.text))], []
        except json.JSONDecodeError as exc:
            return [], [f"{source.name}#1: not JSON: {exc}"]
    documents: list[tuple[str, Any]] = []
    stream = yaml.safe_load_all(source.text)
    index = 0
    while True:
        index += 1
        try:
            doc = next(stream)
        except StopIteration:
            return documents, []
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return documents, [f"{source.name}#{index}: not YAML: {first}"]
        if doc is None:
            index -= 1
            continue
        documents.append((f"{source.name}#{index}", doc))


def _label(outcome: Outcome) -> str:
    conversion = outcome.conversion
    return f"{outcome.where} {conversion.kind} {conversion.name}" if conversion else outcome.where


def _dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False) if objects else ""


def convert(
    files: list[str],
    out: TextIO,
    err: TextIO,
    *,
    recursive: bool = False,
    output_dir: str | None = None,
    strict: bool = False,
    stdin: TextIO | None = None,
    flagger_provider: str = DEFAULT_PROVIDER,
) -> int:
    if files.count(STDIN) > 1:
        raise CliError("-f - (standard input) can be given once", code=2)
    read = read_sources(files, recursive, stdin if stdin is not None else sys.stdin)
    converted = dropped = refused = unread = left = 0
    any_dropped = False  # a MetricTemplate writes nothing of its own but may drop fields
    # All documents are converted together: a Canary's MetricTemplate or Deployment may be in
    # another file.
    documents: list[tuple[str, Any]] = []
    unreadable: dict[str, list[str]] = {}
    for source in read:
        found, unreadable[source.name] = documents_of(source)
        documents += found
    outcomes: dict[str, list[Outcome]] = {}
    for outcome in convert_documents(documents, flagger_provider):
        outcomes.setdefault(outcome.where.rsplit("#", 1)[0], []).append(outcome)
    by_file: list[tuple[Source, list[dict[str, Any]]]] = []
    for source in read:
        errors = unreadable[source.name]
        objects: list[dict[str, Any]] = []
        for outcome in outcomes.get(source.name, []):
            label, conversion = _label(outcome), outcome.conversion
            if outcome.error is not None:
                errors.append(f"{label}: {outcome.error}")
            elif conversion is None:
                left += 1
            elif conversion.refused is not None:
                refused += 1
                print(f"{label}: refused: {conversion.refused}", file=err)
            else:
                objects += conversion.objects
                any_dropped = any_dropped or bool(conversion.dropped)
                for line in conversion.dropped:
                    print(f"{label}: {line}", file=err)
                for note in conversion.notes:
                    print(f"{label}: note: {note}", file=err)
                if conversion.objects:
                    dropped += bool(conversion.dropped)
                    converted += not conversion.dropped
        for line in errors:
            print(line, file=err)
        unread += len(errors)
        by_file.append((source, objects))
    if output_dir is None:
        out.write(_dump([o for _, objects in by_file for o in objects]))
    else:
        for source, objects in by_file:
            if objects:
                path = Path(output_dir) / source.output
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"# rollout convert -f {source.name}\n" + _dump(objects), encoding="utf-8")
    print(
        f"{converted} converted, {dropped} converted with fields not carried over, {refused} refused, "
        f"{unread} document(s) not read; {left} other object(s) left as they are",
        file=err,
    )
    return 1 if refused or unread or (strict and any_dropped) else 0
