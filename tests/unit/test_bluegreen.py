"""The blue/green strategy in the pure engine: preview first, the switch only onto a fully
available revision, auto- and manual promotion, pre- and post-promotion analysis, the switch back
on failure before anything is scaled down, restarts, and the route-level switch."""

from datetime import datetime

from rollout.api.revision import REVISION_LABEL
from rollout.engine import Command
from rollout.engine.types import PinService, ScaleReplicaSet
from tests.manifests import blue_green_strategy, http_route_manifest, rollout_manifest
from tests.sim import Sim
from tests.thirdparty import schema_errors
from tests.unit.scenarios import (
    ANALYSIS,
    BLUE_GREEN_SERVICES,
    action_log,
    active,
    app_weights,
    blue_green_sim,
    run,
)


def preview(sim):
    return sim.services["web-preview"][REVISION_LABEL]


def reasons(sim):
    return [e.reason for d in sim.decisions for e in d.events]


def test_first_deploy_pins_both_services_and_shows_the_revisions():
    sim = blue_green_sim()
    stable = sim.status["stableRevision"]
    assert active(sim) == preview(sim) == stable
    assert sim.status["blueGreen"]["activeRevision"] == stable
    assert sim.status["blueGreen"]["previewRevision"] == stable
    assert sim.status["message"] == f"Revision {stable}: 4/4 available"
    assert sim.spec_of(stable) == 4


def test_auto_promotion_switches_only_onto_a_fully_available_revision():
    sim = blue_green_sim(scaleDownDelaySeconds=30)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=2, ready=False)
    assert sim.spec_of(new) == 4 and preview(sim) == new and active(sim) == old
    sim.pods_ready(3)
    run(sim, rounds=3, ready=False)
    assert active(sim) == old  # 3/4 available: not yet
    assert "3/4 available" in sim.status["message"]
    assert sim.status["blueGreen"]["activeRevision"] == old
    assert sim.status["blueGreen"]["previewRevision"] == new
    sim.pods_ready()
    run(sim, rounds=2, ready=False)
    assert active(sim) == new and sim.status["stableRevision"] == new
    assert sim.spec_of(old) == 4  # the old revision waits scaleDownDelaySeconds
    assert "Switched" in reasons(sim) and "AutoPromoted" in reasons(sim)
    run(sim, rounds=35)
    assert sim.spec_of(old) == 0 and sim.status["phase"] == "Healthy"
    assert active(sim) == preview(sim) == new
    assert sim.status["blueGreen"]["activeRevision"] == new


def test_preview_replica_count_then_manual_promotion_scales_to_full_before_the_switch():
    sim = blue_green_sim(previewReplicaCount=1, autoPromotionEnabled=False)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=6)
    assert sim.spec_of(new) == 1 and sim.spec_of(old) == 4
    assert sim.status["phase"] == "Paused" and active(sim) == old and preview(sim) == new
    assert "waiting for rollout.dev/promote" in sim.status["message"]
    assert "PreviewReady" in reasons(sim)
    run(sim, rounds=10, seconds=60)
    assert active(sim) == old  # no auto-promotion, no deadline while paused
    sim.reconcile(Command("promote"))
    assert sim.spec_of(new) == 4 and active(sim) == old
    sim.pods_ready(2)
    run(sim, rounds=2, ready=False)
    assert active(sim) == old
    sim.pods_ready()
    run(sim, rounds=2, ready=False)
    assert active(sim) == new and "Promoted" in reasons(sim)


def test_auto_promotion_seconds_waits_from_when_the_preview_is_ready():
    sim = blue_green_sim(autoPromotionSeconds=60)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=3)
    waited = sim.decisions[-1]
    assert active(sim) == old and "auto-promotion in" in sim.status["message"]
    assert 55 <= waited.requeue_after <= 60
    run(sim, rounds=5, seconds=10)
    assert active(sim) == old
    run(sim, rounds=3, seconds=10)
    assert active(sim) == new


def test_pre_promotion_failure_never_switches_and_scales_the_preview_down():
    sim = blue_green_sim(prePromotionAnalysis=ANALYSIS, abortScaleDownDelaySeconds=5)
    old = sim.status["stableRevision"]
    sim.metric_values = {"success-rate": [0.5]}
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    before = len(action_log(sim))
    run(sim, rounds=40, seconds=5)
    assert active(sim) == old and preview(sim) == old
    assert not any(isinstance(a, PinService) and a.service == "web-active" for a in action_log(sim)[before:])
    assert sim.status["aborted"] and sim.status["phase"] == "Degraded"
    assert "pre-promotion" in sim.status["abortReason"]
    assert sim.spec_of(new) == 0 and sim.spec_of(old) == 4
    assert "Switched" not in reasons(sim)


