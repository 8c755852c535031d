"""`rollout.dev/restart` end to end: the real controller restarts a Healthy canary's stable pods on
the emulated cluster with real Pod objects (the `pod_cluster` fixture), one at a time through the
Eviction API, while a sampler watches the pods far more often than the controller acts."""

import asyncio
import contextlib
import time

from rollout.kube import ROLLOUTS, Resource
from tests.emulated import (
    HTTPROUTES,
    NS,
    app_weights,
    event_reasons,
    get_rollout,
    paused_at,
    replicasets,
    setup,
    status_of,
)
from tests.integration.command_line import rollout_cli
from tests.manifests import image_patch
from tests.waiting import in_background, wait_for

PDBS = Resource("policy", "v1", "poddisruptionbudgets")
STEPS = [{"setWeight": 20}, {"pause": {}}]


def stable_pods(cluster, revision):
    """The stable revision's live Pods straight from the emulator's store: name -> (created, ready)."""
    found = {}
    for (resource, namespace, name), obj in list(cluster.api.objects.items()):
        if resource.plural != "pods" or namespace != NS or obj.deleted:
            continue
        if (obj.raw["metadata"].get("labels") or {}).get("rollout.dev/revision") == revision:
            conditions = (obj.raw.get("status") or {}).get("conditions") or []
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            found[name] = (obj.raw["metadata"]["creationTimestamp"], ready)
    return found


@contextlib.asynccontextmanager
async def sampling(cluster, revision):
    """Every 5 ms: how many of the revision's pods are Ready, and the Rollout's status message."""
    seen = {"ready": [], "messages": set()}

    async def sample():
        while True:
            seen["ready"].append(sum(ready for _, ready in stable_pods(cluster, revision).values()))
            rollout = next(
                (
                    o.raw
                    for (r, ns, name), o in list(cluster.api.objects.items())
                    if r.plural == "rollouts" and ns == NS and name == "web" and not o.deleted
                ),
                None,
            )
            seen["messages"].add(((rollout or {}).get("status") or {}).get("message", ""))
            await asyncio.sleep(0.005)

    async with in_background(sample()):
        yield seen


def budget(min_available):
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": "web"}}},
    }


async def restart(cluster):
    await cluster.kube.patch(
        ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/restart": "true"}}}
    )


def restarted(cluster):
    async def probe():
        status = await status_of(cluster)
        done = "RestartCompleted" in await event_reasons(cluster)
        return status if done and status.get("phase") == "Healthy" and "restartedAt" not in status else None

    return probe


async def next_second():
    """creationTimestamp has whole seconds: pods made in the second of the restart count as new."""
    await asyncio.sleep(1.05 - time.time() % 1)


async def test_restart_replaces_every_stable_pod_one_at_a_time_and_nothing_else(pod_cluster):
    cluster = pod_cluster
    async with cluster.controller((NS,)):
        v1 = (await setup(cluster, STEPS, replicas=3))["stableRevision"]
        before = await wait_for(lambda: _ready_pods(cluster, v1, 3), what="3 Ready pods")
        route_before = app_weights(await cluster.kube.get(HTTPROUTES, NS, "web"))
        await next_second()
        asked = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        async with sampling(cluster, v1) as seen:
            await restart(cluster)
            final = await wait_for(restarted(cluster), timeout=30, what="the restart completed")
        after = stable_pods(cluster, v1)

    assert len(after) == 3 and all(ready for _, ready in after.values())
    assert not set(after) & set(before), "every pod was replaced"
    assert all(created >= asked for created, _ in after.values())
    assert min(seen["ready"]) >= 2, "never fewer than replicas - 1 Ready pods"
    assert len(seen["ready"]) > 50  # the sampler really ran throughout
    assert any(
        m.startswith(f"Revision {v1}: ") and "; restarting: 1/3 pods replaced" in m for m in seen["messages"]
    )
    assert set(await replicasets(cluster)) == {v1}, "no new ReplicaSet"
    assert (
        app_weights(await cluster.kube.get(HTTPROUTES, NS, "web"))
        == route_before
        == {
            "web-stable": 100,
            "web-canary": 0,
        }
    )
    assert (final["stableRevision"], final["currentRevision"]) == (v1, v1)
    assert "rollout.dev/restart" not in (await get_rollout(cluster))["metadata"].get("annotations", {})
    reasons = [r for r in await event_reasons(cluster) if "Restart" in r or r == "PodEvicted"]
    assert reasons == ["RestartStarted", "PodEvicted", "PodEvicted", "PodEvicted", "RestartCompleted"]


async def _ready_pods(cluster, revision, count):
    pods = stable_pods(cluster, revision)
    return pods if len(pods) == count and all(ready for _, ready in pods.values()) else None


async def test_a_restart_asked_during_a_canary_is_refused_and_changes_nothing(pod_cluster):
    cluster = pod_cluster
    async with cluster.controller((NS,)):
        v1 = (await setup(cluster, STEPS, replicas=3))["stableRevision"]
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(paused_at(cluster, 1), what="paused at 20%")
        pods = stable_pods(cluster, v1)
        await next_second()
        await restart(cluster)
        await wait_for(lambda: _event(cluster, "RestartIgnored"), what="the RestartIgnored Event")
        await asyncio.sleep(1.0)  # time enough for a wrongly started restart to evict a pod
        status = await status_of(cluster)
        assert status["phase"] == "Paused" and status["currentStepIndex"] == 1
        assert "restartedAt" not in status
        assert stable_pods(cluster, v1) == pods
        assert "PodEvicted" not in await event_reasons(cluster)
        events = await cluster.kube.list(Resource("", "v1", "events"), NS)
        ignored = next(e for e in events if e["reason"] == "RestartIgnored")
        assert (
            ignored["message"].startswith("Restart: revision ")
            and "is being rolled out" in ignored["message"]
        )


