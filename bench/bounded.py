"""decide() time and status size as analysis measurements accumulate: flat, because status keeps
bounded lists (the counts grow, the lists do not).

A canary paused at its first step with a background analysis of 1 or 100 metrics (interval 1s,
2,000-character queries, answers cycling through no data, a long error, a pass and a failure) is
reconciled in the engine simulator until every metric has been measured N times; then decide()
on that status (the next measurements due included) is timed, median of 20 calls.

    python -m bench.bounded
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from typing import Any

from bench.common import print_table
from rollout.analysis.resolve import TemplateKey
from rollout.api.rollout import parse_rollout
from rollout.api.templates import parse_template
from rollout.engine import decide
from tests.manifests import http_route_manifest, rollout_manifest
from tests.sim import Sim

ANSWERS: list[Any] = [[], "Prometheus answered garbage: " + "x" * 5000, [0.9], [0.1]]


def template(metrics: int) -> Any:
    return parse_template(
        {
            "spec": {
                "metrics": [
                    {
                        "name": f"m{i:03d}",
                        "interval": "1s",
                        "successCondition": "result[0] >= 0.5",
                        "inconclusiveLimit": 10**6,
                        "consecutiveErrorLimit": 10**6,
                        "failureLimit": 10**6,
                        "provider": {"prometheus": {"query": f"sum(rate(m_{i}{{{'a' * 2000}}}[1m]))"}},
                    }
                    for i in range(metrics)
                ]
            }
        }
    )


def simulated(metrics: int) -> Sim:
    strategy = {
        "canary": {
            "stableService": "web-stable",
            "canaryService": "web-canary",
            "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
            "analysis": {"templates": [{"name": "many"}]},
            "steps": [{"setWeight": 20}, {"pause": {}}],
        }
    }
    sim = Sim(
        rollout_manifest(strategy=strategy),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": http_route_manifest()},
        templates={TemplateKey("many"): template(metrics)},
    )
    sim.settle()
    sim.set_image("web:2")
    return sim


def measured(sim: Sim) -> int:
    """Measurements taken of the least measured metric of the background run so far."""
    runs = [r for r in sim.status.get("analysisRuns") or [] if r["name"] == "background"]
    return min((m["count"] + m["error"] for m in runs[0]["metrics"]), default=0) if runs else 0


def advance(sim: Sim, metrics: int, target: int) -> None:
    """Reconcile once a second until every metric has been measured `target` times."""
    while measured(sim) < target:
        r = len(sim.decisions)
        sim.metric_values = {f"m{i:03d}": ANSWERS[(i + r) % len(ANSWERS)] for i in range(metrics)}
        sim.reconcile()
        sim.pods_ready()
        sim.tick(1.0)


def measure(sim: Sim) -> dict[str, Any]:
    observed = sim.observed()
    times = []
    for _ in range(20):
        parsed = parse_rollout(copy.deepcopy(sim.manifest))
        started = time.perf_counter()
        decision = decide(parsed, observed, (), sim.now)
        times.append(time.perf_counter() - started)
    background = next(r for r in sim.status["analysisRuns"] if r["name"] == "background")
    return {
        "measured/metric": measured(sim),
        "decide ms p50": statistics.median(times) * 1000,
        "decide ms max": max(times) * 1000,
        "status bytes": len(json.dumps(decision.status.wire())),
        "kept/metric": max(len(m["measurements"]) for m in background["metrics"]),
    }


def main() -> None:
    rows = []
    for metrics in (1, 100):
        sim = simulated(metrics)
        for target in (10, 1000):
            advance(sim, metrics, target)
            rows.append({"metrics": metrics, **measure(sim)})
    print_table(rows, width=15)


if __name__ == "__main__":
    main()
