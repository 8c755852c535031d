"""The `rollout` command (kubectl-rollouts) on a real API server with the controller running: every
command runs as a process of its own, the way kubectl runs a plugin, with `--kubeconfig` (or
KUBECONFIG), and each test asserts what a person sees (stdout, stderr, exit code) and, for a
command that changes something, its effect as the server stores it. No command may print a
Python warning (urllib3's InsecureRequestWarning, a DeprecationWarning) or a traceback.

The emulator's CLI tests (tests/integration/test_cli*.py) define the expected words; here the
same words must come out of a real kube-apiserver, its controller-manager's ReplicaSets and Pods,
and the Gateway API CRDs with their defaults and CEL rules. What only a real server showed: a
kubeconfig with `insecure-skip-tls-verify` made every command print urllib3's warning (fixed in
cli/session.py), and `undo` brought back a template the server had defaulted, a new revision
rather than the earlier one (fixed: each ReplicaSet records the template as the Rollout had it)."""

import asyncio
import json
import sys
import time
from pathlib import Path

import pexpect
import pyte
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from rollout.kube import ANALYSIS_TEMPLATES, PODS, REPLICASETS, ROLLOUTS, SERVICES
from tests.e2e.gateway_status import gateway_accepting, reported_generation
from tests.e2e.helpers import (
    HTTPROUTES,
    PYTHON_NOISE,
    ROOT,
    app_weights,
    cli_env,
    deploy_http_canary,
    phase_is,
    rollout_cli,
    wait_for,
)
from tests.manifests import image_patch, rollout_manifest, service_manifest

pytestmark = pytest.mark.e2e

STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
AT_REST = {"web-stable": 100, "web-canary": 0}
THROUGH_THE_STRATEGY = "(it goes through the strategy like any update)"


def rows(out):
    """Each line, its runs of spaces collapsed (tables pad their columns)."""
    return [" ".join(line.split()) for line in out.splitlines()]


async def status_of(kube, ns):
    return ((await kube.get(ROLLOUTS, ns, "web")) or {}).get("status") or {}


async def image_of(kube, ns):
    return (await kube.get(ROLLOUTS, ns, "web"))["spec"]["template"]["spec"]["containers"][0]["image"]


