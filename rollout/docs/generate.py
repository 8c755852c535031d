"""Every generated documentation file and where it goes; written by `python -m rollout.docs`.
The migration table is rendered from the mapping `rollout convert` follows
(rollout/convert/mapping.py)."""

from __future__ import annotations

from pathlib import Path

from rollout.convert.mapping import migration_table_markdown
from rollout.docs import api, cli, helm, metrics

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "reference"
MIGRATION_TABLE = REPO / "docs" / "migration-table.md"


def outputs() -> dict[Path, str]:
    """Path -> the text it must hold."""
    pages = {
        REFERENCE / "rollout.md": api.rollout_page(),
        REFERENCE / "analysistemplate.md": api.template_page(),
        REFERENCE / "cli.md": cli.page(),
        REFERENCE / "helm-values.md": helm.page(REPO / "charts" / "rollout-controller"),
        REFERENCE / "metrics.md": metrics.page(),
    }
    table = migration_table_markdown()
    pages[MIGRATION_TABLE] = table if table.endswith("\n") else table + "\n"
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
