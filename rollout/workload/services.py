"""Service selector pinning: the revision label is merged into a Service's selector, other keys
stay as the user wrote them."""

from __future__ import annotations

from typing import Any

from rollout.api.revision import REVISION_LABEL


def pin_patch(revision: str) -> dict[str, Any]:
    """A merge patch that points a Service at one revision."""
    return {"spec": {"selector": {REVISION_LABEL: revision}}}
