"""What the emulated API server records of the controller's requests, and the RBAC it may
enforce on them (apiserver.py calls both for every request it serves).

`ApiCall` is a request as RBAC sees it: verb, API group, resource, subresource and the namespace
("" for a cluster-wide request, which only a ClusterRole can grant). The tests compare the
calls recorded over the integration runs with the rules the Helm chart renders. `WriteRecord`
keeps each write with the Leases' holders at that moment, for the leader-election test."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# The controller's requests: its own client's and kopf's user agents.
CONTROLLER_AGENTS = ("rollout-controller/", "kopf/")
READ_VERBS = frozenset({"get", "list", "watch"})


@dataclass(frozen=True, order=True)
class ApiCall:
    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""  # "" for a cluster-wide request

    @property
    def rbac_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        where = f"in namespace {self.namespace}" if self.namespace else "cluster-wide"
        return f"{self.verb} {self.rbac_resource} (apiGroup {self.group!r}) {where}"


@dataclass(frozen=True)
class WriteRecord:
    at: float  # time.monotonic() when the server applied it
    agent: str
    call: ApiCall
    name: str | None
    lease_holders: dict[str, str | None]  # "namespace/name" of each Lease -> its holderIdentity


# Decides whether a call is allowed: (call) -> True, or False for a 403.
Authorizer = Callable[[ApiCall], bool]


@dataclass
class Audit:
    calls: set[ApiCall] = field(default_factory=set)
    non_resource: set[tuple[str, str]] = field(default_factory=set)  # (method, path): discovery
    writes: list[WriteRecord] = field(default_factory=list)
    denied: list[ApiCall] = field(default_factory=list)

    @staticmethod
    def is_controller(agent: str) -> bool:
        return agent.startswith(CONTROLLER_AGENTS)

    def write(self, agent: str, call: ApiCall, name: str | None, holders: dict[str, str | None]) -> None:
        self.writes.append(WriteRecord(time.monotonic(), agent, call, name, holders))
