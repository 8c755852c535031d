"""The Rollout beside Kubernetes' own workload controllers on a real control plane (the integration
suite's test_adopt, test_pod_restart and test_autoscaling, ported): the real Deployment and
ReplicaSet controllers, the disruption controller judging evictions against a
PodDisruptionBudget, the garbage collector, and the HorizontalPodAutoscaler scaling the Rollout
through its scale subresource. On a cluster without nodes the stand-in kubelet
(ROLLOUT_E2E_MARK_PODS_READY=1) makes pods Ready; what the tests sample is what users would
notice: Ready pods behind the app, the route's weights, the Events."""

import asyncio
import threading
import time

import pytest
import urllib3
from kubernetes import client, watch

from rollout.api.revision import REVISION_LABEL
from rollout.kube import (
    DEPLOYMENTS,
    EVENTS,
    PODS,
    REPLICASETS,
    ROLLOUTS,
    SERVICES,
    Resource,
    load_api_client,
)
from tests.e2e.helpers import HTTPROUTES, annotate, app_weights, phase_is, wait_for
from tests.manifests import (
    adopting_manifest,
    canary_strategy,
    deployment_manifest,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.waiting import in_background

pytestmark = pytest.mark.e2e

PDBS = Resource("policy", "v1", "poddisruptionbudgets")
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers")


def is_ready(pod):
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def ready_pods(kube, ns, selector="app=web"):
    """Names of the Ready pods that are not terminating, as the API server has them now."""
    pods = await kube.list(PODS, ns, selector)
    return {p["metadata"]["name"] for p in pods if is_ready(p) and not p["metadata"].get("deletionTimestamp")}


async def sample_ready(kube, ns, samples, selector="app=web", every=0.1):
    while True:
        samples.append(len(await ready_pods(kube, ns, selector)))
        await asyncio.sleep(every)


async def events_of(kube, ns, kind="Rollout", name="web"):
    found = await kube.list(EVENTS, ns)
    return [
        e for e in found if (e["involvedObject"].get("kind"), e["involvedObject"]["name"]) == (kind, name)
    ]


async def reasons(kube, ns, kind="Rollout", name="web"):
    return [e["reason"] for e in await events_of(kube, ns, kind, name)]


async def said(kube, ns, *wanted, count=1):
    """The Rollout's Event reasons once each of `wanted` is there `count` times (Events are
    posted shortly after the status write that decided them), else None."""
    found = await reasons(kube, ns)
    return found if all(found.count(reason) >= count for reason in wanted) else None


async def next_second():
    """creationTimestamp has whole seconds: pods made in the second of the restart count as new."""
    await asyncio.sleep(1.05 - time.time() % 1)


# --- spec.workloadRef: a Deployment adopted and given back ---------------------------------------


def deployment_at(kube, ns, replicas):
    async def probe():
        found = await kube.get(DEPLOYMENTS, ns, "web")
        status = found.get("status") or {}
        settled = status.get("observedGeneration") == found["metadata"]["generation"]
        at = found["spec"]["replicas"] == replicas and status.get("availableReplicas", 0) == replicas
        return found if settled and at and status.get("replicas", 0) == replicas else None

    return probe


async def sample_by_owner(kube, ns, samples, every=0.1):
    """Every `every` seconds: (Ready pods of the Deployment, Ready pods of the Rollout), not
    counting terminating ones; the Rollout's carry the revision label."""
    while True:
        pods = await kube.list(PODS, ns, "app=web")
        up = [p for p in pods if is_ready(p) and not p["metadata"].get("deletionTimestamp")]
        ours = sum(REVISION_LABEL in p["metadata"]["labels"] for p in up)
        samples.append((len(up) - ours, ours))
        await asyncio.sleep(every)


class PodTrace:
    """Every state the app's pods went through on the API server, from a watch (a poll can fall
    between two changes; a watch cannot): after each event, (Ready pods of the Deployment, Ready
    pods of the Rollout), terminating ones not counted."""

    def __init__(self, kubeconfig, ns):
        self.api = client.CoreV1Api(load_api_client(kubeconfig))
        self.ns = ns
        self.states: list[tuple[int, int]] = []
        self.failed: BaseException | None = None
        self._stopped = False
        self._stream = watch.Watch()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-trace", daemon=True)

    @staticmethod
    def _owner_if_up(pod):
        conditions = (pod.status.conditions if pod.status else None) or []
        up = any(c.type == "Ready" and c.status == "True" for c in conditions)
        if not up or pod.metadata.deletion_timestamp:
            return None
        return "rollout" if REVISION_LABEL in (pod.metadata.labels or {}) else "deployment"

    def _tally(self, owners):
        values = list(owners.values())
        self.states.append((values.count("deployment"), values.count("rollout")))

    def _run(self):
        try:
            listed = self.api.list_namespaced_pod(self.ns, label_selector="app=web")
            owners = {p.metadata.name: self._owner_if_up(p) for p in listed.items}
            self._tally(owners)
            self._ready.set()
            resource_version = listed.metadata.resource_version
            while not self._stopped:
                try:
                    for event in self._stream.stream(
                        self.api.list_namespaced_pod,
                        self.ns,
                        label_selector="app=web",
                        resource_version=resource_version,
                        timeout_seconds=600,
                    ):
                        pod = event["object"]
                        if event["type"] == "DELETED":
                            owners.pop(pod.metadata.name, None)
                        else:
                            owners[pod.metadata.name] = self._owner_if_up(pod)
                        self._tally(owners)
                    return
                except urllib3.exceptions.ProtocolError:
                    # The server may cut a watch's connection (CI saw 'Response ended
                    # prematurely'); resumed from the last event seen, the trace has no hole
                    # (a 410 for a compacted version would still end it as a failure).
                    resource_version = self._stream.resource_version
        except BaseException as exc:  # reported by the test: a trace with a hole proves nothing
            self.failed = exc
            self._ready.set()

    async def __aenter__(self):
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, 10)
        return self

    async def __aexit__(self, *exc):
        self._stopped = True
        self._stream.stop()  # the thread ends at its next event (the namespace's deletion at worst)
        if exc[0] is None:
            assert self.failed is None, f"the pod watch failed: {self.failed!r}"


