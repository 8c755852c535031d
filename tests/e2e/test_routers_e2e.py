"""Every router besides the HTTPRoute on a real API server, whose CRD schemas (CEL rules included)
and built-in Ingress validation judge every write the controller makes:

- a GRPCRoute canary (dark launch, mirror, two weights) that completes while a stand-in Gateway
  accepts each generation of the route (RouteStatus True), the route ending as it was written
  (at 100/0);
- a TCPRoute canary, weights only, with no Gateway status at all (RouteStatus Unknown, and it
  proceeds), and a header route on a TCPRoute refused as InvalidSpec with the route untouched;
- an Istio VirtualService http route by name through a dark launch, a mirror and a weight, then
  aborted: the VirtualService is back exactly as stored at rest;
- a VirtualService tcp route chosen by port, to completion, the http routes never touched;
- ingress-nginx: the controller's canary Ingress `<stable>-<rollout>-canary` carries the header
  and weight steps as canary annotations and is deleted at completion, on abort and with the
  Rollout; the stable Ingress is never written (same resourceVersion).

While paused, the GRPCRoute, the VirtualService and the canary Ingress are not written again:
the controller reads back what it wrote (after the server's defaulting) as applied."""

import asyncio
import copy

import pytest

from rollout.kube import REPLICASETS, ROLLOUTS, SERVICES, Resource
from tests.e2e.gateway_status import gateway_accepting
from tests.e2e.helpers import VIRTUALSERVICES, annotate, phase_is, spec_of, wait_for
from tests.manifests import (
    NGINX_ROUTING,
    canary_strategy,
    grpc_route_manifest,
    image_patch,
    ingress_manifest,
    rollout_manifest,
    service_manifest,
    tcp_route_manifest,
    virtual_service_manifest,
)

pytestmark = pytest.mark.e2e

GRPCROUTES = Resource("gateway.networking.k8s.io", "v1", "grpcroutes")
TCPROUTES = Resource("gateway.networking.k8s.io", "v1", "tcproutes")
INGRESSES = Resource("networking.k8s.io", "v1", "ingresses")
REVISION = "rollout.dev/revision"
CANARY_INGRESS = "web-web-canary"  # <stable Ingress>-<Rollout>-canary
NGINX = "nginx.ingress.kubernetes.io/"
DARK = {"setHeaderRoute": {"name": "dark", "match": [{"header": "x-canary", "exact": "true"}]}}


async def deploy(kube, ns, routing, steps, route=None, resource=None):
    """The two Services, the route (if any) and a 2-replica canary Rollout; returns the first
    revision once Healthy and the route as the server stored it on creation (CRD defaults
    applied), before the controller wrote to it."""
    for name in ("web-stable", "web-canary"):
        await kube.create(SERVICES, ns, service_manifest(name, namespace=ns))
    stored = None
    if route is not None:
        route["metadata"] = {"name": "web", "namespace": ns}
        stored = await kube.create(resource, ns, route)
    strategy = canary_strategy(steps, routing, scale_down_delay=2)
    await kube.create(ROLLOUTS, ns, rollout_manifest(namespace=ns, replicas=2, strategy=strategy))
    status = await wait_for(phase_is(kube, ns, "Healthy"), what="first deploy Healthy")
    return status["stableRevision"], stored


async def update_to(kube, ns, image):
    await kube.patch(ROLLOUTS, ns, "web", image_patch(image))


async def paused_at(kube, ns, index):
    return await wait_for(phase_is(kube, ns, "Paused", index), what=f"paused at step index {index}")


async def promote(kube, ns):
    await annotate(kube, ns, "rollout.dev/promote", "step")


async def completed(kube, ns, old_revision):
    async def probe():
        status = await phase_is(kube, ns, "Healthy")()
        return status if status and status["stableRevision"] != old_revision else None

    return await wait_for(probe, what="the new revision stable and Healthy")


async def left_alone(kube, resource, ns, name, field="generation", seconds=2.5):
    """The object is not written again while the Rollout waits at a pause (`seconds` spans more
    than one of the controller's 2 s resyncs): the controller reads back what it wrote, after the
    server's defaulting, as applied, and does not rewrite it in a loop."""
    before = (await kube.get(resource, ns, name))["metadata"][field]
    await asyncio.sleep(seconds)
    after = (await kube.get(resource, ns, name))["metadata"][field]
    assert after == before, f"{resource.plural}/{name} rewritten while paused: {field} {before} -> {after}"


