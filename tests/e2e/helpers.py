"""Helpers shared by the e2e test files (fixtures live in conftest.py)."""

import asyncio
import copy
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

from rollout.kube import ROLLOUTS, SERVICES, Resource
from tests import waiting
from tests.manifests import canary_strategy, http_route_manifest, rollout_manifest, service_manifest

HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
VIRTUALSERVICES = Resource("networking.istio.io", "v1", "virtualservices")


# tests/waiting.py's wait_for at a real API server's pace: up to 120 s, polled every 0.3 s (a test
# passes its own timeout where it needs another).
wait_for = functools.partial(waiting.wait_for, timeout=120.0, interval=0.3)


def phase_is(kube, ns, phase, index=None):
    async def probe():
        status = ((await kube.get(ROLLOUTS, ns, "web")) or {}).get("status") or {}
        ok = status.get("phase") == phase and (index is None or status.get("currentStepIndex") == index)
        return status if ok else None

    return probe


async def annotate(kube, ns, key, value="yes"):
    await kube.patch(ROLLOUTS, ns, "web", {"metadata": {"annotations": {key: value}}})


def spec_of(route):
    return route["spec"]


def app_rule(route):
    return next(r for r in route["spec"]["rules"] if r.get("name") == "app")


def app_weights(route):
    return {ref["name"]: ref.get("weight") for ref in app_rule(route)["backendRefs"]}


def with_app_weights(route, weights):
    """A copy of `route` whose `app` rule has these weights: what the controller owns in it."""
    out = copy.deepcopy(route)
    for ref in app_rule(out)["backendRefs"]:
        if ref["name"] in weights:
            ref["weight"] = weights[ref["name"]]
    return out


async def deploy_http_canary(kube, ns, steps, replicas, healthy=True, pod_annotations=None, **strategy):
    """web-stable, web-canary, the HTTPRoute `web` and a canary Rollout `web` on it (the old
    revision scaled down 2 s after completion; `strategy` adds to or overrides the canary's
    fields; `pod_annotations` go on its pod template); its stable revision once Healthy (None at
    once with healthy=False)."""
    for name in ("web-stable", "web-canary"):
        await kube.create(SERVICES, ns, service_manifest(name, namespace=ns))
    await kube.create(HTTPROUTES, ns, http_route_manifest(namespace=ns))
    canary = canary_strategy(steps, **{"scaleDownDelaySeconds": 2, **strategy})
    manifest = rollout_manifest(namespace=ns, replicas=replicas, strategy=canary)
    if pod_annotations:
        manifest["spec"]["template"]["metadata"]["annotations"] = dict(pod_annotations)
    await kube.create(ROLLOUTS, ns, manifest)
    if not healthy:
        return None
    return (await wait_for(phase_is(kube, ns, "Healthy"), what="first deploy"))["stableRevision"]


def job_analysis_template(ns, name, exit_code, runs_for=0):
    """An AnalysisTemplate `name` with one job metric (also `name`): a Job whose pod the stand-in
    kubelet finishes with `exit_code` (label rollout.test/exit) `runs_for` seconds after it starts
    (annotation rollout.test/ready-after-seconds), its container given the canary Service."""
    pod_meta = {"labels": {"rollout.test/exit": exit_code}}
    if runs_for:
        pod_meta["annotations"] = {"rollout.test/ready-after-seconds": str(runs_for)}
    container = {"name": "checks", "image": "registry.example/checks:1", "args": ["{{args.canary-service}}"]}
    job = {
        "metadata": {"labels": {"team": "checkout"}},
        "spec": {
            "backoffLimit": 0,
            "template": {"metadata": pod_meta, "spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }
    return {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"metrics": [{"name": name, "provider": {"job": job}}]},
    }


# The `rollout` command as a person runs it (tests/e2e/test_cli_e2e.py and others).
ROOT = Path(__file__).resolve().parents[2]
# What Python prints for a warning (`file:line: SomeWarning: text`) or an uncaught exception.
PYTHON_NOISE = re.compile(r"^.*\b\w*Warning: |^Traceback \(most recent call last\)|^\s+warnings\.warn", re.M)


def cli_env(**extra):
    """The environment a person's shell gives the command: no warning filters, no KUBECONFIG
    unless a test sets one, a wide terminal for tables."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "KUBECONFIG", "PYTHONPATH")}
    return {**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **extra}


async def rollout_cli(kubeconfig, namespace, *argv, use_env=False, timeout=90):
    """Run `rollout ARGV... --kubeconfig PATH -n NAMESPACE` (with use_env: KUBECONFIG=PATH and no
    --kubeconfig; namespace None: no -n); (exit code, stdout, stderr), never a warning."""
    flags = [] if use_env or argv[0] == "lint" else ["--kubeconfig", kubeconfig]
    flags += ["-n", namespace] if namespace else []
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rollout", *argv, *flags],
        capture_output=True,
        text=True,
        env=cli_env(**({"KUBECONFIG": kubeconfig} if use_env else {})),
        cwd=ROOT,
        timeout=timeout,
    )
    for stream in (done.stdout, done.stderr):
        assert not PYTHON_NOISE.search(stream), f"rollout {' '.join(argv)} printed noise:\n{stream}"
    return done.returncode, done.stdout, done.stderr
