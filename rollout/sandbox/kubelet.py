"""A stand-in for kube-controller-manager's ReplicaSet controller and the kubelet: it brings each
ReplicaSet's pods up to `spec.replicas`, makes them Ready after a start-up delay (and Available
after `minReadySeconds`), and reports it in the ReplicaSet's status through the API, as a cluster
does. Pods whose image matches `never_ready` never become Ready (a crash-looping release).

Deployments get the same treatment, as kube-controller-manager's Deployment controller would
report them: their pods (spec.replicas of them) counted in the Deployment's status directly,
without ReplicaSets of their own, and no rolling update of the Deployment's template.

By default a ReplicaSet's pods are start times in memory (cheap: the scale bench runs thousands).
With `pods=True` (the sandbox, and tests that need Pods: a restart) they are real Pod objects
made through the API as the ReplicaSet controller makes them (pods.py): named after the
ReplicaSet, its template's labels, a controller ownerReference, Ready through pods/status after
the start-up delay, a deleted or evicted pod replaced, and the ReplicaSet's status counted from
those Pods."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kmock

from rollout.sandbox.pods import PodMaker

REPLICASETS = kmock.resource("apps/v1/replicasets")
DEPLOYMENTS = kmock.resource("apps/v1/deployments")


def images(rs: dict[str, Any]) -> list[str]:
    containers = (((rs.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return [str(c.get("image", "")) for c in containers]


def image_matches(pattern: str) -> Callable[[dict[str, Any]], bool]:
    regex = re.compile(pattern)
    return lambda rs: any(regex.search(image) for image in images(rs))


@dataclass
class FakeKubelet:
    server: kmock.KubernetesEmulator
    url: str
    startup_seconds: float = 0.5
    tick_seconds: float = 0.05
    never_ready: Callable[[dict[str, Any]], bool] = field(default=lambda rs: False)
    paused: bool = False  # a test that ticks `status_for` on a clock of its own stops the loop
    pods: bool = False  # ReplicaSets' pods as real Pod objects (see the module's docstring)
    # ReplicaSet uid -> start times of its pods (oldest first)
    _pods: dict[str, list[float]] = field(default_factory=dict)

    def status_for(self, rs: dict[str, Any], now: float) -> dict[str, Any]:
        uid = rs["metadata"]["uid"]
        pods = self._pods.setdefault(uid, [])
        desired = int((rs.get("spec") or {}).get("replicas", 1))
        while len(pods) < desired:
            pods.append(now)
        del pods[desired:]  # the newest (least ready) pods go first, as the ReplicaSet controller does
        min_ready = float((rs.get("spec") or {}).get("minReadySeconds", 0))
        broken = self.never_ready(rs)
        ready = 0 if broken else sum(1 for start in pods if now - start >= self.startup_seconds)
        available = (
            0 if broken else sum(1 for start in pods if now - start >= self.startup_seconds + min_ready)
        )
        return {
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }

    def deployment_status_for(self, deployment: dict[str, Any], now: float) -> dict[str, Any]:
        """A Deployment's status, its pods all of the one template it has."""
        status = self.status_for(deployment, now)
        return {**status, "updatedReplicas": status["replicas"]}

    async def run(self) -> None:
        async with aiohttp.ClientSession(self.url) as session:
            maker = PodMaker(self.server, session, self.startup_seconds, self.never_ready)
            while True:
                if self.paused:
                    await asyncio.sleep(self.tick_seconds)
                    continue
                now = time.monotonic()
                if self.pods:
                    maker.index()
                for (resource, namespace, name), obj in list(self.server.objects.items()):
                    if resource not in (REPLICASETS, DEPLOYMENTS) or obj.deleted:
                        continue
                    rs = obj.raw
                    if resource == DEPLOYMENTS:
                        status = self.deployment_status_for(rs, now)
                    elif self.pods:
                        status = await maker.sync(rs, now)
                    else:
                        status = self.status_for(rs, now)
                    if (rs.get("status") or {}) != status:
                        path = f"/apis/apps/v1/namespaces/{namespace}/{resource.plural}/{name}/status"
                        async with session.patch(
                            path,
                            json={"status": status},
                            headers={"Content-Type": "application/merge-patch+json"},
                        ) as response:
                            await response.read()
                await asyncio.sleep(self.tick_seconds)
