"""The canary judge measured: false failures, detection, a global slowdown, time to verdict.

A real Prometheus (scraping every second) and workload processes of tests/prom/workload.py in
pairs, a reference and a canary revision each, under one load generator; every pair is judged
with the AnalysisTemplate of examples/canary-judge.yaml (p99 and mean latency, error ratio;
confidence 0.95, tolerance 5 % on latency), and again with every query at the model's defaults
(tolerance 0 %), through the controller's own code path
(resolve, the compare provider's range queries, the judge), and gated by fixed thresholds (the
built-in http-success-rate >= 99 % and http-latency-p99 <= THRESHOLD_P99 on the canary alone).

Scenarios, all at once, in back-to-back rounds of one window each:
- A/A: canary identical to the reference (50 ms, no errors): a failure is a false failure;
- p99 +20 %: the canary answers in 60 ms instead of 50 ms;
- errors 0.4 % vs 0.2 %: both under the 1 % threshold, one pair of 5 ms workloads under a load
  generator of its own at ERROR_RATE (about 150 requests/s a side: the counts test needs some
  25,000 requests a side to see the rise, so only the longer windows can);
- slowdown: every pod of the pair goes from 50 to 75 ms halfway through the window.
Then time to verdict: the A/A and p99 pairs judged again over several windows (step = window/10).

The error ratio is judged on counts (errors out of requests over the window); the example asks
for 1,000 requests a side, which the other pairs' 4 requests/s do not reach in a short window, so
the bench asks for MIN_COUNTED.

    python -m bench.judge [ROUNDS] [WINDOW_SECONDS]      # defaults 6 30; needs the prometheus binary
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
import yaml

from bench.common import print_table
from rollout.analysis.compare import PROVIDER as COMPARE
from rollout.analysis.judge import judge_samples
from rollout.analysis.prometheus import PROVIDER as PROMQL
from rollout.analysis.prometheus import Prometheus
from rollout.analysis.resolve import ResolvedMetric, TemplateKey, resolve
from rollout.analysis.runs import QueryResult, judge
from rollout.api.spec import RolloutAnalysis
from rollout.api.templates import parse_template
from tests.prom.stack import BUILTIN_TEMPLATES, LoadGenerator, PrometheusServer, Workload

NS = "bench"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "canary-judge.yaml"
THRESHOLD_P99 = "0.075"  # seconds: tight, as an SLO would be (the 50 ms app: 55-80 ms here)
SAMPLES = 12  # per series and window: the judge's minSamples is 10
RATE = 200.0  # requests per second over the workloads of every pair but the error pair
ERROR_RATE = 300.0  # requests per second over the error pair (its own load generator)
MIN_COUNTED = 50  # the counts query's minSamples here: requests counted on each side


@dataclass
class Scenario:
    name: str
    pairs: int
    reference_ms: float = 50.0
    canary_ms: float = 50.0
    reference_errors: float = 0.0
    canary_errors: float = 0.0
    slowdown_ms: float | None = None  # every pod of the pair, from the middle of each window
    workloads: list[tuple[Workload, Workload]] = field(default_factory=list)
    judged: list[str] = field(default_factory=list)  # the judge's phase per run
    at_defaults: list[str] = field(default_factory=list)  # ... with every query at the defaults
    gated: list[list[str]] = field(default_factory=list)  # the thresholds' phases per run
    seconds: list[float] = field(default_factory=list)  # measuring and judging, per run


SCENARIOS = [
    Scenario("A/A", 7),
    Scenario("p99 +20%", 4, canary_ms=60.0),
    Scenario("errors 0.4% vs 0.2%", 1, 5.0, 5.0, reference_errors=0.002, canary_errors=0.004),
    Scenario("slowdown 50% all pods", 2, slowdown_ms=75.0),
]


def judge_template(window: float, step: float, defaults: bool = False) -> dict[str, Any]:
    """The example's template (counts asking for MIN_COUNTED requests a side); `defaults`: every
    query at the model's tolerance 0 % instead of the example's 5 % on latency."""
    template = next(yaml.safe_load_all(EXAMPLE.read_text()))
    for query in template["spec"]["metrics"][0]["provider"]["compare"]["queries"]:
        if "counts" in query:
            query["minSamples"] = MIN_COUNTED
        if defaults:
            query.pop("tolerance", None)
    template["spec"]["args"] = [
        {"name": "window", "value": f"{window:g}s"},
        {"name": "step", "value": f"{step:g}s"},
        {"name": "rate-window", "value": f"{step:g}s"},
        {"name": "initial-delay", "value": "0s"},
    ]
    return template


def resolved(raw: dict[str, Any], name: str, pair: tuple[Workload, Workload], **args: str) -> ResolvedMetric:
    reference, canary = pair
    builtins = {
        "namespace": NS,
        "rollout": "web",
        "stable-hash": reference.revision,
        "canary-hash": canary.revision,
    }
    ref = RolloutAnalysis(
        templates=[{"name": name, "clusterScope": True}],
        args=[{"name": k, "value": v} for k, v in args.items()],
    )
    metrics, errors = resolve(
        ref, "bench", {TemplateKey(name, True): parse_template(raw)}, builtins, bounded=True
    )
    assert not errors, errors
    return metrics[0]


def judged(
    client: Prometheus, pair: tuple[Workload, Workload], window: float, step: float, defaults: bool = False
) -> tuple[str, float]:
    """The judge's phase for one pair over the latest window, and the seconds it took."""
    metric = resolved(judge_template(window, step, defaults), "canary-judge", pair)
    started = time.monotonic()
    pooled = COMPARE.measure(metric.request, {}, {"prometheus": client}, {})
    measurement = judge_samples(metric.request.settings, pooled, datetime.now(UTC))
    if measurement.phase != "Successful":
        variant = " (defaults)" if defaults else ""
        print(f"  {pair[1].revision}{variant}: {measurement.phase}: {measurement.message}", file=sys.stderr)
    counted = [c.canary.samples for c in measurement.comparisons or [] if c.canary.events is not None]
    if counted and pair[1].revision.startswith("errors"):
        print(f"  {pair[1].revision}: {counted[0]} requests counted on the canary", file=sys.stderr)
    return measurement.phase, time.monotonic() - started


