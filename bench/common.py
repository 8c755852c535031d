"""What the bench scripts share: telling the controller's writes apart, waiting for Healthy, and
printing a table."""

from __future__ import annotations

import asyncio
from typing import Any

from rollout.kube import ROLLOUTS, USER_AGENT


def classify(request: Any) -> str | None:
    """`METHOD plural[/sub]` for a write the controller made (its User-Agent), else None."""
    method = request.method.value
    if request.headers.get("User-Agent") != USER_AGENT or method == "GET":
        return None
    plural = request.resource.plural if request.resource else "?"
    sub = f"/{request.subresource}" if request.subresource else ""
    return f"{method} {plural}{sub}"


async def wait_healthy(cluster: Any, not_revision: str | None, namespace: str = "shop") -> str:
    """Poll until the Rollout `web` is Healthy on a stable revision other than `not_revision`."""
    while True:
        status = ((await cluster.kube.get(ROLLOUTS, namespace, "web")) or {}).get("status") or {}
        if status.get("phase") == "Healthy" and status.get("stableRevision") != not_revision:
            return status["stableRevision"]
        await asyncio.sleep(0.02)


def print_table(rows: list[dict[str, Any]], width: int = 13) -> None:
    columns = list(rows[0])
    print(" | ".join(f"{c:>{width}}" for c in columns))
    print("-+-".join("-" * width for _ in columns))
    for row in rows:
        print(
            " | ".join(
                f"{v:>{width}.2f}" if isinstance(v, float) else f"{v!s:>{width}}" for v in row.values()
            )
        )
