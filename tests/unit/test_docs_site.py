"""The documentation site: `mkdocs build --strict` passes (and fails on a warning), the generated
reference pages are current, every API field is described, every example is shown on a page, and
the README's links and commands hold."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rollout.docs import api, generate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    # NO_MKDOCS_2_WARNING: mkdocs-material prints a banner about MkDocs 2.0 on every build.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = _mkdocs(ROOT / "mkdocs.yml", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return out


class _CodeText(HTMLParser):
    """The text inside <code> elements (highlighted code is split into spans; this joins it)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.blocks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "code":
            self.depth += 1
            if self.depth == 1:
                self.blocks.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "code" and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.blocks[-1] += data


def _code_blocks(page: Path) -> list[str]:
    parser = _CodeText()
    parser.feed(page.read_text())
    return parser.blocks


def test_site_builds_with_strict(site: Path) -> None:
    pages = {p.relative_to(site).parent.as_posix() for p in site.rglob("index.html")}
    for expected in ("strategies/canary", "routers/gateway-api", "analysis/prometheus", "reference/rollout"):
        assert expected in pages
    # No fonts, styles or scripts from elsewhere: the site works offline.
    remote = re.compile(r"<(?:script|link)\b[^>]*(?:src|href)=\"(?:https?:)?//", re.I)
    for page in site.rglob("*.html"):
        assert not remote.search(page.read_text()), page


def test_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    with (docs / "concepts.md").open("a") as page:
        page.write("\nSee [nowhere](no-such-page.md).\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: {docs}\n")
    result = _mkdocs(config, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr


def test_every_example_is_shown_in_full(site: Path) -> None:
    shown = [block for page in site.rglob("*.html") for block in _code_blocks(page)]
    missing = [
        str(path.relative_to(ROOT))
        for path in sorted(EXAMPLES.rglob("*"))
        if path.is_file() and not any(path.read_text().strip() in block for block in shown)
    ]
    assert not missing, f"examples not shown in full on any page: {missing}"


def test_performance_measurements_are_included_not_copied(site: Path) -> None:
    page = (site / "scaling" / "index.html").read_text()
    assert "Many canaries at once on the real API server" in page
    assert "Many canaries at once" not in (ROOT / "docs" / "scaling.md").read_text()


def test_generated_reference_pages_are_current() -> None:
    stale = [str(p.relative_to(ROOT)) for p in generate.stale_outputs()]
    assert not stale, f"run `python -m rollout.docs`: {stale}"


def test_check_finds_a_page_edited_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate, "REFERENCE", tmp_path / "reference")
    monkeypatch.setattr(generate, "MIGRATION_TABLE", tmp_path / "migration-table.md")
    generate.write_outputs()
    assert generate.stale_outputs() == []
    edited = tmp_path / "reference" / "cli.md"
    edited.write_text(edited.read_text().replace("--workers", "--threads"))
    assert generate.stale_outputs() == [edited]


def test_every_api_field_is_described() -> None:
    assert api.undocumented() == [], "describe these in the model or in rollout/docs/fields.yaml"
    assert api.stale_notes() == [], "rollout/docs/fields.yaml describes fields no model has"


def test_api_reference_shows_type_default_and_validation() -> None:
    page = (ROOT / "docs" / "reference" / "rollout.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `progressDeadlineSeconds` |"))
    assert "| integer | `600` | ≥ 1 |" in row
    surge = next(line for line in page.splitlines() if line.startswith("| `maxSurge` |"))
    assert "integer or percent" in surge and '`"25%"`' in surge


def test_cli_reference_lists_every_command() -> None:
    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    for command in ("controller", "sandbox", "check", "lint", "set image", "promote"):
        assert f"## rollout {command}\n" in page


def test_readme_keeps_its_two_commands_and_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "python3 -m pip install -e '.[sandbox]' && python3 -m rollout sandbox" in readme
    assert "python3 -m pip install -e '.[test]' && python3 -m pytest" in readme
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links, "the README links to the documentation pages"
    broken = [link for link in links if not (ROOT / link).is_file()]
    assert not broken, broken


def test_every_helm_value_is_described() -> None:
    page = (ROOT / "docs" / "reference" / "helm-values.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert len(rows) > 40
    undescribed = [row.split(" | ")[0] for row in rows if row.endswith("| — |")]
    assert not undescribed, f"give these a description in values.schema.json: {undescribed}"
