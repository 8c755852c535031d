"""What the image does, without pulling a base image: the Dockerfile's steps run here (build the
wheel, install it in a clean virtualenv, run the entrypoint), and the Dockerfile is checked to
run those same steps as a non-root user."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Neither this checkout on the path nor anything else of the test's environment leaks in.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


def test_wheel_installs_in_a_clean_virtualenv_and_the_entrypoint_runs(tmp_path):
    wheels = tmp_path / "wheels"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(wheels),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=CLEAN_ENV,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = wheels.glob("rollout_controller-*.whl")
    env_dir = tmp_path / "venv"
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(env_dir)], env=CLEAN_ENV, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    pip = env_dir / "bin" / "pip"
    done = subprocess.run(
        [str(pip), "install", "-q", str(wheel)], capture_output=True, text=True, timeout=600, env=CLEAN_ENV
    )
    assert done.returncode == 0, done.stderr
    # Read-only: the entrypoint writes nothing (no bytecode), as on the image's read-only root.
    help_run = subprocess.run(
        [str(env_dir / "bin" / "rollout"), "controller", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": str(env_dir / "bin"), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "--leader-elect" in help_run.stdout and "--http-port" in help_run.stdout
    # The installed package is the wheel's, not this checkout's.
    where = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", "import rollout, sys; print(rollout.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": str(env_dir / "bin")},
    )
    assert str(env_dir) in where.stdout
    # The dashboard's page ships in the wheel (package data) and its command is there.
    page = subprocess.run(
        [
            str(env_dir / "bin" / "python"),
            "-c",
            "from importlib import resources; d = resources.files('rollout.dashboard') / 'static'; "
            "print(sorted(p.name for p in d.iterdir()))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": str(env_dir / "bin")},
    )
    assert page.stdout.strip() == "['app.css', 'app.js', 'index.html']", page.stderr
    help_run = subprocess.run(
        [str(env_dir / "bin" / "rollout"), "dashboard", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": str(env_dir / "bin"), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert help_run.returncode == 0 and "--read-only" in help_run.stdout, help_run.stderr


def test_dockerfile_runs_those_steps_as_a_non_root_user():
    lines = (REPO / "Dockerfile").read_text().splitlines()
    text = "\n".join(lines)
    assert "pip wheel --no-deps --wheel-dir /wheels ." in text
    assert "python -m venv /venv" in text and "/venv/bin/pip install --no-cache-dir /wheels/*.whl" in text
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert 'ENTRYPOINT ["rollout"]' in text and 'CMD ["controller"]' in text
    ignored = (REPO / ".dockerignore").read_text()
    assert ignored.splitlines()[1] == "*" and "!rollout/" in ignored
