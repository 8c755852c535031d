"""`rollout controller` as a real subprocess, for tests that kill and restart it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


class ControllerProcesses:
    def __init__(self, kubeconfig: str, namespace: str, logs: Path, resync_seconds: float = 1.0) -> None:
        self.args = [
            sys.executable,
            "-m",
            "rollout",
            "controller",
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            namespace,
            "--resync-seconds",
            str(resync_seconds),
        ]
        self.logs = logs
        self.running: list[tuple[subprocess.Popen[bytes], object]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"controller-{len(self.running)}.log").open("w")
        proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        self.running.append((proc, log))
        return proc

    def stop_all(self) -> None:
        for proc, log in self.running:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            log.close()  # type: ignore[attr-defined]
