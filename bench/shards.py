"""bench/scale.py's wave with 1, 2 and 3 sharded controller replicas: does sharding add throughput?

The wave is bench/scale.py's, through its own functions: N canary Rollouts (1 replica each, their
own HTTPRoute and Services, steps `setWeight 20`, `pause 2s`, `setWeight 60`) are created and left
to become Healthy; then all are given a new image at once. Each (N, replicas) runs on a control
plane of its own (tests/cluster, started as bench/scale.py starts it: no nodes, a stand-in
kubelet marks Pods Ready), driven by R `rollout controller --shards S` processes (S = 6 by default
for every R, so the split of the Rollouts over the shards is the same in every row and only the
replica count changes; with R = 1 the one replica holds all 6). Every replica gets the same
arguments as bench/scale.py's controller (64 workers, the bench's namespace), a POD_NAME of its
own (its identity), and the shard Leases in the bench's namespace (default timings: 15/10/2 s).
Before the Rollouts are created the bench waits until the shards are spread (every shard held,
R holders, none above ceil(S / R)). The first row of each N (`1, unsharded`; `--no-baseline`
leaves it out) is bench/scale.py's plain `rollout controller`, without Leases.

Printed per row: `healthy s`, the time until all are Healthy at first; first-step latency (the
route at 20%) and completion latency (Healthy on the new revision) as p50/p99/max, each from that
Rollout's own update; `wave s`, from the first update to the last completion, and `updates/s`,
N over it; the controllers' CPU over the wave summed over the replicas (`ctl CPU s`, and per
update); each replica's peak RSS (max and mean over the replicas); the API server's and etcd's
CPU over the wave; `busy cores`, the whole machine's CPU over the wave (/proc/stat), and `others'
cores`, the part of it that is none of the bench's processes (replicas, API server, etcd,
controller-manager, the bench with its stand-in kubelet): above about 0.1 something else ran on
the machine and the row is not clean; `hand-overs`, the shard Leases' transitions during the
wave (0 when no shard changed hands); `fenced`, per replica, its log records during the wave of
reconciles whose write the shard fence refused ("not the leader": its shard's Lease not renewed
within the renew deadline; the reconcile is retried with backoff), and `errors`, per replica, its
error records during the wave. A line per row adds the replicas' API requests during the wave
(the audit log: they share one user), the CPU seconds of each process, the shards each replica
held, each replica's log counts over its whole life and during the wave (`not renewed`: ticks of
the shard Leases that failed, as a request of theirs timed out), and where the logs are.

How to read the gain: this machine has 2 cores, and the API server, etcd, the controller-manager,
the stand-in kubelet, this bench's watches and every replica share them. A single replica is one
Python process (one event loop: at most one core); sharding lets R replicas use up to R cores,
but only the cores the control plane leaves free. When `busy cores` is near 2 during the wave,
the machine is saturated and a second or third replica can only take CPU from the API server and
etcd, so latency and updates/s barely move or get worse: that row measures the sharding's
overhead (every replica still watches every Rollout, Lease renewals), not the gain it would give
on a cluster whose control plane runs elsewhere. A gain shows here only while one replica is the
bottleneck (its `ctl CPU s` near `wave s`) and the machine has a core to spare; `ctl CPU s` summed
over the replicas, against the unsharded row, is the cost of sharding on any machine.

    python -m bench.shards 1000                  # replicas 1, 2 and 3 of 6 shards, and unsharded
    python -m bench.shards 100 1000 --replicas 1 3 --shards 6 --no-baseline

ROLLOUT_BENCH_LOGS=DIR keeps the replicas' logs there, a directory per row
(ROLLOUT_BENCH_LOG_LEVEL, WARNING by default).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import print_table
from bench.memory import code_version
from bench.scale import (
    Target,
    audited,
    controller_process,
    cpu_seconds,
    create_backends,
    create_rollouts,
    first_healthy,
    percentiles,
    target,
    track_rss,
    update_wave,
)
from rollout.api.vocabulary import LEASE_ROLE_LABEL
from rollout.kube import LEASES
from rollout.observability.logging import configure_logging

BALANCE_TIMEOUT = 120.0  # seconds for the replicas to spread the shards
PLANE = ("kube-apiserver", "etcd", "kube-controller-manager")
FENCED = "not the leader"  # guard.NotLeader's message, in a failed reconcile's record


class Replicas:
    """The controller processes of one row: one unsharded, or `count` replicas of `shards`."""

    def __init__(
        self, where: Target, count: int, shards: int | None, workers: int, logs: Path, shard_watch: str
    ) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []
        for index in range(count):
            log = logs / f"replica-{index}.log"
            if shards is None:  # bench/scale.py's controller, as it runs it
                self.processes.append(controller_process(where, workers, log))
                continue
            extra = ["--shards", str(shards), "--leader-election-namespace", where.namespace]
            extra += ["--shard-watch", shard_watch]
            env = {"POD_NAME": f"replica-{index}"}  # its identity: `replica-<index>_<random>`
            self.processes.append(controller_process(where, workers, log, extra, env))
        self.peaks = {process.pid: 0.0 for process in self.processes}
        self._track = track_rss(self.peaks)

    def sample(self) -> None:
        """At each poll of the wave: every replica still runs, and its peak RSS."""
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                raise RuntimeError(f"replica {index} exited with {process.returncode}: see {self.logs}")
        self._track()

    def cpu(self) -> float:
        return sum(cpu_seconds(process.pid) for process in self.processes)

    def log_counts(self, wave: float) -> list[collections.Counter[str]]:
        """Per replica, over its whole life: its records of writes refused by the fence, of
        shard Lease renewals that failed, its errors and its warnings; and the same from `wave`
        (wall-clock seconds) on, as `... in wave`."""
        found = []
        for index in range(len(self.processes)):
            counts: collections.Counter[str] = collections.Counter()
            for line in (self.logs / f"replica-{index}.log").read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                    stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
                except (ValueError, KeyError, TypeError, AttributeError):
                    record, stamp = {"level": "error"}, wave  # not a record of its own: a crash's output
                kinds = {
                    "fenced": FENCED in line,
                    "not renewed": record.get("event") == "shard leases not renewed",
                    "errors": record.get("level") in ("error", "critical"),
                    "warnings": record.get("level") == "warning",
                }
                for kind, seen in kinds.items():
                    counts[kind] += seen
                    counts[f"{kind} in wave"] += seen and stamp >= wave
            found.append(counts)
        return found

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


async def shard_leases(where: Target) -> dict[str, dict[str, Any]]:
    """The shard Leases' specs, by name."""
    leases = await where.kube.list(LEASES, where.namespace, f"{LEASE_ROLE_LABEL}=shard")
    return {lease["metadata"]["name"]: lease.get("spec") or {} for lease in leases}


