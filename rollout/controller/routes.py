"""Routes and the objects routers pin or own, on the API server: the adapter between the pure
routers and the cluster. The reconciler observes through here before the engine decides, and
carries out the engine's SetTraffic / PinRevision actions and the restore on deletion through
here. Which resource each object is comes from its router (rollout.traffic.registry).

Every write to a user's object is a JSON patch of exactly what changed, guarded by the object's
resourceVersion (a stale one gets 409 from the API server); on a conflict the object is read
again, the router recomputes, and the write is retried (tenacity). An object a router owns (the
ingress-nginx canary Ingress) is created with the Rollout as its controller owner, patched the
same way, and deleted when the router wants none."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonpatch
import structlog
from kubernetes.client.exceptions import ApiException
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from rollout.api.rollout import Rollout
from rollout.engine.types import ObservedPins, ObservedRoute
from rollout.kube import JSON_PATCH, Kube
from rollout.traffic.base import STABLE_ONLY, RouteProblem, TrafficState, at_rest
from rollout.traffic.bindings import (
    OwnedRouteBinding,
    observe_pins,
    observe_route,
    pin_bindings,
    probe_state,
    route_bindings,
)
from rollout.traffic.routing import TrafficBinding
from rollout.workload.replicasets import ROLLOUT_NAME_LABEL, is_owned_by, owner_reference

log = structlog.get_logger("rollout.controller.routes")


def _conflict(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and exc.status == 409


def guarded_patch(current: dict[str, Any], new: dict[str, Any], *, at: str = "/spec") -> list[dict[str, Any]]:
    """JSON patch from `current` to `new` under `at`, with the resourceVersion as a precondition;
    empty when nothing differs."""
    key = at.strip("/")
    ops = jsonpatch.make_patch(current.get(key) or {}, new.get(key) or {}).patch
    if not ops:
        return []
    version = current["metadata"]["resourceVersion"]
    return [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": version},
        *({**op, "path": at + op["path"]} for op in ops),
    ]


def _retrying_on_conflict() -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception(_conflict),
        stop=stop_after_attempt(5),
        wait=wait_exponential(multiplier=0.02, max=0.5),
        reraise=True,
    )


# Route documents read in this reconcile, by (plural, name): a write starts from them and reads
# again only after a conflict.
Seen = dict[tuple[str, str], dict[str, Any]]


async def observe_routes(kube: Kube, rollout: Rollout, seen: Seen) -> tuple[ObservedRoute | None, ...]:
    probe = probe_state(rollout)
    namespace = rollout.metadata.namespace
    observed = []
    for binding in route_bindings(rollout):
        route = await kube.get(binding.resource, namespace, binding.name)
        if route is not None:
            seen[binding.plural, binding.name] = route
        if not isinstance(binding, OwnedRouteBinding):
            observed.append(observe_route(binding, route, probe))
            continue
        owned = await kube.get(binding.resource, namespace, binding.owned)
        if owned is not None and not is_owned_by(owned, rollout.metadata.uid):
            problem = f"{binding.router.kind} {binding.owned} exists and is not owned by this Rollout"
            observed.append(ObservedRoute(binding.router.kind, binding.name, binding.path, problem=problem))
            continue
        observed.append(observe_route(binding, route, probe, owned))
    return tuple(observed)


async def observe_pinned(kube: Kube, rollout: Rollout) -> tuple[ObservedPins | None, ...]:
    """Which revision each role selects in the objects the routers pin (DestinationRule subsets)."""
    namespace = rollout.metadata.namespace
    observed = []
    for binding in pin_bindings(rollout):
        observed.append(observe_pins(binding, await kube.get(binding.resource, namespace, binding.name)))
    return tuple(observed)


async def _write_one(
    kube: Kube,
    binding: TrafficBinding,
    namespace: str,
    state: TrafficState,
    seen: Seen,
    wanted: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> bool:
    """Write `state` (or what `wanted` makes of the route) to one route; False when there was
    nothing to change."""
    assert not isinstance(binding, OwnedRouteBinding)
    async for attempt in _retrying_on_conflict():
        with attempt:
            route = seen.pop((binding.plural, binding.name), None)
            if route is None:  # after a conflict, from the API server: a cache may be behind
                read = kube.get if attempt.retry_state.attempt_number == 1 else kube.get_fresh
                route = await read(binding.resource, namespace, binding.name)
            if route is None:
                return False  # validation reports it; nothing to write to
            new = wanted(route) if wanted is not None else binding.router.desired(route, state)
            patch = guarded_patch(route, new)
            if not patch:
                return False
            await kube.patch(binding.resource, namespace, binding.name, patch, content_type=JSON_PATCH)
            _log_written(namespace, binding, state, len(patch) - 1)
            return True
    return False


def _log_written(namespace: str, binding: TrafficBinding, state: TrafficState, operations: int) -> None:
    log.info(
        "route written",
        namespace=namespace,
        kind=binding.router.kind,
        route=binding.owned if isinstance(binding, OwnedRouteBinding) else binding.name,
        weight=state.weight,
        header_routes=[h.name for h in state.header_routes],
        mirror=state.mirror.percent if state.mirror else 0,
        operations=operations,
    )


def _owned_body(rollout: Rollout, binding: OwnedRouteBinding, desired: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(desired)
    meta = body.setdefault("metadata", {})
    meta["name"] = binding.owned
    meta["namespace"] = rollout.metadata.namespace
    meta["labels"] = {**(meta.get("labels") or {}), ROLLOUT_NAME_LABEL: rollout.metadata.name}
    meta["ownerReferences"] = [owner_reference(rollout)]
    return body


def _owned_patch(current: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec, labels and annotations of an owned object brought to `new`, guarded by its
    resourceVersion; empty when nothing differs."""
    ops = [
        {**op, "path": "/spec" + op["path"]}
        for op in jsonpatch.make_patch(current.get("spec") or {}, new.get("spec") or {}).patch
    ]
    for field in ("labels", "annotations"):
        value = new["metadata"].get(field) or {}
        if ((current.get("metadata") or {}).get(field) or {}) != value:
            ops.append({"op": "add", "path": f"/metadata/{field}", "value": value})  # add replaces
    if not ops:
        return []
    version = current["metadata"]["resourceVersion"]
    return [{"op": "replace", "path": "/metadata/resourceVersion", "value": version}, *ops]


