"""The one binding interface: a router bound to the objects on the API server that carry a
Rollout's traffic. A binding reads its object(s) and asks its router what they apply (`observe`),
and writes the router's change back (`write`, `restore`). The controller (controller/routes.py,
which the simulator drives too) and the CLI use a binding only through this interface, whatever
its router; providers (gatewayapi.py, istio.py, nginx.py) make the bindings (`Bindings`).

Two bindings implement it: `RouteBinding`, a route the user owns and its router edits in place
(an HTTPRoute, a VirtualService), and `OwnedRouteBinding`, a route the user owns that is only read,
beside an object its router builds from it (the ingress-nginx canary Ingress), created with the
Rollout as its controller owner, patched, and deleted when the router wants none. `PinBinding`
is an object that selects pods by revision (DestinationRule subsets).

Every write is a JSON patch of exactly what changed, guarded by the object's resourceVersion,
through the one path that reads again from the API server after a conflict
(rollout/kube/conflicts.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonpatch
import structlog

from rollout.kube.client import JSON_PATCH, Kube
from rollout.kube.conflicts import Read, guarded, guarded_patch, read_then_write
from rollout.kube.objects import copied
from rollout.kube.resources import Resource
from rollout.traffic.base import (
    STABLE_ONLY,
    ObservedPins,
    ObservedRoute,
    OwningRouter,
    Pinner,
    RouteProblem,
    Router,
    TrafficState,
    at_rest,
)

log = structlog.get_logger("rollout.traffic")

# Route documents read in this reconcile, by (plural, name): a write starts from them and reads
# again only after a conflict.
Seen = dict[tuple[str, str], dict[str, Any]]


@dataclass(frozen=True)
class Owner:
    """The Rollout whose traffic the bindings carry: its namespace, whether an object is its own
    (`owns`), and what an object a router owns is given (`reference`, the Rollout as its
    controller owner, and `labels`); the last two are needed to write only."""

    namespace: str
    owns: Callable[[dict[str, Any]], bool]
    reference: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


class TrafficBinding(Protocol):
    """One route of a Rollout's trafficRouting (`name`, at `path` in the spec) and its router."""

    resource: Resource
    name: str
    path: str

    @property
    def kind(self) -> str: ...

    @property
    def plural(self) -> str: ...

    @property
    def group(self) -> str: ...

    def observed(
        self, route: dict[str, Any] | None, probe: TrafficState, owned: dict[str, Any] | None = None
    ) -> ObservedRoute | None:
        """What the engine needs to know of the route as given (no API call): None when it does not
        exist, a problem when the router cannot carry `probe` on it, else what it applies and
        what its status says. `owned`: the router's own object, for a binding that has one."""
        ...

    async def observe(
        self, api: Kube, owner: Owner, probe: TrafficState, seen: Seen | None = None
    ) -> ObservedRoute | None:
        """`observed` of the route as read now; the route read is kept in `seen`."""
        ...

    async def write(self, api: Kube, owner: Owner, state: TrafficState, seen: Seen) -> bool:
        """Make the route carry `state`, starting from the document in `seen` when there is one;
        False when there was nothing to change."""
        ...

    async def restore(self, api: Kube, owner: Owner) -> bool:
        """100% stable and no managed rules, read from the API server's answer of the moment."""
        ...


@dataclass(frozen=True)
class Bindings:
    """What a provider makes of its config: the routes that carry the traffic, and the objects
    that select the pods of each role by revision."""

    routes: tuple[TrafficBinding, ...] = ()
    pins: tuple[PinBinding, ...] = ()


def _log_written(namespace: str, kind: str, name: str, state: TrafficState, operations: int) -> None:
    log.info(
        "route written",
        namespace=namespace,
        kind=kind,
        route=name,
        weight=state.weight,
        header_routes=[h.name for h in state.header_routes],
        mirror=state.mirror.percent if state.mirror else 0,
        operations=operations,
    )


class _OnResource:
    """What both route bindings say of the object they are bound to."""

    resource: Resource
    router: Router | OwningRouter

    @property
    def kind(self) -> str:
        return self.router.kind

    @property
    def plural(self) -> str:
        return self.resource.plural

    @property
    def group(self) -> str:
        return self.resource.group


