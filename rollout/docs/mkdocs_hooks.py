"""MkDocs hook (mkdocs.yml `hooks:`): parts of a page shown only when a generated file exists.

docs/migration-table.md is generated only where `rollout convert` exists (rollout/docs/generate.py).
A page wraps what needs such a file in `<!-- if PATH -->` ... `<!-- end if -->`; without the file
the part is left out, instead of the build failing on a missing include.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONDITIONAL = re.compile(r"^<!-- if (?P<path>\S+) -->\n(?P<body>.*?)^<!-- end if -->\n?", re.M | re.S)


def _keep_if_present(match: re.Match[str]) -> str:
    return match["body"] if (REPO / match["path"]).is_file() else ""


def on_page_markdown(markdown: str, **_: Any) -> str:
    return CONDITIONAL.sub(_keep_if_present, markdown)
