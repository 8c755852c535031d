"""The Argo CD health check and actions, run in a real Lua 5.1 (lupa) on Rollout objects the real
controller produced (tests/fixtures/rollouts/, captured by tests/integration/test_argocd_fixtures.py),
and the shipped argocd-cm / Helm values snippets checked against the scripts."""

import copy
from pathlib import Path

import pytest
import yaml

from rollout.argocd import config
from rollout.cli.health import health as cli_health
from rollout.cli.health import refusal
from rollout.cli.main import main
from tests.argocd_lua import action, discovery, health, run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rollouts"
SNIPPETS = Path(__file__).resolve().parents[2] / "examples" / "argocd"


def fixture(name):
    return yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())


# fixture -> (health, words the controller's message has in that phase)
EXPECTED = {
    "canary-healthy": ("Healthy", "4/4 available"),
    "canary-progressing": ("Progressing", "waits for canary pods"),
    "canary-paused": ("Suspended", "Paused (CanaryPauseStep) at step 2/5"),
    "canary-timed-pause": ("Progressing", "Paused (CanaryPauseStep) at step 4/5"),
    "canary-aborted": ("Degraded", "Aborted (aborted by the rollout.dev/abort command)"),
    "bluegreen-awaiting-promotion": ("Suspended", "waiting for rollout.dev/promote"),
    "rolling-user-paused": ("Suspended", "Paused (UserPause)"),
    "rolling-spec-paused": ("Suspended", "Paused (SpecPaused)"),
    "rolling-progressing": ("Progressing", "Updating to"),
    "rolling-deadline-exceeded": ("Degraded", "made no progress for 3s (progressDeadlineSeconds)"),
    "invalid-spec": (
        "Degraded",
        "InvalidSpec: spec.strategy.canary.stableService: Service shop/nope not found",
    ),
}


