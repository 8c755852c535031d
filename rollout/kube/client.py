"""A small async facade over the `kubernetes` client for the few calls the controller makes.

Calls run in worker threads so that the kopf event loop never blocks; transient failures
(connection errors, timeouts, 429, 5xx) are retried with tenacity, a 429 after the server's
Retry-After (capped), while 404/409/422 go to the caller."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
import structlog
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.wait import wait_base

from rollout.kube.guard import guarded
from rollout.kube.resources import PODS, Resource

log = structlog.get_logger("rollout.kube")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
FIELD_MANAGER = "rollout-controller"


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in (429, 500, 502, 503, 504)
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def retry_after(exc: BaseException | None) -> float | None:
    """The seconds a 429 (or 503) asks the client to wait, from its Retry-After header."""
    if not isinstance(exc, ApiException) or exc.status not in (429, 503) or not exc.headers:
        return None
    try:
        return max(float(exc.headers.get("Retry-After")), 0.0)
    except (TypeError, ValueError):  # absent, or an HTTP date: the usual backoff applies
        return None


class WaitRetryAfter(wait_base):
    """Wait as long as the server's Retry-After says (at most `cap`), else as `fallback` does."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        after = retry_after(outcome.exception() if outcome is not None and outcome.failed else None)
        return self.fallback(retry_state) if after is None else min(after, self.cap)


API_THREADS = 64


