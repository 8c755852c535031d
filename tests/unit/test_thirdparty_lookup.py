"""A checkout without the third-party CRDs beside it: the tests that need them are skipped (saying
how to provide them), the others run, and under CI they fail instead; ROLLOUT_THIRDPARTY_CRDS
points anywhere else. Runs pytest in subprocesses on a copy of tests/ with no ../shared beside it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import thirdparty

REPO = Path(__file__).resolve().parents[2]
SUBSET = "tests/unit/test_structural.py"  # 5 tests need the Gateway API CRD, 4 do not


@pytest.fixture(scope="module")
def fresh_checkout(tmp_path_factory):
    root = tmp_path_factory.mktemp("clone") / "repo"  # nothing named `shared` beside it
    shutil.copytree(REPO / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def run_subset(root, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", thirdparty.ENV)}
    # tests/ from the copy, the rollout package from this checkout
    environ["PYTHONPATH"] = os.pathsep.join([str(root), str(REPO)])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", SUBSET],
        cwd=root,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|error)", result.stdout)}
    return result, counts


def test_skipped_not_failed_without_the_crds(fresh_checkout):
    result, counts = run_subset(fresh_checkout, **{thirdparty.ENV: str(fresh_checkout / "nowhere")})
    assert result.returncode == 0, result.stdout[-3000:]
    assert counts == {"passed": 4, "skipped": 5}, result.stdout[-3000:]
    assert thirdparty.ENV in result.stdout  # how to provide them ...
    assert str(fresh_checkout.parent / "shared") in result.stdout  # ... and where it looked


def test_failed_under_ci_without_the_crds(fresh_checkout):
    result, counts = run_subset(fresh_checkout, CI="true")
    assert result.returncode == 1, result.stdout[-3000:]
    assert counts == {"passed": 4, "failed": 5}, result.stdout[-3000:]
    assert thirdparty.ENV in result.stdout


def test_the_environment_variable_points_at_them(fresh_checkout):
    found = thirdparty.crds_dir()
    if found is None:
        pytest.skip(f"no third-party CRDs here to point {thirdparty.ENV} at")
    result, counts = run_subset(fresh_checkout, CI="true", **{thirdparty.ENV: str(found)})
    assert result.returncode == 0 and counts == {"passed": 9}, result.stdout[-3000:]
