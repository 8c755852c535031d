"""A canary's baseline (canary.baselineService) in the pure engine, on the simulator through the
real routers: a ReplicaSet of the stable template started with the canary at its size, the route
at stable 100 - 2w / baseline w / canary w, no share while the baseline has no available pod, the
route back to exactly as written (baseline backend gone) before the baseline is scaled down at
completion and abort, the InvalidSpecs of the field, and the deadline that names the baseline."""

import copy
import json

import pytest

from rollout.api.revision import BASELINE_LABEL, REVISION_LABEL
from rollout.api.rollout import parse_rollout
from rollout.cli.view import revision_role, weight_line
from rollout.controller.routes import observe_routes
from rollout.engine import Command
from rollout.engine.types import CreateBaseline, ScaleReplicaSet, SetTraffic
from rollout.traffic.routing import routing_of
from rollout.workload.replicasets import TEMPLATE_ANNOTATION
from tests.manifests import (
    CANARY_STEPS,
    HTTP_ROUTING,
    NGINX_ROUTING,
    canary_strategy,
    http_route_manifest,
    rollout_manifest,
)
from tests.sim import Sim
from tests.sim_api import run_at_once
from tests.unit.scenarios import action_log, app_rule, run

SERVICES = {"web-stable": {"app": "web"}, "web-canary": {"app": "web"}, "web-baseline": {"app": "web"}}


def baseline_sim(steps=CANARY_STEPS, routing=HTTP_ROUTING, services=SERVICES, **extra):
    """A canary with baselineService web-baseline on the HTTPRoute `web`, first deploy settled."""
    strategy = canary_strategy(steps=steps, routing=routing, baselineService="web-baseline", **extra)
    sim = Sim(
        rollout_manifest(replicas=4, strategy=strategy),
        services=copy.deepcopy(services),
        routes={"web": http_route_manifest()},
    )
    sim.settle()
    return sim


def weights(sim):
    """Service -> weight on the route's `app` rule (three backends while the baseline has a share)."""
    return {ref["name"]: ref["weight"] for ref in app_rule(sim.routes["web"])["backendRefs"]}


def baseline_set(sim):
    return next((rs for rs in sim.replicasets.values() if rs.baseline_of), None)


def test_at_step_twenty_the_route_splits_sixty_twenty_twenty_and_the_baseline_runs_stable_template():
    sim = baseline_sim()
    assert sim.status["phase"] == "Healthy"
    stable = sim.status["stableRevision"]
    assert weights(sim) == {"web-stable": 100, "web-canary": 0}  # no baseline backend at rest
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=8)
    assert weights(sim) == {"web-stable": 60, "web-canary": 20, "web-baseline": 20}
    baseline = baseline_set(sim)
    assert baseline is not None and baseline.baseline_of == stable
    assert baseline.spec == sim.spec_of(new) == 1  # the canary's size: ceil(4 x 20%)
    assert baseline.revision not in (stable, new)
    # The stable template plus the baseline label, so its own hash: the stable Service never selects it.
    template = json.loads(baseline.metadata["annotations"][TEMPLATE_ANNOTATION])
    stable_set = next(rs for rs in sim.replicasets.values() if rs.revision == stable)
    stable_template = json.loads(stable_set.metadata["annotations"][TEMPLATE_ANNOTATION])
    assert template["metadata"]["labels"] == {**stable_template["metadata"]["labels"], BASELINE_LABEL: "true"}
    assert template["spec"] == stable_template["spec"]
    assert sim.services["web-baseline"][REVISION_LABEL] == baseline.revision
    assert sim.services["web-stable"][REVISION_LABEL] == stable
    assert sim.services["web-canary"][REVISION_LABEL] == new
    assert sim.status["canary"]["baselineRevision"] == baseline.revision
    assert sim.status["canary"]["baselineWeight"] == 20
    assert sim.status["phase"] == "Paused" and sim.status["currentStepIndex"] == 1
    # Created in the same decision as the canary's ReplicaSet, at the same size.
    log = action_log(sim)
    create = next(i for i, a in enumerate(log) if isinstance(a, CreateBaseline))
    assert log[create].replicas == 1


