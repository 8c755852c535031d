"""Faults between the controller and the API server (rollout/sandbox/faults.py): the fault layer
itself, the client's answer to them (Retry-After, timeouts), property tests of canary and
blue/green Rollouts under drawn faults and user scripts (tests/fault_scenario.py, also run at
length by `python -m bench.faults`), and the kopf controller surviving dropped, late and
repeated watch events."""

import asyncio
import json
import time

import aiohttp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rollout.kube import ROLLOUTS, SERVICES, USER_AGENT, Kube, api_client_for
from rollout.sandbox.faults import REQUEST_FAULTS, FaultPlan
from tests.emulated import HTTPROUTES, NS, app_weights, healthy_at, promote, setup
from tests.fault_scenario import (
    ANALYSIS_STEP,
    OPS,
    SCALE_DOWN_DELAY,
    canary_steps,
    run_example,
)
from tests.manifests import (
    blue_green_strategy,
    canary_strategy,
    http_route_manifest,
    image_patch,
    service_manifest,
    unresolved_route_status,
)
from tests.waiting import wait_for


def controller_kube(cluster, **settings):
    api = api_client_for(cluster.url)
    api.user_agent = USER_AGENT
    return Kube(api, **settings)


async def test_faults_reach_only_the_controller(cluster):
    await cluster.kube.create(SERVICES, NS, service_manifest("web-stable"))
    cluster.api.faults = FaultPlan(error=1.0)
    assert (await cluster.kube.get(SERVICES, NS, "web-stable"))["metadata"]["name"] == "web-stable"
    try:
        await controller_kube(cluster, attempts=2, backoff=0.001).get(SERVICES, NS, "web-stable")
    except Exception as exc:
        assert getattr(exc, "status", None) == 500
    else:
        raise AssertionError("the controller's request got no fault")
    assert cluster.api.faults.injected == {"error": 2}


async def test_a_dropped_answer_has_applied_the_write_a_timeout_has_not(cluster):
    await cluster.kube.create(SERVICES, NS, service_manifest("web-stable"))
    kube = controller_kube(cluster, attempts=1, timeout=0.1)
    for kind, applied in (("drop", True), ("timeout", False)):
        cluster.api.faults = FaultPlan(**{kind: 1.0}, timeout_seconds=0.3)
        body = {"metadata": {"labels": {"via": kind}}}
        try:
            await kube.patch(SERVICES, NS, "web-stable", body)
        except Exception as exc:
            assert getattr(exc, "status", None) is None  # a connection error, not an answer
        else:
            raise AssertionError(f"{kind}: the client got an answer")
        labels = (await cluster.kube.get(SERVICES, NS, "web-stable"))["metadata"].get("labels") or {}
        assert (labels.get("via") == kind) is applied, kind


async def test_429_waits_for_retry_after(cluster):
    await cluster.kube.create(SERVICES, NS, service_manifest("web-stable"))
    cluster.api.faults = FaultPlan(throttle=1.0, retry_after_seconds=1)
    kube = controller_kube(cluster, backoff=0.001, max_retry_after=5.0)

    async def lift():
        await asyncio.sleep(0.2)
        cluster.api.faults = None  # the retry after Retry-After finds the server well again

    started = time.monotonic()
    _, service = await asyncio.gather(lift(), kube.get(SERVICES, NS, "web-stable"))
    assert service["metadata"]["name"] == "web-stable"
    assert 0.95 <= time.monotonic() - started < 2.0  # waited Retry-After (1 s), not the 1 ms backoff


async def test_a_late_watcher_is_told_every_write_at_its_own_version(cluster):
    """The emulator's watch of a slow watcher: it joins the stream of changes as it takes the
    objects it sends first (kmock joined after sending them, and a write made meanwhile was never
    told), and a status write stamps its version on a copy (it had restamped the event still
    queued, and the watcher dropped the next one as a version it had: a ReplicaSet's cached
    readyReplicas stuck at 1 of 2)."""
    await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
    cluster.api.faults = FaultPlan(watch_late=1.0, late_seconds=0.2)
    path = HTTPROUTES.path(NS, None)
    told: list[tuple[str, int]] = []
    async with aiohttp.ClientSession(cluster.url, headers={"User-Agent": USER_AGENT}) as session:
        async with session.get(path, params={"watch": "true"}) as stream:
            written: list[tuple[str, int]] = []
            for generation in (1, 2, 3):
                route = await cluster.kube.patch(
                    HTTPROUTES, NS, "web", {"status": unresolved_route_status(generation)}, sub="status"
                )
                written.append((route["metadata"]["resourceVersion"], generation))
            while len(told) < 1 + len(written):  # the route as it was, then each write
                event = json.loads(await asyncio.wait_for(stream.content.readline(), 5))
                obj = event["object"]
                parents = (obj.get("status") or {}).get("parents") or [{}]
                conditions = parents[0].get("conditions") or [{}]
                told.append((obj["metadata"]["resourceVersion"], conditions[0].get("observedGeneration", 0)))
    assert told[1:] == written


async def read_events(stream, count):
    """`count` events of an open watch, as (type, name, resourceVersion)."""
    told = []
    for _ in range(count):
        event = json.loads(await asyncio.wait_for(stream.content.readline(), 5))
        meta = event["object"].get("metadata") or {}
        told.append((event["type"], meta.get("name"), meta.get("resourceVersion")))
    return told