async def wait_status(kube, ns, ok, what, timeout=120.0):
    """The Rollout's status once `ok(status)`; on timeout, the failure shows the last status."""
    seen = {}

    async def probe():
        seen["status"] = await status_of(kube, ns)
        return seen["status"] if ok(seen["status"]) else None

    try:
        return await wait_for(probe, timeout=timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last status: {seen.get('status')!r}") from None


def at_pause_step(status, index, current=None):
    """Paused at step `index` on a pause step (on `current` if given), not aborted."""
    return (
        status.get("phase") == "Paused"
        and status.get("currentStepIndex") == index
        and status.get("aborted") is not True
        and "CanaryPauseStep" in pause_reasons(status)
        and (current is None or status.get("currentRevision") == current)
    )


def paused_at(kube, ns, index, current=None, what=None):
    return wait_status(
        kube, ns, lambda s: at_pause_step(s, index, current), what or f"paused at step index {index}"
    )


def pause_reasons(status):
    return [p.get("reason") for p in status.get("pauseConditions") or []]


def healthy_on(kube, ns, revision):
    async def probe():
        status = await status_of(kube, ns)
        ok = status.get("phase") == "Healthy" and status.get("stableRevision") == revision
        return status if ok and status.get("currentRevision") == revision else None

    return probe


def route_weights_are(kube, ns, weights):
    async def probe():
        route = await kube.get(HTTPROUTES, ns, "web")
        return route if app_weights(route) == weights else None

    return probe


async def deploy_canary(kube, ns, replicas=2):
    """Both Services, the HTTPRoute and a canary Rollout on it; v1 once Healthy."""
    return await deploy_http_canary(kube, ns, STEPS, replicas, abortScaleDownDelaySeconds=2)


def ready_pods(kube, ns, revision, count):
    """The names of the revision's `count` live pods, once every one of them is Ready."""

    async def probe():
        pods = await kube.list(PODS, ns, f"rollout.dev/revision={revision}")
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = {
            p["metadata"]["name"]
            for p in live
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        }
        return ready if len(live) == len(ready) == count else None

    return probe


@pytest.fixture
async def gateway_running(kube, namespace, routing_installed):
    """A stand-in Gateway accepting each generation of the namespace's HTTPRoutes (once a Gateway
    reports, the controller waits for its report on each weight it writes)."""
    async with gateway_accepting(kube, namespace, HTTPROUTES):
        yield


def route_reported(kube, ns):
    async def probe():
        route = await kube.get(HTTPROUTES, ns, "web")
        return route if reported_generation(route) == route["metadata"]["generation"] else None

    return probe


async def test_every_command_through_a_canary(
    kube, kubeconfig, namespace, gateway_running, pods_made_ready, start_controller
):
    ns = namespace
    run = lambda *argv, **kw: rollout_cli(kubeconfig, ns, *argv, **kw)  # noqa: E731
    start_controller()
    v1 = await deploy_canary(kube, ns)

    # list, in the namespace and with -A (KUBECONFIG from the environment, no -n).
    code, out, err = await run("list", "rollouts")
    assert (code, err) == (0, "")
    header, row = out.splitlines()[:2]
    assert header.split() == [
        "NAME", "STRATEGY", "STATUS", "STEP", "WEIGHT", "STABLE", "CURRENT", "AVAILABLE", "MESSAGE",
    ]  # fmt: skip
    assert row.split()[:9] == ["web", "canary", "Healthy", "4/4", "0", v1, v1, "2/2", "Revision"], row
    code, out, err = await rollout_cli(kubeconfig, None, "list", "rollouts", "-A", use_env=True)
    assert (code, err) == (0, "")
    assert out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    mine = [line.split() for line in out.splitlines() if line.startswith(ns + " ")]
    assert [r[:4] for r in mine] == [[ns, "web", "canary", "Healthy"]], out

    # get: the tree, then the object as yaml and json, as the server stores it.
    code, out, err = await run("get", "rollout", "web")
    assert (code, err) == (0, "")
    assert f"Rollout {ns}/web  Healthy" in out and "Strategy: canary" in out and "Step: 4/4: done" in out
    assert "HTTPRoute web/app: web-stable 100, web-canary 0" in out
    assert f"#1 {v1} (stable)  web-{v1}  pods 2/2 ready  web:1" in out
    stored = await kube.get(ROLLOUTS, ns, "web")
    for output, parse in (("yaml", yaml.safe_load), ("json", json.loads)):
        code, out, err = await run("get", "rollout", "web", "-o", output)
        assert (code, err) == (0, "")
        shown = parse(out)
        meta = shown["metadata"]
        assert (shown["kind"], meta["name"], meta["namespace"]) == ("Rollout", "web", ns)
        assert shown["spec"] == stored["spec"] and shown["status"]["stableRevision"] == v1

    # check: every reference in place (the route accepted by its Gateway): all rows pass.
    await wait_for(route_reported(kube, ns), what="the Gateway's report on the route")
    code, out, err = await run("check", "web")
    assert (code, err) == (0, ""), out
    selector = f"app=web,rollout.dev/revision={v1}"
    assert rows(out) == [
        "✓ Rollout web spec readable",
        f"✓ Service web-stable selects 2/2 ready pod(s) ({selector})",
        f"✓ Service web-canary selects 2/2 ready pod(s) ({selector})",
        "✓ HTTPRoute web found; the controller can set its weights",
        "✓ HTTPRoute web -> Gateway public Accepted True",
        "✓ HTTPRoute web -> Gateway public ResolvedRefs True",
        "6 check(s): all passed",
    ]

    # A refusal: nothing to promote on a Healthy Rollout; one line, nothing written.
    code, out, err = await run("promote", "web")
    assert (code, out) == (1, "")
    assert err == 'rollout promote: cannot promote rollout "web": no update is in progress (phase Healthy)\n'
    annotations = (await kube.get(ROLLOUTS, ns, "web"))["metadata"].get("annotations") or {}
    assert "rollout.dev/promote" not in annotations

    # set image: the template changes on the server, and the canary stops at its first pause.
    code, out, err = await run("set", "image", "web", "app=web:2")
    assert (code, out, err) == (0, 'rollout "web" image updated: app=web:2\n', "")
    assert await image_of(kube, ns) == "web:2"
    v2 = (await paused_at(kube, ns, 1, what="paused at step 2"))["currentRevision"]
    assert v2 != v1
    await wait_for(route_weights_are(kube, ns, {"web-stable": 80, "web-canary": 20}), what="80/20")

    code, out, err = await run("get", "rollout", "web")
    assert (code, err) == (0, "")
    assert f"Rollout {ns}/web  Suspended" in out and "Phase: Paused" in out
    assert "Step: 2/4: pause (until promoted)" in out
    assert "HTTPRoute web/app: web-stable 80, web-canary 20" in out
    assert f"#1 {v1} (stable)  web-{v1}  pods 2/2 ready  web:1" in out
    assert f"#2 {v2} (canary)  web-{v2}  pods 1/1 ready  web:2" in out

    # resume lifts a user pause only; a pause step is refused in one line.
    code, out, err = await run("resume", "web")
    assert (code, out) == (1, "")
    assert err == (
        'rollout resume: cannot resume rollout "web": it is not paused by `rollout pause` '
        "(a pause step is passed with `rollout promote`) (phase Suspended)\n"
    )

    # promote passes the pause: the step index moves to the next pause, the route to 50/50.
    code, out, err = await run("promote", "web")
    assert (code, out, err) == (0, 'rollout "web" promoted: the current pause or gate will be passed\n', "")
    await paused_at(kube, ns, 3, v2, what="paused at step 4")
    assert app_weights(await kube.get(HTTPROUTES, ns, "web")) == {"web-stable": 50, "web-canary": 50}

    # abort: the route goes back to 100/0 and the Rollout is Degraded; status says so with 1.
    code, out, err = await run("abort", "web")
    assert (code, out, err) == (0, 'rollout "web" aborted: traffic goes back to the stable revision\n', "")
    await wait_for(route_weights_are(kube, ns, AT_REST), what="route 100/0 after abort")
    aborted = await wait_for(phase_is(kube, ns, "Degraded"), what="Degraded after abort")
    assert aborted["aborted"] is True and aborted["stableRevision"] == v1
    code, out, err = await run("status", "web", "--timeout", "20s")
    assert (code, err) == (1, "")
    assert out.splitlines()[-1] == (
        f'rollout "web" failed: Aborted (aborted by the rollout.dev/abort command); stable revision {v1}'
    )
    code, out, err = await run("abort", "web")
    assert (code, out) == (1, "")
    assert err == 'rollout abort: cannot abort rollout "web": it is already aborted (phase Degraded)\n'

    # retry: the update starts again and stops at the first pause; status times out with 2.
    code, out, err = await run("retry", "web")
    assert (code, out, err) == (0, 'rollout "web" retried: the update starts again from the first step\n', "")
    await paused_at(kube, ns, 1, v2, what="paused at step 2 again")
    await wait_for(route_weights_are(kube, ns, {"web-stable": 80, "web-canary": 20}), what="80/20 again")
    started = time.monotonic()
    code, out, err = await run("status", "web", "--timeout", "2s")
    assert (code, err) == (2, "") and time.monotonic() - started < 30
    assert out.splitlines()[-1].startswith('rollout "web" timed out after 2s while Suspended: '), out

    # pause and resume: a user pause is held in status, and resume lifts only it.
    code, out, err = await run("pause", "web")
    assert (code, out, err) == (0, 'rollout "web" paused\n', "")

    await wait_status(kube, ns, lambda s: "UserPause" in pause_reasons(s), "UserPause in status")
    code, out, err = await run("pause", "web")
    assert (code, out) == (1, "") and err.startswith(
        'rollout pause: cannot pause rollout "web": it is already paused by `rollout pause`'
    )
    assert err.count("\n") == 1
    code, out, err = await run("resume", "web")
    assert (code, out, err) == (0, 'rollout "web" resumed\n', "")

    await wait_status(
        kube,
        ns,
        lambda s: at_pause_step(s, 1, v2) and "UserPause" not in pause_reasons(s),
        "UserPause lifted, still at the pause step",
    )

    # promote --full: no further steps; status waits for Healthy on v2 with 0.
    code, out, err = await run("promote", "web", "--full")
    assert (code, err) == (0, "")
    assert out == (
        'rollout "web" fully promoted: the new revision goes to 100% without further steps or analysis\n'
    )
    code, out, err = await run("status", "web", "--timeout", "90s")
    assert (code, err) == (0, ""), out
    assert out.splitlines()[-1].startswith(f"Healthy: Revision {v2}: "), out
    await wait_for(healthy_on(kube, ns, v2), what="v2 stable")
    assert app_weights(await kube.get(HTTPROUTES, ns, "web")) == AT_REST

    # restart: the stable revision's pods are all replaced, with no new revision.
    before = await wait_for(ready_pods(kube, ns, v2, 2), what="v2's 2 pods Ready")
    await asyncio.sleep(1.1)  # creationTimestamp has whole seconds: the pods must be older than the restart
    code, out, err = await run("restart", "web")
    assert (code, err) == (0, "")
    assert out == 'rollout "web" restarting: the stable revision\'s pods are replaced one at a time\n'

    async def replaced():
        pods = await ready_pods(kube, ns, v2, 2)()
        status = await healthy_on(kube, ns, v2)()
        done = pods and status and "restartedAt" not in status and not pods & before
        return pods if done else None

    await wait_for(replaced, timeout=180, what="every v2 pod replaced and Ready")
    revisions = {rs["metadata"]["labels"]["rollout.dev/revision"] for rs in await kube.list(REPLICASETS, ns)}
    assert revisions == {v1, v2}

    # undo names what it can go back to when asked for a revision that is not kept.
    code, out, err = await run("undo", "web", "--to-revision", "9")
    assert (code, out) == (1, "")
    assert err == f"rollout undo: rollout \"web\" has no revision '9' (kept: #1 {v1}, #2 {v2})\n"


async def test_undo_goes_back_to_the_earlier_revision(
    kube, kubeconfig, namespace, pods_made_ready, start_controller
):
    """undo (and --to-revision) on a real server: the earlier revision's template comes back and
    is that revision again (its ReplicaSet reused), going through the steps like any update."""
    ns = namespace
    run = lambda *argv: rollout_cli(kubeconfig, ns, *argv)  # noqa: E731
    start_controller()
    strategy = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}], "scaleDownDelaySeconds": 2}}
    await kube.create(ROLLOUTS, ns, rollout_manifest(namespace=ns, replicas=2, strategy=strategy))
    v1 = (await wait_for(phase_is(kube, ns, "Healthy"), what="first deploy"))["stableRevision"]
    assert (await run("set", "image", "web", "app=web:2"))[0] == 0
    v2 = (await paused_at(kube, ns, 1, what="v2 paused at step 2"))["currentRevision"]
    assert (await run("promote", "web", "--full"))[0] == 0
    await wait_for(healthy_on(kube, ns, v2), what="v2 stable")

    code, out, err = await run("undo", "web", "--to-revision", "1")
    assert (code, err) == (0, "")
    assert out == f'rollout "web" rolled back to revision {v1} {THROUGH_THE_STRATEGY}\n'
    assert await image_of(kube, ns) == "web:1"
    generation = (await kube.get(ROLLOUTS, ns, "web"))["metadata"]["generation"]
    observed = await wait_status(
        kube, ns, lambda s: (s.get("observedGeneration") or 0) >= generation, "the undo observed"
    )
    assert observed["currentRevision"] == v1, f"undo to {v1} made revision {observed['currentRevision']}"
    undone = await paused_at(kube, ns, 1, v1, what="the undo paused at step 2")
    assert undone["stableRevision"] == v2
    assert (await run("promote", "web", "--full"))[0] == 0
    await wait_for(healthy_on(kube, ns, v1), what="v1 stable again")

    code, out, err = await run("undo", "web")
    assert (code, err) == (0, "")
    assert out == f'rollout "web" rolled back to revision {v2} {THROUGH_THE_STRATEGY}\n'
    assert await image_of(kube, ns) == "web:2"
    await paused_at(kube, ns, 1, v2, what="the second undo paused at step 2")
    revisions = {rs["metadata"]["labels"]["rollout.dev/revision"] for rs in await kube.list(REPLICASETS, ns)}
    assert revisions == {v1, v2}