def test_the_baseline_gets_no_share_without_available_pods_and_the_step_waits_for_it():
    sim = baseline_sim()
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=8)
    baseline = baseline_set(sim)
    # Its pod goes away (evicted, crashed): its share goes back to stable, the canary keeps its own.
    baseline.available = 0
    run(sim, rounds=2, ready=False)
    assert weights(sim) == {"web-stable": 80, "web-canary": 20}
    assert sim.status["canary"]["baselineWeight"] == 0
    # A canary never gets a baseline that has no pods at all: before any is available, none.
    sim2 = baseline_sim()
    sim2.set_image("web:2")
    run(sim2, rounds=3, ready=False)
    for rs in sim2.replicasets.values():
        if rs.revision == new:
            rs.available = rs.spec  # only the canary's pods become available
    run(sim2, rounds=3, ready=False)
    assert weights(sim2) == {"web-stable": 80, "web-canary": 20}
    assert "baseline ReplicaSet" in sim2.status["message"] and "0/1 available" in sim2.status["message"]
    assert sim2.status["currentStepIndex"] == 0  # the step waits for its baseline
    run(sim2, rounds=4)
    assert weights(sim2) == {"web-stable": 60, "web-canary": 20, "web-baseline": 20}


def test_completion_puts_the_route_back_as_written_before_the_baseline_goes():
    sim = baseline_sim(scale_down_delay=10)
    stable = sim.status["stableRevision"]
    user_route = copy.deepcopy(sim.routes["web"])
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    run(sim, rounds=8)
    run(sim, 1, 1.0, True, Command("promote"))
    run(sim, rounds=4)
    assert weights(sim) == {"web-stable": 0, "web-canary": 50, "web-baseline": 50}
    assert baseline_set(sim).spec == 2
    mark = len(action_log(sim))
    run(sim, rounds=75)  # the 60 s pause, completion, then the scale-down delay
    assert sim.status["stableRevision"] == new and sim.status["phase"] == "Healthy"
    assert sim.routes["web"] == user_route  # 100/0, the baseline backend gone, nothing else changed
    assert baseline_set(sim) is None  # scaled down, then deleted (no revision to go back to)
    assert sim.spec_of(stable) == 0
    assert sim.status["canary"].get("baselineRevision") is None
    after = action_log(sim)[mark:]
    back = next(i for i, a in enumerate(after) if isinstance(a, SetTraffic) and a.state.baseline == 0)
    down = next(i for i, a in enumerate(after) if isinstance(a, ScaleReplicaSet) and a.replicas == 0)
    assert back < down


def test_abort_puts_the_route_back_before_the_baseline_is_scaled_down():
    sim = baseline_sim(abortScaleDownDelaySeconds=10)
    user_route = copy.deepcopy(sim.routes["web"])
    sim.set_image("web:2")
    run(sim, rounds=8)
    baseline = baseline_set(sim)
    assert baseline.spec == 1
    mark = len(action_log(sim))
    run(sim, 1, 1.0, True, Command("abort"))
    run(sim, rounds=3)
    after = action_log(sim)[mark:]
    first = next(i for i, a in enumerate(after) if isinstance(a, SetTraffic))
    assert after[first].state.weight == 0 and after[first].state.baseline == 0
    assert not any(isinstance(a, ScaleReplicaSet) and a.replicas == 0 for a in after[:first])
    assert sim.routes["web"] == user_route
    assert baseline_set(sim).spec == 1  # the abort delay has not passed yet
    run(sim, rounds=12)
    assert baseline_set(sim) is None
    assert sim.status["phase"] == "Degraded" and sim.status["aborted"] is True


def test_a_baseline_with_no_pod_past_the_progress_deadline_aborts_naming_it():
    sim = baseline_sim()
    sim.manifest["spec"]["progressDeadlineSeconds"] = 30
    sim.set_image("web:2")
    new = sim.revision_for("web:2")
    for _ in range(45):  # only the canary's pods ever become available
        sim.reconcile()
        for rs in sim.replicasets.values():
            if rs.revision == new:
                rs.available = rs.spec
        sim.tick()
    name = baseline_set(sim).name
    assert sim.status["aborted"] is True and sim.status["phase"] == "Degraded"
    stuck = f"baseline ReplicaSet {name}: 0/1 available"
    assert sim.status["abortReason"] == f"progress deadline exceeded: {stuck}"
    assert stuck in sim.status["message"]
    events = [e for d in sim.decisions for e in d.events]
    aborted = next(e for e in events if e.reason == "RolloutAborted")
    assert f"the baseline is not available: {stuck}" in aborted.message
    assert weights(sim) == {"web-stable": 100, "web-canary": 0}


