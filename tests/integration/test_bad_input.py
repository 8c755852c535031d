"""Bad input on the emulated cluster, through the real controller: each case is an InvalidSpec
condition with the field path, an InvalidSpec Event, and no traffic moved (no route written, no
Service pinned, no ReplicaSet); fixing the cause recovers through the periodic re-check."""

import base64
import copy

from rollout.kube import ANALYSIS_TEMPLATES, EVENTS, REPLICASETS, ROLLOUTS, SECRETS, SERVICES
from tests.emulated import (
    HTTPROUTES,
    NS,
    VIRTUALSERVICES,
    app_weights,
    event_reasons,
    healthy_at,
    paused_at,
    replicasets,
    setup,
    status_of,
    weight_is,
)
from tests.manifests import (
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
    virtual_service_manifest,
)
from tests.waiting import wait_for

REVISION = "rollout.dev/revision"
STEPS = [{"setWeight": 20}, {"pause": {}}]


def invalid_with(cluster, fragment, name="web"):
    async def probe():
        status = await status_of(cluster, name)
        condition = next((c for c in status.get("conditions") or [] if c["type"] == "InvalidSpec"), None)
        return (
            status
            if condition and fragment in condition["message"] and status["phase"] == "Degraded"
            else None
        )

    return probe


async def invalid_event(cluster, fragment, name="web"):
    async def probe():
        events = await cluster.kube.list(EVENTS, NS)
        return [
            e
            for e in events
            if e["involvedObject"]["name"] == name
            and e["reason"] == "InvalidSpec"
            and e["type"] == "Warning"
            and fragment in e["message"]
        ]

    return await wait_for(probe, what=f"an InvalidSpec Event saying {fragment!r}")


async def services(cluster, *names):
    for name in names:
        await cluster.kube.create(SERVICES, NS, service_manifest(name))


async def selectors(cluster, *names):
    return {n: (await cluster.kube.get(SERVICES, NS, n))["spec"]["selector"] for n in names}


async def assert_nothing_moved(cluster, name="web"):
    rs = [r for r in await cluster.kube.list(REPLICASETS, NS) if r["metadata"]["name"].startswith(f"{name}-")]
    assert rs == []
    for selector in (await selectors(cluster, "web-stable", "web-canary")).values():
        assert REVISION not in selector


async def test_a_missing_httproute_is_invalid_spec_until_it_is_created(cluster):
    routing = {"gatewayAPI": {"httpRoutes": [{"name": "gone"}]}}
    async with cluster.controller(resync_seconds=0.5):
        await services(cluster, "web-stable", "web-canary")
        await cluster.kube.create(
            ROLLOUTS, NS, rollout_manifest(strategy=canary_strategy(STEPS, routing, scale_down_delay=1))
        )
        fragment = (
            "spec.strategy.canary.trafficRouting.gatewayAPI.httpRoutes[0]: httproutes shop/gone not found"
        )
        await wait_for(invalid_with(cluster, fragment), what="InvalidSpec for the missing HTTPRoute")
        await invalid_event(cluster, fragment)
        await assert_nothing_moved(cluster)
        await cluster.kube.create(HTTPROUTES, NS, http_route_manifest("gone"))
        await wait_for(healthy_at(cluster), what="Healthy once the HTTPRoute exists")
    assert "SpecValid" in await event_reasons(cluster)


async def test_a_missing_virtualservice_is_invalid_spec(cluster):
    routing = {"istio": {"virtualService": {"name": "gone", "routes": ["primary"]}}}
    async with cluster.controller(resync_seconds=0.5):
        await services(cluster, "web-stable", "web-canary")
        await cluster.kube.create(VIRTUALSERVICES, NS, virtual_service_manifest("web"))
        before = await cluster.kube.get(VIRTUALSERVICES, NS, "web")
        await cluster.kube.create(
            ROLLOUTS, NS, rollout_manifest(strategy=canary_strategy(STEPS, routing, scale_down_delay=1))
        )
        fragment = (
            "spec.strategy.canary.trafficRouting.istio.virtualService: virtualservices shop/gone not found"
        )
        await wait_for(invalid_with(cluster, fragment), what="InvalidSpec for the missing VirtualService")
        await invalid_event(cluster, fragment)
        await assert_nothing_moved(cluster)
    assert await cluster.kube.get(VIRTUALSERVICES, NS, "web") == before