def test_post_promotion_failure_switches_back_before_scaling_anything_down():
    sim = blue_green_sim(postPromotionAnalysis=ANALYSIS, abortScaleDownDelaySeconds=5)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=6)
    assert active(sim) == new and sim.status["stableRevision"] == old  # switched, not yet stable
    assert sim.spec_of(old) == 4
    sim.metric_values = {"success-rate": [0.5]}
    before = len(action_log(sim))
    run(sim, rounds=30, seconds=5)
    after = action_log(sim)[before:]
    back = next(i for i, a in enumerate(after) if a == PinService("web-active", old))
    down = next(i for i, a in enumerate(after) if isinstance(a, ScaleReplicaSet) and a.replicas == 0)
    assert back < down
    assert active(sim) == old and sim.spec_of(new) == 0 and sim.spec_of(old) == 4
    assert sim.status["aborted"] and "post-promotion" in sim.status["abortReason"]
    assert sim.status["blueGreen"]["activeRevision"] == old


def test_post_promotion_success_completes_and_counts_the_scale_down_delay_from_the_switch():
    sim = blue_green_sim(postPromotionAnalysis=ANALYSIS, scaleDownDelaySeconds=120)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=6)
    switched = datetime.fromisoformat(sim.status["blueGreen"]["switchedAt"])
    run(sim, rounds=12, seconds=5)  # three measurements at 10 s
    assert sim.status["stableRevision"] == new
    run_ = next(r for r in sim.status["analysisRuns"] if r["name"] == "post-promotion")
    assert run_["phase"] == "Successful"
    assert sim.spec_of(old) == 4
    scaled_at = None
    for _ in range(100):
        scaled_at = sim.now
        run(sim)
        if sim.spec_of(old) == 0:
            break
    assert sim.spec_of(old) == 0
    assert (scaled_at - switched).total_seconds() == 120


def test_abort_while_switched_returns_users_first():
    sim = blue_green_sim(postPromotionAnalysis=ANALYSIS, abortScaleDownDelaySeconds=0)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    run(sim, rounds=6)
    assert active(sim) != old
    decision = sim.reconcile(Command("abort"))
    assert PinService("web-active", old) in decision.actions
    assert not any(isinstance(a, ScaleReplicaSet) and a.replicas == 0 for a in decision.actions)
    run(sim, rounds=4)
    assert active(sim) == old and sim.spec_of(sim.revision_for("web:2")) == 0


def test_a_newer_revision_while_switched_returns_users_to_stable_first():
    sim = blue_green_sim(postPromotionAnalysis=ANALYSIS)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    second = sim.revision_for("web:2")
    run(sim, rounds=6)
    assert active(sim) == second
    sim.set_image("web:3")
    third = sim.revision_for("web:3")
    decision = sim.reconcile()
    assert decision.actions[:1] == [PinService("web-active", old)]
    run(sim, rounds=8)
    assert sim.spec_of(second) == 0 and preview(sim) == third
    assert active(sim) == third  # the newest revision then goes through the whole flow


def test_a_lost_status_write_after_the_switch_is_recovered_from_the_services():
    sim = blue_green_sim(postPromotionAnalysis=ANALYSIS)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    for _ in range(10):
        decision = sim.reconcile(lose_status=True) if active(sim) == old else None
        if decision is not None and PinService("web-active", new) in decision.actions:
            break
        sim.pods_ready()
        sim.tick(1)
    assert active(sim) == new and sim.status["blueGreen"]["activeRevision"] == old
    run(sim, rounds=2)
    assert sim.status["blueGreen"]["activeRevision"] == new
    assert sim.status["blueGreen"]["switchedAt"]
    assert any(r["name"] == "post-promotion" for r in sim.status["analysisRuns"])
    assert sim.spec_of(old) == 4


def test_new_pods_lost_after_the_switch_switch_back():
    sim = blue_green_sim(postPromotionAnalysis=ANALYSIS)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=6)
    assert active(sim) == new
    for rs in sim.replicasets.values():
        if rs.revision == new:
            rs.available = 0
    decision = sim.reconcile()
    assert PinService("web-active", old) in decision.actions
    assert "no available pods" in sim.status["abortReason"]


def test_promote_full_skips_both_analyses():
    sim = blue_green_sim(prePromotionAnalysis=ANALYSIS, postPromotionAnalysis=ANALYSIS)
    sim.metric_values = {"success-rate": []}  # no data: would pause
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=2)
    run(sim, 1, 1.0, True, Command("promote", "full"))
    run(sim, rounds=6)
    assert active(sim) == new and sim.status["stableRevision"] == new
    assert "PromotedFull" in reasons(sim)


