"""The simulator's API server: the calls that the controller's own observation and action code
(rollout/controller/routes.py, Reconciler.apply_action) makes of rollout.kube.Kube, answered at
once from a Sim's fields (tests/sim.py), so that the simulator drives that code instead of a copy.

ReplicaSets, Services and the Deployment are the Sim's dataclasses and selector dicts; routes
(and objects routers own) are documents by name in `Sim.routes`; the DestinationRule is
`Sim.subsets`. Documents are handed out with a resourceVersion (kept beside them, so that a
stored route stays exactly as the router wrote it), and a JSON patch guarded by a stale one is
refused with 409 as a real API server does."""

from __future__ import annotations

import copy
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import json_merge_patch
import jsonpatch
from kubernetes.client.exceptions import ApiException

from rollout.api.revision import REVISION_LABEL
from rollout.kube import (
    DEPLOYMENTS,
    DESTINATION_RULES,
    JSON_PATCH,
    MERGE_PATCH,
    REPLICASETS,
    SERVICES,
    Resource,
)

if TYPE_CHECKING:
    from tests.sim import Sim

T = TypeVar("T")


def run_at_once(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits to its end, without an event loop: the simulated API
    answers every call at once, so the controller's code runs straight through."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the simulated API answers at once; the code waited for something else")


def _refused(status: int, reason: str) -> ApiException:
    return ApiException(status=status, reason=reason)


class SimKube:
    """Kube's get, get_fresh, create, patch and delete over a Sim. No cache: known_version is
    None, as for a client without one."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.versions: dict[tuple[str, str], int] = {}

    def known_version(self, res: Resource, namespace: str | None, name: str) -> str | None:
        return None

    def _version(self, res: Resource, name: str) -> str:
        return str(self.versions.get((res.plural, name), 1))

    def _stored(self, res: Resource, name: str) -> dict[str, Any] | None:
        if res == DESTINATION_RULES:
            return self.sim.destination_rule()
        if res == REPLICASETS:  # its metadata as created (a baseline is built from stable's)
            replicaset = self.sim.replicasets.get(name)
            return None if replicaset is None else {"metadata": replicaset.metadata}
        if res in (SERVICES, DEPLOYMENTS):
            raise NotImplementedError(f"the simulator does not read {res.plural} as documents")
        return self.sim.routes.get(name)

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        stored = self._stored(res, name)
        if stored is None:
            return None
        document = copy.deepcopy(stored)
        document.setdefault("metadata", {})["resourceVersion"] = self._version(res, name)
        return document

    async def get_fresh(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        return await self.get(res, namespace, name)

    async def create(self, res: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if res == REPLICASETS:
            if name in self.sim.replicasets:
                raise _refused(409, "AlreadyExists")
            self.sim.add_replicaset(
                name, body["metadata"]["labels"][REVISION_LABEL], body["spec"]["replicas"], body["metadata"]
            )
        elif res in (SERVICES, DEPLOYMENTS, DESTINATION_RULES):
            raise NotImplementedError(f"the controller creates no {res.plural}")
        else:  # an object a router owns (the canary Ingress)
            if name in self.sim.routes:
                raise _refused(409, "AlreadyExists")
            self.sim.routes[name] = copy.deepcopy(body)
            self.versions[res.plural, name] = 1
        return body

    async def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        sub: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        if content_type == JSON_PATCH:
            return self._json_patch(res, name, body)
        spec = body.get("spec") or {}
        if res == REPLICASETS:
            replicaset = self.sim.replicasets.get(name)
            if replicaset is None:
                raise _refused(404, "NotFound")
            replicaset.spec = spec["replicas"]
            replicaset.available = min(replicaset.available, replicaset.spec)  # removed pods are gone at once
        elif res == SERVICES:
            selector = self.sim.services.get(name)
            if selector is None:
                raise _refused(404, "NotFound")
            self.sim.services[name] = json_merge_patch.merge(dict(selector), spec.get("selector") or {})
        elif res == DEPLOYMENTS:
            deployment = self.sim.deployment
            if deployment is None or deployment["metadata"]["name"] != name:
                raise _refused(404, "NotFound")
            deployment["spec"]["replicas"] = spec["replicas"]
            self.sim.deployment_available = min(self.sim.deployment_available, spec["replicas"])
        else:
            raise NotImplementedError(f"the simulator takes JSON patches only for {res.plural}")
        return body

    def _json_patch(self, res: Resource, name: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
        stored = self._stored(res, name)
        if stored is None:
            raise _refused(404, "NotFound")
        guard, *changes = operations
        assert guard["path"] == "/metadata/resourceVersion", "every JSON patch is guarded"
        if guard["value"] != self._version(res, name):
            raise _refused(409, "Conflict")
        patched = jsonpatch.apply_patch(stored, changes)
        self.versions[res.plural, name] = int(self._version(res, name)) + 1
        if res == DESTINATION_RULES:
            self.sim.subsets = {s["name"]: s["labels"] for s in patched["spec"]["subsets"]}
        else:
            self.sim.routes[name] = patched
        return patched

    async def delete(
        self, res: Resource, namespace: str | None, name: str, *, resource_version: str | None = None
    ) -> None:
        if res == REPLICASETS:
            self.sim.replicasets.pop(name, None)
        elif res in (SERVICES, DEPLOYMENTS, DESTINATION_RULES):
            raise NotImplementedError(f"the controller deletes no {res.plural}")
        else:  # an object a router owns
            self.sim.routes.pop(name, None)