def gated(client: Prometheus, pair: tuple[Workload, Workload], window: float) -> list[str]:
    """The fixed thresholds on the canary alone: success rate, then p99."""
    phases = []
    for raw in yaml.safe_load_all(BUILTIN_TEMPLATES.read_text()):
        name = raw["metadata"]["name"]
        if name not in ("http-success-rate", "http-latency-p99"):
            continue
        metric = resolved(raw, name, pair, window=f"{window:g}s", **{"max-p99-seconds": THRESHOLD_P99})
        value = PROMQL.measure(metric.request, {}, {"prometheus": client}, {})
        now = datetime.now(UTC)
        measurement = judge(metric, QueryResult("bench", "r", metric.name, now, value=value))
        if measurement.phase != "Successful":
            print(f"  {pair[1].revision} threshold: {measurement.message}", file=sys.stderr)
        phases.append(measurement.phase)
    return phases


def configure(scenario: Scenario, milliseconds: float) -> None:
    for pair in scenario.workloads:
        for workload in pair:
            workload.configure(latency_ms=milliseconds)


async def rounds(client: Prometheus, count: int, window: float) -> None:
    step = float(max(2, round(window / SAMPLES)))  # whole seconds, for the rate window
    for number in range(count):
        for scenario in SCENARIOS:
            if scenario.slowdown_ms is not None:
                configure(scenario, scenario.reference_ms)
        await asyncio.sleep(window / 2)
        for scenario in SCENARIOS:
            if scenario.slowdown_ms is not None:
                configure(scenario, scenario.slowdown_ms)
        await asyncio.sleep(window / 2)
        for scenario in sorted(SCENARIOS, key=lambda s: s.slowdown_ms is None):  # slowdown first
            for pair in scenario.workloads:
                phase, seconds = await asyncio.to_thread(judged, client, pair, window, step)
                scenario.judged.append(phase)
                scenario.seconds.append(seconds)
                phase, _ = await asyncio.to_thread(judged, client, pair, window, step, True)
                scenario.at_defaults.append(phase)
                scenario.gated.append(await asyncio.to_thread(gated, client, pair, window))
        print(f"round {number + 1}/{count} done", file=sys.stderr)


