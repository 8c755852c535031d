"""Writes that a conflict sends back to reading: the JSON patch guarded by the object's
resourceVersion (a stale one gets 409 from the API server), and the one path that reads, writes,
and after a 409 reads again from the API server itself (a cache may be behind) and writes again,
retried by tenacity. The route and pin bindings (rollout/traffic/binding.py) write through here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import jsonpatch
from kubernetes.client.exceptions import ApiException
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from rollout.kube.client import Kube
from rollout.kube.resources import Resource

T = TypeVar("T")
# Kube.get on a first attempt, Kube.get_fresh after a conflict.
Read = Callable[[Resource, str | None, str], Awaitable[dict[str, Any] | None]]
ATTEMPTS = 5


def conflicted(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and exc.status == 409


def guarded(current: dict[str, Any], operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`operations` preceded by the object's resourceVersion as a precondition; empty when there
    is nothing to do."""
    if not operations:
        return []
    version = current["metadata"]["resourceVersion"]
    return [{"op": "replace", "path": "/metadata/resourceVersion", "value": version}, *operations]


def guarded_patch(current: dict[str, Any], new: dict[str, Any], *, at: str = "/spec") -> list[dict[str, Any]]:
    """JSON patch from `current` to `new` under `at`, with the resourceVersion as a precondition;
    empty when nothing differs."""
    key = at.strip("/")
    operations = jsonpatch.make_patch(current.get(key) or {}, new.get(key) or {}).patch
    return guarded(current, [{**op, "path": at + op["path"]} for op in operations])


async def read_then_write(api: Kube, write: Callable[[Read], Awaitable[T]]) -> T:
    """`write(read)`: it reads what it changes with `read` and writes it guarded. `read` is
    `api.get` (a cache, when the client has one) the first time and `api.get_fresh` after a 409;
    after ATTEMPTS conflicts the last one is raised."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(conflicted),
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_exponential(multiplier=0.02, max=0.5),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            read = api.get if attempt.retry_state.attempt_number == 1 else api.get_fresh
            return await write(read)
    raise AssertionError("unreachable: tenacity re-raises the last conflict")
