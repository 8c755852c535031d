"""The controller's per-Rollout series: one rollout_info series per Rollout, replaced (not added
to) when its revisions change, and gone with the Rollout."""

from prometheus_client import generate_latest

from rollout.api.rollout import parse_rollout
from rollout.api.status import RolloutStatus
from rollout.observability.metrics import REGISTRY, forget_rollout, record_decision
from tests.manifests import rollout_manifest


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