def invalid_message(sim):
    return next(c for c in sim.status["conditions"] if c["type"] == "InvalidSpec")["message"]


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"routing": None}, "spec.strategy.canary.baselineService", "needs trafficRouting (gatewayAPI"),
        ({"routing": NGINX_ROUTING}, "spec.strategy.canary.baselineService", "ingress-nginx splits traffic"),
        (
            {
                "routing": {
                    "istio": {
                        "virtualService": {"name": "web"},
                        "destinationRule": {"name": "web", "stableSubset": "s", "canarySubset": "c"},
                    }
                }
            },
            "spec.strategy.canary.baselineService",
            "remove destinationRule",
        ),
        (
            {"steps": [{"setWeight": 20}, {"setWeight": 60}]},
            "spec.strategy.canary.steps[1].setWeight",
            "60 is over 50",
        ),
        ({"dynamicStableScale": True}, "spec.strategy.canary.dynamicStableScale", "cannot be used with"),
        (
            {"services": {"web-stable": {"app": "web"}, "web-canary": {"app": "web"}}},
            "spec.strategy.canary.baselineService",
            "Service shop/web-baseline not found",
        ),
    ],
)
def test_a_baseline_the_controller_cannot_run_is_invalid_spec_and_nothing_moves(change, path, words):
    sim = baseline_sim(**change)
    message = invalid_message(sim)
    assert path in message and words in message
    assert sim.status["phase"] == "Degraded"
    assert sim.replicasets == {} and sim.traffic_writes == []
    events = [e for d in sim.decisions for e in d.events]
    assert any(e.reason == "InvalidSpec" and e.type == "Warning" and path in e.message for e in events)


def test_the_baseline_service_must_differ_from_the_canary_service():
    strategy = canary_strategy(baselineService="web-canary")
    sim = Sim(
        rollout_manifest(replicas=4, strategy=strategy),
        services=copy.deepcopy(SERVICES),
        routes={"web": http_route_manifest()},
    )
    sim.settle()
    assert "spec.strategy.canary.baselineService" in invalid_message(sim)
    assert "must differ from stableService and canaryService" in invalid_message(sim)


def test_rollout_get_shows_the_baseline_share_and_revision():
    sim = baseline_sim()
    sim.set_image("web:2")
    run(sim, rounds=8)
    parsed = parse_rollout(copy.deepcopy(sim.manifest)).rollout
    routing = routing_of(parsed)
    observed = run_at_once(observe_routes(sim._controller.kube, parsed, {}))[0]
    line = weight_line(observed, routing)
    assert line == "HTTPRoute web/app: web-stable 60, web-canary 20, web-baseline 20 (baseline)"
    baseline = baseline_set(sim)
    assert revision_role(baseline.revision, sim.status) == "baseline"


def test_a_lower_weight_takes_traffic_off_the_baseline_before_its_pods():
    sim = baseline_sim(steps=[{"setWeight": 40}, {"pause": {}}, {"setWeight": 20}, {"pause": {}}])
    sim.set_image("web:2")
    run(sim, rounds=8)
    assert weights(sim) == {"web-stable": 20, "web-canary": 40, "web-baseline": 40}
    baseline = baseline_set(sim)
    assert baseline.spec == 2  # ceil(4 x 40%)
    mark = len(action_log(sim))
    run(sim, 1, 1.0, True, Command("promote"))
    run(sim, rounds=4)
    assert weights(sim) == {"web-stable": 60, "web-canary": 20, "web-baseline": 20}
    assert baseline.spec == 1
    after = action_log(sim)[mark:]
    lowered = next(i for i, a in enumerate(after) if isinstance(a, SetTraffic) and a.state.baseline == 20)
    shrunk = next(
        i for i, a in enumerate(after) if isinstance(a, ScaleReplicaSet) and a.name == baseline.name
    )
    assert lowered < shrunk


@pytest.mark.parametrize("changed", ["web-other", None])
def test_changing_the_baseline_service_while_it_carries_traffic_is_invalid_and_nothing_moves(changed):
    sim = baseline_sim()
    sim.services["web-other"] = {"app": "web"}
    sim.set_image("web:2")
    run(sim, rounds=8)
    assert sim.status["canary"]["baselineService"] == "web-baseline"
    route = copy.deepcopy(sim.routes["web"])
    canary = sim.manifest["spec"]["strategy"]["canary"]
    if changed is None:
        del canary["baselineService"]
    else:
        canary["baselineService"] = changed
    writes = len(sim.traffic_writes)
    run(sim, rounds=3)
    message = invalid_message(sim)
    assert "spec.strategy.canary.baselineService" in message
    assert "still send 20% to the baseline through Service web-baseline" in message
    assert sim.routes["web"] == route and len(sim.traffic_writes) == writes
    canary["baselineService"] = "web-baseline"  # put back: it carries on, then abort cleans up
    run(sim, 1, 1.0, True, Command("abort"))
    run(sim, rounds=3)
    assert weights(sim) == {"web-stable": 100, "web-canary": 0}
    assert sim.status["canary"].get("baselineService") is None
