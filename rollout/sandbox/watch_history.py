"""The emulated API server's memory of recent watch events, so that a watch asked to start at a
resourceVersion is told what came after it, as a real server's watch cache tells it.

Where it sits: every change the emulator (apiserver.py) and kmock announce goes through a kind's
`KeptBus`, which keeps the last `kept` events in the order they were announced. A watch from a
version (a client watching again after its stream ended) replays the events after the first one
at that version, then follows the bus; a version no longer kept is answered 410 Gone, as a real
server answers a version older than its cache, and the client lists again.

Replay goes by announcement order, not by comparing versions: the emulator stamps a create's
version before kmock stores and announces it, so versions are not always announced in order. A
DELETED event carries the object's last version (kmock's), so the first event at the version is
the write that made it: what follows it is everything the client may have missed (events it had
may come again; a watcher keeps the newest version of each object, so they change nothing)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import attrs
from kmock._internal import aiobus

# Events kept per kind: a real server's watch cache holds at least 100 and sizes itself to some
# 75 s of changes; this covers a test's or the sandbox's minutes of changes many times over.
EVENTS_KEPT = 10_000


@attrs.mutable(weakref_slot=True)
class KeptBus(aiobus.Bus[Any]):
    """kmock's bus of one kind's changes, also keeping the last `kept.maxlen` of them."""

    kept: deque[Any] = attrs.field(factory=lambda: deque(maxlen=EVENTS_KEPT))

    async def put(self, *items: Any) -> None:
        self.kept.extend(items)  # before the first await: kept and bus stay in the same order
        await super().put(*items)


def start_version(params: dict[str, str]) -> int | None:
    """The version a watch asks to start after; None for the objects as they are, then changes
    (no version, "0", or kmock's list's non-numeric "...")."""
    asked = params.get("resourceVersion") or ""
    return int(asked) if asked.isdigit() and int(asked) > 0 else None


def _version(event: dict[str, Any]) -> str:
    return str(((event.get("object") or {}).get("metadata") or {}).get("resourceVersion") or "")


def events_after(kept: Iterable[dict[str, Any]], version: int) -> list[dict[str, Any]] | None:
    """The kept events after the first one at `version`; None when no kept event has it (too old,
    or never announced): the watch is then told 410."""
    wanted = str(version)
    events = list(kept)
    for index, event in enumerate(events):
        if _version(event) == wanted:
            return events[index + 1 :]
    return None


def expired(version: int, kept: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The ERROR event a real server sends a watch from a version older than it keeps."""
    oldest = next((_version(e) for e in kept), "none kept")
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {version} ({oldest})",
            "reason": "Expired",
            "code": 410,
        },
    }
