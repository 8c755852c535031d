"""Revision identity: the hash of a pod template, used as the `rollout.dev/revision` label."""

from __future__ import annotations

import hashlib
import json
from typing import Any

REVISION_LABEL = "rollout.dev/revision"
# On the pod template of a canary's baseline (the stable template plus this label): the label
# gives it a hash of its own, so the stable Service never selects its pods.
BASELINE_LABEL = "rollout.dev/baseline"
# On the baseline ReplicaSet itself: the stable revision whose template it runs.
BASELINE_OF_LABEL = "rollout.dev/baseline-of"


def revision_hash(template: dict[str, Any]) -> str:
    """First 10 hex characters of the sha256 of the template's canonical JSON (sorted keys)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:10]
