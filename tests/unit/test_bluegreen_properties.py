"""Invariants of the blue/green engine under random readiness, waits, commands, template changes,
lost status writes and analysis outcomes, with and without a route-level switch: users are only
ever on a revision with available pods, nothing is scaled down while users are on it, and an
abort ends with users and the preview on stable and everything else at zero."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout.analysis.resolve import TemplateKey
from rollout.api.revision import REVISION_LABEL
from rollout.engine import Command
from rollout.engine.types import PinService, ScaleReplicaSet
from tests.manifests import http_route_manifest, rollout_manifest
from tests.sim import Sim
from tests.unit.scenarios import ANALYSIS, TEMPLATE, operations

operation = operations(
    8,
    40,
    st.tuples(st.just("ready"), st.integers(0, 8)),  # twice as likely: a switch needs many ready pods
    st.tuples(st.just("metric"), st.sampled_from([0.999, 0.5, None])),
)
config = st.fixed_dictionaries(
    {},
    optional={
        "previewReplicaCount": st.integers(0, 7),
        "autoPromotionEnabled": st.booleans(),
        "autoPromotionSeconds": st.integers(0, 30),
        "prePromotionAnalysis": st.just(ANALYSIS),
        "postPromotionAnalysis": st.just(ANALYSIS),
        "scaleDownDelaySeconds": st.integers(0, 10),
        "abortScaleDownDelaySeconds": st.integers(0, 10),
    },
)


def users_on(sim, routed):
    """The revision users reach: the preview Service's when the route sends 100% to it."""
    if routed:
        rule = next(r for r in sim.routes["web"]["spec"]["rules"] if r.get("name") == "app")
        weights = {ref["name"]: ref.get("weight", 1) for ref in rule["backendRefs"]}
        assert sorted(weights.values()) == [0, 100]  # a switch, never a split
        if weights["web-preview"] == 100:
            return sim.services["web-preview"].get(REVISION_LABEL)
    return sim.services["web-active"].get(REVISION_LABEL)


def available(sim, revision):
    return sum(rs.available for rs in sim.replicasets.values() if rs.revision == revision)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config, st.integers(1, 6), st.booleans(), st.lists(operation, min_size=1, max_size=40))
def test_users_only_on_available_pods_and_abort_switches_back_before_scaling_down(
    extra, replicas, routed, script
):
    strategy = {"activeService": "web-active", "previewService": "web-preview", **extra}
    routes = {}
    if routed:
        strategy["trafficRouting"] = {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}}
        routes = {"web": http_route_manifest(backends=("web-active", "web-preview"))}
    sim = Sim(
        rollout_manifest(replicas=replicas, strategy={"blueGreen": strategy}),
        services={"web-active": {"app": "web"}, "web-preview": {"app": "web"}},
        routes=routes,
        templates={TemplateKey("success-rate"): TEMPLATE},
        metric_values={"success-rate": [0.999]},
    )
    sim.settle()
    sim.set_image("web:2")
    for kind, value in script:
        commands = sim.operate(kind, value)
        if kind == "metric":
            sim.metric_values = {"success-rate": [] if value is None else [value]}
        users_before = users_on(sim, routed)
        specs_before = {rs.name: (rs.revision, rs.spec) for rs in sim.replicasets.values()}
        had_pods = available(sim, users_before) > 0
        decision = sim.reconcile(*commands, lose_status=kind == "crash")
        for action in decision.actions:
            if isinstance(action, ScaleReplicaSet) and action.name in specs_before:
                revision, spec = specs_before[action.name]
                # Nothing is scaled down while users are on it.
                assert not (revision == users_before and action.replicas < spec), decision.status.message
            if isinstance(action, PinService) and action.service == "web-active" and had_pods:
                # Users never move from pods to no pods (the Service was observed before the move).
                assert available(sim, action.revision) > 0 or action.revision == users_before
        users = users_on(sim, routed)
        if any(rs.available for rs in sim.replicasets.values()):
            assert available(sim, users) > 0, (users, decision.status.message)
        if kind == "ready":
            sim.pods_ready(value)
        sim.tick(value if kind == "wait" else 1)
    # Abort, and let it settle: users and the preview on stable, everything else at zero.
    sim.reconcile(Command("abort"))
    for _ in range(45):  # past the default abortScaleDownDelaySeconds (30)
        sim.reconcile()
        sim.pods_ready()
        sim.tick(1)
    stable = sim.status["stableRevision"]
    assert users_on(sim, routed) == stable
    assert sim.services["web-preview"][REVISION_LABEL] == stable
    assert all(rs.spec == 0 for rs in sim.replicasets.values() if rs.revision != stable)
    assert sim.spec_of(stable) == replicas