async def test_check_names_a_missing_service_and_refusals_are_one_line(
    kube, kubeconfig, namespace, pods_made_ready, start_controller
):
    ns = namespace
    run = lambda *argv: rollout_cli(kubeconfig, ns, *argv)  # noqa: E731
    for argv in (("promote", "nope"), ("get", "rollout", "nope"), ("status", "nope")):
        code, out, err = await run(*argv)
        assert (code, out) == (1, "")
        assert err == f'rollout {argv[0]}: Rollout "nope" not found in namespace "{ns}"\n'
    code, out, err = await run("list", "rollouts")
    assert (code, out, err) == (0, f'No Rollouts in namespace "{ns}".\n', "")

    # A single-replica canary whose canary Service is missing: InvalidSpec, and check says which.
    start_controller()
    await kube.create(SERVICES, ns, service_manifest("web-stable", namespace=ns))
    strategy = {"canary": {"stableService": "web-stable", "canaryService": "web-canary", "steps": STEPS}}
    await kube.create(ROLLOUTS, ns, rollout_manifest(namespace=ns, replicas=1, strategy=strategy))

    async def invalid():
        status = await status_of(kube, ns)
        conditions = status.get("conditions") or []
        bad = any(c["type"] == "InvalidSpec" and c["status"] == "True" for c in conditions)
        return status if bad else None

    await wait_for(invalid, what="InvalidSpec for the missing Service")
    code, out, err = await run("check", "web")
    assert (code, err) == (1, "")
    # No ReplicaSet yet either (nothing is deployed on an InvalidSpec), so web-stable selects nothing.
    assert rows(out) == [
        "✓ Rollout web spec readable",
        "✗ Service web-stable selects 0 ready pod(s) (app=web; ReplicaSets: none) fix: match the selector "
        "to the Rollout's pod labels, or see why the pods are not Ready",
        f"✗ Service web-canary not found in namespace {ns} fix: create Service web-canary, "
        "or correct spec.strategy.canary.canaryService",
        "3 check(s): 2 failed",
    ], out
    code, out, err = await run("status", "web", "--timeout", "10s")
    assert code == 1 and "web-canary" in out.splitlines()[-1], out

    # The Service created, the Rollout recovers and check passes.
    await kube.create(SERVICES, ns, service_manifest("web-canary", namespace=ns))
    v1 = (await wait_for(phase_is(kube, ns, "Healthy"), what="Healthy once the Service exists"))[
        "stableRevision"
    ]
    await wait_for(ready_pods(kube, ns, v1, 1), what="1 Ready pod")
    code, out, err = await run("check", "web")
    assert (code, err) == (0, ""), out
    assert rows(out)[-1] == "3 check(s): all passed"

    # Refusals: one line on stderr, exit 1, no annotation written.
    code, out, err = await run("restart", "web")
    assert (code, out) == (1, "")
    assert err == (
        'rollout restart: cannot restart rollout "web": it has a single replica (its eviction would leave '
        "no Ready pod; scale to 2 or more) (phase Healthy)\n"
    )
    code, out, err = await run("retry", "web")
    assert (code, out) == (1, "")
    assert err == 'rollout retry: cannot retry rollout "web": it is not aborted (phase Healthy)\n'
    code, out, err = await run("promote", "web", "--full")
    assert (code, out) == (1, "")
    assert err == (
        'rollout promote: cannot promote --full rollout "web": no update is in progress (phase Healthy)\n'
    )
    code, out, err = await run("set", "image", "web", "sidecar=x:1")
    assert (code, out) == (1, "")
    assert err == "rollout set: rollout \"web\" has no container 'sidecar' (containers: app)\n"
    code, out, err = await run("undo", "web")
    assert (code, out) == (1, "")
    assert err == 'rollout undo: cannot undo rollout "web": no earlier revision is kept\n'
    stored = await kube.get(ROLLOUTS, ns, "web")
    assert not [k for k in stored["metadata"].get("annotations") or {} if k.startswith("rollout.dev/")]
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"


