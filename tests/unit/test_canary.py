"""The canary strategy in the pure engine, driven through the real routers on real route documents:
weights applied, pods before traffic, completion and abort order, dark launch, restarts."""

import copy

import pytest

from rollout.api.revision import REVISION_LABEL
from rollout.engine import Command
from rollout.engine.types import PinService, ScaleReplicaSet, SetTraffic
from tests.manifests import (
    CANARY_STEPS,
    HTTP_ROUTING,
    canary_strategy,
    http_route_manifest,
    rollout_manifest,
    virtual_service_manifest,
)
from tests.sim import Sim
from tests.thirdparty import istio_errors, schema_errors
from tests.unit.scenarios import action_log, app_weights, canary_sim, run


def test_first_deploy_writes_both_weights_and_pins_both_services():
    sim = canary_sim()
    assert app_weights(sim) == {"web-stable": 100, "web-canary": 0}
    stable = sim.status["stableRevision"]
    assert sim.services["web-stable"][REVISION_LABEL] == stable
    assert sim.services["web-canary"][REVISION_LABEL] == stable
    assert schema_errors("HTTPRoute", sim.routes["web"]) == []


def test_weight_waits_for_canary_pods_then_steps_walk_to_completion():
    sim = canary_sim()
    old = sim.status["stableRevision"]
    user_route = copy.deepcopy(sim.routes["web"])
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=4, ready=False)
    # No pod of the canary is available: no weight, whatever the step says.
    assert app_weights(sim)["web-canary"] == 0
    assert sim.spec_of(new) == 1  # ceil(4 x 20%)
    assert "waits for canary pods: 0/1" in sim.status["message"]
    assert sim.services["web-canary"][REVISION_LABEL] == new
    run(sim, rounds=4)
    assert app_weights(sim) == {"web-stable": 80, "web-canary": 20}
    assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == 1
    assert sim.spec_of(old) == 4  # stable keeps full scale during the canary
    run(sim, rounds=3)
    assert sim.status["phase"] == "Paused"  # an indefinite pause waits for promote
    run(sim, 1, 1.0, True, Command("promote"))
    run(sim, rounds=4)
    assert app_weights(sim) == {"web-stable": 50, "web-canary": 50}
    assert sim.spec_of(new) == 2
    assert sim.status["phase"] == "Paused" and sim.status["canary"]["weight"] == 50
    run(sim, rounds=10, seconds=10)  # the 60s pause runs out, then completion
    assert sim.status["stableRevision"] == new
    assert app_weights(sim) == {"web-stable": 100, "web-canary": 0}
    assert sim.services["web-stable"][REVISION_LABEL] == new
    assert sim.services["web-canary"][REVISION_LABEL] == new
    # The user's other rule and fields are as they were; only the two weights changed.
    assert sim.routes["web"] == user_route
    # Completion order: stable Service re-pinned to the new revision before weights go to 100/0,
    # and weights never passed through canary 100.
    log = action_log(sim)
    pin = next(
        i
        for i, a in enumerate(log)
        if isinstance(a, PinService) and a.service == "web-stable" and a.revision == new
    )
    back = max(i for i, a in enumerate(log) if isinstance(a, SetTraffic))
    assert pin < back and log[back].state.weight == 0
    assert all(w.weight < 100 for w in sim.traffic_writes)
    assert [w.weight for w in sim.traffic_writes] == [0, 20, 50, 0]


def test_old_revision_scaled_down_only_after_scale_down_delay():
    sim = canary_sim(canary_strategy(steps=[{"setWeight": 50}], scaleDownDelaySeconds=30))
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    for _ in range(30):
        run(sim)
        if sim.status["stableRevision"] != old:
            break
    completed_at = sim.now
    run(sim, rounds=20)  # 20 s later: still up
    assert sim.spec_of(old) == 4
    run(sim, rounds=15)
    assert sim.spec_of(old) == 0
    assert (sim.now - completed_at).total_seconds() >= 30
    assert sim.status["phase"] == "Healthy"


def test_abort_at_fifty_returns_traffic_first_then_scales_canary_down_after_delay():
    sim = canary_sim(canary_strategy(abortScaleDownDelaySeconds=10))
    user_route = copy.deepcopy(sim.routes["web"])
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=6)
    run(sim, 1, 1.0, True, Command("promote"))
    run(sim, rounds=4)
    assert app_weights(sim)["web-canary"] == 50
    mark = len(action_log(sim))
    run(sim, 1, 1.0, True, Command("abort"))
    run(sim, rounds=3)
    after = action_log(sim)[mark:]
    first_traffic = next(i for i, a in enumerate(after) if isinstance(a, SetTraffic))
    assert after[first_traffic].state.weight == 0
    assert not any(isinstance(a, ScaleReplicaSet) and a.replicas == 0 for a in after[:first_traffic])
    assert sim.routes["web"] == user_route  # 100/0, nothing else changed
    assert sim.spec_of(new) == 2  # the delay has not passed yet
    assert sim.services["web-canary"][REVISION_LABEL] == sim.status["stableRevision"]
    run(sim, rounds=10)
    assert sim.spec_of(new) == 0
    assert sim.status["phase"] == "Degraded" and sim.status["aborted"] is True


