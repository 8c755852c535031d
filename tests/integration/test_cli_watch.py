"""`rollout get rollout NAME --watch` as a person sees it: run in a pseudo-terminal (pexpect),
its output fed to a VT100 screen (pyte), the screen read while the canary moves, then Ctrl-C."""

import asyncio
import sys
import time

import pexpect
import pyte

from rollout.kube import ROLLOUTS
from tests.emulated import NS, paused_at, promote, setup, weight_is
from tests.integration.command_line import ROOT, STEPS, cli_env
from tests.manifests import image_patch
from tests.waiting import wait_for

ROWS, COLUMNS = 30, 140


class Terminal:
    def __init__(self, argv):
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.child = pexpect.spawn(
            argv[0],
            argv[1:],
            env={k: v for k, v in cli_env().items() if k not in ("COLUMNS", "LINES")} | {"TERM": "xterm"},
            dimensions=(ROWS, COLUMNS),
            cwd=str(ROOT),
        )

    def pump(self):
        try:
            while True:
                chunk = self.child.read_nonblocking(65536, timeout=0.05)
                self.raw += chunk
                self.stream.feed(chunk)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass

    def text(self):
        self.pump()
        return "\n".join(line.rstrip() for line in self.screen.display)

    async def shows(self, *words, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = await asyncio.to_thread(self.text)
            if all(w in text for w in words):
                return text
            await asyncio.sleep(0.1)
        raise AssertionError(f"the screen never showed {words}:\n{text}\n{self.raw[-2000:]!r}")


async def test_get_watch_redraws_in_place_until_ctrl_c(cluster, tmp_path):
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    async with cluster.controller():
        v1 = (await setup(cluster, STEPS))["stableRevision"]
        term = Terminal(
            [
                sys.executable,
                "-m",
                "rollout",
                "get",
                "rollout",
                "web",
                "--watch",
                "--interval",
                "0.3",
                "--kubeconfig",
                str(kubeconfig),
                "-n",
                NS,
            ]
        )
        try:
            await term.shows("Rollout shop/web  Healthy", f"{v1} (stable)", "web-stable 100, web-canary 0")
            await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
            await wait_for(paused_at(cluster, 1), what="paused at step 2")
            screen = await term.shows(
                "Suspended", "Step: 2/4: pause (until promoted)", "web-stable 80, web-canary 20"
            )
            # Redrawn in place: one tree on the screen, not one appended per refresh.
            assert screen.count("Rollout shop/web") == 1 and "Healthy" not in screen.splitlines()[0]
            assert "(canary)" in screen and "web:2" in screen
            await promote(cluster)
            await wait_for(weight_is(cluster, 50), what="50%")
            screen = await term.shows("Step: 4/4: pause (until promoted)", "web-stable 50, web-canary 50")
            assert screen.count("Rollout shop/web") == 1
            term.child.sendintr()
            await asyncio.to_thread(term.child.expect, pexpect.EOF, timeout=10)
            term.stream.feed(term.child.before)
            term.child.close()
            assert term.child.exitstatus == 0
            # Back on the normal screen, the last frame stays for the person to read.
            last = "\n".join(line.rstrip() for line in term.screen.display)
            assert last.count("Rollout shop/web") == 1 and "web-stable 50, web-canary 50" in last
        finally:
            if term.child.isalive():
                term.child.terminate(force=True)
