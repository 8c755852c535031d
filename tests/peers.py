"""The peers' own manifests, as their Go modules ship them: Argo Rollouts and Flagger, pinned in
tests/peers_manifests/go.mod and fetched into the Go module cache when missing (`go mod
download`); nothing of them is copied into this repository. Used by the `rollout convert` tests
(tests/unit/test_convert_peers.py, tests/e2e/test_convert_e2e.py)."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.processes import missing_part

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "tests" / "peers_manifests"
ARGO = "github.com/argoproj/argo-rollouts"
FLAGGER = "github.com/fluxcd/flagger"


# Flagger's end-to-end tests apply their Canaries from shell here-documents, and its documentation
# shows them in fenced YAML blocks.
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?[^\n]*\n(.*?)\n\s*\1\s*\n", re.S)
FENCE = re.compile(r"```ya?ml\n(.*?)```", re.S)


def here_documents(script: Path) -> list[str]:
    return [m.group(2) for m in HEREDOC.finditer(script.read_text(encoding="utf-8"))]


def flagger_blocks(root: Path, out: Path) -> list[Path]:
    """The Flagger manifests in `root`'s shell scripts and Markdown (blocks naming flagger.app/),
    one file each under `out`, named after where they were found."""
    written = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".sh":
            blocks = here_documents(path)
        elif path.suffix == ".md":
            blocks = [m.group(1) for m in FENCE.finditer(path.read_text(encoding="utf-8"))]
        else:
            continue
        for index, block in enumerate(blocks):
            if "flagger.app/" in block:
                name = path.relative_to(root.parent).as_posix().replace("/", "__")
                written.append(out / f"{name}.{index}.yaml")
                written[-1].write_text(block, encoding="utf-8")
    return written


class ModulesUnavailable(Exception):
    """Go is missing, or the modules could not be downloaded."""


@functools.cache
def module_dirs() -> dict[str, Path]:
    """Module path -> its directory in the Go module cache (downloaded if missing)."""
    if shutil.which("go") is None:
        raise ModulesUnavailable("Go is needed to fetch the peers' modules (go mod download)")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    done = subprocess.run(
        ["go", "mod", "download", "-json", ARGO, FLAGGER],
        cwd=PEERS,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    found: dict[str, Path] = {}
    decoder, text = json.JSONDecoder(), done.stdout.strip()
    while text:
        info, end = decoder.raw_decode(text)
        text = text[end:].strip()
        if "Dir" in info:
            found[info["Path"]] = Path(info["Dir"])
    if set(found) != {ARGO, FLAGGER}:
        raise ModulesUnavailable(
            f"go mod download {ARGO} {FLAGGER} failed: {done.stderr.strip() or done.stdout[-500:]}"
        )
    return found


def require_modules() -> dict[str, Path]:
    """module_dirs(), or the calling test skipped saying why (failed under CI)."""
    try:
        return module_dirs()
    except ModulesUnavailable as exc:
        missing_part(str(exc))
