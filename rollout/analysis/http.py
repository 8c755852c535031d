"""One bounded HTTP exchange for the providers that speak plain HTTP (web.py, newrelic.py, graphite.py):
the timeout bounds the whole exchange, not only each read (a trickling answer ends too), the
answer is capped in size, redirects are not followed (a login page is no answer), and every
failure is a QueryError saying what happened. Called in the controller's worker thread."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from rollout.analysis.provider import QueryError

SNIPPET = 200  # characters of an unexpected answer quoted in a message


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


def snippet(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:SNIPPET] + ("..." if len(flat) > SNIPPET else ""))


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
    https://..."), or with `what` alone when it names the url itself ("GET https://...")."""
    subject = what if url in what else f"{what}: {url}"
    deadline = time.monotonic() + timeout
    try:
        with requests.request(
            method,
            url,
            params=params,
            json=json_body,
            data=data,
            headers=dict(headers),
            timeout=timeout,
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
    if not 200 <= response.status_code < 300:
        where = f" (to {response.headers.get('Location')})" if response.is_redirect else ""
        raise QueryError(f"{subject} answered HTTP {response.status_code}{where}: {snippet(text)}")
    return Answer(response.status_code, text)
