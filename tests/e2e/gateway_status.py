"""A stand-in Gateway controller for the e2e suite: a cluster with no Gateway implementation has
nobody to write Gateway API route status, so this plays one. For every route of the given kinds in
a namespace it writes `status.parents` (one entry per `spec.parentRefs` entry) with Accepted=True
and ResolvedRefs=True at the route's current `metadata.generation`, each time that generation
moves, as a Gateway does once it has programmed a route."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from kubernetes.client.exceptions import ApiException

from rollout.kube import Kube, Resource
from tests.waiting import in_background

CONTROLLER_NAME = "example.com/stand-in-gateway"


def accepted_status(route: dict[str, Any]) -> dict[str, Any]:
    """The status a Gateway writes for a route it accepted, at the route's current generation."""
    generation = route["metadata"]["generation"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [
        {
            "type": kind,
            "status": "True",
            "reason": kind,
            "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": now,
        }
        for kind in ("Accepted", "ResolvedRefs")
    ]
    return {
        "parents": [
            {"parentRef": ref, "controllerName": CONTROLLER_NAME, "conditions": conditions}
            for ref in route["spec"].get("parentRefs") or []
        ]
    }


def reported_generation(route: dict[str, Any]) -> int | None:
    """The generation this stand-in last reported for `route` (None: never)."""
    for parent in (route.get("status") or {}).get("parents") or []:
        if parent.get("controllerName") == CONTROLLER_NAME:
            return min((c.get("observedGeneration", 0) for c in parent.get("conditions") or []), default=None)
    return None


async def accept_routes(
    kube: Kube, namespace: str, resources: tuple[Resource, ...], accepted: dict[str, list[int]], period: float
) -> None:
    """Forever: accept every generation of every route of `resources`, recording it in `accepted`
    (route name -> generations accepted, in order)."""
    while True:
        for resource in resources:
            for route in await kube.list(resource, namespace):
                name, generation = route["metadata"]["name"], route["metadata"]["generation"]
                if reported_generation(route) == generation:
                    continue
                with contextlib.suppress(ApiException):  # a newer generation: accepted next round
                    await kube.patch(
                        resource, namespace, name, {"status": accepted_status(route)}, sub="status"
                    )
                    accepted.setdefault(name, []).append(generation)
        await asyncio.sleep(period)


@contextlib.asynccontextmanager
async def gateway_accepting(
    kube: Kube, namespace: str, *resources: Resource, period: float = 0.2
) -> AsyncIterator[dict[str, list[int]]]:
    """For the block, a Gateway that accepts every route of `resources` in `namespace`; yields
    the generations it accepted per route name."""
    accepted: dict[str, list[int]] = {}
    async with in_background(accept_routes(kube, namespace, resources, accepted, period)):
        yield accepted
