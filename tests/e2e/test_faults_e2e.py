"""Controller processes dying mid-canary on a real API server (the integration suite's
test_faults / test_status_recovery / test_leader_election, ported): a SIGKILLed controller is
replaced by a new process that continues from the Rollout's status alone, and of two processes
under the Helm chart's leader-election arguments the follower takes the Lease (in the test's own
namespace, through POD_NAMESPACE as the chart sets it) and finishes the canary.

Throughout, a sampler reads what users are routed by: the HTTPRoute's canary weight and the
revision the stable Service selects. Before completion the weight only ever steps up through the
steps' weights (never back to 0, never past the step the Rollout is at); completion re-pins the
stable Service first, so a weight of 0 afterwards means the new revision on both sides."""

import asyncio
import signal
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest

from rollout.api.revision import REVISION_LABEL
from rollout.kube import EVENTS, REPLICASETS, ROLLOUTS, SERVICES, Resource
from tests import waiting
from tests.chart import controller_args, render
from tests.e2e.helpers import HTTPROUTES, annotate, app_weights, deploy_http_canary, phase_is, wait_for
from tests.manifests import image_patch
from tests.processes import ControllerProcesses
from tests.waiting import in_background

pytestmark = pytest.mark.e2e

LEASES = Resource("coordination.k8s.io", "v1", "leases")
LEASE_NAME = "rollout-rollout-controller"  # the chart's --leader-election-id (its fullname)
LEASE, RENEW, RETRY = 3, 2, 1  # seconds: the chart's leaderElection values used here
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


async def deploy_canary(kube, ns, replicas=3):
    """Services, the HTTPRoute and a canary Rollout; the stable revision once Healthy."""
    return await deploy_http_canary(kube, ns, STEPS, replicas)


async def user_view(kube, ns):
    """(canary weight on the route, revision the stable Service selects)."""
    route = await kube.get(HTTPROUTES, ns, "web")
    stable = await kube.get(SERVICES, ns, "web-stable")
    return app_weights(route)["web-canary"], stable["spec"]["selector"].get(REVISION_LABEL)


async def sample_user_view(kube, ns, samples, every=0.1):
    while True:
        samples.append(await user_view(kube, ns))
        await asyncio.sleep(every)


def check_never_back_nor_past(samples, old, new, allowed_before_completion):
    """Before the stable Service moves to `new`: weights only rise, each one a weight the Rollout
    had reached by then (`allowed_before_completion` ends with the highest); once moved, the
    stable Service never goes back to `old`, and the route ends at 100/0."""
    assert samples, "the sampler never ran"
    pins = [pin for _, pin in samples]
    assert set(pins) <= {old, new}, set(pins)
    moved = pins.index(new) if new in pins else len(pins)
    assert all(pin == new for pin in pins[moved:]), "the stable Service went back to the old revision"
    before = [weight for weight, _ in samples[:moved]]
    assert set(before) <= set(allowed_before_completion), before
    assert before == sorted(before), f"the canary weight went backwards: {before}"
    assert samples[-1] == (0, new), samples[-1]


def completed(kube, ns, old):
    async def probe():
        status = await phase_is(kube, ns, "Healthy")()
        return status if status and status["stableRevision"] != old else None

    return probe


async def replicaset_uids(kube, ns):
    return {
        rs["metadata"]["labels"][REVISION_LABEL]: rs["metadata"]["uid"]
        for rs in await kube.list(REPLICASETS, ns)
    }


async def completions(kube, ns):
    """The RolloutCompleted Events, once there is one (Events follow the status write shortly)."""

    async def probe():
        events = await kube.list(EVENTS, ns)
        found = [e for e in events if e["involvedObject"]["name"] == "web"]
        return [e for e in found if e["reason"] == "RolloutCompleted"] or None

    return await wait_for(probe, what="the RolloutCompleted Event")


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


