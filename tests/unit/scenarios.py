"""Canary and blue/green Rollouts set up and driven on the simulator (tests/sim.py), shared by the
unit tests of the engine: the sims, reconciles in rounds, the actions decided, and what the routes
and Services show."""

from hypothesis import strategies as st

from rollout.analysis.resolve import TemplateKey
from rollout.api.revision import REVISION_LABEL
from rollout.api.templates import parse_template
from tests.manifests import blue_green_strategy, canary_strategy, http_route_manifest, rollout_manifest
from tests.sim import Sim

# The AnalysisTemplate success-rate: three Prometheus measurements 10 s apart, each >= 0.99.
TEMPLATE = parse_template(
    {
        "spec": {
            "metrics": [
                {
                    "name": "success-rate",
                    "interval": "10s",
                    "count": 3,
                    "successCondition": "result[0] >= 0.99",
                    "provider": {"prometheus": {"query": 'rate(x{revision="{{args.canary-hash}}"}[1m])'}},
                }
            ]
        }
    }
)
STEP = {"analysis": {"templates": [{"name": "success-rate"}]}}  # a canary step running it
ANALYSIS = {"templates": [{"name": "success-rate"}]}  # a blue/green's pre- or post-promotion analysis
BLUE_GREEN_SERVICES = {"web-active": {"app": "web"}, "web-preview": {"app": "web"}}


def canary_sim(strategy=None, replicas=4, route=None):
    """A canary (canary_strategy() unless `strategy`) on the HTTPRoute `web`, first deploy Healthy."""
    sim = Sim(
        rollout_manifest(replicas=replicas, strategy=strategy or canary_strategy()),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": route if route is not None else http_route_manifest()},
    )
    sim.settle()
    assert sim.status["phase"] == "Healthy"
    return sim


def analysed_sim(steps, **extra):
    """A canary taking `steps` with TEMPLATE installed and its metric answering 0.999, settled."""
    sim = Sim(
        rollout_manifest(replicas=4, strategy=canary_strategy(steps=steps, **extra)),
        services={"web-stable": {"app": "web"}, "web-canary": {"app": "web"}},
        routes={"web": http_route_manifest()},
        templates={TemplateKey("success-rate"): TEMPLATE},
        metric_values={"success-rate": [0.999]},
    )
    sim.settle()
    return sim


def blue_green_sim(replicas=4, route=False, **extra):
    """A blue/green (`extra` its fields; with `route`, switched on the HTTPRoute `web`) with TEMPLATE
    installed and its metric answering 0.999; first deploy Healthy, its traffic writes forgotten."""
    strategy = blue_green_strategy(**extra)
    routes = {}
    if route:
        strategy["blueGreen"]["trafficRouting"] = {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}}
        routes = {"web": http_route_manifest(backends=("web-active", "web-preview"))}
    sim = Sim(
        rollout_manifest(replicas=replicas, strategy=strategy),
        services={name: dict(selector) for name, selector in BLUE_GREEN_SERVICES.items()},
        routes=routes,
        templates={TemplateKey("success-rate"): TEMPLATE},
        metric_values={"success-rate": [0.999]},
    )
    sim.settle()
    assert sim.status["phase"] == "Healthy"
    sim.traffic_writes.clear()  # the first deploy writes both weights out explicitly
    return sim


def run(sim, rounds=1, seconds=1.0, ready=True, *commands):
    """`rounds` reconciles (the first with `commands`), pods made ready after each unless not
    `ready`, `seconds` passing between them."""
    for _ in range(rounds):
        sim.reconcile(*commands)
        commands = ()
        if ready:
            sim.pods_ready()
        sim.tick(seconds)


def start(sim):
    """Update the image to web:2 and run 8 rounds."""
    sim.set_image("web:2")
    run(sim, rounds=8)


def action_log(sim):
    """Every action decided so far, in order."""
    return [a for d in sim.decisions for a in d.actions]


def app_rule(route):
    return next(r for r in route["spec"]["rules"] if r.get("name") == "app")


def app_weights(sim):
    """Backend -> weight on the `app` rule of the sim's HTTPRoute `web`."""
    rule = next(r for r in sim.routes["web"]["spec"]["rules"] if r.get("name") == "app")
    return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


def check_route(route):
    """The canary's weight on the route's `app` rule, after checking both weights are in 0..100
    and add up to 100."""
    weights = {ref["name"]: ref["weight"] for ref in app_rule(route)["backendRefs"]}
    assert 0 <= weights["web-canary"] <= 100 and 0 <= weights["web-stable"] <= 100
    assert weights["web-canary"] + weights["web-stable"] == 100
    return weights["web-canary"]


def active(sim):
    """The revision the active Service of a blue/green selects."""
    return sim.services["web-active"][REVISION_LABEL]


COMMANDS = ["promote", "promote-full", "abort", "retry", "pause", "resume"]


def operations(ready: int, wait: int, *extra: st.SearchStrategy) -> st.SearchStrategy:
    """One step of a property test's random script (Sim.operate): up to `ready` pods becoming
    available, up to `wait` seconds passing, a lost status write ("crash"), a command, a new
    image; `extra` adds kinds of its own."""
    return st.one_of(
        st.tuples(st.just("ready"), st.integers(0, ready)),
        st.tuples(st.just("wait"), st.integers(1, wait)),
        st.tuples(st.just("crash"), st.just(0)),
        st.tuples(
            st.sampled_from(["promote", "promote-full", "abort", "retry", "pause", "resume"]), st.just(0)
        ),
        st.tuples(st.just("image"), st.integers(2, 4)),
        *extra,
    )