async def test_a_route_without_the_backend_pair_is_invalid_spec_and_not_written(cluster):
    route = http_route_manifest(backends=("web-blue", "web-green"))
    async with cluster.controller(resync_seconds=0.5):
        await services(cluster, "web-stable", "web-canary")
        await cluster.kube.create(HTTPROUTES, NS, route)
        before = copy.deepcopy(await cluster.kube.get(HTTPROUTES, NS, "web"))
        await cluster.kube.create(
            ROLLOUTS, NS, rollout_manifest(strategy=canary_strategy(STEPS, scale_down_delay=1))
        )
        fragment = (
            "spec.strategy.canary.trafficRouting.gatewayAPI.httpRoutes[0]: HTTPRoute shop/web: "
            "HTTPRoute has no rule with backendRefs to both web-stable and web-canary"
        )
        await wait_for(invalid_with(cluster, fragment), what="InvalidSpec for the route without the pair")
        await invalid_event(cluster, fragment)
        await assert_nothing_moved(cluster)
    assert await cluster.kube.get(HTTPROUTES, NS, "web") == before


async def test_the_younger_of_two_rollouts_on_one_route_is_invalid_and_the_older_works_on(cluster):
    async with cluster.controller(resync_seconds=0.5):
        v1 = (await setup(cluster, STEPS))["stableRevision"]
        before = copy.deepcopy(await cluster.kube.get(HTTPROUTES, NS, "web"))
        pinned = await selectors(cluster, "web-stable", "web-canary")
        # A second Rollout on the same Services and route, with pods of its own.
        other = rollout_manifest("web2", strategy=canary_strategy(STEPS, scale_down_delay=1))
        await cluster.kube.create(ROLLOUTS, NS, other)
        fragment = (
            "spec.strategy.canary.stableService: Service shop/web-stable "
            "is already managed by Rollout shop/web"
        )
        status = await wait_for(invalid_with(cluster, fragment, "web2"), what="the younger one InvalidSpec")
        message = next(c for c in status["conditions"] if c["type"] == "InvalidSpec")["message"]
        assert (
            "spec.strategy.canary.trafficRouting.gatewayAPI.httpRoutes[0]: backends web-stable,web-canary "
            "of httproutes shop/web is already managed by Rollout shop/web (older)" in message
        )
        await invalid_event(cluster, "already managed by Rollout shop/web (older)", "web2")
        assert not [
            r for r in (await replicasets(cluster)).values() if r["metadata"]["name"].startswith("web2-")
        ]
        assert await cluster.kube.get(HTTPROUTES, NS, "web") == before
        assert await selectors(cluster, "web-stable", "web-canary") == pinned
        # The older one is untouched by it and goes on with a canary.
        assert (await status_of(cluster))["phase"] == "Healthy"
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(weight_is(cluster, 20), what="the older Rollout's canary at 20%")
        await wait_for(paused_at(cluster, 1), what="the older Rollout paused")
        assert (await status_of(cluster, "web2"))["phase"] == "Degraded"
    assert app_weights(await cluster.kube.get(HTTPROUTES, NS, "web")) == {"web-stable": 80, "web-canary": 20}
    assert v1


async def test_a_rollout_whose_selector_overlaps_an_older_ones_is_invalid(cluster):
    async with cluster.controller(resync_seconds=0.5):
        await setup(cluster, STEPS)
        # Services and a route of its own, but a selector that matches the pods of `web`; created
        # within the same second (the emulator's timestamps are whole seconds) the name decides,
        # and "www" sorts after "web".
        await services(cluster, "www-stable", "www-canary")
        await cluster.kube.create(
            HTTPROUTES, NS, http_route_manifest("www", backends=("www-stable", "www-canary"))
        )
        before = copy.deepcopy(await cluster.kube.get(HTTPROUTES, NS, "www"))
        strategy = canary_strategy(
            STEPS, {"gatewayAPI": {"httpRoutes": [{"name": "www"}]}}, scale_down_delay=1
        )
        strategy["canary"].update(stableService="www-stable", canaryService="www-canary")
        other = rollout_manifest("www", strategy=strategy)
        other["spec"]["selector"]["matchLabels"] = {"app": "web"}
        other["spec"]["template"]["metadata"]["labels"] = {"app": "web", "tier": "www"}
        await cluster.kube.create(ROLLOUTS, NS, other)
        fragment = (
            "spec.selector: selector 'app=web' overlaps the selector 'app=web' of Rollout shop/web (older)"
        )
        await wait_for(invalid_with(cluster, fragment, "www"), what="the overlapping one InvalidSpec")
        await invalid_event(cluster, fragment, "www")
        assert await cluster.kube.get(HTTPROUTES, NS, "www") == before
        assert all(REVISION not in s for s in (await selectors(cluster, "www-stable", "www-canary")).values())
        assert (await status_of(cluster))["phase"] == "Healthy"


