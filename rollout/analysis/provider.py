"""The metric provider interface: what every provider module (prometheus.py, ...) implements.

A provider resolves a metric's arguments into a request, escaping each value for where it stands
in its own query language (pure: during resolve, before anything is measured); says which Secrets
its config reads (header values, so that a missing one is InvalidSpec before anything moves); and
measures a request (blocking, in a worker thread of the controller), returning a number, a list or
a JSON value, or raising QueryError (an Error measurement) or NoData (Inconclusive)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from rollout.analysis.expressions import Result
from rollout.api.templates import RequestHeader, SecretKeyRef

log = structlog.get_logger("rollout.analysis")


class QueryError(Exception):
    """The provider gave no result: unreachable, too slow, the query rejected, or an answer that
    is not what the provider answers."""


class NoData(Exception):
    """The provider answered, but what the metric looks for is not in the answer (Inconclusive,
    never a pass); the message says what was looked for where."""


@dataclass(frozen=True)
class SecretUse:
    """A value a provider's config reads from a Secret (a header, typically)."""

    field: str  # under provider.<kind>: headers[1].valueFrom.secretKeyRef
    header: str
    ref: SecretKeyRef


class Request(Protocol):
    """A resolved request: `text` is what is asked, as quoted in messages (the query, the URL)."""

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> tuple[RequestHeader, ...]: ...


class MetricProvider(Protocol):
    kind: str  # the key under `provider` in a template: prometheus, ...
    # True: a result may be any JSON value, so conditions are checked for syntax and names only
    # before anything is measured; False: a number or a list of numbers.
    json_result: bool

    def placeholders(self, config: Any) -> set[str]:
        """The argument names the config uses."""
        ...

    def resolve(self, config: Any, args: Mapping[str, str]) -> Request:
        """Arguments substituted and escaped for where each stands; raises ArgError."""
        ...

    def secret_uses(self, config: Any) -> list[SecretUse]: ...

    def measure(
        self,
        request: Any,
        headers: Mapping[str, str],
        clients: Mapping[str, Any],
        context: Mapping[str, str],
    ) -> Result:
        """One measurement; `headers` hold the values read from Secrets, `clients` the
        controller's configured clients by kind (the Prometheus client and its default address)."""
        ...


def header_uses(headers: tuple[RequestHeader, ...] | list[RequestHeader]) -> list[SecretUse]:
    """Headers whose value comes from a Secret, as SecretUses."""
    return [
        SecretUse(f"headers[{h}].valueFrom.secretKeyRef", header.key, header.value_from.secret_key_ref)
        for h, header in enumerate(headers)
        if header.value_from is not None
    ]


def logged(event: str, measure: Callable[[], Result], context: Mapping[str, str], **fields: Any) -> Result:
    """One measurement taken by `measure`, logged as `event` with its duration and value, or as
    `event failed` / `event: no data` with why (and re-raised)."""
    started = time.monotonic()
    try:
        value = measure()
    except (QueryError, NoData) as exc:
        log.warning(
            f"{event} failed" if isinstance(exc, QueryError) else f"{event}: no data",
            **fields,
            seconds=round(time.monotonic() - started, 4),
            error=str(exc),
            **context,
        )
        raise
    log.info(event, **fields, seconds=round(time.monotonic() - started, 4), value=value, **context)
    return value