@dataclass(frozen=True)
class RouteBinding(_OnResource):
    """A route the user owns; its router edits it in place."""

    resource: Resource
    name: str
    path: str
    router: Router

    def observed(
        self, route: dict[str, Any] | None, probe: TrafficState, owned: dict[str, Any] | None = None
    ) -> ObservedRoute | None:
        if route is None:
            return None
        try:
            self.router.desired(route, probe)
            traffic = self.router.applied(route)
            explicit = self.router.explicit(route)
            health = self.router.health(route)
            weighted_rules = self.router.weighted_rules(route)
        except RouteProblem as exc:
            return ObservedRoute(self.kind, self.name, self.path, problem=str(exc))
        return ObservedRoute(
            self.kind, self.name, self.path, traffic, health, explicit, weighted_rules=weighted_rules
        )

    async def observe(
        self, api: Kube, owner: Owner, probe: TrafficState, seen: Seen | None = None
    ) -> ObservedRoute | None:
        route = await api.get(self.resource, owner.namespace, self.name)
        if route is not None and seen is not None:
            seen[self.plural, self.name] = route
        return self.observed(route, probe)

    async def write(self, api: Kube, owner: Owner, state: TrafficState, seen: Seen) -> bool:
        return await self._edit(
            api, owner.namespace, state, seen, lambda route: self.router.desired(route, state)
        )

    async def restore(self, api: Kube, owner: Owner) -> bool:
        return await self._edit(api, owner.namespace, STABLE_ONLY, {}, self.router.restore)

    async def _edit(
        self,
        api: Kube,
        namespace: str,
        state: TrafficState,
        seen: Seen,
        wanted: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> bool:
        async def edit(read: Read) -> bool:
            route = seen.pop((self.plural, self.name), None)
            if route is None:
                route = await read(self.resource, namespace, self.name)
            if route is None:
                return False  # validation reports it; nothing to write to
            patch = guarded_patch(route, wanted(route))
            if not patch:
                return False
            await api.patch(self.resource, namespace, self.name, patch, content_type=JSON_PATCH)
            _log_written(namespace, self.kind, self.name, state, len(patch) - 1)
            return True

        return await read_then_write(api, edit)


def _owned_patch(current: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec, labels and annotations of an owned object brought to `new`, guarded by its
    resourceVersion; empty when nothing differs."""
    operations = [
        {**op, "path": "/spec" + op["path"]}
        for op in jsonpatch.make_patch(current.get("spec") or {}, new.get("spec") or {}).patch
    ]
    for name in ("labels", "annotations"):
        value = new["metadata"].get(name) or {}
        if ((current.get("metadata") or {}).get(name) or {}) != value:
            operations.append({"op": "add", "path": f"/metadata/{name}", "value": value})  # add replaces
    return guarded(current, operations)


@dataclass(frozen=True)
class OwnedRouteBinding(_OnResource):
    """A route the user owns (`name`, only read) and an object of the same resource that the
    router builds from it and the controller creates, updates and deletes (`owned`)."""

    resource: Resource
    name: str
    owned: str
    path: str
    router: OwningRouter

    def observed(
        self, route: dict[str, Any] | None, probe: TrafficState, owned: dict[str, Any] | None = None
    ) -> ObservedRoute | None:
        if route is None:
            return None
        try:
            self.router.check(route)
            traffic = self.router.applied(owned)
            explicit = self.router.explicit(route, owned)
            health = self.router.health(route, owned)
        except RouteProblem as exc:
            return ObservedRoute(self.kind, self.name, self.path, problem=str(exc))
        return ObservedRoute(self.kind, self.name, self.path, traffic, health, explicit)

    async def observe(
        self, api: Kube, owner: Owner, probe: TrafficState, seen: Seen | None = None
    ) -> ObservedRoute | None:
        route = await api.get(self.resource, owner.namespace, self.name)
        if route is not None and seen is not None:
            seen[self.plural, self.name] = route
        owned = await api.get(self.resource, owner.namespace, self.owned)
        if owned is not None and not owner.owns(owned):
            problem = f"{self.kind} {self.owned} exists and is not owned by this Rollout"
            return ObservedRoute(self.kind, self.name, self.path, problem=problem)
        return self.observed(route, probe, owned)

    async def write(self, api: Kube, owner: Owner, state: TrafficState, seen: Seen) -> bool:
        """Create, update or delete the owned object so that it carries `state`."""
        namespace, resource = owner.namespace, self.resource

        async def write_owned(read: Read) -> bool:
            owned = await read(resource, namespace, self.owned)
            if owned is not None and not owner.owns(owned):
                raise RouteProblem(f"{self.kind} {self.owned} is not owned by this Rollout")
            desired = None
            if not at_rest(state):
                source = seen.pop((self.plural, self.name), None)
                if source is None:
                    source = await read(resource, namespace, self.name)
                if source is None:
                    return False  # validation reports it
                desired = self.router.desired(source, state)
            if desired is None:
                if owned is None:
                    return False
                await api.delete(resource, namespace, self.owned)
                _log_written(namespace, self.kind, self.owned, state, 1)
                return True
            body = self._body(owner, desired)
            if owned is None:
                await api.create(resource, namespace, body)  # a 409 (created meanwhile) retries
                _log_written(namespace, self.kind, self.owned, state, 1)
                return True
            patch = _owned_patch(owned, body)
            if not patch:
                return False
            await api.patch(resource, namespace, self.owned, patch, content_type=JSON_PATCH)
            _log_written(namespace, self.kind, self.owned, state, len(patch) - 1)
            return True

        return await read_then_write(api, write_owned)

    async def restore(self, api: Kube, owner: Owner) -> bool:
        return await self.write(api, owner, STABLE_ONLY, {})

    def _body(self, owner: Owner, desired: dict[str, Any]) -> dict[str, Any]:
        body = copied(desired)
        meta = body.setdefault("metadata", {})
        meta["name"] = self.owned
        meta["namespace"] = owner.namespace
        meta["labels"] = {**(meta.get("labels") or {}), **owner.labels}
        meta["ownerReferences"] = [dict(owner.reference)]
        return body


@dataclass(frozen=True)
class PinBinding:
    """An object that selects pods by revision per role (DestinationRule subsets)."""

    resource: Resource
    name: str
    path: str
    pinner: Pinner

    def observed(self, document: dict[str, Any] | None) -> ObservedPins | None:
        if document is None:
            return None
        kind = self.pinner.kind
        try:
            return ObservedPins(kind, self.name, self.path, self.pinner.pinned(document))
        except RouteProblem as exc:
            return ObservedPins(kind, self.name, self.path, problem=str(exc))

    async def observe(self, api: Kube, owner: Owner) -> ObservedPins | None:
        return self.observed(await api.get(self.resource, owner.namespace, self.name))

    async def pin(self, api: Kube, owner: Owner, role: str, revision: str) -> bool:
        """`role` on `revision`; False when the object is missing or already says so."""

        async def pin(read: Read) -> bool:
            document = await read(self.resource, owner.namespace, self.name)
            if document is None:
                return False
            patch = guarded_patch(document, self.pinner.pin(document, role, revision))
            if not patch:
                return False
            await api.patch(self.resource, owner.namespace, self.name, patch, content_type=JSON_PATCH)
            return True

        return await read_then_write(api, pin)
