"""Shards on the real control plane: 3 replicas with --shards 6 drive a wave of canaries over
HTTPRoutes; mid-wave one replica is SIGKILLed and another joins. Every Rollout is written by one
replica at a time (the API server's audit log names the writer of each request through the
replica's user agent), every shard Lease has one holder, every canary completes, no weight goes
past its step, and each promote command is applied exactly once. The replicas list and watch
ReplicaSets per shard (by their shard label), never all of them, and a ReplicaSet that lost its
label is labelled again. With --shard-watch=filter they list and watch every ReplicaSet instead,
and a replica that takes a dead one's shards lists them again."""

import asyncio
import collections
import json
import os
import signal
import time
import urllib.parse

import pytest

from rollout.controller.command_annotations import TAKEN_ANNOTATION as TAKEN
from rollout.controller.shards import shard_of
from rollout.kube import CLUSTER_ROLE_BINDINGS, EVENTS, LEASES, REPLICASETS, ROLLOUTS, SERVICES
from tests.cluster.launcher import USERS
from tests.e2e.helpers import HTTPROUTES, app_weights, wait_for
from tests.manifests import (
    canary_strategy,
    http_route_manifest,
    image_patch,
    rollout_manifest,
    service_manifest,
)
from tests.processes import ControllerProcesses

pytestmark = pytest.mark.e2e

ROLLOUTS_IN_WAVE = int(os.environ.get("ROLLOUT_E2E_SHARD_ROLLOUTS", "300"))
SHARDS = 6
USER = "rollout-bench"
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {"duration": "1s"}}]
TIMINGS = [
    "--leader-election-lease-duration",
    "10",
    "--leader-election-renew-deadline",
    "7",
    "--leader-election-retry-period",
    "1",
]


def canary(name, namespace):
    strategy = canary_strategy(
        STEPS,
        {"gatewayAPI": {"httpRoutes": [{"name": name}]}},
        stableService=f"{name}-stable",
        canaryService=f"{name}-canary",
        scaleDownDelaySeconds=0,
    )
    return rollout_manifest(name, namespace, replicas=1, strategy=strategy)


async def in_batches(jobs, size=40):
    for start in range(0, len(jobs), size):
        await asyncio.gather(*(job() for job in jobs[start : start + size]))


async def create_wave(kube, namespace, names):
    jobs = []
    for name in names:
        for role in ("stable", "canary"):
            jobs.append(
                lambda n=name, r=role: kube.create(
                    SERVICES, namespace, service_manifest(f"{n}-{r}", namespace=namespace, app=n)
                )
            )
        route = http_route_manifest(name, namespace, backends=(f"{name}-stable", f"{name}-canary"))
        jobs.append(lambda r=route: kube.create(HTTPROUTES, namespace, r))
    await in_batches(jobs)
    await in_batches(
        [lambda n=name: kube.create(ROLLOUTS, namespace, canary(n, namespace)) for name in names]
    )


def all_in(kube, namespace, names, test):
    async def probe():
        items = {
            i["metadata"]["name"]: i
            for i in (await kube.list(ROLLOUTS, namespace))
            if i["metadata"]["name"] in names
        }
        statuses = [(items.get(n) or {}).get("status") or {} for n in names]
        missing = [n for n, s in zip(names, statuses, strict=True) if not test(s)]
        return True if not missing else None

    return probe


async def bind_user(kube, namespace):
    """The replicas' user, bound to cluster-admin (the audit log tells its requests apart)."""
    assert USER in USERS
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"e2e-shards-{namespace}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
    }
    await kube.create(CLUSTER_ROLE_BINDINGS, None, binding)
    return binding


def replicaset_lists(plane, namespace, since=0.0):
    """(labelSelector, response code, replica) -> how many lists of the namespace's ReplicaSets."""
    found = collections.Counter()
    for event in plane.audit_events(USER, since):
        ref = event.get("objectRef") or {}
        if (ref.get("resource"), ref.get("namespace"), event["verb"]) != ("replicasets", namespace, "list"):
            continue
        query = urllib.parse.urlsplit(event.get("requestURI") or "").query
        selector = urllib.parse.parse_qs(query).get("labelSelector", [""])[0]
        found[(selector, (event.get("responseStatus") or {}).get("code"), replica_of(event))] += 1
    return found


def each_promoted(kube, namespace, names):
    """A probe: the PromotedStep Events per Rollout, once every one of `names` has one."""

    async def probe():
        events = await kube.list(EVENTS, namespace)
        found = collections.Counter(
            e["involvedObject"]["name"] for e in events if e.get("reason") == "PromotedStep"
        )
        return found if set(found) == set(names) else None

    return probe


def replica_of(event):
    """The replica that sent a request: the identity in its user agent, `... (identity)`."""
    agent = event.get("userAgent") or ""
    return agent[agent.rfind("(") + 1 : -1] if agent.endswith(")") else agent


async def test_three_sharded_replicas_survive_a_kill_and_a_join_mid_wave(
    kube, cluster, namespace, pods_made_ready, routing_installed, tmp_path
):
    plane = cluster[1]
    if plane is None:
        pytest.skip("needs the project's control plane (its audit log), not ROLLOUT_E2E_KUBECONFIG")
    binding = await bind_user(kube, namespace)
    names = [f"app-{i}" for i in range(ROLLOUTS_IN_WAVE)]
    await create_wave(kube, namespace, names)
    args = [
        "controller",
        "--namespace",
        namespace,
        "--resync-seconds",
        "30",
        "--shards",
        str(SHARDS),
        "--leader-election-namespace",
        namespace,
        *TIMINGS,
    ]
    replicas = ControllerProcesses(str(plane.user_kubeconfig(USER)), namespace, tmp_path, args=args)
    for _ in range(3):
        replicas.start()
    try:
        await wait_for(
            all_in(kube, namespace, names, lambda s: s.get("phase") == "Healthy"),
            timeout=300,
            what="first deploys",
        )
        first = {
            i["metadata"]["name"]: i["status"]["stableRevision"] for i in await kube.list(ROLLOUTS, namespace)
        }

        async def holders():
            leases = await kube.list(LEASES, namespace, "rollout.dev/lease-role=shard")
            return {lease["metadata"]["name"]: lease["spec"].get("holderIdentity") for lease in leases}

        held = await holders()
        assert len(held) == SHARDS and all(held.values()), held
        assert len(set(held.values())) == 3, f"each of 3 replicas holds its share: {held}"
        # A ReplicaSet made before sharding (or under another count) has no shard label: take
        # it off one, which every replica then sees among the strays.
        stray = (await kube.list(REPLICASETS, namespace, f"rollout.dev/rollout={names[0]}"))[0]
        unlabel = {"metadata": {"labels": {"rollout.dev/shard": None}}}
        await kube.patch(REPLICASETS, namespace, stray["metadata"]["name"], unlabel)

        since = time.time()
        await in_batches(
            [
                lambda n=name: kube.patch(ROLLOUTS, namespace, n, image_patch("web:2", name=n))
                for name in names
            ]
        )
        paused = lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == 1  # noqa: E731
        await wait_for(all_in(kube, namespace, names, paused), timeout=300, what="every canary paused at 20%")
        for name in names[:: max(1, len(names) // 20)]:  # no weight past the step
            route = await kube.get(HTTPROUTES, namespace, name)
            assert app_weights(route) == {f"{name}-stable": 80, f"{name}-canary": 20}

        # Mid-wave: one replica dies, another joins; then every canary is promoted once.
        victim = replicas.running[0][0]
        os.kill(victim.pid, signal.SIGKILL)
        replicas.start()
        await in_batches(
            [
                lambda n=name: kube.patch(
                    ROLLOUTS, namespace, n, {"metadata": {"annotations": {"rollout.dev/promote": "true"}}}
                )
                for name in names
            ]
        )

        async def completed():
            items = await kube.list(ROLLOUTS, namespace)
            return (
                all(
                    (i.get("status") or {}).get("phase") == "Healthy"
                    and i["status"].get("stableRevision") != first[i["metadata"]["name"]]
                    for i in items
                    if i["metadata"]["name"] in first
                )
                or None
            )

        await wait_for(completed, timeout=300, what="every canary completed after the kill and the join")
        until = time.time()
        # Every promote was taken, recorded as applied, and its record taken off the Rollout.
        items = {i["metadata"]["name"]: i for i in await kube.list(ROLLOUTS, namespace)}
        unrecorded = [
            n
            for n in names
            if TAKEN in (items[n]["metadata"].get("annotations") or {})
            or not items[n]["status"].get("commandsApplied")
        ]
        assert not unrecorded, unrecorded[:10]

        # Each shard Lease: one holder, and the dead replica holds none (after its lease ran out).
        held = await holders()
        assert len(held) == SHARDS and all(held.values()), held
        assert len(set(held.values())) == 3, f"3 live replicas share the shards: {held}"

        # One writer at a time per Rollout: the writes of each come from one replica, then from
        # the next after a hand-over, never back and forth.
        writes = collections.defaultdict(list)
        for event in plane.audit_events(f"{USER}", since, until + 5):
            ref = event.get("objectRef") or {}
            if ref.get("resource") == "rollouts" and event["verb"] in ("patch", "update", "create"):
                writes[ref.get("name")].append((event["requestReceivedTimestamp"], replica_of(event)))
        alternating = {}
        for name, seen in writes.items():
            order = [r for _, r in sorted(seen)]
            segments = [r for i, r in enumerate(order) if i == 0 or order[i - 1] != r]
            if len(segments) != len(set(segments)):
                alternating[name] = segments
        assert writes and not alternating, json.dumps(alternating)[:2000]
        moved = sum(1 for seen in writes.values() if len({r for _, r in seen}) > 1)
        shards_of = collections.Counter(shard_of(namespace, n, SHARDS) for n in names)
        print(f"\n{len(writes)} Rollouts written; {moved} changed hands; per shard {dict(shards_of)}")

        # Each promote applied exactly once.
        promoted = await wait_for(
            each_promoted(kube, namespace, names), what="a PromotedStep Event for each Rollout"
        )
        twice = {n: c for n, c in promoted.items() if c != 1}
        assert not twice and len(promoted) == len(names), (twice, len(promoted))

        # Every ReplicaSet carries its Rollout's shard, the unlabelled one too.
        unlabelled = {}
        for replicaset in await kube.list(REPLICASETS, namespace):
            labels = replicaset["metadata"].get("labels") or {}
            wanted = f"{shard_of(namespace, labels['rollout.dev/rollout'], SHARDS)}-of-{SHARDS}"
            if labels.get("rollout.dev/shard") != wanted:
                unlabelled[replicaset["metadata"]["name"]] = labels.get("rollout.dev/shard")
        assert not unlabelled, unlabelled
        # No replica listed every ReplicaSet: each list was of a shard, of the strays, or of one
        # Rollout's (read from the API server before its shard's list was in), and every shard's
        # list succeeded, so reconciles read their ReplicaSets from memory.
        selectors = collections.Counter()
        for (selector, code, _), n in replicaset_lists(plane, namespace).items():
            selectors[(selector, code)] += n
        failed = {key: n for key, n in selectors.items() if key[1] != 200}
        assert not failed, failed
        whole = {
            s: n
            for (s, _), n in selectors.items()
            if "rollout.dev/shard" not in s and "rollout.dev/rollout=" not in s
        }
        assert selectors and not whole, (whole, selectors.most_common(8))
        listed = {s.rsplit("=", 1)[1] for s, _ in selectors if "rollout.dev/shard=" in s}
        assert listed == {f"{k}-of-{SHARDS}" for k in range(SHARDS)}, listed
        one_rollouts = sum(n for (s, _), n in selectors.items() if "rollout.dev/rollout=" in s)
        assert one_rollouts < len(names), f"{one_rollouts} lists of one Rollout's ReplicaSets"
        print(f"ReplicaSet lists by selector: {dict(selectors.most_common(10))}")
    finally:
        replicas.stop_all()
        await kube.delete(CLUSTER_ROLE_BINDINGS, None, binding["metadata"]["name"])


async def test_filtering_after_the_watch_a_survivor_lists_again_for_the_shards_it_takes(
    kube, cluster, namespace, pods_made_ready, routing_installed, tmp_path
):
    """--shard-watch=filter: each replica lists and watches every ReplicaSet and keeps its
    shards'. One of two is killed mid-canary; the survivor takes its shards, lists again for
    them, and every canary completes with each promote applied once."""
    plane = cluster[1]
    if plane is None:
        pytest.skip("needs the project's control plane (its audit log), not ROLLOUT_E2E_KUBECONFIG")
    binding = await bind_user(kube, namespace)
    names = [f"app-{i}" for i in range(24)]
    await create_wave(kube, namespace, names)
    args = ["controller", "--namespace", namespace, "--resync-seconds", "30", "--shards", str(SHARDS)]
    args += ["--shard-watch", "filter", "--leader-election-namespace", namespace, *TIMINGS]
    replicas = ControllerProcesses(str(plane.user_kubeconfig(USER)), namespace, tmp_path, args=args)
    since = time.time()
    replicas.start()
    replicas.start()
    try:
        healthy = lambda s: s.get("phase") == "Healthy"  # noqa: E731
        await wait_for(all_in(kube, namespace, names, healthy), timeout=120, what="first deploys")
        first = {
            i["metadata"]["name"]: i["status"]["stableRevision"] for i in await kube.list(ROLLOUTS, namespace)
        }
        for name in names:
            await kube.patch(ROLLOUTS, namespace, name, image_patch("web:2", name=name))
        paused = lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == 1  # noqa: E731
        await wait_for(all_in(kube, namespace, names, paused), timeout=120, what="every canary paused at 20%")
        for name in names:
            route = await kube.get(HTTPROUTES, namespace, name)
            assert app_weights(route) == {f"{name}-stable": 80, f"{name}-canary": 20}

        async def split():
            leases = await kube.list(LEASES, namespace, "rollout.dev/lease-role=shard")
            holders = collections.Counter(lease["spec"].get("holderIdentity") for lease in leases)
            return holders if len(leases) == SHARDS and sorted(holders.values()) == [3, 3] else None

        await wait_for(split, timeout=60, what="3 shards held by each replica")
        victim, _ = replicas.running[0]
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.time()
        for name in names:
            promote = {"metadata": {"annotations": {"rollout.dev/promote": "true"}}}
            await kube.patch(ROLLOUTS, namespace, name, promote)

        async def completed():
            items = await kube.list(ROLLOUTS, namespace)
            done = [
                i
                for i in items
                if (i.get("status") or {}).get("phase") == "Healthy"
                and i["status"].get("stableRevision") != first[i["metadata"]["name"]]
            ]
            return len(done) == len(names) or None

        await wait_for(completed, timeout=180, what="every canary completed by the survivor")
        promoted = await wait_for(
            each_promoted(kube, namespace, names), what="a PromotedStep Event for each Rollout"
        )
        assert promoted == collections.Counter(names), promoted
        lists = replicaset_lists(plane, namespace, since)
        assert lists and all(code == 200 for _, code, _ in lists), lists
        # Every list is of every ReplicaSet (the kind's own selector) or of one Rollout's; none
        # selects a shard. The survivor listed all again after it took the dead one's shards.
        by_shard = [key for key in lists if "rollout.dev/shard" in key[0]]
        assert not by_shard, by_shard
        whole_after_kill = {
            key: n
            for key, n in replicaset_lists(plane, namespace, killed_at).items()
            if key[2].startswith("controller-1") and "rollout.dev/rollout=" not in key[0]
        }
        assert whole_after_kill, "the survivor did not list the ReplicaSets again for the shards it took"
    finally:
        replicas.stop_all()
        await kube.delete(CLUSTER_ROLE_BINDINGS, None, binding["metadata"]["name"])
