"""Every generated documentation file and where it goes; written by `python -m rollout.docs`.

The migration table belongs to `rollout convert` (rollout/convert/mapping.py): it is generated
here only when that module is present, so that a checkout without it builds without the table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from rollout.docs import api, cli, helm, metrics

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "reference"
MIGRATION_TABLE = REPO / "docs" / "migration-table.md"


def _migration_table() -> Callable[[], str] | None:
    """`migration_table_markdown` of rollout.convert.mapping, when this checkout has it."""
    try:
        mapping = importlib.import_module("rollout.convert.mapping")
    except ModuleNotFoundError as exc:
        if exc.name not in ("rollout.convert", "rollout.convert.mapping"):
            raise  # the module is there but something it imports is not: say so
        return None
    return mapping.migration_table_markdown


def outputs() -> dict[Path, str]:
    """Path -> the text it must hold."""
    pages = {
        REFERENCE / "rollout.md": api.rollout_page(),
        REFERENCE / "analysistemplate.md": api.template_page(),
        REFERENCE / "cli.md": cli.page(),
        REFERENCE / "helm-values.md": helm.page(REPO / "charts" / "rollout-controller"),
        REFERENCE / "metrics.md": metrics.page(),
    }
    table = _migration_table()
    if table is not None:
        text = table()
        pages[MIGRATION_TABLE] = text if text.endswith("\n") else text + "\n"
    return pages


def write_outputs() -> list[Path]:
    written = []
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def stale_outputs() -> list[Path]:
    """The generated files that are missing or differ from what their sources give now."""
    return [path for path, text in outputs().items() if not path.exists() or path.read_text() != text]