def test_promote_passes_an_inconclusive_pre_promotion_analysis_then_the_switch_waits_for_another():
    sim = blue_green_sim(prePromotionAnalysis=ANALYSIS, autoPromotionEnabled=False)
    old = sim.status["stableRevision"]
    sim.metric_values = {"success-rate": []}  # no data
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=20, seconds=5)
    assert sim.status["phase"] == "Paused" and "no data" in sim.status["message"]
    assert [p["reason"] for p in sim.status["pauseConditions"]] == ["AnalysisInconclusive"]
    run(sim, 1, 1.0, True, Command("promote"))
    run(sim, rounds=3)
    pre = next(r for r in sim.status["analysisRuns"] if r["name"] == "pre-promotion")
    assert pre["phase"] == "Successful" and "passed by rollout.dev/promote" in pre["message"]
    assert [p["reason"] for p in sim.status["pauseConditions"]] == ["BlueGreenPause"]
    assert active(sim) == old
    run(sim, 1, 1.0, True, Command("promote"))
    run(sim, rounds=3)
    assert active(sim) == new and sim.status["stableRevision"] == new


def test_retry_after_abort_waits_for_promotion_again():
    sim = blue_green_sim(autoPromotionEnabled=False, postPromotionAnalysis=ANALYSIS)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    run(sim, rounds=4)
    run(sim, 1, 1.0, True, Command("promote"))
    run(sim, rounds=3)
    assert active(sim) != old
    run(sim, 1, 1.0, True, Command("abort"))
    run(sim, rounds=3)
    assert active(sim) == old
    run(sim, 1, 1.0, True, Command("retry"))
    run(sim, rounds=6)
    assert active(sim) == old and sim.status["phase"] == "Paused"


def test_route_level_switch_is_one_write_and_completion_returns_the_route_to_active():
    sim = blue_green_sim(route=True, postPromotionAnalysis=ANALYSIS)
    old = sim.status["stableRevision"]
    assert app_weights(sim) == {"web-active": 100, "web-preview": 0}
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=6)
    assert [w.weight for w in sim.traffic_writes] == [100]
    assert app_weights(sim) == {"web-active": 0, "web-preview": 100}
    assert active(sim) == old and preview(sim) == new  # the Services stay; the route switched
    assert sim.status["blueGreen"]["activeRevision"] == new
    assert schema_errors("HTTPRoute", sim.routes["web"]) == []
    run(sim, rounds=12, seconds=5)
    assert sim.status["stableRevision"] == new
    assert app_weights(sim) == {"web-active": 100, "web-preview": 0}
    assert active(sim) == preview(sim) == new
    assert [w.weight for w in sim.traffic_writes] == [100, 0]


def test_route_level_switch_back_on_post_promotion_failure():
    sim = blue_green_sim(route=True, postPromotionAnalysis=ANALYSIS, abortScaleDownDelaySeconds=5)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=6)
    sim.metric_values = {"success-rate": [0.5]}
    run(sim, rounds=20, seconds=5)
    assert [w.weight for w in sim.traffic_writes] == [100, 0]
    assert app_weights(sim) == {"web-active": 100, "web-preview": 0}
    assert active(sim) == preview(sim) == old and sim.spec_of(new) == 0


def test_spec_errors_name_the_field():
    for extra, path in (
        ({"previewService": "web-active"}, "spec.strategy.blueGreen.previewService"),
        (
            {
                "previewService": None,
                "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
            },
            "spec.strategy.blueGreen.previewService",
        ),
        (
            {
                "trafficRouting": {
                    "istio": {
                        "virtualService": {"name": "web", "routes": ["primary"]},
                        "destinationRule": {"name": "web", "stableSubset": "a", "canarySubset": "b"},
                    }
                }
            },
            "spec.strategy.blueGreen.trafficRouting.istio.destinationRule",
        ),
    ):
        strategy = blue_green_strategy(**extra)
        strategy["blueGreen"] = {k: v for k, v in strategy["blueGreen"].items() if v is not None}
        sim = Sim(
            rollout_manifest(strategy=strategy),
            services=dict(BLUE_GREEN_SERVICES),
            routes={"web": http_route_manifest(backends=("web-active", "web-preview"))},
        )
        decision = sim.reconcile()
        assert decision.actions == [] and sim.status["phase"] == "Degraded"
        assert f"{path}: " in sim.status["message"], sim.status["message"]