def insecure_copy(kubeconfig, path):
    """The kubeconfig with its cluster's CA dropped for `insecure-skip-tls-verify: true`, as many
    development clusters' kubeconfigs are written."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    for entry in config["clusters"]:
        entry["cluster"].pop("certificate-authority", None)
        entry["cluster"].pop("certificate-authority-data", None)
        entry["cluster"]["insecure-skip-tls-verify"] = True
    path.write_text(yaml.safe_dump(config))
    return str(path)


async def test_a_kubeconfig_that_skips_tls_verification_prints_no_warning(
    kube, kubeconfig, namespace, tmp_path
):
    """kubectl says nothing when the kubeconfig skips TLS verification; neither may the plugin
    (urllib3's InsecureRequestWarning, two lines on stderr, before every answer)."""
    insecure = insecure_copy(kubeconfig, tmp_path / "insecure-kubeconfig")
    await kube.create(ROLLOUTS, namespace, rollout_manifest(namespace=namespace, replicas=1))
    code, out, err = await rollout_cli(insecure, namespace, "list", "rollouts")
    assert (code, err) == (0, "") and out.splitlines()[1].split()[:2] == ["web", "rolling"], out
    code, out, err = await rollout_cli(insecure, namespace, "get", "rollout", "web", "-o", "json")
    assert (code, err) == (0, "") and json.loads(out)["metadata"]["namespace"] == namespace
    code, out, err = await rollout_cli(insecure, namespace, "promote", "nope")
    assert (code, out) == (1, "")
    assert err == f'rollout promote: Rollout "nope" not found in namespace "{namespace}"\n'


GOOD = """apiVersion: rollout.dev/v1alpha1
kind: Rollout
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: app, image: web:1}}]}}
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      analysis: {{templates: [{{name: success-rate}}]}}
      steps: [{{setWeight: 20}}, {{pause: {{duration: 1m}}}}]
---
apiVersion: rollout.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: success-rate, namespace: {ns}}}
spec:
  metrics:
    - name: success-rate
      successCondition: "result[0] >= 0.99"
      provider: {{prometheus: {{address: "http://prometheus:9090", query: "sum(up)"}}}}
"""
BAD = """apiVersion: rollout.dev/v1alpha1
kind: Rollout
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: app, image: web:1}}]}}
  strategy:
    canary:
      stableService: web
      canaryService: web
      steps: [{{setWeight: 150}}, {{pause: {{duratoin: 1m}}}}]
---
apiVersion: rollout.dev/v1alpha1
kind: Rollout
metadata: {{name: api, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: apii}}}}
    spec: {{containers: [{{name: app, image: api:1}}]}}
  strategy: {{rolling: {{maxSurge: 1}}}}
"""


async def test_lint_agrees_with_the_api_server(kube, kubeconfig, namespace, tmp_path):
    """lint passes a file the server accepts, and names by field path what the server would
    reject (and what it would silently prune)."""
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD.format(ns=namespace))
    bad.write_text(BAD.format(ns=namespace))

    code, out, err = await rollout_cli(kubeconfig, None, "lint", "-f", str(good))
    assert (code, out, err) == (0, "2 object(s) checked: no problems\n", "")
    rollout, template = yaml.safe_load_all(good.read_text())
    await kube.create(ANALYSIS_TEMPLATES, namespace, template)
    created = await kube.create(ROLLOUTS, namespace, rollout)
    assert created["spec"]["strategy"] == rollout["spec"]["strategy"]  # nothing pruned

    code, out, err = await rollout_cli(kubeconfig, None, "lint", "-f", str(bad))
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[-1] == f"2 object(s) checked: {len(lines) - 1} problem(s)"
    web, api = f"{bad}#1 Rollout web", f"{bad}#2 Rollout api"
    assert any(line.startswith(f"{web}: spec.strategy.canary.steps[0].setWeight: ") for line in lines), out
    assert f"{web}: spec.strategy.canary.steps[1].pause.duratoin: Extra inputs are not permitted" in lines
    assert any(line.startswith(f"{api}: spec.selector: ") for line in lines), out

    # The server refuses the out-of-bounds weight, by the same field path ...
    web_body, api_body = yaml.safe_load_all(bad.read_text())
    web_body["metadata"]["name"] = "web-bad"
    with pytest.raises(ApiException) as refused:
        await kube.create(ROLLOUTS, namespace, web_body)
    assert refused.value.status == 422
    assert "spec.strategy.canary.steps[0].setWeight" in refused.value.body
    # ... but silently prunes the misspelt field, and takes the selector that matches no pod:
    # what only lint (and, once running, the controller's InvalidSpec) tells the user.
    web_body["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = 50
    created = await kube.create(ROLLOUTS, namespace, web_body)
    assert created["spec"]["strategy"]["canary"]["steps"][1] == {"pause": {}}
    await kube.create(ROLLOUTS, namespace, api_body)


ROWS, COLUMNS = 30, 140


class Terminal:
    """The command in a pseudo-terminal (pexpect), its output fed to a VT100 screen (pyte)."""

    def __init__(self, argv, env):
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(ROWS, COLUMNS), cwd=str(ROOT))

    def pump(self):
        try:
            while True:
                chunk = self.child.read_nonblocking(65536, timeout=0.05)
                self.raw += chunk
                self.stream.feed(chunk)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass

    def text(self):
        self.pump()
        return "\n".join(line.rstrip() for line in self.screen.display)

    async def shows(self, *words, timeout=60):
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = await asyncio.to_thread(self.text)
            if all(w in text for w in words):
                return text
            await asyncio.sleep(0.2)
        raise AssertionError(f"the screen never showed {words}:\n{text}\n{self.raw[-2000:]!r}")


