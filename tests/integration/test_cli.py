"""The `rollout` command (kubectl-rollouts) against the emulated cluster with the real controller:
each command's output and exit code, as a person or a CI pipeline sees them. The command runs as
a process of its own with a kubeconfig, the way kubectl runs a plugin."""

import io
import json
import subprocess
import sys

import pytest
from kubernetes.client.exceptions import ApiException

from rollout.cli import ops
from rollout.cli.session import Session
from rollout.kube import ROLLOUTS
from rollout.traffic.nginx import INGRESSES
from tests.emulated import NS, get_rollout, paused_at, setup, weight_is
from tests.integration.command_line import ROOT, STEPS, cli_env, rollout_cli
from tests.manifests import image_patch, ingress_manifest, rollout_manifest
from tests.waiting import wait_for


async def test_commands_through_a_canary(cluster, tmp_path):
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    run = lambda *argv: rollout_cli(kubeconfig, *argv)  # noqa: E731
    async with cluster.controller():
        v1 = (await setup(cluster, STEPS))["stableRevision"]

        code, out, _ = await run("list", "rollouts")
        assert code == 0
        header, row = out.splitlines()[:2]
        assert header.split()[:4] == ["NAME", "STRATEGY", "STATUS", "STEP"]
        assert row.split()[:3] == ["web", "canary", "Healthy"] and v1 in row

        code, out, _ = await run("get", "rollout", "web")
        assert code == 0
        assert "Rollout shop/web  Healthy" in out and "Strategy: canary" in out and "Step: 4/4: done" in out
        assert "HTTPRoute web/app: web-stable 100, web-canary 0" in out
        assert f"#1 {v1} (stable)  web-{v1}  pods 4/4 ready  web:1" in out

        code, out, _ = await run("set", "image", "web", "app=web:2")
        assert (code, out) == (0, 'rollout "web" image updated: app=web:2\n')
        paused = await wait_for(paused_at(cluster, 1), what="paused at step 2")
        v2 = paused["currentRevision"]

        code, out, _ = await run("get", "rollout", "web")
        assert "Rollout shop/web  Suspended" in out and "Phase: Paused" in out
        assert "Step: 2/4: pause (until promoted)" in out
        assert "HTTPRoute web/app: web-stable 80, web-canary 20" in out
        assert f"#2 {v2} (canary)  web-{v2}  pods 1/1 ready  web:2" in out

        code, _, err = await run("resume", "web")
        assert code == 1
        assert err == (
            'rollout resume: cannot resume rollout "web": it is not paused by `rollout pause` '
            "(a pause step is passed with `rollout promote`) (phase Suspended)\n"
        )
        code, out, _ = await run("promote", "web")
        assert (code, out) == (0, 'rollout "web" promoted: the current pause or gate will be passed\n')
        await wait_for(weight_is(cluster, 50), what="promoted to 50%")
        await wait_for(paused_at(cluster, 3), what="paused at step 4")

        code, out, _ = await run("abort", "web")
        assert (code, out) == (0, 'rollout "web" aborted: traffic goes back to the stable revision\n')
        code, out, _ = await run("status", "web", "--timeout", "20s")
        assert code == 1
        assert out.splitlines()[-1] == (
            f'rollout "web" failed: Aborted (aborted by the rollout.dev/abort command); stable revision {v1}'
        )
        code, _, err = await run("abort", "web")
        assert code == 1 and "it is already aborted" in err

        assert (await run("retry", "web"))[0] == 0
        await wait_for(paused_at(cluster, 1), what="paused at step 2 again")
        code, out, _ = await run("status", "web", "--timeout", "2s")
        assert code == 2 and out.splitlines()[-1].startswith(
            'rollout "web" timed out after 2s while Suspended'
        )

        code, out, _ = await run("promote", "web", "--full")
        assert code == 0 and "fully promoted" in out
        code, out, _ = await run("status", "web", "--timeout", "30s")
        assert code == 0 and out.splitlines()[-1].startswith(f"Healthy: Revision {v2}: ")

        code, out, _ = await run("undo", "web")
        assert (code, out) == (
            0,
            f'rollout "web" rolled back to revision {v1} (it goes through the strategy like any update)\n',
        )

        # v1's template comes back as a new update, through the canary steps like any other.
        paused = await wait_for(paused_at(cluster, 1), what="the undo paused at step 2")
        assert (paused["currentRevision"], paused["stableRevision"]) == (v1, v2)
        assert (await run("promote", "web", "--full"))[0] == 0
        code, out, _ = await run("status", "web", "--timeout", "30s")
        assert code == 0 and out.splitlines()[-1].startswith(f"Healthy: Revision {v1}: ")
        rollout = await get_rollout(cluster)
        assert rollout["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"

        code, out, _ = await run("get", "rollout", "web", "-o", "json")
        assert code == 0 and json.loads(out)["status"]["stableRevision"] == v1
        code, _, err = await run("undo", "web", "--to-revision", "9")
        assert code == 1 and err.startswith("rollout undo: rollout \"web\" has no revision '9' (kept: #1 ")


async def test_get_shows_an_nginx_canarys_weight(cluster, tmp_path):
    """The weights of an ingress-nginx canary are read back as its router reads them, from the
    canary Ingress the controller owns: 100/0 at rest (no canary Ingress), 80/20 at the pause."""
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    nginx = {"nginx": {"stableIngress": "web"}}
    async with cluster.controller():
        await setup(cluster, STEPS, routing=nginx, route=ingress_manifest(), resource=INGRESSES)
        code, out, _ = await rollout_cli(kubeconfig, "get", "rollout", "web")
        assert code == 0 and "Ingress web: web-stable 100, web-canary 0" in out
        await cluster.kube.patch(ROLLOUTS, NS, "web", image_patch("web:2"))
        await wait_for(paused_at(cluster, 1), what="paused at step 2")
        code, out, _ = await rollout_cli(kubeconfig, "get", "rollout", "web")
        assert code == 0 and "Ingress web: web-stable 80, web-canary 20" in out


async def test_errors_are_one_line(cluster, tmp_path):
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    for argv in (("promote", "nope"), ("get", "rollout", "nope"), ("status", "nope")):
        code, out, err = await rollout_cli(kubeconfig, *argv)
        assert (code, out) == (1, "")
        assert err == f'rollout {argv[0]}: Rollout "nope" not found in namespace "shop"\n'
    code, out, _ = await rollout_cli(kubeconfig, "list", "rollouts", "-A")
    assert (code, out) == (0, "No Rollouts in any namespace.\n")
    async with cluster.controller():
        await setup(cluster, STEPS)
        code, _, err = await rollout_cli(kubeconfig, "promote", "web")
        assert code == 1 and err == (
            'rollout promote: cannot promote rollout "web": no update is in progress (phase Healthy)\n'
        )
        code, _, err = await rollout_cli(kubeconfig, "set", "image", "web", "sidecar=x:1")
        assert (
            code == 1 and err == "rollout set: rollout \"web\" has no container 'sidecar' (containers: app)\n"
        )


def test_lint_passes_the_examples_and_names_each_problem(tmp_path):
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "lint", *[a for p in examples for a in ("-f", str(p))]],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert done.returncode == 0, done.stdout
    assert done.stdout.endswith("object(s) checked: no problems\n")

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """apiVersion: rollout.dev/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: webb}}
    spec: {containers: [{name: app, image: web:1}]}
  strategy:
    canary:
      stableService: web
      canaryService: web
      steps: [{setWeight: 150}, {pause: {duratoin: 1m}}]
---
apiVersion: rollout.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: rate, namespace: shop}
spec:
  metrics: [{name: rate, provider: {acmeMetrics: {query: up}}}]
"""
    )
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "lint", "-f", str(bad)],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[-1] == "2 object(s) checked: " + f"{len(lines) - 1} problem(s)"
    text = done.stdout
    assert f"{bad}#1 Rollout web: spec.strategy.canary.steps[0].setWeight:" in text
    assert "steps[1].pause.duratoin" in text
    assert (
        f"{bad}#2 AnalysisTemplate rate: spec.metrics[0].provider: unknown provider kind acmeMetrics" in text
    )