def test_dark_launch_header_route_needs_one_pod_and_is_removed_at_completion():
    steps = [
        {"setHeaderRoute": {"name": "dark", "match": [{"header": "version", "exact": "v2"}]}},
        {"pause": {}},
        {"setWeight": 50},
        {"pause": {}},
    ]
    sim = canary_sim(canary_strategy(steps=steps))
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=3, ready=False)
    names = [r.get("name") for r in sim.routes["web"]["spec"]["rules"]]
    assert "rollout.dev.web.dark" not in names  # no canary pod yet
    assert sim.spec_of(new) == 1  # weight 0 but a header route needs a pod
    run(sim, rounds=4)
    rules = sim.routes["web"]["spec"]["rules"]
    dark = next(r for r in rules if r.get("name") == "rollout.dev.web.dark")
    assert dark["matches"][0]["headers"] == [{"name": "version", "type": "Exact", "value": "v2"}]
    assert [r["name"] for r in dark["backendRefs"]] == ["web-canary"]
    assert app_weights(sim)["web-canary"] == 0
    assert sim.status["canary"]["headerRoutes"] == ["dark"]
    assert schema_errors("HTTPRoute", sim.routes["web"]) == []
    run(sim, 1, 1.0, True, Command("promote"))
    run(sim, rounds=4)
    assert app_weights(sim)["web-canary"] == 50
    run(sim, 1, 1.0, True, Command("promote"))
    run(sim, rounds=8)
    assert sim.status["stableRevision"] == new
    assert [r.get("name") for r in sim.routes["web"]["spec"]["rules"]] == ["static", "app"]


def test_new_template_mid_canary_takes_weight_to_zero_then_restarts_at_step_one():
    sim = canary_sim()
    sim.set_image("web:2")
    second = sim.revision_for("web:2")
    run(sim, rounds=6)
    assert app_weights(sim)["web-canary"] == 20
    mark = len(sim.traffic_writes)
    sim.set_image("web:3")
    third = sim.revision_for("web:3")
    run(sim, rounds=8)
    assert [w.weight for w in sim.traffic_writes[mark:]] == [0, 20]
    assert sim.services["web-canary"][REVISION_LABEL] == third
    assert sim.spec_of(second) == 0 and sim.spec_of(third) == 1
    assert sim.status["currentStepIndex"] == 1
    events = [e.reason for d in sim.decisions for e in d.events]
    assert "NewRevision" in events


def test_edited_steps_mid_canary_restart_from_weight_zero():
    sim = canary_sim()
    sim.set_image("web:2")
    run(sim, rounds=6)
    assert app_weights(sim)["web-canary"] == 20
    mark = len(sim.traffic_writes)
    sim.manifest["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 10}, {"pause": {}}]
    run(sim, rounds=6)
    assert [w.weight for w in sim.traffic_writes[mark:]] == [0, 10]
    assert "StepsChanged" in [e.reason for d in sim.decisions for e in d.events]


def test_promote_full_skips_remaining_steps():
    sim = canary_sim()
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=6)
    run(sim, 1, 1.0, True, Command("promote", "full"))
    run(sim, rounds=6)
    assert sim.status["stableRevision"] == new
    assert [w.weight for w in sim.traffic_writes] == [0, 20, 0]


def test_canary_losing_all_pods_loses_its_traffic():
    sim = canary_sim()
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=6)
    assert app_weights(sim)["web-canary"] == 20
    for rs in sim.replicasets.values():
        if rs.revision == new:
            rs.available = 0
    run(sim, ready=False)
    run(sim, ready=False)
    assert app_weights(sim)["web-canary"] == 0


def test_route_not_accepted_stops_the_rollout_and_holds_stable():
    sim = canary_sim()
    sim.set_image("web:2")
    generation = 7
    sim.routes["web"]["metadata"]["generation"] = generation
    sim.routes["web"]["status"] = {
        "parents": [
            {
                "parentRef": {"name": "public"},
                "controllerName": "example.com/gateway",
                "conditions": [
                    {
                        "type": "Accepted",
                        "status": "True",
                        "reason": "Accepted",
                        "observedGeneration": generation,
                    },
                    {
                        "type": "ResolvedRefs",
                        "status": "False",
                        "reason": "BackendNotFound",
                        "message": "Service web-canary not found",
                        "observedGeneration": generation,
                    },
                ],
            }
        ]
    }
    run(sim, rounds=6)
    assert app_weights(sim)["web-canary"] == 0
    assert sim.status["phase"] == "Degraded"
    assert "BackendNotFound" in sim.status["message"]
    condition = next(c for c in sim.status["conditions"] if c["type"] == "RouteStatus")
    assert condition["status"] == "False" and condition["reason"] == "BackendNotFound"
    assert "RouteNotAccepted" in [e.reason for d in sim.decisions for e in d.events]
    assert sim.status["currentStepIndex"] == 0
    # The Gateway resolves the backend: the rollout goes on.
    sim.routes["web"]["status"]["parents"][0]["conditions"][1].update(status="True", reason="ResolvedRefs")
    run(sim, rounds=6)
    assert app_weights(sim)["web-canary"] == 20


