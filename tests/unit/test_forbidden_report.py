"""A 403 becomes one 'permission missing' line (kube/guard.py), but not the 403 the API server
gives a create in a namespace being deleted: that is not a missing grant, and a chart test on
the real server saw the controller blame RBAC for it. And the write fence the same hook applies,
which lets Event creates through."""

import json

import pytest
from kubernetes.client.exceptions import ApiException
from structlog.testing import capture_logs

from rollout.kube import guard


def forbidden(body: dict) -> ApiException:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps(body)
    return exc


TERMINATING = {
    "kind": "Status",
    "reason": "Forbidden",
    "message": (
        'events "x" is forbidden: unable to create new content in namespace shop '
        "because it is being terminated"
    ),
    "details": {
        "name": "x",
        "kind": "events",
        "causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}],
    },
    "code": 403,
}
RBAC = {
    "kind": "Status",
    "reason": "Forbidden",
    "message": 'events is forbidden: User "system:serviceaccount:x:y" cannot create resource "events"',
    "details": {"kind": "events"},
    "code": 403,
}


def raise_in_guard(exc: ApiException, namespace: str) -> list[dict]:
    guard._reported.clear()
    with capture_logs() as logs, pytest.raises(ApiException):
        with guard.guarded("POST", f"/api/v1/namespaces/{namespace}/events", None, None):
            raise exc
    return [entry for entry in logs if entry["event"].startswith("permission missing")]


def test_a_namespace_being_deleted_is_not_a_missing_permission() -> None:
    assert raise_in_guard(forbidden(TERMINATING), "shop") == []


def test_a_refusal_by_rbac_is_named() -> None:
    lines = raise_in_guard(forbidden(RBAC), "shop")
    assert len(lines) == 1
    assert "may not create events in namespace shop" in lines[0]["event"]


def test_a_body_that_is_not_json_is_still_reported() -> None:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = "<html>forbidden</html>"
    assert len(raise_in_guard(exc, "shop")) == 1


def test_the_write_fence_refuses_writes_but_lets_events_through():
    closed = lambda: False  # noqa: E731
    with guard.guarded("POST", "/api/v1/namespaces/shop/events", None, closed):
        pass  # the Event of a decision whose status write landed: posted, never lost
    for method, path in [
        ("PATCH", "/apis/rollout.dev/v1alpha1/namespaces/shop/rollouts/web/status"),
        ("POST", "/apis/apps/v1/namespaces/shop/replicasets"),
        ("PATCH", "/api/v1/namespaces/shop/events/web.1"),
    ]:
        with pytest.raises(guard.NotLeader), guard.guarded(method, path, None, closed):
            pass
    with guard.guarded("GET", "/apis/rollout.dev/v1alpha1/namespaces/shop/rollouts/web", None, closed):
        pass
