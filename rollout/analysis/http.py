"""One bounded HTTP exchange for the providers that speak plain HTTP (web.py, newrelic.py,
graphite.py): the timeout bounds the whole exchange, not only each read (a trickling answer ends
too), the answer is capped in size, redirects are not followed (a login page is no answer), and
every failure is a QueryError saying what happened. A 429 is asked again after its Retry-After
(RFC 9110) when that falls within the timeout, as datadog.py does with Datadog's reset header.
Called in the controller's worker thread."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception

from rollout.analysis.provider import QueryError

SNIPPET = 200  # characters of an unexpected answer quoted in a message


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


def snippet(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:SNIPPET] + ("..." if len(flat) > SNIPPET else ""))


class _RateLimited(QueryError):
    """A 429 whose Retry-After says when to ask again."""

    def __init__(self, message: str, wait: float) -> None:
        super().__init__(message)
        self.wait = wait


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (RFC 9110: delay-seconds or an HTTP date), or None."""
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def exchange(
    method: str,
    url: str,
    *,
    what: str,
    timeout: float,
    max_bytes: int,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
    json_body: Any = None,
    data: bytes | None = None,
    insecure: bool = False,
) -> Answer:
    """The answer's status and text; each message starts with `what` and the url ("NRQL '...':
    https://..."), or with `what` alone when it names the url itself ("GET https://..."). A 429
    is asked again after its Retry-After when that still falls within `timeout`."""
    subject = what if url in what else f"{what}: {url}"
    deadline = time.monotonic() + timeout

    def fits(exc: BaseException) -> bool:
        return isinstance(exc, _RateLimited) and time.monotonic() + exc.wait < deadline

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return exc.wait if isinstance(exc, _RateLimited) else 0.0

    try:
        for attempt in Retrying(retry=retry_if_exception(fits), wait=wait, reraise=True):
            with attempt:
                return _once(
                    method,
                    url,
                    subject,
                    deadline,
                    timeout,
                    max_bytes,
                    headers,
                    params,
                    json_body,
                    data,
                    insecure,
                )
    except _RateLimited as exc:
        raise QueryError(
            f"{exc} (asked to retry after {exc.wait:g}s, past the {timeout:g}s timeout)"
        ) from exc
    raise AssertionError("unreachable: Retrying returns or raises")


def _once(
    method: str,
    url: str,
    subject: str,
    deadline: float,
    timeout: float,
    max_bytes: int,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None,
    json_body: Any,
    data: bytes | None,
    insecure: bool,
) -> Answer:
    try:
        with requests.request(
            method,
            url,
            params=params,
            json=json_body,
            data=data,
            headers=dict(headers),
            timeout=max(0.001, deadline - time.monotonic()),
            verify=not insecure,
            allow_redirects=False,
            stream=True,
        ) as response:
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if time.monotonic() > deadline:
                    raise QueryError(f"{subject} did not answer within {timeout:g}s")
                if len(body) > max_bytes:
                    raise QueryError(f"{subject} answered more than {max_bytes} bytes")
    except requests.Timeout as exc:
        raise QueryError(f"{subject} did not answer within {timeout:g}s") from exc
    except requests.ConnectionError as exc:
        raise QueryError(f"{subject} is unreachable (connection failed)") from exc
    except requests.RequestException as exc:  # an invalid URL or header value, a TLS failure
        raise QueryError(f"{subject}: {exc}") from exc
    text = body.decode(response.encoding or "utf-8", errors="replace")
    if response.status_code == 429:
        after = _retry_after(response.headers.get("Retry-After"))
        message = f"{subject} answered HTTP 429 (rate limited): {snippet(text)}"
        if after is None:
            raise QueryError(f"{message}, with no Retry-After")
        raise _RateLimited(message, after)
    if not 200 <= response.status_code < 300:
        where = f" (to {response.headers.get('Location')})" if response.is_redirect else ""
        raise QueryError(f"{subject} answered HTTP {response.status_code}{where}: {snippet(text)}")
    return Answer(response.status_code, text)
