"""The fault scenario of tests/integration/test_faults.py run at length: canary, blue/green and
failing-analysis canary Rollouts driven by the real reconciler against the emulator with faults
on (each request of the controller meets one with chance `rate`, all kinds alike), random steps
and user scripts, the invariants checked after every reconcile, then faults off and convergence
counted (a failing analysis must come to rest on stable).

    python -m bench.faults --examples 200 --rates 0.05,0.2
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
from collections import Counter
from typing import Any

import structlog

from bench.common import print_table
from rollout.sandbox.faults import FaultPlan
from tests.fault_scenario import ANALYSIS_STEP, OPS, SCALE_DOWN_DELAY, canary_steps, run_example
from tests.manifests import blue_green_strategy, canary_strategy


def draw(rng: random.Random, kind: str) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    if kind == "analysis":  # a canary whose analysis step always fails: it must end on stable
        weight = rng.choice([10, 20, 50])
        strategy = canary_strategy(
            [{"setWeight": weight}, ANALYSIS_STEP, {"setWeight": 80}, {"pause": {}}],
            scale_down_delay=SCALE_DOWN_DELAY,
        )
    elif kind == "canary":
        weights = [rng.choice([10, 20, 50, 80]) for _ in range(rng.randint(1, 3))]
        pauses = [rng.choice(["", "promote", "timed"]) for _ in range(3)]
        extras = [e for e in ("header", "mirror") if rng.random() < 0.5]
        strategy = canary_strategy(canary_steps(weights, pauses, extras), scale_down_delay=SCALE_DOWN_DELAY)
    else:
        extra: dict[str, Any] = {
            "autoPromotionEnabled": rng.random() < 0.5,
            "autoPromotionSeconds": 20,
            "scaleDownDelaySeconds": 5,
        }
        if rng.random() < 0.5:
            extra["previewReplicaCount"] = 1
        strategy = blue_green_strategy(**extra)
    script = [(rng.choice(OPS), rng.choice([5, 30])) for _ in range(rng.randint(2, 12))]
    return strategy, [("image", 0), *script]


async def measure(rate: float, kind: str, runs: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    injected: Counter[str] = Counter()
    violations, failed, unconverged, seconds = 0, 0, 0, 0.0
    converge: list[int] = []
    examples: list[str] = []
    for _ in range(runs):
        strategy, script = draw(rng, kind)
        plan = FaultPlan.uniform(rate, seed=rng.randrange(2**32))
        outcome = await run_example(strategy, script, plan, failing_analysis=kind == "analysis")
        injected += outcome.injected
        violations += len(outcome.violations)
        examples += outcome.violations[:1]
        failed += outcome.failed_reconciles
        seconds += outcome.seconds
        if outcome.converge_reconciles is None:
            unconverged += 1
        else:
            converge.append(outcome.converge_reconciles)
    for text in examples[:3]:
        print(f"  {kind} @ {rate}: {text[:300]}")
    return {
        "rate": rate,
        "strategy": kind,
        "runs": runs,
        "faults": sum(injected.values()),
        "by kind": " ".join(f"{k}={v}" for k, v in sorted(injected.items())),
        "failed rec.": failed,
        "violations": violations,
        "unconverged": unconverged,
        "conv. p50": statistics.median(converge) if converge else "-",
        "conv. max": max(converge, default="-"),
        "s/run": seconds / runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=20, help="runs per rate and strategy")
    parser.add_argument("--rates", default="0.05,0.2")
    parser.add_argument("--strategies", default="canary,bluegreen,analysis")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    rows = [
        asyncio.run(measure(float(rate), kind, args.examples, args.seed))
        for rate in args.rates.split(",")
        for kind in args.strategies.split(",")
    ]
    print_table(rows, width=11)


if __name__ == "__main__":
    main()