def client_configuration() -> client.Configuration:
    """urllib3 retries nothing: left to itself it would retry GETs (not writes) three times and
    sleep out a 429's Retry-After uncapped, under the per-call timeout. `Kube.request` is the one
    retry layer, the same for reads and writes."""
    configuration = client.Configuration()
    configuration.retries = False
    # One connection per API thread (see Kube.threads), instead of urllib3's default of ten.
    configuration.connection_pool_maxsize = API_THREADS
    return configuration


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster configuration when running in a Pod, else the kubeconfig (KUBECONFIG or ~/.kube)."""
    configuration = client_configuration()
    try:
        if kubeconfig:
            raise config.ConfigException("explicit kubeconfig")
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    if not configuration.verify_ssl:
        # insecure-skip-tls-verify: said once here, as kubectl says nothing at all; urllib3 would
        # build and filter a warning on every request (6% of the controller's CPU under load).
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        log.warning("TLS verification of the API server is off (insecure-skip-tls-verify)")
    return client.ApiClient(configuration)


def api_client_for(server: str) -> client.ApiClient:
    """A client for a plain-HTTP API server with no authentication (the sandbox's emulator)."""
    configuration = client_configuration()
    configuration.host = server.rstrip("/")
    return client.ApiClient(configuration)


def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials from the same configuration the controller's own client uses, so both
    talk to one server as one identity (kubeconfig, in-cluster, or the sandbox's plain HTTP)."""
    if configuration.refresh_api_key_hook is not None:  # exec plugins and expiring tokens
        configuration.refresh_api_key_hook(configuration)
    token = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
    scheme, _, value = (token or "").partition(" ")
    return kopf.ConnectionInfo(
        server=str(configuration.host),
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        scheme=scheme if value else ("Bearer" if token else None),
        token=value or token or None,
        username=configuration.username or None,
        password=configuration.password or None,
    )


USER_AGENT = "rollout-controller/0.1.0"


class Kube:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        timeout: float = 10.0,
        attempts: int = 4,
        max_retry_after: float = 10.0,
        backoff: float = 0.1,
        threads: int = API_THREADS,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self.api = api
        self.field_manager = field_manager  # the CLI's writes name a manager of their own
        # Calls block in the sync client; a pool of their own, so that parallel reconciles are not
        # held to asyncio's default pool (cores + 4 threads) that Prometheus queries also use.
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="kube")
        self.timeout = timeout  # per attempt; a timed-out call is retried like a 503
        self.attempts = attempts
        self.max_retry_after = max_retry_after
        self.backoff = backoff  # the first wait between attempts; it doubles, up to 2 s
        # Writes are refused while this says False (leader election: a follower, or a lost lease).
        self.fence: Callable[[], bool] | None = None

    def _call(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
        content_type: str | None,
        text: bool = False,
    ) -> Any:
        # A real API server answers 406 to `Accept: text/plain` for a pod's log; kubectl sends */*.
        headers = {"Accept": "application/json, */*" if text else "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        params = self.api.param_serialize(
            method,
            path,
            query_params=list(query.items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*params, _request_timeout=self.timeout)
        response.read()
        answer = response.data.decode("utf-8", errors="replace") if response.data else ""
        if not 200 <= response.status < 300:
            raise ApiException(
                status=response.status, reason=response.reason, http_resp=response, body=answer
            )
        if text:
            return answer
        return json.loads(answer) if answer else None

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        attempts: int | None = None,
        text: bool = False,
    ) -> Any:
        """One API call, transient failures retried (`attempts`: this call's own limit); `text`:
        the answer as text (a pod's log), else parsed JSON."""
        if method in ("POST", "PUT", "PATCH"):  # every write names us, for managedFields and GitOps diffs
            query = {"fieldManager": self.field_manager, **(query or {})}
        retrying = AsyncRetrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_attempt(attempts or self.attempts),
            wait=WaitRetryAfter(wait_exponential(multiplier=self.backoff, max=2.0), self.max_retry_after),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt, guarded(method, path, query, self.fence):  # metrics, fence, 403 line
                call = functools.partial(self._call, method, path, query or {}, body, content_type, text)
                return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    @contextlib.contextmanager
    def reads_for(self, rollout: tuple[str, str]) -> Iterator[None]:
        """Record what one reconcile of `rollout` reads (a cached facade triggers it again when
        any of that changes); nothing to record when every read goes to the API server."""
        yield

    def forget_reads(self, rollout: tuple[str, str]) -> None:
        """Drop what `reads_for` recorded for a Rollout that is gone."""

    def known_version(self, res: Resource, namespace: str | None, name: str) -> str | None:
        """The resourceVersion a cache holds for the object; None without a cache."""
        return None

    async def get_fresh(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Read from the API server itself, whatever a cache holds (after a conflict)."""
        return await Kube.get(self, res, namespace, name)

    def claims_index(self, namespace: str) -> Any:
        """The index of the namespace's Rollouts' claims when a cache keeps one (CachedKube);
        None: the caller reads every Rollout."""
        return None

    async def peek_all(self, res: Resource, namespace: str | None) -> list[dict[str, Any]]:
        """Every object of a kind in a namespace, for reading only (a cache hands out its own
        copies, uncopied)."""
        return await self.list(res, namespace)

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", res.path(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def list(
        self, res: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else {}
        result = await self.request("GET", res.path(namespace), query=query)
        return list(result.get("items") or [])

    async def create(self, res: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", res.path(namespace), body=body)

    async def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        sub: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            res.path(namespace, name, sub),
            body=body,
            content_type=content_type,
        )

    async def evict(self, namespace: str, name: str) -> None:
        """Evict a pod (policy/v1 Eviction): the API server deletes it unless a PodDisruptionBudget
        forbids it now, which is a 429 raised at once (not retried here: the caller looks again)."""
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        await self.request("POST", PODS.path(namespace, name, "eviction"), body=body, attempts=1)

    async def pod_log(self, namespace: str, name: str, *, tail_lines: int, limit_bytes: int) -> str:
        """The last lines of a pod's log (its only or first container), at most `limit_bytes`;
        tried once (the caller says the log is unavailable rather than wait)."""
        query = {"tailLines": str(tail_lines), "limitBytes": str(limit_bytes)}
        path = PODS.path(namespace, name, "log")
        return str(await self.request("GET", path, query=query, attempts=1, text=True))

    async def delete(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        *,
        resource_version: str | None = None,
        propagation: str | None = None,
    ) -> None:
        """Delete; with `resource_version`, only that version of the object (else 409); with
        `propagation` (Background, Foreground), its dependents too (a Job's pods)."""
        body: dict[str, Any] | None = None
        if resource_version:
            body = {"preconditions": {"resourceVersion": resource_version}}
        if propagation:
            body = {**(body or {}), "propagationPolicy": propagation}
        try:
            await self.request("DELETE", res.path(namespace, name), body=body)
        except ApiException as exc:
            if exc.status != 404:
                raise


def api_message(exc: ApiException) -> str:
    """The API server's own words for an error: its Status body's message, else the body or
    the HTTP reason."""
    try:
        found = json.loads(exc.body or "{}").get("message")
    except (TypeError, ValueError, AttributeError):
        found = None
    return str(found or exc.body or exc.reason)
