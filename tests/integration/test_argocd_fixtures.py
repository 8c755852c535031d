"""Rollout objects captured from the real controller at each phase, for the Argo CD health and
action tests (tests/unit/test_argocd_lua.py), which read them from tests/fixtures/rollouts/.

With ROLLOUT_CAPTURE_FIXTURES=1 this writes the captured objects there. Otherwise it captures
them again and checks that the committed files still have the shape the controller gives now
(phase, pause reasons, conditions, the message with revisions and numbers blanked), and that the
health script says the same of both, so the fixtures cannot drift from the controller."""

import os
import re
from pathlib import Path

import yaml

from rollout.kube import ROLLOUTS, SERVICES
from tests.argocd_lua import health
from tests.emulated import HTTPROUTES, NS, get_rollout, healthy_at, paused_at, promote
from tests.manifests import (
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.waiting import wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rollouts"
CAPTURE = os.environ.get("ROLLOUT_CAPTURE_FIXTURES") == "1"
# Revision hashes, times and counts vary from run to run; the words around them do not.
_VOLATILE = re.compile(r"\b[0-9a-f]{10}\b|\d+(\.\d+)?")


def shape(obj):
    status = obj.get("status") or {}
    return {
        "generation lag": (status.get("observedGeneration") or 0) < obj["metadata"]["generation"],
        "phase": status.get("phase"),
        "aborted": status.get("aborted"),
        "pauses": [p["reason"] for p in status.get("pauseConditions") or []],
        "conditions": sorted((c["type"], c["status"], c["reason"]) for c in status.get("conditions") or []),
        "message": _VOLATILE.sub("#", status.get("message", "")),
        "health": health(obj)["status"],
        "health message": _VOLATILE.sub("#", health(obj)["message"]),
    }


def phase_is(name, phase, also=lambda s: True):
    async def probe(cluster):
        rollout = await get_rollout(cluster, name)
        status = (rollout or {}).get("status") or {}
        return rollout if status.get("phase") == phase and also(status) else None

    return probe


class Capture:
    def __init__(self, cluster):
        self.cluster = cluster
        self.seen: dict[str, dict] = {}

    async def take(self, fixture, probe, what):
        obj = await wait_for(lambda: probe(self.cluster), timeout=30, what=what)
        self.seen[fixture] = obj


def annotate(key, value=""):
    return {"metadata": {"annotations": {f"rollout.dev/{key}": value}}}


async def test_capture_rollouts_at_each_phase(cluster):
    capture = Capture(cluster)
    kube = cluster.kube
    steps = [
        {"setWeight": 20},
        {"pause": {}},
        {"setWeight": 50},
        {"pause": {"duration": "1h"}},
        {"setWeight": 80},
    ]
    for service in ("web-stable", "web-canary", "checkout-active", "checkout-preview"):
        await kube.create(SERVICES, NS, service_manifest(service, app=service.split("-")[0]))
    await kube.create(HTTPROUTES, NS, http_route_manifest())

    async with cluster.controller():
        # A canary on an HTTPRoute through its steps.
        await kube.create(ROLLOUTS, NS, rollout_manifest(strategy=canary_strategy(steps, scale_down_delay=1)))
        await capture.take(
            "canary-healthy", lambda c: _rollout_when(c, healthy_at(c)), "first deploy Healthy"
        )
        await kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await capture.take("canary-paused", lambda c: _rollout_when(c, paused_at(c, 1)), "paused at step 2")
        await promote(cluster)
        await capture.take("canary-timed-pause", lambda c: _rollout_when(c, paused_at(c, 3)), "timed pause")
        await kube.patch(ROLLOUTS, NS, "web", annotate("abort"))
        await capture.take("canary-aborted", phase_is("web", "Degraded"), "aborted")
        await kube.patch(ROLLOUTS, NS, "web", image_patch("web:broken-3"))
        await capture.take(
            "canary-progressing",
            phase_is("web", "Progressing", lambda s: "waits for canary pods" in s.get("message", "")),
            "the canary waiting for pods",
        )

        # Blue/green waiting for a person to promote.
        bluegreen = rollout_manifest(
            "checkout",
            replicas=2,
            strategy={
                "blueGreen": {
                    "activeService": "checkout-active",
                    "previewService": "checkout-preview",
                    "autoPromotionEnabled": False,
                }
            },
        )
        await kube.create(ROLLOUTS, NS, bluegreen)
        await wait_for(healthy_at(cluster, name="checkout"), what="checkout Healthy")
        await kube.patch(ROLLOUTS, NS, "checkout", image_patch("checkout:2", name="checkout"))
        await capture.take(
            "bluegreen-awaiting-promotion", phase_is("checkout", "Paused"), "awaiting promotion"
        )

        # A rolling update: held by spec.paused, by the pause command, and past its deadline.
        rolling = rollout_manifest("api", replicas=2, progressDeadlineSeconds=3)
        await kube.create(ROLLOUTS, NS, rolling)
        await wait_for(healthy_at(cluster, name="api"), what="api Healthy")
        await kube.patch(ROLLOUTS, NS, "api", annotate("pause"))
        await capture.take("rolling-user-paused", phase_is("api", "Paused"), "paused by command")
        await kube.patch(ROLLOUTS, NS, "api", annotate("resume"))
        await wait_for(healthy_at(cluster, name="api"), what="api resumed")
        await kube.patch(ROLLOUTS, NS, "api", {"spec": {"paused": True}})
        await capture.take("rolling-spec-paused", phase_is("api", "Paused"), "paused by spec.paused")
        await kube.patch(ROLLOUTS, NS, "api", {"spec": {"paused": False}})
        await wait_for(healthy_at(cluster, name="api"), what="api unpaused")
        await kube.patch(ROLLOUTS, NS, "api", image_patch("api:broken", name="api"))
        # The shape that lasts until the deadline: one old pod taken down (maxUnavailable 1) while the
        # new one never gets ready. Before that first scale-down Available is still True, for a moment
        # only, so a capture that waited for that moment missed it under load.
        await capture.take(
            "rolling-progressing",
            phase_is("api", "Progressing", lambda s: not _available(s)),
            "rolling update under way, one old pod down",
        )
        await capture.take("rolling-deadline-exceeded", phase_is("api", "Degraded"), "past the deadline")

        # A reference that does not exist.
        missing = rollout_manifest(
            "orders", strategy={"canary": {"stableService": "nope", "canaryService": "nope-too", "steps": []}}
        )
        await kube.create(ROLLOUTS, NS, missing)
        await capture.take("invalid-spec", phase_is("orders", "Degraded"), "InvalidSpec")

    # The controller is down when the spec changes: the status lags the generation.
    await kube.patch(ROLLOUTS, NS, "checkout", image_patch("checkout:3", name="checkout"))
    capture.seen["generation-lag"] = await get_rollout(cluster, "checkout")

    if CAPTURE:
        FIXTURES.mkdir(parents=True, exist_ok=True)
        for name, obj in capture.seen.items():
            (FIXTURES / f"{name}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
    committed = {p.stem: yaml.safe_load(p.read_text()) for p in FIXTURES.glob("*.yaml")}
    assert sorted(committed) == sorted(capture.seen), "run with ROLLOUT_CAPTURE_FIXTURES=1 to capture again"
    for name, obj in capture.seen.items():
        assert shape(obj) == shape(committed[name]), f"{name}: the controller's object changed shape"


def _available(status):
    return any(c["type"] == "Available" and c["status"] == "True" for c in status.get("conditions") or [])


async def _rollout_when(cluster, probe):
    return await get_rollout(cluster) if await probe() else None