def template_with(provider):
    return {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "rate", "namespace": NS},
        "spec": {
            "metrics": [{"name": "rate", "successCondition": "result[0] >= 0.99", "provider": provider}]
        },
    }


ANALYSED = [{"setWeight": 20}, {"analysis": {"templates": [{"name": "rate"}]}}]


async def test_a_template_with_an_unknown_provider_is_invalid_spec(cluster):
    async with cluster.controller(resync_seconds=0.5):
        await services(cluster, "web-stable", "web-canary")
        await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
        before = copy.deepcopy(await cluster.kube.get(HTTPROUTES, NS, "web"))
        await cluster.kube.create(
            ANALYSIS_TEMPLATES, NS, template_with({"acmeMetrics": {"query": "avg:errors{*}"}})
        )
        await cluster.kube.create(
            ROLLOUTS, NS, rollout_manifest(strategy=canary_strategy(ANALYSED, scale_down_delay=1))
        )
        # The CRD keeps an unknown provider kind (x-kubernetes-preserve-unknown-fields on provider).
        fragment = (
            "spec.strategy.canary.steps[1].analysis.templates[0]: AnalysisTemplate rate is not valid: "
            "spec.metrics[0].provider: "
        )
        status = await wait_for(invalid_with(cluster, fragment), what="InvalidSpec for the provider")
        assert "this controller measures with: prometheus" in status["message"]
        await invalid_event(cluster, fragment)
        await assert_nothing_moved(cluster)
        assert await cluster.kube.get(HTTPROUTES, NS, "web") == before


SECRET_VALUE = "Bearer very-secret-token"


async def test_a_missing_header_secret_is_invalid_spec_until_created(cluster):
    header = {"key": "Authorization", "valueFrom": {"secretKeyRef": {"name": "prom-auth", "key": "token"}}}
    provider = {"prometheus": {"address": "http://127.0.0.1:9", "query": "up", "headers": [header]}}
    async with cluster.controller(resync_seconds=0.5):
        await services(cluster, "web-stable", "web-canary")
        await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
        before = copy.deepcopy(await cluster.kube.get(HTTPROUTES, NS, "web"))
        await cluster.kube.create(ANALYSIS_TEMPLATES, NS, template_with(provider))
        await cluster.kube.create(
            ROLLOUTS, NS, rollout_manifest(strategy=canary_strategy(ANALYSED, scale_down_delay=1))
        )
        where = (
            "spec.strategy.canary.steps[1].analysis.templates[0]: AnalysisTemplate rate "
            "metrics[0].provider.prometheus.headers[0].valueFrom.secretKeyRef (header 'Authorization'): "
        )
        await wait_for(
            invalid_with(cluster, where + "Secret shop/prom-auth not found"), what="Secret missing"
        )
        await invalid_event(cluster, "Secret shop/prom-auth not found")
        await assert_nothing_moved(cluster)
        # The Secret appears with the value under another key: still invalid, the value never shown.
        encoded = base64.b64encode(SECRET_VALUE.encode()).decode()
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "prom-auth", "namespace": NS},
            "data": {"bearer": encoded},
        }
        await cluster.kube.create(SECRETS, NS, secret)
        fragment = where + "Secret shop/prom-auth has no key 'token'"
        status = await wait_for(invalid_with(cluster, fragment), what="the key missing")
        await invalid_event(cluster, "has no key 'token'")
        await assert_nothing_moved(cluster)
        assert await cluster.kube.get(HTTPROUTES, NS, "web") == before
        # The right key: the periodic re-check recovers and the first revision comes up.
        await cluster.kube.patch(SECRETS, NS, "prom-auth", {"data": {"token": encoded}})
        await wait_for(healthy_at(cluster), what="Healthy once the key exists")
    events = await cluster.kube.list(EVENTS, NS)
    for text in [str(status), *(e["message"] for e in events)]:
        assert "very-secret-token" not in text and encoded not in text