def test_replica_based_canary_without_traffic_routing():
    sim = canary_sim(canary_strategy(steps=[{"setWeight": 50}, {"pause": {}}], routing=None), replicas=4)
    old = sim.status["stableRevision"]
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=8)
    assert (sim.spec_of(old), sim.spec_of(new)) == (2, 2)
    assert sim.status["canary"]["weight"] == 50 and sim.status["phase"] == "Paused"
    run(sim, 1, 1.0, True, Command("promote"))
    run(sim, rounds=10)
    assert (sim.spec_of(old), sim.spec_of(new)) == (0, 4)
    assert sim.status["stableRevision"] == new and sim.status["phase"] == "Healthy"


def test_set_canary_scale_overrides_the_weight():
    steps = [{"setCanaryScale": {"replicas": 3}}, {"setWeight": 10}, {"pause": {}}]
    sim = canary_sim(canary_strategy(steps=steps), replicas=10)
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=8)
    assert sim.spec_of(new) == 3 and app_weights(sim)["web-canary"] == 10


def test_istio_subsets_pinned_to_revisions():
    routing = {
        "istio": {
            "virtualService": {"name": "web", "routes": ["primary"]},
            "destinationRule": {"name": "web", "stableSubset": "stable", "canarySubset": "canary"},
        }
    }
    route = virtual_service_manifest()
    for entry in route["spec"]["http"][1]["route"]:
        entry["destination"] = {"host": "web", "subset": entry["destination"]["host"].removeprefix("web-")}
    sim = Sim(
        rollout_manifest(strategy=canary_strategy(routing=routing)),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": route},
        subsets={"stable": {"app": "web"}, "canary": {"app": "web"}},
    )
    sim.settle()
    stable = sim.status["stableRevision"]
    assert sim.subsets["stable"][REVISION_LABEL] == stable == sim.subsets["canary"][REVISION_LABEL]
    sim.set_image("web:2")
    run(sim, rounds=6)
    assert sim.subsets["canary"][REVISION_LABEL] == sim.revision_for("web:2")
    primary = sim.routes["web"]["spec"]["http"][1]
    assert [r["weight"] for r in primary["route"]] == [80, 20]
    assert istio_errors(sim.routes["web"]) == []


def _invalid(sim):
    return next(c for c in sim.status["conditions"] if c["type"] == "InvalidSpec")["message"]


@pytest.mark.parametrize(
    ("strategy", "fragment"),
    [
        (
            canary_strategy(
                steps=[{"setHeaderRoute": {"name": "d", "match": [{"header": "x", "exact": "1"}]}}],
                routing=None,
            ),
            "spec.strategy.canary.steps[0].setHeaderRoute: needs trafficRouting",
        ),
        (
            canary_strategy(
                steps=[{"setHeaderRoute": {"name": "d", "match": [{"header": "x", "prefix": "1"}]}}]
            ),
            "steps[0].setHeaderRoute.match[0].prefix",
        ),
        (
            canary_strategy(
                steps=[{"setMirrorRoute": {"name": "m", "percent": 10}}],
                routing={"gatewayAPI": {"tcpRoutes": [{"name": "web"}]}},
            ),
            "TCP routes carry weights only",
        ),
        (
            canary_strategy(routing={"gatewayAPI": {"httpRoutes": [{"name": "gone"}]}}),
            "httpRoutes[0]: httproutes shop/gone not found",
        ),
        (
            canary_strategy(routing={"gatewayAPI": {"httpRoutes": [{"name": "web", "rule": "static"}]}}),
            "rule 'static' must have backendRefs to both",
        ),
        (canary_strategy(steps=[{"analysis": {"templates": [{"name": "rate"}]}}]), "steps[0].analysis"),
        (
            {"canary": {"trafficRouting": HTTP_ROUTING, "steps": CANARY_STEPS}},
            "spec.strategy.canary.stableService: required with trafficRouting",
        ),
    ],
)
def test_canary_spec_errors_name_the_field_and_move_nothing(strategy, fragment):
    sim = Sim(
        rollout_manifest(strategy=strategy),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": http_route_manifest()},
    )
    original = copy.deepcopy(sim.routes["web"])
    run(sim, rounds=3)
    assert sim.status["phase"] == "Degraded"
    assert fragment in _invalid(sim)
    assert sim.replicasets == {} and sim.routes["web"] == original