async def _write_owned(
    kube: Kube, rollout: Rollout, binding: OwnedRouteBinding, state: TrafficState, seen: Seen
) -> bool:
    """Create, update or delete the object the router owns so that it carries `state`."""
    namespace = rollout.metadata.namespace
    resource = binding.resource
    async for attempt in _retrying_on_conflict():
        with attempt:
            # After a conflict (or a create that found one), from the API server: a cache may be behind.
            read = kube.get if attempt.retry_state.attempt_number == 1 else kube.get_fresh
            owned = await read(resource, namespace, binding.owned)
            if owned is not None and not is_owned_by(owned, rollout.metadata.uid):
                raise RouteProblem(f"{binding.router.kind} {binding.owned} is not owned by this Rollout")
            desired = None
            if not at_rest(state):
                source = seen.pop((binding.plural, binding.name), None)
                if source is None:
                    source = await read(resource, namespace, binding.name)
                if source is None:
                    return False  # validation reports it
                desired = binding.router.desired(source, state)
            if desired is None:
                if owned is None:
                    return False
                await kube.delete(resource, namespace, binding.owned)
                _log_written(namespace, binding, state, 1)
                return True
            body = _owned_body(rollout, binding, desired)
            if owned is None:
                await kube.create(resource, namespace, body)  # a 409 (created meanwhile) retries
                _log_written(namespace, binding, state, 1)
                return True
            patch = _owned_patch(owned, body)
            if not patch:
                return False
            await kube.patch(resource, namespace, binding.owned, patch, content_type=JSON_PATCH)
            _log_written(namespace, binding, state, len(patch) - 1)
            return True
    return False


async def write_traffic(kube: Kube, rollout: Rollout, state: TrafficState, seen: Seen) -> int:
    """Apply `state` to every route of the Rollout; returns how many routes were written."""
    written = 0
    for binding in route_bindings(rollout):
        if isinstance(binding, OwnedRouteBinding):
            written += await _write_owned(kube, rollout, binding, state, seen)
        else:
            written += await _write_one(kube, binding, rollout.metadata.namespace, state, seen)
    return written


async def restore_routes(kube: Kube, rollout: Rollout) -> list[str]:
    """100% stable and no managed rules on every route, owned objects deleted; returns the
    problems of routes that could not be restored (they are left as they are)."""
    problems = []
    for binding in route_bindings(rollout):
        try:
            if isinstance(binding, OwnedRouteBinding):
                await _write_owned(kube, rollout, binding, STABLE_ONLY, {})
            else:
                await _write_one(
                    kube, binding, rollout.metadata.namespace, STABLE_ONLY, {}, binding.router.restore
                )
        except RouteProblem as exc:
            problems.append(f"{binding.router.kind} {binding.name}: {exc}")
    return problems


async def pin_revision(kube: Kube, rollout: Rollout, role: str, revision: str) -> None:
    """`role` on `revision` in every object the routers pin by revision."""
    namespace = rollout.metadata.namespace
    for binding in pin_bindings(rollout):
        resource = binding.resource
        async for attempt in _retrying_on_conflict():
            with attempt:
                # After a conflict, from the API server: a cache may be behind.
                read = kube.get if attempt.retry_state.attempt_number == 1 else kube.get_fresh
                document = await read(resource, namespace, binding.name)
                if document is None:
                    break
                patch = guarded_patch(document, binding.pinner.pin(document, role, revision))
                if patch:
                    await kube.patch(resource, namespace, binding.name, patch, content_type=JSON_PATCH)