async def test_a_deployment_is_adopted_and_given_back_without_fewer_ready_pods(
    kube, kubeconfig, namespace, pods_made_ready, start_controller
):
    replicas = 4
    await kube.create(DEPLOYMENTS, namespace, deployment_manifest(namespace=namespace, replicas=replicas))
    before = await wait_for(
        deployment_at(kube, namespace, replicas), what="the Deployment's 4 pods available"
    )
    start_controller()
    samples: list[tuple[int, int]] = []
    async with (
        PodTrace(kubeconfig, namespace) as trace,
        in_background(sample_by_owner(kube, namespace, samples)),
    ):
        await asyncio.sleep(0.5)
        manifest = adopting_manifest(namespace=namespace, replicas=replicas, scale_down="progressively")
        await kube.create(ROLLOUTS, namespace, manifest)
        status = await wait_for(phase_is(kube, namespace, "Healthy"), what="the Rollout Healthy")
        await wait_for(deployment_at(kube, namespace, 0), what="the Deployment scaled to 0")
        assert status["selector"] == "app=web"
        [rs] = [
            rs
            for rs in await kube.list(REPLICASETS, namespace)
            if (rs["metadata"].get("labels") or {}).get(REVISION_LABEL)
        ]
        assert rs["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"  # the Deployment's
        assert [o["kind"] for o in rs["metadata"]["ownerReferences"]] == ["Rollout"]
        assert len(await ready_pods(kube, namespace, REVISION_LABEL)) == replicas
        await wait_for(lambda: said(kube, namespace, "WorkloadScaledDown"), what="WorkloadScaledDown")

        # Deleted, the Rollout gives the Deployment its scale back before its own pods go (the
        # garbage collector removes its ReplicaSet and pods once the finalizer lets it go).
        await kube.delete(ROLLOUTS, namespace, "web")

        async def given_back():
            gone = await kube.get(ROLLOUTS, namespace, "web") is None
            left = await kube.list(PODS, namespace, REVISION_LABEL)
            back = await deployment_at(kube, namespace, replicas)()
            return back if gone and not left else None

        back = await wait_for(given_back, timeout=120, what="the Rollout's pods gone, the Deployment back")
        await asyncio.sleep(0.3)
    assert back["metadata"]["uid"] == before["metadata"]["uid"]  # the same Deployment, never deleted
    assert not [
        rs
        for rs in await kube.list(REPLICASETS, namespace)
        if REVISION_LABEL in rs["metadata"].get("labels", {})
    ]
    await wait_for(lambda: said(kube, namespace, "WorkloadRestoring", "WorkloadRestored"), what="Restored")
    # Polled every 100 ms, as a user watching `kubectl get pods` would see it ...
    totals = [deployment + rollout for deployment, rollout in samples]
    assert min(totals) >= replicas, f"Ready pods fell to {min(totals)} (samples: {samples})"
    assert samples[0] == (replicas, 0) and samples[-1] == (replicas, 0), samples
    assert (0, replicas) in samples, samples
    # ... and at every change the API server made, from the watch.
    states = trace.states
    lowest = min(d + r for d, r in states)
    assert lowest >= replicas, f"Ready pods fell to {lowest} (states: {states})"
    assert states[0] == (replicas, 0) and states[-1] == (replicas, 0), states
    assert (0, replicas) in states, states
    adopted_at = states.index((0, replicas))
    # Both moves went through pods of both owners Ready at once (the only way, pod by pod).
    assert any(d and r for d, r in states[:adopted_at]), states
    assert any(d and r for d, r in states[adopted_at:]), states


# --- rollout.dev/restart against a PodDisruptionBudget ------------------------------------------


def budget(ns, **spec):
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {**spec, "selector": {"matchLabels": {"app": "web"}}},
    }


