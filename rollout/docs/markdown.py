"""Markdown pieces shared by the generated reference pages: tables and their cells."""

from __future__ import annotations

import re
from collections.abc import Sequence

CODE_SPAN = re.compile(r"(`[^`]*`)")


def cell(text: str) -> str:
    """Text that stays inside one table cell: one line, pipes escaped outside code spans (inside
    one, Python-Markdown's tables keep a pipe as it is and would show the backslash)."""
    parts = CODE_SPAN.split(" ".join(text.split()))
    return "".join(part if CODE_SPAN.fullmatch(part) else part.replace("|", "\\|") for part in parts)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table, one line per row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