def test_every_captured_fixture_has_an_expectation():
    assert sorted([*EXPECTED, "generation-lag"]) == sorted(p.stem for p in FIXTURES.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_health_of_each_captured_phase(name):
    obj = fixture(name)
    status, words = EXPECTED[name]
    assert words in obj["status"]["message"]
    assert health(obj) == {"status": status, "message": obj["status"]["message"]}


def test_a_spec_change_not_yet_observed_is_progressing_whatever_the_old_phase():
    obj = fixture("generation-lag")
    assert obj["status"]["phase"] == "Paused"  # what the controller said of the previous generation
    assert health(obj) == {
        "status": "Progressing",
        "message": "Waiting for the rollout controller to observe generation 3 (observed 2); "
        f"last status: {obj['status']['message']}",
    }


def test_a_rollout_without_status_is_progressing():
    obj = fixture("canary-healthy")
    del obj["status"]
    assert health(obj) == {
        "status": "Progressing",
        "message": "Waiting for the rollout controller to observe the Rollout",
    }


def test_a_person_pausing_a_timed_pause_makes_it_suspended():
    obj = fixture("canary-timed-pause")
    obj["status"]["pauseConditions"].append({"reason": "UserPause", "startTime": "2026-01-01T00:00:00Z"})
    assert health(obj)["status"] == "Suspended"


def test_a_blue_green_counting_down_to_auto_promotion_is_progressing():
    obj = fixture("bluegreen-awaiting-promotion")
    obj["spec"]["strategy"]["blueGreen"].update(autoPromotionEnabled=True, autoPromotionSeconds=60)
    assert health(obj)["status"] == "Progressing"
    obj["spec"]["strategy"]["blueGreen"]["autoPromotionEnabled"] = False  # flipped to hold the release
    assert health(obj)["status"] == "Suspended"


def test_healthy_phase_with_pods_missing_is_not_healthy():
    obj = fixture("canary-healthy")
    obj["status"]["availableReplicas"] = 3
    assert health(obj)["status"] == "Progressing"


ALL = {"promote", "promote-full", "abort", "retry", "pause", "resume", "restart"}
ENABLED = {
    "canary-healthy": {"pause", "restart"},
    "canary-progressing": {"promote-full", "abort", "pause"},
    "canary-paused": {"promote", "promote-full", "abort", "pause"},
    "canary-timed-pause": {"promote", "promote-full", "abort", "pause"},
    "canary-aborted": {"retry", "pause"},
    "bluegreen-awaiting-promotion": {"promote", "promote-full", "abort", "pause"},
    "rolling-user-paused": {"resume"},
    "rolling-spec-paused": {"pause"},
    "rolling-progressing": {"abort", "pause"},  # a rolling update has nothing to promote
    "rolling-deadline-exceeded": {"abort", "pause"},
    "invalid-spec": {"pause"},
    "generation-lag": {"promote", "promote-full", "abort", "pause"},
}


@pytest.mark.parametrize("name", sorted(ENABLED))
def test_discovery_offers_only_what_makes_sense(name):
    offered = discovery(fixture(name))
    assert set(offered) == ALL
    assert {a for a, enabled in offered.items() if enabled} == ENABLED[name]


ANNOTATION = {
    "promote": ("rollout.dev/promote", "step"),
    "promote-full": ("rollout.dev/promote", "full"),
    "abort": ("rollout.dev/abort", "true"),
    "retry": ("rollout.dev/retry", "true"),
    "pause": ("rollout.dev/pause", "true"),
    "resume": ("rollout.dev/resume", "true"),
    "restart": ("rollout.dev/restart", "true"),
}


@pytest.mark.parametrize("name", sorted(ANNOTATION))
@pytest.mark.parametrize("phase", ["canary-paused", "canary-aborted", "invalid-spec", "rolling-user-paused"])
def test_an_action_changes_nothing_but_its_command_annotation(name, phase):
    before = fixture(phase)
    after = action(name, before)
    key, value = ANNOTATION[name]
    assert after["metadata"]["annotations"] == {**(before["metadata"].get("annotations") or {}), key: value}
    expected = copy.deepcopy(before)
    expected["metadata"]["annotations"] = after["metadata"]["annotations"]
    assert after == expected


def test_an_action_keeps_the_annotations_already_there():
    before = fixture("canary-paused")
    before["metadata"]["annotations"] = {"team": "checkout", "argocd.argoproj.io/tracking-id": "shop:x"}
    after = action("promote", before)
    assert after["metadata"]["annotations"] == {
        **before["metadata"]["annotations"],
        "rollout.dev/promote": "step",
    }


def test_the_shipped_snippets_are_generated_from_the_scripts():
    assert config.stale(SNIPPETS) == []


def test_the_scripts_inside_the_snippets_run_as_they_are():
    cm = yaml.safe_load((SNIPPETS / config.CM_FILE).read_text())["data"]
    values = yaml.safe_load((SNIPPETS / config.VALUES_FILE).read_text())["configs"]["cm"]
    assert cm == values
    obj = fixture("canary-paused")
    assert run(cm[config.HEALTH_KEY], obj)["status"] == "Suspended"
    actions = yaml.safe_load(cm[config.ACTIONS_KEY])
    assert [d["name"] for d in actions["definitions"]] == sorted(ALL, key=list(config.ACTIONS).index)
    offered = run(actions["discovery.lua"], obj)
    assert {n for n, a in offered.items() if not a["disabled"]} == ENABLED["canary-paused"]
    promote = next(d for d in actions["definitions"] if d["name"] == "promote")
    assert run(promote["action.lua"], obj)["metadata"]["annotations"]["rollout.dev/promote"] == "step"


def test_argocd_check_fails_on_a_stale_snippet(tmp_path, capsys):
    assert main(["argocd", "--output", str(tmp_path)]) == 0
    assert main(["argocd", "--output", str(tmp_path), "--check"]) == 0
    (tmp_path / config.CM_FILE).write_text(
        (tmp_path / config.CM_FILE).read_text().replace("Suspended", "Healthy")
    )
    assert main(["argocd", "--output", str(tmp_path), "--check"]) == 1
    assert f"stale Argo CD snippets in {tmp_path}: {config.CM_FILE}" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(ENABLED))
def test_the_cli_agrees_with_argo_cd(name):
    """`rollout status` and `rollout promote` judge a Rollout as the Argo CD scripts do."""
    obj = fixture(name)
    assert cli_health(obj) == (health(obj)["status"], health(obj)["message"])
    assert {a for a in ALL if refusal(a, obj) is None} == ENABLED[name]


def test_restart_is_offered_only_at_rest_and_never_twice():
    """A restart asked while one runs, or on a Rollout not at rest, is disabled in Argo CD and
    refused by the CLI with the same judgement."""
    at_rest = fixture("canary-healthy")
    assert discovery(at_rest)["restart"] is True and refusal("restart", at_rest) is None
    running = copy.deepcopy(at_rest)
    running["status"]["restartedAt"] = "2026-01-01T00:00:00Z"
    assert discovery(running)["restart"] is False
    assert refusal("restart", running) == "a restart is already running"
    paused = copy.deepcopy(at_rest)
    paused["status"]["pauseConditions"] = [{"reason": "UserPause", "startTime": "2026-01-01T00:00:00Z"}]
    assert discovery(paused)["restart"] is False and refusal("restart", paused) == "it is paused"
    assert (
        refusal("restart", fixture("canary-paused"))
        == "an update is in progress (it replaces the pods anyway)"
    )
    # abort stops a running restart, so it is offered while one runs
    assert discovery(at_rest)["abort"] is False and discovery(running)["abort"] is True
    assert refusal("abort", running) is None
    single = copy.deepcopy(at_rest)
    single["spec"]["replicas"] = 1
    assert discovery(single)["restart"] is False
    assert refusal("restart", single).startswith("it has a single replica")
