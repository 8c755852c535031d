"""Kubernetes Events about a Rollout (core/v1), so that `kubectl describe rollout` tells the story."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

from rollout import API_VERSION
from rollout.engine.types import Event

COMPONENT = "rollout-controller"


def event_body(rollout: dict[str, Any], event: Event, now: datetime | None = None) -> dict[str, Any]:
    meta = rollout.get("metadata") or {}
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}",
            "namespace": meta.get("namespace"),
        },
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": "Rollout",
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": event.type,
        "reason": event.reason,
        "message": event.message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": os.environ.get("HOSTNAME", COMPONENT),
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
