"""The emulated ReplicaSet controller and kubelet for real Pod objects (FakeKubelet with pods=True).

Each tick, per ReplicaSet: missing pods are created through the API (name `<rs>-<5 chars>`, the
template's labels, annotations and spec, a controller ownerReference), extra ones deleted newest first, a pod
that has been up `startup_seconds` is marked Ready through pods/status (unless `never_ready`
says its ReplicaSet crash-loops), and the ReplicaSet's status is counted from its Pods. A pod
deleted or evicted by anyone is simply missing on the next tick, so a replacement is made, as
the ReplicaSet controller does. Deletion is immediate (no grace period, so no terminating pods)."""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kmock

PODS = kmock.resource("v1/pods")
_SUFFIX = string.ascii_lowercase + string.digits
MERGE = {"Content-Type": "application/merge-patch+json"}


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def controller_uid(pod: dict[str, Any]) -> str | None:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return next((r.get("uid") for r in refs if r.get("controller")), None)


def pod_for(rs: dict[str, Any]) -> dict[str, Any]:
    meta, template = rs["metadata"], (rs.get("spec") or {}).get("template") or {}
    suffix = "".join(secrets.choice(_SUFFIX) for _ in range(5))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-{suffix}",
            "namespace": meta.get("namespace"),
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": dict(template.get("spec") or {}),
        "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]},
    }


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class PodMaker:
    server: kmock.KubernetesEmulator
    session: aiohttp.ClientSession
    startup_seconds: float
    never_ready: Callable[[dict[str, Any]], bool]
    _started: dict[str, float] = field(default_factory=dict)  # pod uid -> first seen (monotonic)
    _ready_at: dict[str, float] = field(default_factory=dict)  # pod uid -> made Ready (monotonic)
    _by_owner: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def index(self) -> None:
        """The live Pods of each ReplicaSet (by controller uid), read once per tick."""
        self._by_owner = {}
        live: set[str] = set()
        for (resource, _, _), obj in list(self.server.objects.items()):
            if resource != PODS or obj.deleted:
                continue
            uid = controller_uid(obj.raw)
            if uid is not None:
                self._by_owner.setdefault(uid, []).append(obj.raw)
                live.add(obj.raw["metadata"]["uid"])
        for gone in set(self._started) - live:
            self._started.pop(gone, None)
            self._ready_at.pop(gone, None)

    def _path(self, namespace: str, name: str = "", sub: str = "") -> str:
        path = f"/api/v1/namespaces/{namespace}/pods"
        return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    async def sync(self, rs: dict[str, Any], now: float) -> dict[str, Any]:
        """Bring the ReplicaSet's Pods to spec.replicas and Ready; its status from them."""
        namespace = rs["metadata"]["namespace"]
        pods = sorted(
            self._by_owner.get(rs["metadata"]["uid"], []),
            key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]),
        )
        desired = int((rs.get("spec") or {}).get("replicas", 1))
        for pod in pods[desired:][::-1]:  # the newest (least ready) go first
            async with self.session.delete(self._path(namespace, pod["metadata"]["name"])) as response:
                await response.read()
        pods = pods[:desired]
        for _ in range(desired - len(pods)):
            async with self.session.post(self._path(namespace), json=pod_for(rs)) as response:
                if response.status == 201 or response.status == 200:
                    pods.append(await response.json())
        broken = self.never_ready(rs)
        min_ready = float((rs.get("spec") or {}).get("minReadySeconds", 0))
        ready = available = 0
        for pod in pods:
            uid = pod["metadata"]["uid"]
            started = self._started.setdefault(uid, now)
            if not is_ready(pod) and not broken and now - started >= self.startup_seconds:
                await self._make_ready(namespace, pod["metadata"]["name"])
                self._ready_at[uid] = now
            if uid in self._ready_at or is_ready(pod):
                ready += 1
                since = self._ready_at.setdefault(uid, now)
                available += now - since >= min_ready
        return {
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }

    async def _make_ready(self, namespace: str, name: str) -> None:
        stamp = _stamp()
        status = {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": stamp}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
        }
        path = self._path(namespace, name, "status")
        async with self.session.patch(path, json={"status": status}, headers=MERGE) as response:
            await response.read()