def condition(status, kind):
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), None)


def rule_named(route, name):
    return next(r for r in route["spec"]["rules"] if r.get("name") == name)


def ref_weights(rule):
    return {ref["name"]: ref.get("weight") for ref in rule["backendRefs"]}


def with_weights(route, rule_name, weights):
    """The route's spec as the controller leaves it at rest: these weights on that rule, the rest as is."""
    spec = copy.deepcopy(spec_of(route))
    for ref in rule_named({"spec": spec}, rule_name)["backendRefs"]:
        ref["weight"] = weights[ref["name"]]
    return spec


def mirrors(rule):
    return [f["requestMirror"] for f in rule.get("filters") or [] if f["type"] == "RequestMirror"]


async def test_grpcroute_dark_launch_mirror_and_weights_complete_under_an_accepting_gateway(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    steps = [
        DARK,
        {"setMirrorRoute": {"name": "shadow", "percent": 20}},
        {"setWeight": 20},
        {"pause": {}},
        {"setWeight": 60},
        {"pause": {}},
    ]
    routing = {"gatewayAPI": {"grpcRoutes": [{"name": "web"}]}}
    async with gateway_accepting(kube, namespace, GRPCROUTES) as accepted:
        v1, stored = await deploy(kube, namespace, routing, steps, grpc_route_manifest(), GRPCROUTES)
        # The server defaulted the weightless stable backendRef to 1; the first deploy makes it
        # 100/0 and changes nothing else.
        assert ref_weights(rule_named(stored, "app")) == {"web-stable": 1, "web-canary": 0}
        at_rest = with_weights(stored, "app", {"web-stable": 100, "web-canary": 0})
        assert spec_of(await kube.get(GRPCROUTES, namespace, "web")) == at_rest

        await update_to(kube, namespace, "registry.example/web:2")
        status = await paused_at(kube, namespace, 3)
        route = await kube.get(GRPCROUTES, namespace, "web")
        assert ref_weights(rule_named(route, "app")) == {"web-stable": 80, "web-canary": 20}
        assert [r["name"] for r in route["spec"]["rules"]] == ["health", "rollout.dev.web.dark", "app"]
        dark = rule_named(route, "rollout.dev.web.dark")
        assert [m["method"]["service"] for m in dark["matches"]] == ["shop.Catalog"]
        assert [m["headers"] for m in dark["matches"]] == [
            [{"name": "x-canary", "type": "Exact", "value": "true"}]
        ]
        assert [ref["name"] for ref in dark["backendRefs"]] == ["web-canary"]
        assert [f["type"] for f in dark["filters"]] == ["RequestHeaderModifier"]  # the user's filter, copied
        assert [(m["backendRef"]["name"], m["percent"]) for m in mirrors(rule_named(route, "app"))] == [
            ("web-canary", 20)
        ]
        assert "canary weight 20%" in status["message"]
        route_status = condition(status, "RouteStatus")
        assert (route_status["status"], route_status["reason"]) == ("True", "Accepted")
        assert route["metadata"]["generation"] in accepted["web"]
        await left_alone(kube, GRPCROUTES, namespace, "web")

        await promote(kube, namespace)
        status = await paused_at(kube, namespace, 5)
        route = await kube.get(GRPCROUTES, namespace, "web")
        assert ref_weights(rule_named(route, "app")) == {"web-stable": 40, "web-canary": 60}
        assert [r["name"] for r in route["spec"]["rules"]] == ["health", "rollout.dev.web.dark", "app"]
        assert "canary weight 60%" in status["message"]
        assert condition(status, "RouteStatus")["status"] == "True"

        await promote(kube, namespace)
        await completed(kube, namespace, v1)
    final = await kube.get(GRPCROUTES, namespace, "web")
    assert spec_of(final) == at_rest  # dark rule and mirror gone, 100/0, the rest as written


async def test_tcproute_canary_carries_weights_to_completion_without_route_status(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    steps = [{"setWeight": 30}, {"pause": {}}, {"setWeight": 70}, {"pause": {}}]
    routing = {"gatewayAPI": {"tcpRoutes": [{"name": "web"}]}}
    v1, stored = await deploy(kube, namespace, routing, steps, tcp_route_manifest(), TCPROUTES)
    at_rest = with_weights(stored, "db", {"web-stable": 100, "web-canary": 0})
    assert spec_of(await kube.get(TCPROUTES, namespace, "web")) == at_rest

    await update_to(kube, namespace, "registry.example/web:2")
    status = await paused_at(kube, namespace, 1)
    route = await kube.get(TCPROUTES, namespace, "web")
    assert ref_weights(rule_named(route, "db")) == {"web-stable": 70, "web-canary": 30}
    assert "canary weight 30%" in status["message"]
    route_status = condition(status, "RouteStatus")
    assert (route_status["status"], route_status["reason"]) == ("Unknown", "NoRouteStatus")
    assert "proceeding without it" in route_status["message"]

    await promote(kube, namespace)
    await paused_at(kube, namespace, 3)
    route = await kube.get(TCPROUTES, namespace, "web")
    assert ref_weights(rule_named(route, "db")) == {"web-stable": 30, "web-canary": 70}

    await promote(kube, namespace)
    await completed(kube, namespace, v1)
    assert spec_of(await kube.get(TCPROUTES, namespace, "web")) == at_rest


async def test_header_route_on_a_tcproute_is_invalid_spec_and_the_route_untouched(
    kube, namespace, routing_installed, start_controller
):
    start_controller()
    for name in ("web-stable", "web-canary"):
        await kube.create(SERVICES, namespace, service_manifest(name, namespace=namespace))
    route = tcp_route_manifest(namespace=namespace)
    stored = await kube.create(TCPROUTES, namespace, route)
    strategy = {
        "canary": {
            "stableService": "web-stable",
            "canaryService": "web-canary",
            "trafficRouting": {"gatewayAPI": {"tcpRoutes": [{"name": "web"}]}},
            "steps": [DARK, {"setWeight": 50}],
        }
    }
    await kube.create(
        ROLLOUTS, namespace, rollout_manifest(namespace=namespace, replicas=1, strategy=strategy)
    )

    async def invalid():
        status = ((await kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
        return status if status.get("message", "").startswith("InvalidSpec") else None

    status = await wait_for(invalid, what="InvalidSpec")
    assert status["phase"] == "Degraded"
    assert "TCP" in status["message"] and "setHeaderRoute" in status["message"], status["message"]
    route = await kube.get(TCPROUTES, namespace, "web")
    assert route["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]


def http_entry(service, name):
    return next(e for e in service["spec"]["http"] if e.get("name") == name)


def destination_weights(entry):
    return {r["destination"]["host"].split(".")[0]: r.get("weight") for r in entry["route"]}


async def test_virtualservice_dark_launch_mirror_and_weight_then_abort_restore_it_as_written(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    steps = [
        {"setHeaderRoute": {"name": "dark", "match": [{"header": "End-User", "exact": "jason"}]}},
        {"pause": {}},
        {"setMirrorRoute": {"name": "shadow", "percent": 20}},
        {"pause": {}},
        {"setWeight": 30},
        {"pause": {}},
    ]
    routing = {"istio": {"virtualService": {"name": "web", "routes": ["primary"]}}}
    manifest = virtual_service_manifest(namespace=namespace)
    _, stored = await deploy(kube, namespace, routing, steps, manifest, VIRTUALSERVICES)
    at_rest = await kube.get(VIRTUALSERVICES, namespace, "web")
    assert spec_of(at_rest) == spec_of(stored)  # written 100/0 already: nothing to change

    await update_to(kube, namespace, "registry.example/web:2")
    status = await paused_at(kube, namespace, 1)
    service = await kube.get(VIRTUALSERVICES, namespace, "web")
    assert [e["name"] for e in service["spec"]["http"]] == ["admin", "rollout.dev.web.dark", "primary"]
    dark = http_entry(service, "rollout.dev.web.dark")
    assert dark["match"] == [{"uri": {"prefix": "/"}, "headers": {"end-user": {"exact": "jason"}}}]
    assert dark["route"] == [{"destination": {"host": "web-canary", "port": {"number": 80}}, "weight": 100}]
    primary_as_written = http_entry(stored, "primary")
    for field in ("timeout", "retries", "corsPolicy"):  # the dark launch behaves like the route it copies
        assert dark[field] == primary_as_written[field]
    assert http_entry(service, "primary") == primary_as_written  # everyone else: stable, as before
    assert status["canary"]["headerRoutes"] == ["dark"]
    assert "canary weight 0%" in status["message"]

    await promote(kube, namespace)
    await paused_at(kube, namespace, 3)
    primary = http_entry(await kube.get(VIRTUALSERVICES, namespace, "web"), "primary")
    assert primary["mirror"] == {"host": "web-canary", "port": {"number": 80}}
    assert primary["mirrorPercentage"] == {"value": 20}
    assert destination_weights(primary) == {"web-stable": 100, "web-canary": 0}

    await promote(kube, namespace)
    status = await paused_at(kube, namespace, 5)
    service = await kube.get(VIRTUALSERVICES, namespace, "web")
    primary = http_entry(service, "primary")
    assert destination_weights(primary) == {"web-stable": 70, "web-canary": 30}
    assert primary["mirrorPercentage"] == {"value": 20}
    assert [e["name"] for e in service["spec"]["http"]] == ["admin", "rollout.dev.web.dark", "primary"]
    assert service["spec"]["tcp"] == stored["spec"]["tcp"]  # not managed here
    assert "canary weight 30%" in status["message"]
    await left_alone(kube, VIRTUALSERVICES, namespace, "web")
    v2 = status["currentRevision"]

    await annotate(kube, namespace, "rollout.dev/abort")

    async def restored():
        current = await kube.get(VIRTUALSERVICES, namespace, "web")
        return current if spec_of(current) == spec_of(at_rest) else None

    await wait_for(restored, what="VirtualService back exactly as stored at rest")
    status = await wait_for(phase_is(kube, namespace, "Degraded"), what="Degraded after abort")
    assert status["aborted"] is True
    assert status["message"].startswith("Aborted (aborted by the rollout.dev/abort command)"), status[
        "message"
    ]

    async def canary_scaled_down():
        for rs in await kube.list(REPLICASETS, namespace):
            if rs["metadata"]["labels"].get(REVISION) == v2:
                return rs["spec"]["replicas"] == 0
        return False

    await wait_for(canary_scaled_down, what="canary scaled down after abortScaleDownDelaySeconds")


def tcp_weights(service, port=5432):
    entry = next(e for e in service["spec"]["tcp"] if any(m.get("port") == port for m in e["match"]))
    return destination_weights(entry)


async def test_virtualservice_tcp_route_by_port_canary_to_completion(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 75}, {"pause": {}}]
    routing = {"istio": {"virtualService": {"name": "web", "tcpRoutes": [5432]}}}
    manifest = virtual_service_manifest(namespace=namespace)
    v1, stored = await deploy(kube, namespace, routing, steps, manifest, VIRTUALSERVICES)
    at_rest = await kube.get(VIRTUALSERVICES, namespace, "web")
    assert spec_of(at_rest) == spec_of(stored)

    await update_to(kube, namespace, "registry.example/web:2")
    status = await paused_at(kube, namespace, 1)
    service = await kube.get(VIRTUALSERVICES, namespace, "web")
    assert tcp_weights(service) == {"web-stable": 75, "web-canary": 25}
    assert service["spec"]["http"] == stored["spec"]["http"]  # http routes are not this canary's
    assert "canary weight 25%" in status["message"]

    await promote(kube, namespace)
    await paused_at(kube, namespace, 3)
    service = await kube.get(VIRTUALSERVICES, namespace, "web")
    assert tcp_weights(service) == {"web-stable": 25, "web-canary": 75}
    assert service["spec"]["http"] == stored["spec"]["http"]

    await promote(kube, namespace)
    status = await completed(kube, namespace, v1)
    assert status["stableRevision"] == status["currentRevision"]
    assert spec_of(await kube.get(VIRTUALSERVICES, namespace, "web")) == spec_of(at_rest)


def nginx_annotations(ingress):
    return {
        key.removeprefix(NGINX): value
        for key, value in ingress["metadata"].get("annotations", {}).items()
        if key.startswith(NGINX)
    }


def canary_ingress_with(kube, ns, annotations):
    async def probe():
        ingress = await kube.get(INGRESSES, ns, CANARY_INGRESS)
        return ingress if ingress and nginx_annotations(ingress) == annotations else None

    return probe


def canary_ingress_gone(kube, ns):
    async def probe():
        return await kube.get(INGRESSES, ns, CANARY_INGRESS) is None

    return probe


async def test_nginx_canary_ingress_follows_header_and_weight_steps_and_goes_at_completion(
    kube, namespace, pods_made_ready, start_controller
):
    start_controller()
    stable = await kube.create(INGRESSES, namespace, ingress_manifest(namespace=namespace))
    steps = [
        {"setHeaderRoute": {"name": "testers", "match": [{"header": "X-Canary", "exact": "yes"}]}},
        {"pause": {}},
        {"setWeight": 20},
        {"pause": {}},
        {"setHeaderRoute": {"name": "testers"}},  # no match: the header route goes
        {"setWeight": 50},
        {"pause": {}},
    ]
    v1, _ = await deploy(kube, namespace, NGINX_ROUTING, steps)
    assert await kube.get(INGRESSES, namespace, CANARY_INGRESS) is None  # none at rest

    await update_to(kube, namespace, "registry.example/web:2")
    status = await paused_at(kube, namespace, 1)
    by_header = {"canary-by-header": "X-Canary", "canary-by-header-value": "yes"}
    canary = await kube.get(INGRESSES, namespace, CANARY_INGRESS)
    assert nginx_annotations(canary) == {
        "canary": "true",
        "canary-weight": "0",
        "canary-weight-total": "100",
        **by_header,
    }
    # The stable Ingress's class and hosts, only its paths to web-stable, sent to web-canary.
    to_canary = {"service": {"name": "web-canary", "port": {"number": 80}}}
    assert canary["spec"] == {
        "ingressClassName": "nginx",
        "rules": [
            {
                "host": host,
                "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to_canary}]},
            }
            for host in ("shop.example.com", "www.shop.example.com")
        ],
    }
    rollout = await kube.get(ROLLOUTS, namespace, "web")
    assert [o["uid"] for o in canary["metadata"]["ownerReferences"]] == [rollout["metadata"]["uid"]]
    assert status["canary"]["headerRoutes"] == ["testers"]

    await promote(kube, namespace)
    await paused_at(kube, namespace, 3)
    canary = await kube.get(INGRESSES, namespace, CANARY_INGRESS)
    assert nginx_annotations(canary) == {
        "canary": "true",
        "canary-weight": "20",
        "canary-weight-total": "100",
        **by_header,
    }
    await left_alone(kube, INGRESSES, namespace, CANARY_INGRESS, field="resourceVersion")

    await promote(kube, namespace)
    status = await paused_at(kube, namespace, 6)
    canary = await kube.get(INGRESSES, namespace, CANARY_INGRESS)
    assert nginx_annotations(canary) == {
        "canary": "true",
        "canary-weight": "50",
        "canary-weight-total": "100",
    }
    assert "canary weight 50%" in status["message"]

    await promote(kube, namespace)
    await completed(kube, namespace, v1)
    await wait_for(canary_ingress_gone(kube, namespace), what="canary Ingress deleted at completion")
    final = await kube.get(INGRESSES, namespace, "web")
    assert final["metadata"]["resourceVersion"] == stable["metadata"]["resourceVersion"]  # never written


async def test_nginx_abort_and_deletion_remove_the_canary_ingress(
    kube, namespace, pods_made_ready, start_controller
):
    start_controller()
    stable = await kube.create(INGRESSES, namespace, ingress_manifest(namespace=namespace))
    await deploy(kube, namespace, NGINX_ROUTING, [{"setWeight": 30}, {"pause": {}}])
    at_thirty = {"canary": "true", "canary-weight": "30", "canary-weight-total": "100"}

    await update_to(kube, namespace, "registry.example/web:2")
    await wait_for(canary_ingress_with(kube, namespace, at_thirty), what="canary Ingress at 30%")
    await annotate(kube, namespace, "rollout.dev/abort")
    await wait_for(canary_ingress_gone(kube, namespace), what="canary Ingress deleted on abort")
    status = await wait_for(phase_is(kube, namespace, "Degraded"), what="Degraded after abort")
    assert status["aborted"] is True and status["canary"]["weight"] == 0

    await update_to(kube, namespace, "registry.example/web:3")  # a new revision starts again
    await wait_for(canary_ingress_with(kube, namespace, at_thirty), what="canary Ingress at 30% for web:3")
    await kube.delete(ROLLOUTS, namespace, "web")

    async def rollout_gone():
        return await kube.get(ROLLOUTS, namespace, "web") is None

    await wait_for(rollout_gone, what="Rollout deleted")
    await wait_for(canary_ingress_gone(kube, namespace), what="canary Ingress deleted with the Rollout")
    final = await kube.get(INGRESSES, namespace, "web")
    assert final["metadata"]["resourceVersion"] == stable["metadata"]["resourceVersion"]  # never written
