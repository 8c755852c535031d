"""Argument substitution: `{{args.name}}` in a query or a condition, filled in safely.

In a query, a value inside a PromQL string literal is escaped for that literal's quote, so a
value can never end the label matcher it sits in; outside any string only plain tokens (numbers,
durations, metric and label names) are allowed. In a condition, a value becomes a number or a
quoted string literal of the expression language, never code."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache

PLACEHOLDER = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")
# PromQL string literals: double- or single-quoted with backslash escapes, or raw in backticks.
_STRINGS = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`|'
_PLAIN_TOKEN = re.compile(r"^[A-Za-z0-9_.:]+$")
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class ArgError(ValueError):
    """An argument is missing or cannot be placed where the template puts it."""


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def _value(name: str, args: Mapping[str, str]) -> str:
    if name not in args:
        raise ArgError(f"argument {name!r} has no value (give it in the Rollout's analysis args)")
    return args[name]


def escape_label_value(value: str, quote: str = '"') -> str:
    """`value` as the inside of a PromQL string literal opened with `quote`."""
    escaped = "".join(_ESCAPES.get(ch, ch) for ch in value)
    return escaped.replace(quote, "\\" + quote)


@lru_cache(maxsize=8)
def _strings_or(placeholder: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(_STRINGS + placeholder.pattern, re.DOTALL)


def substitute_query(
    query: str, args: Mapping[str, str], placeholder: re.Pattern[str] = PLACEHOLDER, what: str = "argument"
) -> str:
    """`placeholder` (group 1: the name) filled from `args`; `what` names its values in errors
    (the compare provider fills {{side.NAME}} the same way)."""

    def fill(match: re.Match[str]) -> str:
        literal = match.group(0)
        if match.group(1) is not None:  # a bare placeholder, outside any string
            value = _value(match.group(1), args)
            if not _PLAIN_TOKEN.match(value):
                raise ArgError(
                    f"{what} {match.group(1)!r} = {value!r} is used outside a quoted label value, "
                    "where only numbers, durations and names are allowed"
                )
            return value
        quote = literal[0]

        def inner(found: re.Match[str]) -> str:
            value = _value(found.group(1), args)
            if quote == "`":
                if "`" in value:
                    raise ArgError(f"{what} {found.group(1)!r} contains a backtick")
                return value
            return escape_label_value(value, quote)

        return placeholder.sub(inner, literal)

    return _strings_or(placeholder).sub(fill, query)


def substitute_condition(condition: str, args: Mapping[str, str]) -> str:
    def literal(match: re.Match[str]) -> str:
        value = _value(match.group(1), args)
        try:
            number = float(value)
        except ValueError:
            return json.dumps(value)
        return value.strip() if math.isfinite(number) else json.dumps(value)

    return PLACEHOLDER.sub(literal, condition)