def series(text, name):
    """Every series of the metric `name` in a /metrics answer: [(labels text, value)]."""
    found = []
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, value = line.rsplit(" ", 1)
            found.append((head[len(name) :], float(value)))
    return found


def writes_of(metrics_text):
    """API writes a controller process made (not counting its Lease), from its /metrics."""
    return sum(
        value
        for labels, value in series(metrics_text, "rollout_api_requests_total")
        if any(f'verb="{verb}"' in labels for verb in WRITE_VERBS) and "leases" not in labels
    )


async def ready(port):
    return (await get(port, "/readyz"))[0] == 200


async def test_sigkill_mid_canary_a_new_process_continues_from_status(
    kube, namespace, routing_installed, pods_made_ready, start_controller
):
    processes = start_controller.__self__  # the fixture's ControllerProcesses
    first = start_controller()
    v1 = await deploy_canary(kube, namespace)
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    paused = await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused at 20%")
    v2 = paused["currentRevision"]
    assert await user_view(kube, namespace) == (20, v1)
    uids = await replicaset_uids(kube, namespace)
    assert set(uids) == {v1, v2}

    samples: list[tuple[int, str]] = []
    async with in_background(sample_user_view(kube, namespace, samples)):
        first.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(first.wait, 10) == -signal.SIGKILL
        await asyncio.sleep(1.0)
        start_controller()
        # The new process has nothing in memory: it reads the world and the status, and holds the
        # pause (a process starting over would write weight 0 and run step 0 again).
        await wait_for(lambda: ready(processes.ports[1]), what="the new process ready")
        await asyncio.sleep(4.0)  # two resyncs of the new process
        held = await wait_for(phase_is(kube, namespace, "Paused", 1), what="still paused at 20%")
        assert held["stepStartedAt"] == paused["stepStartedAt"]
        assert await replicaset_uids(kube, namespace) == uids, "a ReplicaSet was made again"
        across_the_kill = list(samples)

        await annotate(kube, namespace, "rollout.dev/promote", "step")
        await wait_for(phase_is(kube, namespace, "Paused", 3), what="paused at 50% by the new process")
        assert await user_view(kube, namespace) == (50, v1)
        await annotate(kube, namespace, "rollout.dev/promote", "step")
        final = await wait_for(completed(kube, namespace, v1), what="v2 stable")
        await asyncio.sleep(0.3)  # one more sample at rest
    assert final["stableRevision"] == v2
    check_never_back_nor_past(samples, v1, v2, (20, 50))
    assert len(across_the_kill) > 30 and set(across_the_kill) == {(20, v1)}, "20% not held across the kill"
    assert len(await completions(kube, namespace)) == 1


@pytest.fixture
def chart_controllers(kubeconfig, namespace, tmp_path):
    """Two-process setup as the chart runs it: its rendered args (leader election on, this
    namespace watched), POD_NAMESPACE = the test's namespace, so the Lease lives there."""
    values = {
        "watchNamespaces": [namespace],
        "controller": {"resyncSeconds": 2, "logLevel": "INFO"},
        "leaderElection": {"leaseDuration": LEASE, "renewDeadline": RENEW, "retryPeriod": RETRY},
    }
    args = controller_args(render(values, namespace=namespace))
    assert "--leader-elect" in args and not any(a.startswith("--leader-election-namespace") for a in args)
    processes = ControllerProcesses(
        kubeconfig, namespace, tmp_path, args=args, env={"POD_NAMESPACE": namespace}
    )
    yield processes
    processes.stop_all()


def micro_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def lease_of(kube, ns):
    return ((await kube.get(LEASES, ns, LEASE_NAME)) or {}).get("spec") or {}


def index_of(identity):
    return int(identity.split("_", 1)[0].rsplit("-", 1)[1])  # controller-<i>_<random>