def held_by(leases: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Shards per replica, by its POD_NAME (an identity is `POD_NAME_<random>`; "" for none)."""
    holders = (str(spec.get("holderIdentity") or "").rsplit("_", 1)[0] for spec in leases.values())
    return dict(sorted(collections.Counter(holders).items()))


def transitions(leases: dict[str, dict[str, Any]]) -> int:
    return sum(int(spec.get("leaseTransitions") or 0) for spec in leases.values())


async def spread(where: Target, replicas: Replicas, shards: int) -> dict[str, dict[str, Any]]:
    """Until every shard is held, by every replica, none above its fair share; the Leases then."""
    began = time.monotonic()
    fair = math.ceil(shards / len(replicas.processes))
    while True:
        replicas.sample()
        leases = await shard_leases(where)
        holders = held_by(leases)
        if (
            len(leases) == shards
            and "" not in holders
            and len(holders) == len(replicas.processes)
            and max(holders.values()) <= fair
        ):
            return leases
        if time.monotonic() - began > BALANCE_TIMEOUT:
            raise TimeoutError(f"shards not spread after {BALANCE_TIMEOUT:.0f} s: {dict(holders)}")
        await asyncio.sleep(0.5)


def cpu_by_part(where: Target, replicas: Replicas) -> dict[str, float]:
    """CPU seconds so far of the replicas (summed), the control plane's processes, and this one
    (the stand-in kubelet and the watches are its threads)."""
    assert where.plane is not None
    parts = {name: cpu_seconds(where.plane.pid_of(name)) for name in PLANE}
    return {"replicas": replicas.cpu(), **parts, "bench": cpu_seconds(os.getpid())}


def busy_ticks() -> tuple[int, int]:
    """The machine's busy and total CPU ticks so far (/proc/stat; idle and iowait are not busy)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def cores_over(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * busy / total if total else 0.0


async def run(
    n: int, count: int, shards: int | None, workers: int, timeout: float, shard_watch: str = "selector"
) -> dict[str, Any]:
    label = f"{count}, {shards} shards" if shards is not None else f"{count}, unsharded"
    if shards is not None and shard_watch != "selector":
        label += f", {shard_watch}"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        root = Path(os.environ.get("ROLLOUT_BENCH_LOGS") or workdir)
        logs = root / f"N{n}-{count}x{shards or 'unsharded'}"
        async with target(workdir, emulator=False) as where:
            assert where.plane is not None, "the project's control plane, not ROLLOUT_BENCH_KUBECONFIG's"
            names = [f"app-{i}" for i in range(n)]
            await create_backends(where, names)
            replicas = Replicas(where, count, shards, workers, logs, shard_watch)
            try:
                at_start = await spread(where, replicas, shards) if shards is not None else {}
                began = time.monotonic()
                await create_rollouts(where, names)
                first_revision = await first_healthy(where, names, began, timeout, replicas.sample)
                all_healthy = time.monotonic() - began
                before = await shard_leases(where) if shards is not None else {}
                cpu_before, ticks_before = cpu_by_part(where, replicas), busy_ticks()
                wall_began = time.time()
                first_step, completed, first_sent = await update_wave(
                    where, names, first_revision, timeout, replicas.sample
                )
                took = time.monotonic() - first_sent
                cpu = {part: used - cpu_before[part] for part, used in cpu_by_part(where, replicas).items()}
                busy = cores_over(ticks_before, busy_ticks())
                after = await shard_leases(where) if shards is not None else {}
                await asyncio.sleep(2.5)  # the audit log is written in batches, a second apart
                counts, _ = audited(where.plane, wall_began, time.time() - 2.5)
            finally:
                replicas.stop()
            logged = replicas.log_counts(wall_began)
            peaks = list(replicas.peaks.values())
    leases = sum(v for k, v in counts.items() if k.endswith(" leases"))
    print(
        f"N={n} {label}: wave {took:.0f} s; shards held at the start {held_by(at_start)}, "
        f"after the wave {held_by(after)}; API requests during the wave "
        f"{sum(counts.values())} ({leases} on Leases): {dict(sorted(counts.items()))}; CPU s "
        f"{ {part: round(used, 1) for part, used in cpu.items()} }; "
        f"logs per replica {[dict(c) for c in logged]} in {logs}",
        flush=True,
    )
    return {
        "N": n,
        "replicas": label,
        "healthy s": round(all_healthy, 1),
        "step1 p50/99/max": percentiles(list(first_step.values())),
        "done p50/99/max": percentiles(list(completed.values())),
        "wave s": round(took, 1),
        "updates/s": round(n / took, 1),
        "ctl CPU s": round(cpu["replicas"], 1),
        "CPU/update ms": round(1000 * cpu["replicas"] / n),
        "RSS max MiB": round(max(peaks)),
        "RSS mean MiB": round(statistics.mean(peaks)),
        "server CPU s": round(cpu["kube-apiserver"], 1),
        "etcd CPU s": round(cpu["etcd"], 1),
        "busy cores": round(busy, 2),
        "others' cores": round(busy - sum(cpu.values()) / took, 2),
        "hand-overs": transitions(after) - transitions(before) if shards is not None else "-",
        "fenced": "/".join(str(c["fenced in wave"]) for c in logged),
        "errors": "/".join(str(c["errors in wave"]) for c in logged),
    }


async def main(
    sizes: list[int],
    replica_counts: list[int],
    shards: int,
    baseline: bool,
    workers: int,
    timeout: float,
    shard_watch: str,
) -> None:
    configure_logging("ERROR", json=False)
    print(f"controller code: {code_version()}; {os.cpu_count()} cores", flush=True)
    began = time.monotonic()
    rows = []
    plan: list[tuple[int, int, int | None]] = []
    for n in sizes:
        plan += [(n, 1, None)] if baseline else []
        plan += [(n, count, shards) for count in replica_counts]
    for n, count, shard_count in plan:
        row_began = time.monotonic()
        try:
            rows.append(await run(n, count, shard_count, workers, timeout, shard_watch))
            print(f"row: {rows[-1]}", flush=True)  # kept if a later row fails or the run is stopped
        except Exception as exc:  # one row's failure (a timeout, a replica that exited): the others still run
            print(f"N={n}, {count} replicas, shards {shard_count}: failed: {exc!r}", flush=True)
        print(f"row took {time.monotonic() - row_began:.0f} s (set-up included)", flush=True)
    print()
    if rows:
        print_table(rows, width=14)
    print(f"\nwhole run: {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="+", type=int, help="numbers of Rollouts (N)")
    parser.add_argument("--replicas", nargs="+", type=int, default=[1, 2, 3], help="replica counts")
    parser.add_argument("--shards", type=int, default=6, help="--shards of every replica (at least 2)")
    parser.add_argument(
        "--no-baseline", dest="baseline", action="store_false", help="no unsharded single-replica row"
    )
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for each phase")
    parser.add_argument(
        "--shard-watch",
        choices=("selector", "filter"),
        default="selector",
        help="the replicas' --shard-watch: ReplicaSets selected by the server, or filtered after the watch",
    )
    options = parser.parse_args()
    if options.shards < 2:
        parser.error("--shards must be at least 2 (1 is the unsharded controller: the baseline row)")
    asyncio.run(
        main(
            options.sizes,
            options.replicas,
            options.shards,
            options.baseline,
            options.workers,
            options.timeout,
            options.shard_watch,
        )
    )
