"""`rollout controller` as a real subprocess, for tests that kill and restart it. Its arguments
are those of the Helm chart's rendered Deployment when a test passes them (`args`), plus where
the emulated cluster is and a free port for /healthz, /readyz and /metrics."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest


def missing_part(message: str) -> NoReturn:
    """A real part a test needs is not installed: a skip saying so, a failure under CI (which
    installs every part, .ci/run)."""
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def debian_binary(name: str, package: str) -> str:
    """The path of `name`, from Debian's `package`."""
    path = shutil.which(name)
    if path is None:
        missing_part(f"the {name} binary is missing (apt-get install -y {package})")
    return path


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (bound to 0, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ControllerProcesses:
    def __init__(
        self,
        kubeconfig: str,
        namespace: str,
        logs: Path,
        resync_seconds: float = 1.0,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        chart_args = args or [
            "controller",
            "--namespace",
            namespace,
            "--resync-seconds",
            str(resync_seconds),
        ]
        self.args = [sys.executable, "-m", "rollout", *chart_args, "--kubeconfig", kubeconfig]
        self.env = env or {}
        self.logs = logs
        self.running: list[tuple[subprocess.Popen[bytes], object]] = []
        self.ports: list[int] = []

    def start(self) -> subprocess.Popen[bytes]:
        index = len(self.running)
        log = (self.logs / f"controller-{index}.log").open("w")
        port = free_port()
        env = {**os.environ, "POD_NAME": f"controller-{index}", **self.env}
        # The last --http-port wins over the chart's: processes on one host need one port each.
        proc = subprocess.Popen(
            [*self.args, "--http-address", "127.0.0.1", "--http-port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.running.append((proc, log))
        self.ports.append(port)
        return proc

    def log_of(self, index: int) -> str:
        return (self.logs / f"controller-{index}.log").read_text()

    def stop_all(self) -> None:
        for proc, log in self.running:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            log.close()  # type: ignore[attr-defined]