async def test_a_watch_from_a_version_is_told_what_came_after_it_or_410_when_too_old(cluster):
    """What a client watching again after its stream ended relies on, as from a real server: the
    changes after the version it asks for (a create, a patch, a delete, in their order), none
    before; a version the server no longer keeps is answered 410 (the client lists again)."""
    cluster.api.watch_events_kept = 4  # Services' first change comes below: their bus keeps 4
    first = await cluster.kube.create(SERVICES, NS, service_manifest("web-stable"))
    seen = first["metadata"]["resourceVersion"]
    made = [await cluster.kube.create(SERVICES, NS, service_manifest("web-canary"))]
    made.append(await cluster.kube.patch(SERVICES, NS, "web-stable", {"metadata": {"labels": {"a": "b"}}}))
    await cluster.kube.delete(SERVICES, NS, "web-canary")
    path = SERVICES.path(NS, None)
    async with aiohttp.ClientSession(cluster.url) as session:
        async with session.get(path, params={"watch": "true", "resourceVersion": seen}) as stream:
            told = await read_events(stream, 3)
            later = await cluster.kube.patch(SERVICES, NS, "web-stable", {"metadata": {"labels": {"a": "c"}}})
            told += await read_events(stream, 1)
        expected = [("ADDED", "web-canary", made[0]["metadata"]["resourceVersion"])]
        expected.append(("MODIFIED", "web-stable", made[1]["metadata"]["resourceVersion"]))
        expected.append(("DELETED", "web-canary", made[0]["metadata"]["resourceVersion"]))  # its last
        expected.append(("MODIFIED", "web-stable", later["metadata"]["resourceVersion"]))
        assert told == expected
        # The create of web-stable has left the 4 kept events: its version is too old now.
        async with session.get(path, params={"watch": "true", "resourceVersion": seen}) as stream:
            event = json.loads(await asyncio.wait_for(stream.content.readline(), 5))
    assert event["type"] == "ERROR" and event["object"]["code"] == 410, event
    assert (
        event["object"]["reason"] == "Expired"
        and f"too old resource version: {seen}" in event["object"]["message"]
    )


# Shrinking a run of the real reconciler takes minutes; the drawn example is printed as is.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
rates = st.sampled_from([0.0, 0.02, 0.05])
fault_plans = st.builds(
    FaultPlan,
    **{kind: rates for kind in REQUEST_FAULTS},
    seed=st.integers(0, 2**16),
)
ops = st.lists(st.tuples(st.sampled_from(OPS), st.sampled_from([5, 30])), min_size=2, max_size=9)


def check(outcome):
    assert not outcome.violations, "\n".join(outcome.violations[:5])
    assert outcome.converge_reconciles is not None


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK)
@given(
    weights=st.lists(st.sampled_from([10, 20, 50, 80]), min_size=1, max_size=3),
    pauses=st.lists(st.sampled_from(["", "promote", "timed"]), min_size=3, max_size=3),
    extras=st.sets(st.sampled_from(["header", "mirror"])),
    plan=fault_plans,
    script=ops,
)
def test_canary_under_faults(weights, pauses, extras, plan, script):
    strategy = canary_strategy(
        canary_steps(weights, pauses, sorted(extras)), scale_down_delay=SCALE_DOWN_DELAY
    )
    check(asyncio.run(run_example(strategy, [("image", 0), *script], plan)))


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK)
@given(weight=st.sampled_from([20, 50]), plan=fault_plans, script=ops)
def test_a_failed_analysis_ends_on_stable_under_faults(weight, plan, script):
    strategy = canary_strategy(
        [{"setWeight": weight}, ANALYSIS_STEP, {"setWeight": 80}, {"pause": {}}],
        scale_down_delay=SCALE_DOWN_DELAY,
    )
    outcome = asyncio.run(run_example(strategy, [("image", 0), *script], plan, failing_analysis=True))
    check(outcome)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK)
@given(
    preview=st.sampled_from([None, 1]),
    auto=st.sampled_from([False, True]),
    plan=fault_plans,
    script=ops,
)
def test_blue_green_under_faults(preview, auto, plan, script):
    extra = {"autoPromotionEnabled": auto, "autoPromotionSeconds": 20, "scaleDownDelaySeconds": 5}
    if preview is not None:
        extra["previewReplicaCount"] = preview
    check(asyncio.run(run_example(blue_green_strategy(**extra), [("image", 0), *script], plan)))


async def test_kopf_controller_survives_watch_and_request_faults(cluster):
    """The real controller, its watch streams ending early, lagging and repeating events and
    its requests failing; faults off, the canary completes."""
    steps = [{"setWeight": 20}, {"pause": {"duration": 1}}, {"setWeight": 50}, {"pause": {}}]
    async with cluster.controller((NS,), resync_seconds=1.0):
        await setup(cluster, steps)
        # Watch events are few in 3 s (a few dozen): a high watch fault rate makes sure some meet one.
        cluster.api.faults = FaultPlan.uniform(
            0.1,
            seed=7,
            late_seconds=0.1,
            slow_seconds=0.02,
            watch_drop=0.2,
            watch_late=0.2,
            watch_duplicate=0.2,
        )
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await asyncio.sleep(3.0)
        await promote(cluster)
        await asyncio.sleep(1.0)
        injected = dict(cluster.api.faults.injected)
        cluster.api.faults = None

        async def promoted_when_paused():
            status = (await cluster.kube.get(ROLLOUTS, NS, "web")).get("status") or {}
            if status.get("phase") == "Paused":
                await promote(cluster)
            return await healthy_at(cluster)()

        final = await wait_for(promoted_when_paused, timeout=30, interval=0.3, what="v2 Healthy")
    assert final["stableRevision"] == final["currentRevision"]
    route = await cluster.kube.get(HTTPROUTES, NS, "web")
    assert app_weights(route) == {"web-stable": 100, "web-canary": 0}
    assert sum(injected.values()) > 0 and any(k.startswith("watch_") for k in injected), injected
