"""Secret argument values kept out of everything people read.

An analysis argument may come from a Secret (`valueFrom.secretKeyRef`); its value is substituted
into the provider's request like any other, but wherever text leaves the controller (measurement
and run messages in status, Events, InvalidSpec messages, the CLI, the logs) it is replaced by
`***`. Masking is generic, not per provider: the value is masked as it is and in the forms the
providers' escaping gives it (PromQL, NRQL, InfluxQL, Flux and JSON string escapes, URL
encodings; Datadog, Graphite and CloudWatch pass an argument as it is or refuse it).

The log side: the reconciler remembers each Rollout's secret values here before it measures, and
the logging set-up (rollout/observability/logging.py) masks every record with all it remembers.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from rollout.analysis.args import escape_label_value
from rollout.analysis.influxdb import escape_flux_string, escape_influxql_identifier, escape_influxql_string
from rollout.analysis.newrelic import escape_nrql_string

MASK = "***"


def forms(value: str) -> set[str]:
    """`value` as it may appear once substituted and escaped by a provider."""
    if not value:
        return set()
    found = {
        value,
        escape_label_value(value, '"'),
        escape_label_value(value, "'"),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        escape_nrql_string(value),
        escape_influxql_string(value),
        escape_influxql_identifier(value),
        escape_flux_string(value),
    }
    return {form for form in found if form}


def masker(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern matching every form of every secret value (longest first), or None."""
    found = sorted({f for value in secrets for f in forms(value)}, key=len, reverse=True)
    return re.compile("|".join(re.escape(f) for f in found)) if found else None


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every form of every secret value replaced by ***."""
    pattern = masker(secrets)
    return pattern.sub(MASK, text) if pattern is not None else text


class LogMask:
    """The secret values the controller holds, by owner (a Rollout's namespace/name), so that a
    log record naming one of them (a provider logging its query) shows *** instead."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # log records are written from worker threads too
        self._by_owner: dict[str, frozenset[str]] = {}
        self._pattern: re.Pattern[str] | None = None

    def remember(self, owner: str, secrets: Iterable[str]) -> None:
        """`owner`'s secret values now (called on every reconcile: cheap when unchanged)."""
        values = frozenset(v for v in secrets if v)
        with self._lock:
            if self._by_owner.get(owner, frozenset()) == values:
                return
            if values:
                self._by_owner[owner] = values
            else:
                del self._by_owner[owner]
            self._pattern = masker(frozenset().union(*self._by_owner.values()))

    def _masked(self, value: Any, pattern: re.Pattern[str]) -> Any:
        if isinstance(value, str):
            return pattern.sub(MASK, value)
        if isinstance(value, Mapping):
            return {k: self._masked(v, pattern) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._masked(v, pattern) for v in value]
        return value

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """A structlog processor: every string in the record masked."""
        pattern = self._pattern
        if pattern is None:
            return event_dict
        return {key: self._masked(value, pattern) for key, value in event_dict.items()}


LOG_MASK = LogMask()
