"""Argo CD's view of a Rollout on a real API server: the health check and actions
(rollout/argocd/, run in a real Lua 5.1 by tests/argocd_lua.py) on objects read from the server
while the controller drives a canary on an HTTPRoute.

At each phase (Healthy at rest, Suspended at a pause step, Progressing at a timed pause and while
the canary waits for pods, Degraded after an abort) the health script gives the status Argo CD
documents and the Rollout's own status message, and the route shows users where that phase says
they are. The promote, abort and promote-full actions run on the captured object, and their
result is applied as Argo CD applies it (a JSON merge patch from the live object to the action's
result, through the plain API client, no CLI): the Rollout moves on each time."""

import json_merge_patch
import pytest

from rollout.api.revision import REVISION_LABEL
from rollout.kube import ROLLOUTS, SERVICES
from tests.argocd_lua import action, discovery, health
from tests.e2e.helpers import HTTPROUTES, app_weights, wait_for
from tests.manifests import http_route_manifest, image_patch, rollout_manifest, service_manifest

pytestmark = pytest.mark.e2e

STEPS = [
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {"duration": "1h"}},
    {"setWeight": 80},
]
AT_REST = {"web-stable": 100, "web-canary": 0}
# action -> the one change Argo CD must send for it
ANNOTATION = {
    "promote": ("rollout.dev/promote", "step"),
    "promote-full": ("rollout.dev/promote", "full"),
    "abort": ("rollout.dev/abort", "true"),
}


def rollout_when(kube, ns, accept):
    """The Rollout as the server has it, once its status satisfies `accept`."""

    async def probe():
        obj = await kube.get(ROLLOUTS, ns, "web")
        status = (obj or {}).get("status") or {}
        settled = status.get("observedGeneration") == (obj or {}).get("metadata", {}).get("generation")
        return obj if settled and accept(status) else None

    return probe


def assert_health(obj, expected, words):
    """Argo CD's health of the captured object: `expected`, with the Rollout's status message."""
    message = obj["status"]["message"]
    assert words in message, message
    assert health(obj) == {"status": expected, "message": message}


async def run_action(kube, ns, name, obj):
    """An Argo CD resource action: the Lua script on the live object, and the merge patch from it
    to the script's result sent to the server (as Argo CD's server does)."""
    assert discovery(obj)[name] is True, f"Argo CD would not offer {name} here"
    patch = json_merge_patch.create_patch(obj, action(name, obj))
    key, value = ANNOTATION[name]
    assert patch == {"metadata": {"annotations": {key: value}}}  # nothing but the command
    await kube.patch(ROLLOUTS, ns, "web", patch)


async def route(kube, ns):
    return app_weights(await kube.get(HTTPROUTES, ns, "web"))


async def selected(kube, ns, service):
    return (await kube.get(SERVICES, ns, service))["spec"]["selector"].get(REVISION_LABEL)


async def test_argo_cd_health_and_actions_on_objects_from_the_server(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    ns = namespace
    for name in ("web-stable", "web-canary"):
        await kube.create(SERVICES, ns, service_manifest(name, namespace=ns))
    body = http_route_manifest(namespace=ns)
    body["metadata"] = {"name": "web", "namespace": ns}
    await kube.create(HTTPROUTES, ns, body)
    strategy = {
        "canary": {
            "stableService": "web-stable",
            "canaryService": "web-canary",
            "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
            "steps": STEPS,
            "scaleDownDelaySeconds": 2,
            "abortScaleDownDelaySeconds": 2,
        }
    }
    start_controller()
    await kube.create(ROLLOUTS, ns, rollout_manifest(namespace=ns, replicas=2, strategy=strategy))

    def healthy(s):
        return s.get("phase") == "Healthy" and s.get("stableRevision") == s.get("currentRevision")

    # Healthy at rest.
    obj = await wait_for(rollout_when(kube, ns, healthy), what="first deploy Healthy")
    v1 = obj["status"]["stableRevision"]
    assert_health(obj, "Healthy", "2/2 available")
    assert await route(kube, ns) == AT_REST

    # Suspended at a pause step that waits for a person; promoted through Argo CD's action.
    await kube.patch(ROLLOUTS, ns, "web", image_patch("registry.example/web:2"))

    def paused_at(index):
        return lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == index

    obj = await wait_for(rollout_when(kube, ns, paused_at(1)), what="paused at step 2")
    assert_health(obj, "Suspended", "Paused (CanaryPauseStep) at step 2/5")
    assert await route(kube, ns) == {"web-stable": 80, "web-canary": 20}
    await run_action(kube, ns, "promote", obj)

    # A timed pause ends by itself: Progressing, not Suspended.
    obj = await wait_for(rollout_when(kube, ns, paused_at(3)), what="promoted to the timed pause")
    assert_health(obj, "Progressing", "Paused (CanaryPauseStep) at step 4/5")
    assert await route(kube, ns) == {"web-stable": 50, "web-canary": 50}

    # Aborted through Argo CD's action: Degraded, users back on stable.
    await run_action(kube, ns, "abort", obj)
    obj = await wait_for(
        rollout_when(kube, ns, lambda s: s.get("phase") == "Degraded"), what="aborted by the action"
    )
    assert_health(obj, "Degraded", "Aborted (aborted by the rollout.dev/abort command)")
    assert obj["status"]["stableRevision"] == v1
    assert await route(kube, ns) == AT_REST
    assert await selected(kube, ns, "web-stable") == v1

    # A new revision whose pods never become ready: Progressing while the canary waits for them.
    await kube.patch(ROLLOUTS, ns, "web", image_patch("registry.example/web:broken-3"))
    obj = await wait_for(
        rollout_when(
            kube,
            ns,
            lambda s: s.get("phase") == "Progressing" and "waits for canary pods" in s.get("message", ""),
        ),
        what="the canary waiting for pods",
    )
    assert_health(obj, "Progressing", "waits for canary pods")
    assert await route(kube, ns) == AT_REST  # no weight for pods that are not there

    # A good revision, promoted to the end from its first pause by Argo CD's promote-full.
    await kube.patch(ROLLOUTS, ns, "web", image_patch("registry.example/web:4"))
    obj = await wait_for(rollout_when(kube, ns, paused_at(1)), what="v4 paused at step 2")
    v4 = obj["status"]["currentRevision"]
    assert v4 != v1
    assert_health(obj, "Suspended", "Paused (CanaryPauseStep) at step 2/5")
    await run_action(kube, ns, "promote-full", obj)
    obj = await wait_for(
        rollout_when(kube, ns, lambda s: healthy(s) and s.get("stableRevision") == v4), what="v4 Healthy"
    )
    assert_health(obj, "Healthy", "2/2 available")
    assert await route(kube, ns) == AT_REST
    assert await selected(kube, ns, "web-stable") == v4