async def test_get_watch_shows_a_live_update_until_ctrl_c(
    kube, kubeconfig, namespace, pods_made_ready, start_controller
):
    ns = namespace
    start_controller()
    strategy = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
    await kube.create(ROLLOUTS, ns, rollout_manifest(namespace=ns, replicas=2, strategy=strategy))
    v1 = (await wait_for(phase_is(kube, ns, "Healthy"), what="first deploy"))["stableRevision"]
    env = {k: v for k, v in cli_env().items() if k not in ("COLUMNS", "LINES")} | {"TERM": "xterm"}
    argv = [sys.executable, "-m", "rollout", "get", "rollout", "web", "--watch", "--interval", "0.5"]
    term = Terminal([*argv, "--kubeconfig", kubeconfig, "-n", ns], env)
    try:
        await term.shows(f"Rollout {ns}/web  Healthy", f"{v1} (stable)", "Step: 2/2: done")
        await kube.patch(ROLLOUTS, ns, "web", image_patch("web:2"))
        await paused_at(kube, ns, 1, what="paused at step 2")
        screen = await term.shows("Suspended", "Step: 2/2: pause (until promoted)", "(canary)", "web:2")
        # Redrawn in place: one tree on the screen, not one appended per refresh.
        assert screen.count(f"Rollout {ns}/web") == 1 and "Healthy" not in screen.splitlines()[0]
        term.child.sendintr()
        await asyncio.to_thread(term.child.expect, pexpect.EOF, timeout=15)
        term.raw += term.child.before
        term.stream.feed(term.child.before)
        term.child.close()
        assert term.child.exitstatus == 0, term.raw[-2000:]
        # Back on the normal screen, the last frame stays for the person to read.
        last = "\n".join(line.rstrip() for line in term.screen.display)
        assert last.count(f"Rollout {ns}/web") == 1 and "Step: 2/2: pause (until promoted)" in last
        text = term.raw.decode(errors="replace")
        assert not PYTHON_NOISE.search(text) and "KeyboardInterrupt" not in text, text[-2000:]
    finally:
        if term.child.isalive():
            term.child.terminate(force=True)