def budget_judged(kube, ns, allowed):
    """The disruption controller has judged the budget's current spec: `allowed` disruptions."""

    async def probe():
        pdb = await kube.get(PDBS, ns, "web")
        status = pdb.get("status") or {}
        current = status.get("observedGeneration") == pdb["metadata"]["generation"]
        return pdb if current and status.get("disruptionsAllowed") == allowed else None

    return probe


def restarted(kube, ns):
    async def probe():
        status = ((await kube.get(ROLLOUTS, ns, "web")) or {}).get("status") or {}
        done = status.get("phase") == "Healthy" and "restartedAt" not in status
        return status if done and "RestartCompleted" in await reasons(kube, ns) else None

    return probe


async def test_a_disruption_budget_blocks_the_restart_until_it_is_relaxed(
    kube, namespace, pods_made_ready, start_controller
):
    start_controller()
    await kube.create(ROLLOUTS, namespace, rollout_manifest(namespace=namespace, replicas=3))
    v1 = (await wait_for(phase_is(kube, namespace, "Healthy"), what="first deploy"))["stableRevision"]
    stable = f"{REVISION_LABEL}={v1}"

    async def three_ready():
        names = await ready_pods(kube, namespace, stable)
        return names if len(names) == 3 and len(await kube.list(PODS, namespace, stable)) == 3 else None

    before = await wait_for(three_ready, what="3 Ready pods")
    await kube.create(PDBS, namespace, budget(namespace, minAvailable=3))
    await wait_for(budget_judged(kube, namespace, 0), what="the budget allowing no disruption")
    await next_second()

    samples: list[int] = []
    async with in_background(sample_ready(kube, namespace, samples, stable)):
        await annotate(kube, namespace, "rollout.dev/restart", "true")

        async def blocked():
            found = [e for e in await events_of(kube, namespace) if e["reason"] == "EvictionBlocked"]
            return found[0] if found else None

        event = await wait_for(blocked, what="the EvictionBlocked Event")
        assert event["type"] == "Warning"
        assert "disruption budget" in event["message"], event["message"]  # the API server's words
        await asyncio.sleep(5.0)  # the controller looks again meanwhile (backing off)
        assert await three_ready() == before, "a pod was evicted against the budget"
        held = len(samples)
        found = await reasons(kube, namespace)
        assert "PodEvicted" not in found and found.count("EvictionBlocked") == 1, found
        status = (await kube.get(ROLLOUTS, namespace, "web"))["status"]
        assert "restartedAt" in status and "restarting: 0/3 pods replaced" in status["message"], status

        await kube.patch(PDBS, namespace, "web", {"spec": {"minAvailable": None, "maxUnavailable": 1}})
        await wait_for(budget_judged(kube, namespace, 1), what="the budget allowing one disruption")
        final = await wait_for(restarted(kube, namespace), timeout=120, what="the restart completed")
        after = await wait_for(three_ready, what="3 Ready pods after the restart")
    assert not after & before, "every stable pod replaced"
    assert (final["stableRevision"], final["currentRevision"]) == (v1, v1)
    revisions = {rs["metadata"]["labels"][REVISION_LABEL] for rs in await kube.list(REPLICASETS, namespace)}
    assert revisions == {v1}, "no new revision"
    evicted = await wait_for(lambda: said(kube, namespace, "PodEvicted", count=3), what="3 PodEvicted")
    assert evicted.count("PodEvicted") == 3
    assert held > 30 and min(samples[:held]) == 3, samples[:held]  # nothing went while blocked
    assert min(samples) >= 2, samples  # then one at a time, as the budget allows


