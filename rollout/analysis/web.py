"""The web provider: one HTTP GET or POST per measurement to a URL that answers JSON, for signals
behind an HTTP API (a load-test service, a SaaS metrics query API, a custom health endpoint).

Resolved with the other metrics (pure): each argument is escaped for where it stands, percent-
encoded as a component in the URL's path and query, limited to a host name (and port) in its host,
refused with a CR or LF in a header, and substituted into the parsed JSON body (so JSON string
escaping applies and no value is ever spliced into the text). Measured by the controller in a
worker thread: `jsonPath` (jsonpath-ng, with its filter extensions) picks the value out of the
answer, one match as it is, several as a list. A 3xx, 4xx or 5xx, a timeout (over the whole
exchange) or a body that is not JSON is an Error measurement; a jsonPath that matches nothing is
no data (Inconclusive). Nothing is retried within a measurement: a POST may start work on the
other side (a load test), and errors are retried at the metric's next interval within
consecutiveErrorLimit."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from jsonpath_ng.ext import parse as parse_json_path

from rollout.analysis.args import PLACEHOLDER, ArgError, placeholders
from rollout.analysis.expressions import Result
from rollout.analysis.http import exchange
from rollout.analysis.provider import NoData, QueryError, SecretUse, header_uses, logged
from rollout.api.base import parse_duration
from rollout.api.templates import RequestHeader, WebProvider

MAX_ANSWER_BYTES = 1024 * 1024  # an answer larger than this is not a metric
SNIPPET = 120  # characters of an unexpected answer quoted in a message
_HOST_VALUE = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")  # a host name, with a port at most
_HEADER_BREAKS = ("\r", "\n", "\0")


@dataclass(frozen=True)
class WebRequest:
    """An HTTP request with its arguments filled in, escaped for where each stands."""

    method: str
    url: str
    headers: tuple[RequestHeader, ...]
    body: str | None  # JSON text
    json_path: str
    timeout: float
    insecure: bool

    @property
    def text(self) -> str:
        return f"{self.method} {self.url}"


def _value(name: str, args: Mapping[str, str]) -> str:
    if name not in args:
        raise ArgError(f"argument {name!r} has no value (give it in the Rollout's analysis args)")
    return args[name]


def substitute_url(url: str, args: Mapping[str, str]) -> str:
    """Arguments in the host limited to a host name and port; in the path, query and fragment
    percent-encoded as one component (a value cannot add a path segment or a query parameter)."""
    split = urlsplit(url)
    authority_end = len(f"{split.scheme}://{split.netloc}")

    def host(match: re.Match[str]) -> str:
        value = _value(match.group(1), args)
        if not _HOST_VALUE.match(value):
            raise ArgError(
                f"argument {match.group(1)!r} = {value!r} is used in the url's host, where only "
                "a host name (letters, digits, dots and dashes) and a :port are allowed"
            )
        return value

    def component(match: re.Match[str]) -> str:
        return quote(_value(match.group(1), args), safe="")

    return PLACEHOLDER.sub(host, url[:authority_end]) + PLACEHOLDER.sub(component, url[authority_end:])


def substitute_header(header: RequestHeader, args: Mapping[str, str]) -> RequestHeader:
    if header.value is None:
        return header  # read from a Secret by the controller, never substituted
    value = PLACEHOLDER.sub(lambda m: _value(m.group(1), args), header.value)
    if any(ch in value for ch in _HEADER_BREAKS):
        raise ArgError(f"header {header.key}: a value with a line break (CR or LF) cannot be sent")
    return header.model_copy(update={"value": value})


def substitute_body(body: str, args: Mapping[str, str]) -> str:
    """The JSON body with arguments substituted inside its strings (keys and values), written
    back as JSON: a value is always inside the string it was placed in."""

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            return PLACEHOLDER.sub(lambda m: _value(m.group(1), args), node)
        if isinstance(node, list):
            return [fill(item) for item in node]
        if isinstance(node, dict):
            return {fill(key): fill(value) for key, value in node.items()}
        return node

    return json.dumps(fill(json.loads(body)), separators=(",", ":"))


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:SNIPPET] + ("..." if len(flat) > SNIPPET else ""))


class WebMetrics:
    """`provider.web`: the provider seam for HTTP APIs answering JSON (see provider.py)."""

    kind = "web"
    json_result = True

    def placeholders(self, config: WebProvider) -> set[str]:
        found = placeholders(config.url) | placeholders(config.body or "")
        for header in config.headers:
            found |= placeholders(header.value or "")
        return found

    def resolve(self, config: WebProvider, args: Mapping[str, str]) -> WebRequest:
        return WebRequest(
            method=config.method,
            url=substitute_url(config.url, args),
            headers=tuple(substitute_header(h, args) for h in config.headers),
            body=substitute_body(config.body, args) if config.body is not None else None,
            json_path=config.json_path,
            timeout=parse_duration(config.timeout),
            insecure=config.insecure,
        )

    def secret_uses(self, config: WebProvider) -> list[SecretUse]:
        return header_uses(config.headers)

    def measure(
        self,
        request: WebRequest,
        headers: Mapping[str, str],
        clients: Mapping[str, Any],
        context: Mapping[str, str],
    ) -> Result:
        return logged(
            "web measurement",
            lambda: _measure(request, headers),
            context,
            request=request.text,
        )


def _measure(request: WebRequest, headers: Mapping[str, str]) -> Result:
    sent = {"Accept": "application/json", **headers}
    if request.body is not None and not any(k.lower() == "content-type" for k in sent):
        sent["Content-Type"] = "application/json"
    what = request.text
    answer = exchange(
        request.method,
        request.url,
        what=what,
        timeout=request.timeout,
        max_bytes=MAX_ANSWER_BYTES,
        headers=sent,
        data=request.body.encode() if request.body is not None else None,
        insecure=request.insecure,
    )
    try:
        value = json.loads(answer.text, parse_constant=_not_json)
    except ValueError as exc:
        raise QueryError(
            f"{what} answered HTTP {answer.status} with a body that is not JSON: {_snippet(answer.text)}"
        ) from exc
    matches = [match.value for match in parse_json_path(request.json_path).find(value)]
    if not matches:
        raise NoData(f"jsonPath {request.json_path} matched nothing in the answer of {what}")
    return matches[0] if len(matches) == 1 else matches


PROVIDER = WebMetrics()
