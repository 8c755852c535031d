"""The one hook around every request `Kube` sends (kube/client.py): it refuses writes from a
process that is not the leader (leader.py sets the fence), counts the request in the metrics,
and turns a 403 into one readable log line naming the permission the ServiceAccount lacks.

Reads pass the fence: a follower keeps its view of the cluster warm, and only writes could
conflict with the leader's. So do Event creates: an Event is queued only once the status write
of the decision it tells of has landed (event_queue.py), and nobody else will post it, so a
process whose fence closed since posts it still (exactly once) rather than lose it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog
from kubernetes.client.exceptions import ApiException

from rollout.observability import metrics

log = structlog.get_logger("rollout.controller")

READS = frozenset({"GET", "HEAD"})
# Permissions already reported as missing: each is logged once per process, not per retry.
_reported: set[tuple[str, str, str]] = set()


class NotLeader(Exception):
    """A write attempted by a process that does not hold the leader Lease (or lost it)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"not the leader: {method} {path} refused")


def _scope(path: str) -> str:
    parts = path.split("/")
    if "namespaces" in parts[:-1]:
        index = parts.index("namespaces")
        if index + 2 < len(parts):  # .../namespaces/<ns>/<plural>...: a namespaced resource
            return f"in namespace {parts[index + 1]}"
    return "cluster-wide"


def missing_grant(verb: str, resource: str, scope: str) -> str:
    """What a 403 means, as one sentence: the permission and the grant that gives it."""
    plural, _, sub = resource.partition("/")
    name, _, group = plural.partition(".")
    return (
        f"the controller may not {verb} {resource} {scope}; grant "
        f"(apiGroup {group or 'core'!r}, resource {name + ('/' + sub if sub else '')!r}, verb {verb!r}) "
        "to its ServiceAccount (the Helm chart's RBAC has it)"
    )


def report_forbidden(method: str, path: str, query: dict[str, str] | None) -> None:
    verb, resource = metrics.request_target(method, path, query)
    scope = _scope(path)
    key = (verb, resource, scope)
    if key in _reported:
        return
    _reported.add(key)
    log.error(
        "permission missing: " + missing_grant(verb, resource, scope),
        verb=verb,
        resource=resource,
        scope=scope,
    )


def is_namespace_terminating(exc: ApiException) -> bool:
    """The API server answers 403 to a create in a namespace being deleted; that is not a
    missing grant, so it must not be reported as one (the cause names it)."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return False
    causes = ((body.get("details") or {}).get("causes") or []) if isinstance(body, dict) else []
    return any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes)


def _event_create(method: str, path: str) -> bool:
    return method.upper() == "POST" and path.rstrip("/").endswith("/events")


@contextmanager
def guarded(
    method: str, path: str, query: dict[str, str] | None, fence: Callable[[], bool] | None
) -> Iterator[None]:
    if fence is not None and method.upper() not in READS and not _event_create(method, path) and not fence():
        raise NotLeader(method, path)
    with metrics.api_request(method, path, query):
        try:
            yield
        except ApiException as exc:
            if exc.status == 403 and not is_namespace_terminating(exc):
                report_forbidden(method, path, query)
            raise