async def test_the_leader_sigkilled_mid_canary_the_follower_takes_the_lease_and_finishes(
    kube, namespace, routing_installed, pods_made_ready, chart_controllers
):
    procs = [chart_controllers.start(), chart_controllers.start()]
    first = await wait_for(lambda: _held(kube, namespace), timeout=30, what="a leader in the test namespace")
    leader = index_of(first["holderIdentity"])
    follower = 1 - leader
    assert first["leaseDurationSeconds"] == LEASE
    for port in chart_controllers.ports:
        await wait_for(lambda port=port: ready(port), what="both processes ready")

    v1 = await deploy_canary(kube, namespace)
    await kube.patch(ROLLOUTS, namespace, "web", image_patch("registry.example/web:2"))
    v2 = (await wait_for(phase_is(kube, namespace, "Paused", 1), what="paused at 20%"))["currentRevision"]

    leader_metrics = (await get(chart_controllers.ports[leader], "/metrics"))[1]
    follower_metrics = (await get(chart_controllers.ports[follower], "/metrics"))[1]
    assert series(leader_metrics, "rollout_leader") == [("", 1.0)]
    assert series(follower_metrics, "rollout_leader") == [("", 0.0)]
    assert writes_of(leader_metrics) > 0
    assert writes_of(follower_metrics) == 0, "the follower wrote while another process held the Lease"

    # Watch the Lease closely from before the kill: the old holder's last renewal as the server
    # stored it, and the new holder's acquisition.
    leases: list[dict] = []

    async def watch_lease():
        while True:
            leases.append(await lease_of(kube, namespace))
            await asyncio.sleep(0.05)

    samples: list[tuple[int, str]] = []
    async with in_background(watch_lease()), in_background(sample_user_view(kube, namespace, samples)):
        await asyncio.sleep(0.5)
        procs[leader].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        assert await asyncio.to_thread(procs[leader].wait, 10) == -signal.SIGKILL
        taken = await waiting.wait_for(
            lambda: _taken_from(kube, namespace, first["holderIdentity"]),
            timeout=LEASE + 2 * RETRY + 10,
            interval=0.02,
            what="the follower takes the Lease",
        )
        took_over = time.monotonic() - killed_at
        assert index_of(taken["holderIdentity"]) == follower
        assert procs[follower].poll() is None

        await annotate(kube, namespace, "rollout.dev/promote", "step")
        await wait_for(phase_is(kube, namespace, "Paused", 3), what="paused at 50% under the new leader")
        await annotate(kube, namespace, "rollout.dev/promote", "step")
        final = await wait_for(completed(kube, namespace, v1), what="v2 stable, finished by the new leader")
        await asyncio.sleep(0.3)
    assert final["stableRevision"] == v2
    check_never_back_nor_past(samples, v1, v2, (20, 50))
    assert len(await completions(kube, namespace)) == 1

    # The old holder's last renewal, and the new holder's acquisition, on the server's record.
    last_renewal = max(
        micro_time(s["renewTime"]) for s in leases if s.get("holderIdentity") == first["holderIdentity"]
    )
    acquired = micro_time(taken["acquireTime"])
    gap = acquired - last_renewal
    print(f"failover: Lease taken {took_over:.2f} s after SIGKILL, {gap:.2f} s after the last renewal")
    # Never before the lease duration ran out (no two leaders), and then within a retry period
    # or two (the follower notices a renewal up to one period late and tries once a period).
    assert LEASE <= gap <= LEASE + 2 * RETRY + 0.5, gap
    assert took_over <= LEASE + 2 * RETRY + 0.5, took_over

    survivor = (await get(chart_controllers.ports[follower], "/metrics"))[1]
    assert series(survivor, "rollout_leader") == [("", 1.0)]
    assert writes_of(survivor) > 0
    assert (await lease_of(kube, namespace))["holderIdentity"] == taken["holderIdentity"]


async def _held(kube, ns):
    spec = await lease_of(kube, ns)
    return spec if spec.get("holderIdentity") else None


async def _taken_from(kube, ns, old):
    spec = await lease_of(kube, ns)
    return spec if spec.get("holderIdentity") not in (None, "", old) else None
