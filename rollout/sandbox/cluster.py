"""An emulated cluster in this process: API server, kubelet stand-in, and the controller on demand.

Used by `rollout sandbox` and by the integration tests; `kubeconfig()` lets a controller running
as a separate process (`rollout controller`) talk to it too."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock
import yaml

from rollout.api.crds import all_crds
from rollout.controller.operator import run_controller
from rollout.kube import Kube, api_client_for
from rollout.notify.delivery import NotifySettings
from rollout.sandbox.apiserver import EmulatedApiServer
from rollout.sandbox.kubelet import FakeKubelet


@dataclass
class EmulatedCluster:
    api: EmulatedApiServer
    url: str
    kube: Kube
    kubelet: FakeKubelet
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def create_namespace(self, name: str) -> None:
        # kmock 0.8 reads `/api/v1/namespaces` as a namespaced path with no plural, so Namespaces
        # cannot be created through the API; they are put into its store directly.
        self.api.objects[kmock.resource("v1/namespaces"), None, name] = self.api.stamp_new(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "sandbox",
                    "clusters": [{"name": "sandbox", "cluster": {"server": self.url}}],
                    "users": [{"name": "sandbox", "user": {}}],
                    "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox"}}],
                }
            )
        )
        return path

    @contextlib.asynccontextmanager
    async def controller(
        self,
        namespaces: tuple[str, ...] = (),
        *,
        resync_seconds: float = 2.0,
        prometheus_address: str | None = None,
        notifications: NotifySettings | None = None,
    ) -> AsyncIterator[None]:
        """Run the real controller (kopf) for the duration of the block.

        It gets a thread and an event loop of its own, as in a process of its own: kopf cancels
        every task of its loop when it stops, which must not include the emulator's."""
        stop, ready = threading.Event(), threading.Event()
        failure: list[BaseException] = []

        async def until_stopped() -> None:
            task = asyncio.get_running_loop().create_task(
                run_controller(
                    Kube(api_client_for(self.url)),
                    namespaces,
                    resync_seconds=resync_seconds,
                    ready_flag=ready,
                    prometheus_address=prometheus_address,
                    notifications=notifications,
                )
            )
            while not stop.is_set() and not task.done():
                await asyncio.sleep(0.05)
            # Cancelled rather than flagged: a flagged kopf waits 5 s for its open watch streams.
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        def serve() -> None:
            try:
                asyncio.run(until_stopped())
            except BaseException as exc:
                failure.append(exc)
                ready.set()

        thread = threading.Thread(target=serve, name="rollout-controller", daemon=True)
        thread.start()
        try:
            await asyncio.to_thread(ready.wait, 30)
            if failure:
                raise RuntimeError(f"the controller did not start: {failure[0]!r}") from failure[0]
            yield
        finally:
            stop.set()
            await asyncio.to_thread(thread.join, 30)


@contextlib.asynccontextmanager
async def emulated_cluster(
    *,
    startup_seconds: float = 0.3,
    never_ready: Callable[[dict[str, Any]], bool] | None = None,
    pods: bool = False,
) -> AsyncIterator[EmulatedCluster]:
    """`pods`: ReplicaSets get real Pod objects (FakeKubelet.pods), else pods in memory only."""
    async with EmulatedApiServer() as api, kmock.Server(api) as server:
        for crd in all_crds().values():
            api.install_crd(crd)
        url = str(server.url).rstrip("/")
        kubelet = FakeKubelet(api, url, startup_seconds=startup_seconds, pods=pods)
        if never_ready is not None:
            kubelet.never_ready = never_ready
        cluster = EmulatedCluster(api=api, url=url, kube=Kube(api_client_for(url)), kubelet=kubelet)
        kubelet_task = asyncio.get_running_loop().create_task(kubelet.run())
        try:
            yield cluster
        finally:
            kubelet_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await kubelet_task