# --- a HorizontalPodAutoscaler mid-canary -------------------------------------------------------


async def canary_paused(kube, ns, replicas, weight):
    """A canary with an HTTPRoute, paused at `weight`; (stable, canary) revisions."""
    for name in ("web-stable", "web-canary"):
        await kube.create(SERVICES, ns, service_manifest(name, namespace=ns))
    await kube.create(HTTPROUTES, ns, http_route_manifest(namespace=ns))
    strategy = canary_strategy([{"setWeight": weight}, {"pause": {}}], scaleDownDelaySeconds=2)
    await kube.create(ROLLOUTS, ns, rollout_manifest(namespace=ns, replicas=replicas, strategy=strategy))
    v1 = (await wait_for(phase_is(kube, ns, "Healthy"), what="first deploy"))["stableRevision"]
    await kube.patch(ROLLOUTS, ns, "web", image_patch("registry.example/web:2"))
    v2 = (await wait_for(phase_is(kube, ns, "Paused", 1), what=f"paused at {weight}%"))["currentRevision"]
    return v1, v2


async def replicas_by_revision(kube, ns):
    """revision -> (spec replicas, available replicas) of the Rollout's ReplicaSets."""
    return {
        rs["metadata"]["labels"][REVISION_LABEL]: (
            rs["spec"]["replicas"],
            (rs.get("status") or {}).get("availableReplicas", 0),
        )
        for rs in await kube.list(REPLICASETS, ns)
    }


def scaled_to(kube, ns, replicas, wanted):
    """The Rollout at `replicas`, its ReplicaSets at `wanted` (revision -> replicas), all available."""

    async def probe():
        rollout = await kube.get(ROLLOUTS, ns, "web")
        by = await replicas_by_revision(kube, ns)
        at = by == {revision: (n, n) for revision, n in wanted.items()}
        return rollout if rollout["spec"]["replicas"] == replicas and at else None

    return probe


