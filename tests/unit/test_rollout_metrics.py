"""The controller's per-Rollout series: one rollout_info series per Rollout, replaced (not added
to) when its revisions change, and gone with the Rollout."""

from datetime import UTC, datetime

from prometheus_client import generate_latest

from rollout.api.rollout import parse_rollout
from rollout.api.status import (
    AnalysisRun,
    ComparisonResult,
    Measurement,
    MetricResult,
    RolloutStatus,
    SideSamples,
)
from rollout.observability.metrics import REGISTRY, forget_rollout, record_decision
from tests.manifests import rollout_manifest

AT = datetime(2026, 1, 1, tzinfo=UTC)


def info_lines(name):
    lines = generate_latest(REGISTRY).decode().splitlines()
    return [line for line in lines if line.startswith("rollout_info{") and f'rollout="{name}"' in line]


def test_one_info_series_per_rollout_follows_its_revisions_and_goes_with_it():
    parsed = parse_rollout(rollout_manifest("metrics-web", "shop"))
    record_decision(parsed, RolloutStatus(stable_revision="aaa", current_revision="aaa"))
    record_decision(parsed, RolloutStatus(stable_revision="aaa", current_revision="bbb"))
    (line,) = info_lines("metrics-web")
    assert 'stable_revision="aaa"' in line and 'current_revision="bbb"' in line
    record_decision(parsed, RolloutStatus(stable_revision="bbb", current_revision="bbb"))
    (line,) = info_lines("metrics-web")
    assert 'stable_revision="bbb"' in line
    forget_rollout("shop", "metrics-web")
    assert info_lines("metrics-web") == []


def judge_lines(name):
    lines = generate_latest(REGISTRY).decode().splitlines()
    return sorted(line for line in lines if line.startswith("rollout_judge_") and f'rollout="{name}"' in line)


def test_the_judge_score_and_both_sides_medians_are_exported_for_the_dashboard():
    parsed = parse_rollout(rollout_manifest("judged-web", "shop"))
    comparison = ComparisonResult(
        name="p99",
        verdict="High",
        canary=SideSamples(samples=12, median=0.12),
        reference=SideSamples(samples=12, median=0.1),
    )
    measurement = Measurement(
        phase="Failed", at=AT, score=20.0, against="stable", comparisons=[comparison], value="score 20"
    )
    run = AnalysisRun(
        name="step-2",
        revision="bbb",
        started_at=AT,
        metrics=[MetricResult(name="judge", measurements=[measurement])],
    )
    record_decision(parsed, RolloutStatus(stable_revision="aaa", current_revision="bbb", analysis_runs=[run]))
    labels = 'metric="judge",namespace="shop",query="p99",rollout="judged-web"'
    assert judge_lines("judged-web") == [
        f'rollout_judge_median{{{labels},side="canary"}} 0.12',
        f'rollout_judge_median{{{labels},side="stable"}} 0.1',
        'rollout_judge_score{metric="judge",namespace="shop",rollout="judged-web"} 20.0',
    ]
    forget_rollout("shop", "judged-web")
    assert judge_lines("judged-web") == []
