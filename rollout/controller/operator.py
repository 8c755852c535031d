"""Wires the reconciler into kopf: which watch events trigger a reconcile, the periodic resync, and
the settings that keep kopf's own bookkeeping out of the way of GitOps.

Only `on.event` handlers are used: they store no progress or diff-base on the object and need no
finalizer (timers and daemons would put one on every Rollout)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

import kopf
import structlog

from rollout import GROUP, VERSION
from rollout.analysis.prometheus import Prometheus
from rollout.api.revision import REVISION_LABEL
from rollout.controller.kube import ROLLOUTS, USER_AGENT, Kube, connection_info
from rollout.controller.reconciler import Reconciler

log = structlog.get_logger("rollout.controller")


def build_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # If kopf ever stores anything on a Rollout, it lives under our own prefix.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    return settings


def _owner_rollout(body: Any) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "Rollout" and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/"):
            return str(ref.get("name"))
    return None


def build_registry(
    reconciler: Reconciler,
    namespaces: Sequence[str] = (),
    *,
    resync_seconds: float = 30.0,
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    resync: dict[str, asyncio.Task[None]] = {}

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(reconciler.kube.api.configuration)

    @kopf.on.event(GROUP, VERSION, "rollouts", registry=registry)
    async def rollout_changed(type: str, name: str, namespace: str, **_: Any) -> None:
        if type == "DELETED":
            reconciler.forget(namespace, name)
        else:
            reconciler.trigger(namespace, name)

    @kopf.on.event("apps", "v1", "replicasets", labels={REVISION_LABEL: kopf.PRESENT}, registry=registry)
    async def replicaset_changed(body: Any, namespace: str, **_: Any) -> None:
        owner = _owner_rollout(body)
        if owner:
            reconciler.trigger(namespace, owner)

    async def resync_loop() -> None:
        # Catches what no event announces: a Service created later, a deadline passed while down.
        while True:
            await asyncio.sleep(resync_seconds)
            try:
                scopes: Sequence[str | None] = list(namespaces) or [None]
                for scope in scopes:
                    for item in await reconciler.kube.list(ROLLOUTS, scope):
                        meta = item.get("metadata") or {}
                        reconciler.trigger(meta["namespace"], meta["name"])
            except Exception:
                log.exception("resync failed")

    @kopf.on.startup(registry=registry)
    async def start_resync(**_: Any) -> None:
        resync["task"] = asyncio.get_running_loop().create_task(resync_loop())

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        task = resync.pop("task", None)
        if task is not None:
            task.cancel()
        await reconciler.close()

    return registry


async def run_controller(
    kube: Kube,
    namespaces: Sequence[str] = (),
    *,
    resync_seconds: float = 30.0,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    prometheus_address: str | None = None,
) -> None:
    """Run the controller until `stop_flag` is set (or forever); `prometheus_address` is the
    default for analysis templates that name none."""
    if not kube.api.user_agent.startswith(USER_AGENT):  # a suffix naming the process may follow
        kube.api.user_agent = USER_AGENT  # its requests are told apart in audit logs and benchmarks
    reconciler = Reconciler(kube, prometheus=Prometheus(prometheus_address))
    registry = build_registry(reconciler, namespaces, resync_seconds=resync_seconds)
    await kopf.operator(
        registry=registry,
        settings=build_settings(),
        standalone=True,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