async def _event(cluster, reason):
    return reason in await event_reasons(cluster)


async def test_a_disruption_budget_holds_the_restart_until_it_allows_one_pod_down(pod_cluster):
    cluster = pod_cluster
    async with cluster.controller((NS,), resync_seconds=600):  # only the restart's own looks
        v1 = (await setup(cluster, STEPS, replicas=3))["stableRevision"]
        await wait_for(lambda: _ready_pods(cluster, v1, 3), what="3 Ready pods")
        await cluster.kube.create(PDBS, NS, budget(min_available=3))
        before = stable_pods(cluster, v1)
        await next_second()
        await restart(cluster)
        await wait_for(lambda: _event(cluster, "EvictionBlocked"), what="the EvictionBlocked Event")
        since = cluster.api.request_count
        await asyncio.sleep(6.5)  # the controller looks again meanwhile, less and less often
        evictions = [
            r
            for r in cluster.api.requests_since(since)
            if r.method.value == "POST" and r.subresource == "eviction"
        ]
        # Backing off 1, 2, 4 s after the first refusal: 2-3 attempts in 6.5 s, not one a second.
        assert 1 <= len(evictions) <= 3, len(evictions)
        assert stable_pods(cluster, v1) == before, "no pod evicted against the budget"
        assert (await event_reasons(cluster)).count("EvictionBlocked") == 1, "said once, not on every look"
        assert "restarting: 0/3 pods replaced" in (await status_of(cluster))["message"]
        await cluster.kube.patch(PDBS, NS, "web", {"spec": {"minAvailable": 2}})
        await wait_for(restarted(cluster), timeout=30, what="the restart completed once allowed")
        assert not set(stable_pods(cluster, v1)) & set(before)


async def test_the_restart_command(pod_cluster, tmp_path):
    """`rollout restart` as a person or CI runs it: what it says, its exit code, its refusals."""
    cluster = pod_cluster
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    run = lambda *argv: rollout_cli(kubeconfig, *argv)  # noqa: E731
    assert await run("restart", "nope") == (
        1,
        "",
        'rollout restart: Rollout "nope" not found in namespace "shop"\n',
    )
    async with cluster.controller((NS,)):
        v1 = (await setup(cluster, STEPS, replicas=3))["stableRevision"]
        await wait_for(lambda: _ready_pods(cluster, v1, 3), what="3 Ready pods")
        await cluster.kube.create(PDBS, NS, budget(min_available=3))  # holds the restart where it is
        before = stable_pods(cluster, v1)
        await next_second()
        assert await run("restart", "web") == (
            0,
            'rollout "web" restarting: the stable revision\'s pods are replaced one at a time\n',
            "",
        )
        await wait_for(lambda: _event(cluster, "EvictionBlocked"), what="the restart held by the budget")
        code, out, err = await run("restart", "web")
        assert (code, out) == (1, "")
        assert err == (
            'rollout restart: cannot restart rollout "web": '
            "a restart is already running (phase Progressing)\n"
        )
        await cluster.kube.patch(PDBS, NS, "web", {"spec": {"minAvailable": 2}})
        code, out, _ = await run("status", "web", "--timeout", "30s")
        assert code == 0 and out.splitlines()[-1] == f"Healthy: Revision {v1}: 3/3 available"
        assert not set(stable_pods(cluster, v1)) & set(before)

        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(paused_at(cluster, 1), what="paused at 20%")
        assert await run("restart", "web") == (
            1,
            "",
            'rollout restart: cannot restart rollout "web": an update is in progress '
            "(it replaces the pods anyway) (phase Suspended)\n",
        )


async def test_a_restart_carries_on_after_the_controller_restarts(pod_cluster):
    """The restart lives in status.restartedAt: a new controller, with nothing in memory, finishes it
    without starting it again."""
    cluster = pod_cluster
    async with cluster.controller((NS,)):
        v1 = (await setup(cluster, STEPS, replicas=3))["stableRevision"]
        await wait_for(lambda: _ready_pods(cluster, v1, 3), what="3 Ready pods")
        before = stable_pods(cluster, v1)
        cluster.kubelet.paused = True  # no replacement comes up: the restart waits after one eviction
        await next_second()
        await restart(cluster)
        await wait_for(lambda: _event(cluster, "PodEvicted"), what="the first pod evicted")
        status = await wait_for(
            lambda: _status_saying(cluster, "the last replacement is not Ready yet"), what="waiting"
        )
    assert "restartedAt" in status and len(stable_pods(cluster, v1)) == 2
    async with cluster.controller((NS,)):
        cluster.kubelet.paused = False
        await wait_for(restarted(cluster), timeout=30, what="the restart finished by the new controller")
    assert not set(stable_pods(cluster, v1)) & set(before)
    reasons = await event_reasons(cluster)
    assert reasons.count("RestartStarted") == 1 and reasons.count("PodEvicted") == 3


async def _status_saying(cluster, words):
    status = await status_of(cluster)
    return status if words in status.get("message", "") else None
