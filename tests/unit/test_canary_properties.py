"""Invariants of the canary engine under random steps, readiness, commands, template changes,
lost status writes and aborts, checked on the real route documents the routers write."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.api.rollout import parse_rollout
from rollout.engine import Command
from rollout.engine.steps import target_at
from rollout.engine.types import SetTraffic
from tests.manifests import http_route_manifest, rollout_manifest
from tests.sim import Sim
from tests.unit.scenarios import app_rule, check_route, operations

step = st.one_of(
    st.integers(0, 100).map(lambda w: {"setWeight": w}),
    st.just({"pause": {}}),
    st.integers(0, 30).map(lambda s: {"pause": {"duration": s}}),
    st.just({"setHeaderRoute": {"name": "dark", "match": [{"header": "x-canary", "exact": "1"}]}}),
    st.integers(0, 100).map(lambda p: {"setMirrorRoute": {"name": "shadow", "percent": p}}),
    st.integers(0, 5).map(lambda n: {"setCanaryScale": {"replicas": n}}),
)
operation = operations(3, 40)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(step, min_size=1, max_size=6),
    st.integers(1, 6),
    st.lists(operation, min_size=1, max_size=40),
)
def test_weights_stay_in_bounds_within_the_step_and_end_at_zero_after_abort(steps, replicas, script):
    sim = Sim(
        rollout_manifest(
            replicas=replicas,
            strategy={
                "canary": {
                    "stableService": "web-stable",
                    "canaryService": "web-canary",
                    "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
                    "steps": steps,
                    "abortScaleDownDelaySeconds": 5,
                    "scaleDownDelaySeconds": 5,
                }
            },
        ),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": http_route_manifest()},
    )
    sim.settle()
    parsed_steps = parse_rollout(sim.manifest).rollout.spec.strategy.canary.steps
    sim.set_image("web:2")
    for kind, value in script:
        commands = sim.operate(kind, value)
        image = sim.manifest["spec"]["template"]["spec"]["containers"][0]["image"]
        canary_available = sum(
            rs.available for rs in sim.replicasets.values() if rs.revision == sim.revision_for(image)
        )
        before = sim.status.get("currentStepIndex")
        decision = sim.reconcile(*commands, lose_status=kind == "crash")
        after = decision.status.current_step_index
        # The steps this decision was at (it may pass a pause by promote and write the next step).
        visited = range(before or 0, min(len(parsed_steps) - 1, max(before or 0, after or 0)) + 1)
        ceiling = (
            0
            if after is None and before is None
            else max((target_at(parsed_steps, i).traffic.weight for i in visited), default=0)
        )
        for action in decision.actions:
            if isinstance(action, SetTraffic):
                assert 0 <= action.state.weight <= ceiling
                # Never any traffic to a canary with no available pod.
                if canary_available == 0:
                    assert action.state.weight == 0 and not action.state.header_routes
                    assert action.state.mirror is None
        check_route(sim.routes["web"])
        if kind == "ready":
            sim.pods_ready(value)
        sim.tick(value if kind == "wait" else 1)
    # Abort, and let it settle: the route is 100/0 with no managed rule, the canary scaled down.
    sim.reconcile(Command("abort"))
    for _ in range(20):
        sim.reconcile()
        sim.pods_ready()
        sim.tick(1)
    assert check_route(sim.routes["web"]) == 0
    assert [r.get("name") for r in sim.routes["web"]["spec"]["rules"]] == ["static", "app"]
    assert "filters" not in app_rule(sim.routes["web"]) or all(
        f["type"] != "RequestMirror" for f in app_rule(sim.routes["web"])["filters"]
    )
    stable = sim.status["stableRevision"]
    assert all(rs.spec == 0 for rs in sim.replicasets.values() if rs.revision != stable)
