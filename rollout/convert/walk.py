"""The walk under every converter: each field of a source object is looked up in the rules of
mapping.py, so that nothing is dropped without a line saying so.

`walk` copies what `copy` rules name into the output object, leaves `custom` fields to the
converter's own code, and returns one `Dropped` for every field a `drop` rule names or no rule
names at all. Paths are spelled as people read them (`spec.strategy.canary.steps[2].experiment`);
rules match them with `[]` for any index and `*` for any map key.
"""

from __future__ import annotations

import copy as copying
from dataclasses import dataclass
from typing import Any

from rollout.convert.mapping import Rule

Part = str | int
UNKNOWN = "not known to the converter"


@dataclass(frozen=True)
class Dropped:
    """A source field not carried over, and why."""

    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}: not carried over: {self.why}"


def spell(parts: list[Part]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _pattern(parts: list[Part]) -> str:
    return spell(["[]" if isinstance(p, int) else p for p in parts]).replace(".[]", "[]")


def _star_patterns(parts: list[Part]) -> list[str]:
    """The path's pattern, then with its last map key as `*` (a rule for any key of a map)."""
    pattern = _pattern(parts)
    if parts and isinstance(parts[-1], str):
        return [pattern, _pattern(parts[:-1]) + ".*"]
    return [pattern]


def _split(path: str) -> list[str]:
    """A rule's target path into keys, `[]` as its own part."""
    out: list[str] = []
    for piece in path.split("."):
        lists = 0
        while piece.endswith("[]"):
            piece, lists = piece[:-2], lists + 1
        out += [piece] if piece else []
        out += ["[]"] * lists
    return out


def put(target: dict[str, Any], path: str, indices: list[int], value: Any) -> None:
    """Set `path` in `target`, its `[]` taking `indices` in order; lists grow with None holes
    (removed by `compact`), maps are created on the way."""
    parts = _split(path)
    where: Any = target
    pending = list(indices)
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        nxt: Any = [] if not last and parts[position + 1] == "[]" else {}
        if part == "[]":
            index = pending.pop(0) if pending else len(where)
            while len(where) <= index:
                where.append(None)
            if last:
                where[index] = value
            else:
                if where[index] is None:
                    where[index] = nxt
                where = where[index]
        else:
            if last:
                where[part] = value
            else:
                where = where.setdefault(part, nxt)


def compact(value: Any) -> Any:
    """Holes and emptied items out of the lists (a step whose only field was dropped)."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value if v is not None and v != {}]
    return value


def walk(source: dict[str, Any], rules: list[Rule], output: dict[str, Any]) -> list[Dropped]:
    """Apply `rules` to every field of `source`, copying into `output`; what is not carried over."""
    by_source = {rule.source: rule for rule in rules}
    # Paths above some rule's field: an empty object there (`canary: {}`) is kept as it is.
    parents = {rule.source[:i] for rule in rules for i, ch in enumerate(rule.source) if ch in ".["}
    dropped: list[Dropped] = []

    def visit(value: Any, parts: list[Part]) -> None:
        exact = _pattern(parts)
        # A rule for any key (`plugins.*`) yields to rules below a key of its own.
        star = [p for p in _star_patterns(parts)[1:] if exact not in parents]
        rule = next((by_source[p] for p in [exact, *star] if p in by_source), None)
        if rule is not None:
            if rule.how == "copy":
                assert rule.target is not None
                indices = [p for p in parts if isinstance(p, int)]
                put(output, rule.target, indices, copying.deepcopy(value))
            elif rule.how == "drop":
                dropped.append(Dropped(spell(parts), rule.note))
            return
        if isinstance(value, dict) and value:
            for key, item in value.items():
                visit(item, [*parts, str(key)])
        elif isinstance(value, list) and value:
            for index, item in enumerate(value):
                visit(item, [*parts, index])
        elif value in ({}, []) and _pattern(parts) in parents:
            put(output, _pattern(parts), [p for p in parts if isinstance(p, int)], value)
        elif parts:
            dropped.append(Dropped(spell(parts), UNKNOWN))

    for key in source:
        if key not in ("apiVersion", "kind"):
            visit(source[key], [key])
    return dropped