def hpa(ns, min_replicas, max_replicas):
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "rollout.dev/v1alpha1", "kind": "Rollout", "name": "web"},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
        },
    }


async def test_an_autoscaler_scales_the_rollout_mid_canary(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    start_controller()
    v1, v2 = await canary_paused(kube, namespace, replicas=4, weight=40)
    await wait_for(scaled_to(kube, namespace, 4, {v1: 4, v2: 2}), what="4 stable, 2 canary (40% of 4)")

    samples: list[tuple[int, int, int]] = []  # (canary weight on the route, stable, canary available)

    async def sample():
        while True:
            weight = app_weights(await kube.get(HTTPROUTES, namespace, "web"))["web-canary"]
            by = await replicas_by_revision(kube, namespace)
            samples.append((weight, by.get(v1, (0, 0))[1], by.get(v2, (0, 0))[1]))
            await asyncio.sleep(0.1)

    async with in_background(sample()):
        # No metrics server: within its bounds the HPA can compute nothing and leaves the scale alone.
        await kube.create(HPAS, namespace, hpa(namespace, 2, 10))

        async def seen_by_hpa():
            status = (await kube.get(HPAS, namespace, "web")).get("status") or {}
            return status if status.get("currentReplicas") == 4 else None

        await wait_for(seen_by_hpa, what="the HPA reading the Rollout's scale")
        await asyncio.sleep(2.0)  # two of its syncs
        assert (await kube.get(ROLLOUTS, namespace, "web"))["spec"]["replicas"] == 4

        # Its minimum above the Rollout's replicas: the HPA scales the Rollout up through /scale.
        await kube.patch(HPAS, namespace, "web", {"spec": {"minReplicas": 8}})
        up = await wait_for(
            scaled_to(kube, namespace, 8, {v1: 8, v2: 4}), what="scaled up by the HPA: 8 stable, 4 canary"
        )
        scale_writers = [
            f["manager"] for f in up["metadata"].get("managedFields", []) if f.get("subresource") == "scale"
        ]
        assert scale_writers and all("kube-controller-manager" in m for m in scale_writers), scale_writers

        # Its maximum below: scaled down, the canary keeps at least one pod.
        await kube.patch(HPAS, namespace, "web", {"spec": {"minReplicas": 1, "maxReplicas": 2}})
        await wait_for(
            scaled_to(kube, namespace, 2, {v1: 2, v2: 1}), what="scaled down by the HPA: 2 stable, 1 canary"
        )
        status = (await kube.get(ROLLOUTS, namespace, "web"))["status"]
        assert status["phase"] == "Paused" and status["currentStepIndex"] == 1
    rescales = [
        e["message"]
        for e in await events_of(kube, namespace, "HorizontalPodAutoscaler")
        if e["reason"] == "SuccessfulRescale"
    ]
    assert any(m.startswith("New size: 8; reason: ") and "below Spec.MinReplicas" in m for m in rescales)
    assert any(m.startswith("New size: 2; reason: ") and "above Spec.MaxReplicas" in m for m in rescales)
    route = await kube.get(HTTPROUTES, namespace, "web")
    assert app_weights(route) == {"web-stable": 60, "web-canary": 40}
    assert samples and {weight for weight, _, _ in samples} == {40}, "the route's weight moved"
    assert all(stable > 0 and canary > 0 for _, stable, canary in samples), samples

    await annotate(kube, namespace, "rollout.dev/promote", "step")

    async def completed():
        status = await phase_is(kube, namespace, "Healthy")()
        return status if status and status["stableRevision"] == v2 else None

    await wait_for(completed, what="v2 stable")
    await wait_for(scaled_to(kube, namespace, 2, {v1: 0, v2: 2}), what="v2 alone at the HPA's scale, 2")
    assert app_weights(await kube.get(HTTPROUTES, namespace, "web")) == {"web-stable": 100, "web-canary": 0}