def test_lint_of_a_file_that_is_not_there_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "lint", "-f", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert done.returncode == 1
    assert done.stderr == f"rollout lint: cannot read {tmp_path / 'nope.yaml'}: No such file or directory\n"


class RacingSession(Session):
    """Each read of the Rollout is followed at once by another writer's change (`change`, a
    merge patch; to the status subresource when it holds only status), before the CLI writes."""

    def __init__(self, kube, change, times):
        super().__init__(kube, NS)
        self.change, self.times = change, times

    async def rollout(self, name):
        found = await super().rollout(name)
        if self.times > 0:
            self.times -= 1
            sub = "status" if set(self.change) == {"status"} else None
            await self.kube.patch(ROLLOUTS, NS, name, self.change, sub=sub)
        return found


async def test_commands_survive_the_controllers_status_writes_but_not_a_spec_change(cluster):
    """The controller writes status all the time: a command read before one of those writes is
    read and judged again (annotations) or still applies (a template change guarded by the
    generation); a change of the spec meanwhile still refuses a template change."""
    await cluster.kube.create(ROLLOUTS, NS, rollout_manifest(replicas=2))
    status_write = {"status": {"message": "written by the controller meanwhile"}}
    out = io.StringIO()
    racing = RacingSession(cluster.kube, status_write, times=2)
    assert await ops.command(racing, "web", "pause", out) == 0
    annotations = (await get_rollout(cluster))["metadata"]["annotations"]
    assert annotations["rollout.dev/pause"] and racing.times == 0
    racing = RacingSession(cluster.kube, status_write, times=1)
    assert await ops.set_image(racing, "web", ["app=web:2"], out) == 0
    template = (await get_rollout(cluster))["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "web:2"
    spec_change = {"spec": {"template": image_patch("web:9")["spec"]["template"]}}
    racing = RacingSession(cluster.kube, spec_change, times=1)
    with pytest.raises(ApiException) as refused:
        await ops.set_image(racing, "web", ["app=web:3"], out)
    assert refused.value.status == 422
    template = (await get_rollout(cluster))["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "web:9"
