"""What converting one source object gives: the objects written, the fields not carried over, and
notes a person must act on; or a refusal with its reason. Shared by argo.py, flagger.py and the
`rollout convert` command (rollout/cli/convert.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rollout.convert.walk import Dropped

API_VERSION = "rollout.dev/v1alpha1"


@dataclass
class Conversion:
    """One source object's result. `refused` set: nothing of it is written."""

    kind: str
    name: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: str | None = None


def new_object(kind: str) -> dict[str, Any]:
    """An empty object of `kind` of this project, ready for the walk to fill."""
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {}, "spec": {}}


def dig(doc: Any, *keys: str) -> Any:
    """`doc[k1][k2]...`, or None where a level is missing or not a map."""
    for key in keys:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def name_from_prefix(source: dict[str, Any], out: dict[str, Any]) -> None:
    """An object known by its generateName only (an AnalysisRun, typically) is named after it."""
    meta = source.get("metadata")
    prefix = meta.get("generateName") if isinstance(meta, dict) else None
    if prefix and not out["metadata"].get("name"):
        out["metadata"]["name"] = str(prefix).rstrip("-")


def name_of(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    return str(meta.get("name") or meta.get("generateName") or "?") if isinstance(meta, dict) else "?"
