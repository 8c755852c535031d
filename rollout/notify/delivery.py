"""Delivery of webhook notifications, off the reconcile path: `notify` (called by the reconciler
right after it posts an Event) only builds the notice and puts it on a bounded queue; a worker
task, started and stopped with the operator (operator.py), hands it to a lane per webhook that
wants its trigger. A lane sends its notices one after the other, so each webhook hears of a
Rollout's moments in order, and lanes run side by side, so a webhook that is down or slow
delays only its own notices, never another team's.

Each POST has a short timeout and is retried with exponential backoff (tenacity) on no answer,
a timeout, a 429 or a 5xx; a 4xx other than 429 is not retried. When the retries are spent,
the queue is full, or the URL's Secret is missing, the notification is given up: a log line,
`rollout_notifications_total{outcome}`, and (but for a full queue) a Warning Event on the
Rollout. URLs are secrets (a Slack webhook's path is its token): never logged."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
import structlog
from kubernetes.client.exceptions import ApiException
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from rollout.api.rollout import parse_rollout
from rollout.api.status import RolloutStatus
from rollout.engine.types import Event
from rollout.kube import EVENTS, USER_AGENT, Kube
from rollout.kube.events import event_body
from rollout.notify.messages import Notice, body_of, notice_of, trigger_of
from rollout.notify.targets import ControllerTargets, Target, spec_targets, url_of
from rollout.observability import metrics

log = structlog.get_logger("rollout.notify")


@dataclass(frozen=True)
class NotifySettings:
    configmap: str | None = None  # NAMESPACE/NAME of the controller-wide webhooks
    timeout: float = 2.0  # seconds for one POST (connect, then the answer)
    attempts: int = 4  # POSTs per notification and webhook at most
    backoff: float = 0.5  # seconds before the second attempt, doubling after each
    max_backoff: float = 8.0
    queue_size: int = 1000  # notifications waiting at most, and notices per webhook; more are dropped
    config_ttl: float = 10.0  # seconds the ConfigMap's webhooks are used before it is read again


class Retryable(Exception):
    """No answer, a timeout, a 429 or a 5xx: worth another attempt."""


class Refused(Exception):
    """A 4xx other than 429: the same request would be refused again."""


def post(url: str, body: dict[str, Any], timeout: float) -> int:
    """One POST (in a worker thread); the status code, or Retryable/Refused. Exception texts of
    requests name the URL, so only their class is kept."""
    try:
        # No redirects: whoever wrote the Secret chose this host, not where it points further.
        answer = requests.post(
            url, json=body, timeout=timeout, headers={"User-Agent": USER_AGENT}, allow_redirects=False
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise Retryable(type(exc).__name__) from None
    except requests.RequestException as exc:
        raise Refused(type(exc).__name__) from None
    if answer.status_code == 429 or answer.status_code >= 500:
        raise Retryable(f"HTTP {answer.status_code}")
    if answer.status_code >= 400:
        raise Refused(f"HTTP {answer.status_code}")
    return answer.status_code


@dataclass(frozen=True)
class Queued:
    notice: Notice
    targets: tuple[Target, ...]  # of the Rollout's spec when the Event was posted
    rollout: dict[str, Any]  # its apiVersion/kind/metadata, for Warning Events


class Notifier:
    def __init__(self, kube: Kube, settings: NotifySettings | None = None) -> None:
        self.kube = kube
        self.settings = settings or NotifySettings()
        self.controller_targets = ControllerTargets(kube, self.settings.configmap, self.settings.config_ttl)
        self._queue: asyncio.Queue[Queued] = asyncio.Queue(maxsize=self.settings.queue_size)
        self._task: asyncio.Task[None] | None = None
        # Threads of their own: webhooks waiting on timeouts never hold up the default executor,
        # where the analysis measurements run.
        self._posting = ThreadPoolExecutor(max_workers=4, thread_name_prefix="notify")
        # One lane per webhook URL source (the Secret's namespace, name and key).
        self._lanes: dict[
            tuple[str, str, str], tuple[asyncio.Queue[tuple[Queued, Target]], asyncio.Task[None]]
        ] = {}

    # --- the reconcile's side: never waits, never raises ------------------------------------

    def notify(self, raw: dict[str, Any], status: RolloutStatus, event: Event, now: datetime) -> None:
        """Queue the notification of an Event just posted (nothing when no trigger names it)."""
        if trigger_of(event.reason) is None:
            return
        try:
            parsed = parse_rollout(raw)
            if parsed.rollout is None:
                return
            targets = tuple(spec_targets(parsed.rollout))
            if not targets and not self.settings.configmap:
                return
            notice = notice_of(parsed.rollout, status, event, now)
        except Exception:  # a notification is never a reason for a reconcile to fail
            log.exception("notification not queued", reason=event.reason)
            return
        assert notice is not None
        meta = raw.get("metadata") or {}
        rollout = {"metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}}
        try:
            self._queue.put_nowait(Queued(notice, targets, rollout))
        except asyncio.QueueFull:
            metrics.notification(notice.trigger, "dropped")
            log.warning(
                "notification dropped: the queue is full",
                namespace=notice.namespace,
                name=notice.name,
                trigger=notice.trigger,
                queued=self._queue.qsize(),
            )

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._work(), name="notifications")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        lanes, self._lanes = list(self._lanes.values()), {}
        for running in [task, *(lane for _, lane in lanes)]:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        left = 0
        while not self._queue.empty():
            metrics.notification(self._queue.get_nowait().notice.trigger, "dropped")
            left += 1
        for queue, _ in lanes:
            while not queue.empty():
                metrics.notification(queue.get_nowait()[0].notice.trigger, "dropped")
                left += 1
        if left:
            log.warning("notifications not sent: the controller stopped", dropped=left)
        self._posting.shutdown(wait=False, cancel_futures=True)

    async def drained(self) -> None:
        """Until every queued notification has been handled (for tests and benchmarks)."""
        await self._queue.join()
        for queue, _ in list(self._lanes.values()):
            await queue.join()

    # --- the worker ---------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._deliver(item)
            except Exception:
                log.exception("notification failed", trigger=item.notice.trigger)
            finally:
                self._queue.task_done()

    async def _deliver(self, item: Queued) -> None:
        targets = list(item.targets)
        try:
            targets += await self.controller_targets.targets()
        except ApiException as exc:
            log.warning("controller-wide notifications not read", status=exc.status)
        for target in targets:
            if not target.webhook.wants(item.notice.trigger):
                continue
            try:
                self._lane(target).put_nowait((item, target))
            except asyncio.QueueFull:
                metrics.notification(item.notice.trigger, "dropped")
                log.warning(
                    "notification dropped: the webhook's lane is full",
                    target=target.label,
                    namespace=item.notice.namespace,
                    name=item.notice.name,
                    trigger=item.notice.trigger,
                )

    def _lane(self, target: Target) -> asyncio.Queue[tuple[Queued, Target]]:
        ref = target.webhook.url_from.secret_key_ref
        key = (target.secret_namespace, ref.name, ref.key)
        if key not in self._lanes:
            queue: asyncio.Queue[tuple[Queued, Target]] = asyncio.Queue(maxsize=self.settings.queue_size)
            task = asyncio.get_running_loop().create_task(self._drive(queue), name=f"notifications {key}")
            self._lanes[key] = (queue, task)
        return self._lanes[key][0]

    async def _drive(self, queue: asyncio.Queue[tuple[Queued, Target]]) -> None:
        while True:
            item, target = await queue.get()
            try:
                await self._send(item, target)
            except Exception:
                log.exception("notification failed", trigger=item.notice.trigger, target=target.label)
            finally:
                queue.task_done()

    async def _send(self, item: Queued, target: Target) -> None:
        notice = item.notice
        where = {"namespace": notice.namespace, "name": notice.name, "trigger": notice.trigger}
        url, why = await url_of(self.kube, target)
        if url is None:
            metrics.notification(notice.trigger, "no_url")
            log.warning("notification not sent", target=target.label, problem=why, **where)
            await self._warn(item, f"{target.label}: {why}; {notice.trigger} not notified")
            return
        body = body_of(notice, target.webhook.format)
        settings = self.settings
        loop = asyncio.get_running_loop()
        tries = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(settings.attempts),
                wait=wait_exponential(multiplier=settings.backoff, max=settings.max_backoff),
                retry=retry_if_exception_type(Retryable),
                reraise=True,
            ):
                with attempt:
                    tries += 1
                    await loop.run_in_executor(self._posting, post, url, body, settings.timeout)
        except (Retryable, Refused) as exc:
            metrics.notification(notice.trigger, "failed")
            log.warning("notification given up", target=target.label, attempts=tries, error=str(exc), **where)
            await self._warn(
                item, f"{target.label}: {exc} after {tries} attempt(s); {notice.trigger} not notified"
            )
            return
        metrics.notification(notice.trigger, "sent")
        log.info("notification sent", target=target.label, attempts=tries, **where)

    async def _warn(self, item: Queued, message: str) -> None:
        event = Event("Warning", "NotificationNotSent", message)
        try:
            await self.kube.create(EVENTS, item.notice.namespace, event_body(item.rollout, event))
        except ApiException as exc:
            log.warning("event not posted", reason=event.reason, status=exc.status)
