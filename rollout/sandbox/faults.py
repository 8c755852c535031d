"""Faults between the controller and the emulated API server, for tests and benchmarks.

A `FaultPlan` set on `EmulatedApiServer.faults` makes the emulator misbehave toward the
controller only (its own client's user agent and kopf's), never toward the test's observer or the
kubelet stand-in, so that what the test reads is the truth. Each fault has a rate (0..1); draws
come from one seeded `random.Random` (one draw per request or watch event, so the rates of a
group add up to at most 1), and `injected` counts what was done. Setting `.faults` to
None at any moment turns them off, open watch streams included.

Request faults (non-watch requests): `conflict` (409 on PATCH/DELETE, as a stale resourceVersion
gets), `throttle` (429 with Retry-After), `error` (500), `unavailable` (503), `slow` (answered
after `slow_seconds`), `timeout` (no answer for `timeout_seconds`, longer than the client waits;
the request is not applied) and `drop` (the request is applied, then the connection closes
before the answer: the client cannot know the write landed). Watch faults, drawn per event:
`watch_drop` (the stream ends before the event), `watch_late` (the event, and the stream
behind it, wait `late_seconds`) and `watch_duplicate` (the event is delivered twice)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

REQUEST_FAULTS = ("conflict", "throttle", "error", "unavailable", "slow", "timeout", "drop")
WATCH_FAULTS = ("watch_drop", "watch_late", "watch_duplicate")
WRITES = frozenset({"PATCH", "DELETE"})


@dataclass
class FaultPlan:
    conflict: float = 0.0
    throttle: float = 0.0
    error: float = 0.0
    unavailable: float = 0.0
    slow: float = 0.0
    timeout: float = 0.0
    drop: float = 0.0
    watch_drop: float = 0.0
    watch_late: float = 0.0
    watch_duplicate: float = 0.0
    seed: int = 0
    retry_after_seconds: int = 1
    slow_seconds: float = 0.05
    timeout_seconds: float = 1.0
    late_seconds: float = 0.2
    agents: tuple[str, ...] = ("rollout-controller/", "kopf/")
    rng: random.Random = field(init=False, repr=False)
    injected: Counter[str] = field(default_factory=Counter)

    KINDS: ClassVar[tuple[str, ...]] = REQUEST_FAULTS + WATCH_FAULTS

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        for group in (REQUEST_FAULTS, WATCH_FAULTS):
            rates = [getattr(self, kind) for kind in group]
            if any(r < 0 for r in rates) or sum(rates) > 1.0 + 1e-9:
                raise ValueError(f"fault rates {dict(zip(group, rates, strict=True))} are not within 0..1")

    @classmethod
    def uniform(cls, rate: float, seed: int = 0, **settings: Any) -> FaultPlan:
        """A request (and a watch event) meets a fault with chance `rate`, all kinds alike."""
        shares = {kind: rate / len(REQUEST_FAULTS) for kind in REQUEST_FAULTS}
        shares |= {kind: rate / len(WATCH_FAULTS) for kind in WATCH_FAULTS}
        return cls(**(shares | settings), seed=seed)

    def applies(self, headers: Any) -> bool:
        agent = str(headers.get("User-Agent") or "")
        return agent.startswith(self.agents)

    def _draw(self, kinds: tuple[str, ...]) -> str | None:
        """One draw: each kind has exactly its rate's chance (the rates of a group add up)."""
        point, edge = self.rng.random(), 0.0
        for kind in kinds:
            edge += getattr(self, kind)
            if point < edge:
                self.injected[kind] += 1
                return kind
        return None

    def request_fault(self, method: str) -> str | None:
        fault = self._draw(REQUEST_FAULTS)
        if fault == "conflict" and method.upper() not in WRITES:  # a read cannot conflict
            self.injected[fault] -= 1
            return None
        return fault

    def watch_fault(self) -> str | None:
        return self._draw(WATCH_FAULTS)

    @property
    def total(self) -> int:
        return sum(self.injected.values())
