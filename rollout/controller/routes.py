"""Routes and DestinationRule subsets on the API server: the adapter between the pure routers and
the cluster. The reconciler observes through here before the engine decides, and carries out the
engine's SetTraffic / PinSubset actions and the restore on deletion through here.

Every write is a JSON patch of exactly what changed, guarded by the object's resourceVersion (a
stale one gets 409 from the API server); on a conflict the route is read again, the router
recomputes, and the write is retried (tenacity)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonpatch
import structlog
from kubernetes.client.exceptions import ApiException
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from rollout.api.revision import REVISION_LABEL
from rollout.api.rollout import Rollout
from rollout.controller.kube import DESTINATION_RULES, JSON_PATCH, Kube, Resource
from rollout.engine.types import ObservedRoute
from rollout.traffic.base import STABLE_ONLY, RouteProblem, TrafficState
from rollout.traffic.bindings import RouteBinding, observe_route, probe_state, route_bindings, routing_of

log = structlog.get_logger("rollout.controller.routes")
VERSION = "v1"  # gateway.networking.k8s.io/v1 and networking.istio.io/v1


def _resource(binding: RouteBinding) -> Resource:
    return Resource(binding.group, VERSION, binding.plural)


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
        route = await kube.get(_resource(binding), namespace, binding.name)
        if route is not None:
            seen[binding.plural, binding.name] = route
        observed.append(observe_route(binding, route, probe))
    return tuple(observed)


async def observe_subsets(kube: Kube, rollout: Rollout) -> dict[str, dict[str, str]] | None:
    """Subset name -> labels of the Rollout's DestinationRule; None without one or when missing."""
    spec = routing_of(rollout)
    routing = spec.routing if spec is not None else None
    if routing is None or routing.istio is None or routing.istio.destination_rule is None:
        return None
    rule = await kube.get(DESTINATION_RULES, rollout.metadata.namespace, routing.istio.destination_rule.name)
    if rule is None:
        return None
    return {
        str(s.get("name")): dict(s.get("labels") or {}) for s in (rule.get("spec") or {}).get("subsets") or []
    }


async def _write_one(
    kube: Kube,
    binding: RouteBinding,
    namespace: str,
    state: TrafficState,
    seen: Seen,
    wanted: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> bool:
    """Write `state` (or what `wanted` makes of the route) to one route; False when there was
    nothing to change."""
    async for attempt in _retrying_on_conflict():
        with attempt:
            route = seen.pop((binding.plural, binding.name), None)
            if route is None:  # after a conflict, from the API server: a cache may be behind
                read = kube.get if attempt.retry_state.attempt_number == 1 else kube.get_fresh
                route = await read(_resource(binding), namespace, binding.name)
            if route is None:
                return False  # validation reports it; nothing to write to
            new = wanted(route) if wanted is not None else binding.router.desired(route, state)
            patch = guarded_patch(route, new)
            if not patch:
                return False
            await kube.patch(_resource(binding), namespace, binding.name, patch, content_type=JSON_PATCH)
            log.info(
                "route written",
                namespace=namespace,
                kind=binding.router.kind,
                route=binding.name,
                weight=state.weight,
                header_routes=[h.name for h in state.header_routes],
                mirror=state.mirror.percent if state.mirror else 0,
                operations=len(patch) - 1,
            )
            return True
    return False


async def write_traffic(kube: Kube, rollout: Rollout, state: TrafficState, seen: Seen) -> int:
    """Apply `state` to every route of the Rollout; returns how many routes were written."""
    written = 0
    for binding in route_bindings(rollout):
        written += await _write_one(kube, binding, rollout.metadata.namespace, state, seen)
    return written


async def restore_routes(kube: Kube, rollout: Rollout) -> list[str]:
    """100% stable and no managed rules on every route; returns the problems of routes that could
    not be restored (they are left as they are)."""
    problems = []
    for binding in route_bindings(rollout):
        try:
            await _write_one(
                kube, binding, rollout.metadata.namespace, STABLE_ONLY, {}, binding.router.restore
            )
        except RouteProblem as exc:
            problems.append(f"{binding.router.kind} {binding.name}: {exc}")
    return problems


async def pin_subset(kube: Kube, rollout: Rollout, subset: str, revision: str) -> None:
    spec = routing_of(rollout)
    assert spec is not None and spec.routing.istio is not None
    rule_ref = spec.routing.istio.destination_rule
    assert rule_ref is not None
    namespace = rollout.metadata.namespace
    async for attempt in _retrying_on_conflict():
        with attempt:
            read = kube.get if attempt.retry_state.attempt_number == 1 else kube.get_fresh
            rule = await read(DESTINATION_RULES, namespace, rule_ref.name)
            if rule is None:
                return
            new = {**rule, "spec": dict(rule.get("spec") or {})}
            new["spec"]["subsets"] = [
                {**s, "labels": {**(s.get("labels") or {}), REVISION_LABEL: revision}}
                if s.get("name") == subset
                else s
                for s in new["spec"].get("subsets") or []
            ]
            patch = guarded_patch(rule, new)
            if patch:
                await kube.patch(DESTINATION_RULES, namespace, rule_ref.name, patch, content_type=JSON_PATCH)
