"""The `rollout` command run as a process of its own, the way kubectl runs a plugin: its
environment, a runner against the emulated cluster, and the canary the command tests drive."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.emulated import NS

ROOT = Path(__file__).resolve().parents[2]
# The canary the command tests drive: two weights, each followed by a pause until promoted.
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


def cli_env():
    """The environment of `python -m rollout`: this checkout first on the path, 200 columns."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


async def rollout_cli(kubeconfig, *argv, namespace=NS):
    """Run `rollout ARGV... --kubeconfig … -n shop`; (exit code, stdout, stderr)."""
    flags = [] if argv[0] == "lint" else ["--kubeconfig", str(kubeconfig), "-n", namespace]
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rollout", *argv, *flags],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr
