"""Two `rollout controller` processes with leader election, started with the arguments of the
Helm chart's rendered Deployment, under the chart's RBAC (the emulator refuses every call the
rendered Roles do not grant): the leader is SIGKILLed mid-canary, the follower takes the Lease and
finishes the canary, and every write the API server applied came from the Lease's holder at that
moment. Also: /healthz, /readyz and /metrics of both, and a leader whose Lease is taken stops
writing and exits."""

import asyncio
import signal
import time
import urllib.error
import urllib.request

import pytest

from rollout.kube import ROLLOUTS, SERVICES, Resource
from tests.chart import RELEASE_NAMESPACE, controller_args, granted, grants, render
from tests.emulated import NS, events_once, healthy_at, status_of
from tests.manifests import http_route_manifest, image_patch, rollout_manifest, service_manifest
from tests.processes import ControllerProcesses
from tests.waiting import wait_for

LEASES = Resource("coordination.k8s.io", "v1", "leases")
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
LEASE_NAME = "rollout-rollout-controller"
VALUES = {
    "watchNamespaces": [NS],
    "controller": {"resyncSeconds": 1, "logLevel": "INFO"},
    "leaderElection": {"leaseDuration": 3, "renewDeadline": 2, "retryPeriod": 1},
}


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None, ""


async def get(port, path):
    return await asyncio.to_thread(http_get, port, path)


def sample(text, name, **labels):
    """The value of one series in a /metrics answer, or None."""
    for line in text.splitlines():
        if not line.startswith(name + ("{" if labels else " ")) and line.split(" ")[0] != name:
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
async def chart_controllers(cluster, tmp_path):
    docs = render(VALUES)
    rules = grants(docs)
    cluster.api.authorize = lambda call: granted(call, rules)
    cluster.create_namespace(RELEASE_NAMESPACE)
    processes = ControllerProcesses(
        str(cluster.kubeconfig(tmp_path / "kubeconfig")),
        NS,
        tmp_path,
        args=controller_args(docs),
        env={"POD_NAMESPACE": RELEASE_NAMESPACE},
    )
    yield processes
    processes.stop_all()


async def holder(cluster):
    lease = await cluster.kube.get(LEASES, RELEASE_NAMESPACE, LEASE_NAME)
    return ((lease or {}).get("spec") or {}).get("holderIdentity")


def index_of(identity):
    return int(identity.split("_", 1)[0].rsplit("-", 1)[1])  # controller-<i>_<random>


async def test_sigkill_of_the_leader_mid_canary_the_follower_finishes_it(cluster, chart_controllers):
    first, second = chart_controllers.start(), chart_controllers.start()
    leader_id = await wait_for(lambda: holder(cluster), timeout=20, what="a leader")
    leader = index_of(leader_id)
    follower = 1 - leader
    for port in chart_controllers.ports:
        assert await wait_for(lambda port=port: _ok(port, "/readyz"), what="ready")
        assert (await get(port, "/healthz"))[0] == 200

    for name in ("web-stable", "web-canary"):
        await cluster.kube.create(SERVICES, NS, service_manifest(name))
    await cluster.kube.create(HTTPROUTES, NS, http_route_manifest())
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": 1}}]
    strategy = {
        "canary": {
            "stableService": "web-stable",
            "canaryService": "web-canary",
            "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
            "steps": steps,
            "scaleDownDelaySeconds": 1,
        }
    }
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=4, strategy=strategy))
    v1 = (await wait_for(healthy_at(cluster), timeout=30, what="first deploy"))["stableRevision"]
    await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))

    async def paused_at_20():
        status = await status_of(cluster)
        return status.get("phase") == "Paused" and (status.get("canary") or {}).get("weight") == 20

    await wait_for(paused_at_20, timeout=30, what="the canary paused at 20%")

    # Both processes serve their metrics; only the leader says it leads and has reconciled.
    leader_metrics = (await get(chart_controllers.ports[leader], "/metrics"))[1]
    follower_metrics = (await get(chart_controllers.ports[follower], "/metrics"))[1]
    assert sample(leader_metrics, "rollout_leader") == 1.0
    assert sample(follower_metrics, "rollout_leader") == 0.0
    assert sample(leader_metrics, "rollout_phase", namespace=NS, rollout="web", phase="Paused") == 1.0
    assert sample(leader_metrics, "rollout_canary_weight_ratio", namespace=NS, rollout="web") == 0.2
    assert sample(leader_metrics, "rollout_step", namespace=NS, rollout="web") == 1.0
    assert (sample(leader_metrics, "rollout_reconcile_duration_seconds_count") or 0) > 0
    assert (
        sample(
            leader_metrics,
            "rollout_api_requests_total",
            verb="patch",
            resource="rollouts.rollout.dev/status",
            outcome="200",
        )
        or 0
    ) > 0
    assert sample(follower_metrics, "rollout_reconcile_duration_seconds_count") in (None, 0.0)

    killed = (first, second)[leader]
    killed.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    killed.wait(timeout=10)
    new_id = await wait_for(
        lambda: _changed(cluster, leader_id), timeout=15, interval=0.02, what="the follower takes the Lease"
    )
    took_over = time.monotonic() - killed_at
    assert index_of(new_id) == follower

    await cluster.kube.patch(
        ROLLOUTS, NS, "web", {"metadata": {"annotations": {"rollout.dev/promote": "step"}}}
    )
    final = await wait_for(healthy_at(cluster), timeout=40, what="the canary finished by the new leader")
    assert final["stableRevision"] != v1
    route = await cluster.kube.get(HTTPROUTES, NS, "web")
    app = next(r for r in route["spec"]["rules"] if r.get("name") == "app")
    assert {b["name"]: b["weight"] for b in app["backendRefs"]} == {"web-stable": 100, "web-canary": 0}
    reasons = [e["reason"] for e in await events_once(cluster, "RolloutCompleted")]
    assert reasons.count("RolloutCompleted") == 1

    # No two processes wrote in the same term: every write came from the Lease's holder.
    writes = [w for w in cluster.api.audit.writes if w.call.resource != "leases"]
    lease_key = f"{RELEASE_NAMESPACE}/{LEASE_NAME}"
    assert writes and all(w.agent.startswith("rollout-controller/") for w in writes), {
        w.agent for w in writes
    }
    strays = [w for w in writes if f"({w.lease_holders.get(lease_key)})" not in w.agent]
    assert not strays, strays[:3]
    by_old = [w.at for w in writes if f"({leader_id})" in w.agent]
    by_new = [w.at for w in writes if f"({new_id})" in w.agent]
    # The emulator records a write when it serves it; one the old leader sent just before the
    # SIGKILL may be served after it (the test's loop blocks in killed.wait), so the kill bounds
    # only the new leader's writes, and the old leader's all come before them.
    assert by_old and by_new and max(by_old) < min(by_new)
    assert killed_at < min(by_new)
    first_write_after = min(by_new) - killed_at
    assert cluster.api.audit.denied == [], cluster.api.audit.denied  # the chart's RBAC was enough
    survivor_metrics = (await get(chart_controllers.ports[follower], "/metrics"))[1]
    assert sample(survivor_metrics, "rollout_leader") == 1.0
    assert sample(survivor_metrics, "rollout_phase", namespace=NS, rollout="web", phase="Healthy") == 1.0
    print(
        f"failover: Lease taken {took_over:.2f} s after SIGKILL, first write {first_write_after:.2f} s after"
    )
    # leaseDuration 3 s, retryPeriod 1 s: a takeover within lease + retry + a request's time.
    assert took_over < 3 + 1 + 1.5


async def _ok(port, path):
    return (await get(port, path))[0] == 200


async def _changed(cluster, old):
    now = await holder(cluster)
    return now if now and now != old else None


async def test_a_leader_whose_lease_is_taken_stops_writing_and_exits(cluster, chart_controllers):
    proc = chart_controllers.start()
    leader_id = await wait_for(lambda: holder(cluster), timeout=20, what="a leader")
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=2))
    await wait_for(healthy_at(cluster), timeout=30, what="first deploy")
    # Another holder takes the Lease (as after a long pause of this process); keep the Rollout busy.
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    await cluster.kube.patch(
        LEASES,
        RELEASE_NAMESPACE,
        LEASE_NAME,
        {"spec": {"holderIdentity": "intruder", "renewTime": now, "leaseDurationSeconds": 60}},
    )
    taken_at = time.monotonic()
    await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
    code = await asyncio.to_thread(proc.wait, 15)
    assert code == 1
    assert "lost the leader lease" in chart_controllers.log_of(0)
    late = [
        w
        for w in cluster.api.audit.writes
        if f"({leader_id})" in w.agent and w.call.resource != "leases" and w.at > taken_at + 2.0 + 0.5
    ]
    assert not late, late  # renewDeadline 2 s: the fence closes before anyone else may take over