def share(phases: list[str], phase: str) -> str:
    return f"{phases.count(phase)}/{len(phases)}"


def print_rounds(count: int, window: float) -> None:
    step = max(2, round(window / SAMPLES))
    print(f"\nJudge against thresholds: {count} rounds of a {window:g} s window (step {step} s)\n")
    table = []
    for scenario in SCENARIOS:
        table.append(
            {
                "scenario": scenario.name,
                "runs": len(scenario.judged),
                "judge failed": share(scenario.judged, "Failed"),
                "judge paused": share(scenario.judged, "Inconclusive"),
                "judge passed": share(scenario.judged, "Successful"),
                "at defaults: failed": share(scenario.at_defaults, "Failed"),
                "at defaults: paused": share(scenario.at_defaults, "Inconclusive"),
                "success<99% failed": share([g[0] for g in scenario.gated], "Failed"),
                f"p99>{THRESHOLD_P99}s failed": share([g[1] for g in scenario.gated], "Failed"),
                "judge s (max)": max(scenario.seconds),
            }
        )
    print_table(table, width=20)


async def main(count: int, window: float) -> None:
    with ExitStack() as stop:
        for scenario in SCENARIOS:
            for index in range(scenario.pairs):
                tag = f"{scenario.name.split()[0].replace('/', '')}{index}".lower()
                reference = Workload(
                    f"{tag}-ref", latency_ms=scenario.reference_ms, error_ratio=scenario.reference_errors
                )
                stop.callback(reference.stop)
                canary = Workload(
                    f"{tag}-can", latency_ms=scenario.canary_ms, error_ratio=scenario.canary_errors
                )
                stop.callback(canary.stop)
                scenario.workloads.append((reference, canary))
        everyone = [w for s in SCENARIOS for pair in s.workloads for w in pair]
        prometheus = PrometheusServer(everyone, NS)
        stop.callback(prometheus.stop)
        client = Prometheus(prometheus.url)
        errors = [w for pair in SCENARIOS[2].workloads for w in pair]
        others = [w for w in everyone if w not in errors]

        async def constant() -> dict[str, int]:
            return {w.revision: 1 for w in others}

        async def error_pair() -> dict[str, int]:
            return {w.revision: 1 for w in errors}

        async with (
            LoadGenerator(others, constant, rate=RATE, workers=32),
            LoadGenerator(errors, error_pair, rate=ERROR_RATE, workers=16),
        ):
            await rounds(client, count, window)
            print_rounds(count, window)
            # Time to verdict: the constant pairs judged over several windows, ending now.
            sweep = []
            for seconds in sorted({20.0, window, 2 * window, 4 * window, count * window}):
                if seconds > count * window:
                    continue
                step = float(max(2, round(seconds / SAMPLES)))  # whole seconds, for the rate window
                row: dict[str, Any] = {"window s": seconds, "step s": step}
                slowest = 0.0
                for scenario in SCENARIOS[:3]:
                    outcomes = [
                        await asyncio.to_thread(judged, client, p, seconds, step) for p in scenario.workloads
                    ]
                    phases = [phase for phase, _ in outcomes]
                    if scenario.name == "A/A":
                        row["A/A failed"] = share(phases, "Failed")
                        row["A/A paused"] = share(phases, "Inconclusive")
                    else:
                        row[f"{scenario.name} caught"] = (
                            f"{len(phases) - phases.count('Successful')}/{len(phases)}"
                        )
                    slowest = max([slowest, *(s for _, s in outcomes)])
                row["judge s"] = slowest
                row["verdict after s"] = seconds + row["judge s"]
                sweep.append(row)
    print("\nTime to verdict (caught = failed or paused; verdict after = window + judging)\n")
    print_table(sweep, width=16)


if __name__ == "__main__":
    # Each query is logged at info; the tables are what this prints.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    arguments = [float(a) for a in sys.argv[1:]]
    asyncio.run(main(int(arguments[0]) if arguments else 6, arguments[1] if len(arguments) > 1 else 30.0))
