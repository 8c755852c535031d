"""Sums a py-spy profile in collapsed-stack form (bench/scale.py's ROLLOUT_BENCH_PROFILE) by
function: the share of samples in which each function is on the stack (inclusive) and at its top
(self), as a table of the heaviest. Idle samples (threads waiting in select, poll or a lock) are
left out, so the shares are of the controller's busy time.

    python -m bench.profile /tmp/profile.txt [--top 25] [--only rollout]
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

from bench.common import print_table

IDLE = (
    "select (selectors.py",
    "poll (selectors.py",
    "wait (threading.py",
    "_worker (concurrent",
    "sleep",
    "SSLSocket.read (ssl.py",
    "SSLSocket.recv_into (ssl.py",
    "EpollSelector.select",
)


def summarise(path: Path, top: int, only: str) -> list[dict[str, object]]:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or any(frames[-1].startswith(idle) for idle in IDLE):
            continue
        samples = int(count)
        busy += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    rows = []
    for frame, samples in inclusive.most_common():
        if only and only not in frame:
            continue
        rows.append(
            {"function": frame[:70], "inclusive %": 100 * samples / busy, "self %": 100 * own[frame] / busy}
        )
        if len(rows) == top:
            break
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", default="", help="only frames whose text has this (a module path)")
    options = parser.parse_args()
    print_table(summarise(options.profile, options.top, options.only), width=12)
