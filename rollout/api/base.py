"""Shared pydantic configuration for the API models: camelCase on the wire, strict on input.

Spec models forbid unknown fields so that a typo is an InvalidSpec with its field path rather than
a silently ignored setting (a real API server prunes them before we see them anyway).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel

_PERCENT = re.compile(r"^(\d+)%$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class SpecModel(BaseModel):
    """A spec object: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it (camelCase, unset fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(BaseModel):
    """A status object: camelCase aliases, unknown fields ignored (written by other versions)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _check_int_or_percent(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an integer or a percentage such as '25%'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if isinstance(value, str) and _PERCENT.match(value):
        return value
    raise ValueError(f"must be an integer or a percentage such as '25%', got {value!r}")


def parse_duration(value: int | str) -> float:
    """Seconds in a Go-style duration ('30s', '2m', '1h30m', '500ms') or an integer of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a string such as '30s' or an integer of seconds")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return float(value)
    text = value.strip()
    if text.isdigit():
        return float(text)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{value!r} is not a duration: use forms such as '30s', '2m', '1h30m' or seconds")
    return total


def _check_duration(value: Any) -> Any:
    parse_duration(value)
    return value


# Both are `x-kubernetes-int-or-string` in the CRD; the string forms are checked here.
IntOrPercent = Annotated[int | str, BeforeValidator(_check_int_or_percent)]
Duration = Annotated[int | str, BeforeValidator(_check_duration)]


def resolve_int_or_percent(value: int | str, total: int, *, round_up: bool) -> int:
    """An absolute count from an int-or-percent of `total` (surge rounds up, unavailable down)."""
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    scaled = total * percent
    return -(-scaled // 100) if round_up else scaled // 100
