"""Who is told: the webhooks of a Rollout's spec.notifications (their Secrets in the Rollout's
namespace) and those of the controller-wide ConfigMap (`--notifications-configmap NS/NAME`, key
`notifications.yaml`, the same shape as spec.notifications; their Secrets in the ConfigMap's
namespace), and where each one's URL is.

The ConfigMap is read from the API server (a GET, no watch: one object) at most once per TTL,
by the delivery worker only, never by a reconcile. Secrets are read through the controller's
cache (the same one the analysis headers use)."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
import yaml
from pydantic import ValidationError

from rollout.api.rollout import Rollout
from rollout.api.spec import Notifications, Webhook
from rollout.kube import CONFIGMAPS, SECRETS, Kube

log = structlog.get_logger("rollout.notify")

CONFIGMAP_KEY = "notifications.yaml"


@dataclass(frozen=True)
class Target:
    webhook: Webhook
    secret_namespace: str
    source: str  # "spec.notifications" or "ConfigMap NS/NAME": for logs and Events

    @property
    def label(self) -> str:
        return f"webhook {self.webhook.name!r} of {self.source}"


def spec_targets(rollout: Rollout) -> list[Target]:
    found = rollout.spec.notifications or Notifications()
    return [Target(w, rollout.metadata.namespace, "spec.notifications") for w in found.webhooks]


def parse_configmap(configmap: dict[str, object], where: str) -> tuple[list[Webhook], str]:
    """The webhooks of the ConfigMap, or none and why (a problem with its field path)."""
    data = configmap.get("data")
    text = data.get(CONFIGMAP_KEY) if isinstance(data, dict) else None
    if text is None:
        return [], f"ConfigMap {where} has no key data.{CONFIGMAP_KEY}"
    try:
        return Notifications.model_validate(yaml.safe_load(text) or {}).webhooks, ""
    except yaml.YAMLError as exc:
        return [], f"ConfigMap {where} data.{CONFIGMAP_KEY} is not YAML: {exc}"
    except ValidationError as exc:
        problems = [
            ".".join(str(p) for p in err["loc"]) + ": " + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        ]
        return [], f"ConfigMap {where} data.{CONFIGMAP_KEY}: " + "; ".join(problems)


class ControllerTargets:
    """The controller-wide webhooks, read again at most every `ttl` seconds; a ConfigMap that is
    missing or wrong gives none (logged once per change of the problem)."""

    def __init__(
        self, kube: Kube, reference: str | None, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.kube = kube
        self.namespace, _, self.name = (reference or "").partition("/")
        self.ttl = ttl
        self.clock = clock
        self._read_at: float | None = None
        self._targets: list[Target] = []
        self._problem = ""

    async def targets(self) -> list[Target]:
        if not self.name:
            return []
        now = self.clock()
        if self._read_at is not None and now - self._read_at < self.ttl:
            return self._targets
        where = f"{self.namespace}/{self.name}"
        configmap = await self.kube.get_fresh(CONFIGMAPS, self.namespace, self.name)
        self._read_at = now
        if configmap is None:
            webhooks, problem = [], f"ConfigMap {where} not found"
        else:
            webhooks, problem = parse_configmap(configmap, where)
        if problem and problem != self._problem:
            log.error("controller-wide notifications not used", problem=problem)
        self._problem = problem
        self._targets = [Target(w, self.namespace, f"ConfigMap {where}") for w in webhooks]
        return self._targets


async def url_of(kube: Kube, target: Target) -> tuple[str | None, str]:
    """The webhook's URL from its Secret, or None and why (Secret and key names only)."""
    ref = target.webhook.url_from.secret_key_ref
    where = f"Secret {target.secret_namespace}/{ref.name}"
    secret = await kube.get(SECRETS, target.secret_namespace, ref.name)
    if secret is None:
        return None, f"{where} not found"
    value = (secret.get("data") or {}).get(ref.key)
    if value is None:
        return None, f"{where} has no key {ref.key!r}"
    try:
        url = base64.b64decode(value, validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        return None, f"{where} key {ref.key!r} is not base64 text"
    if not url.startswith(("http://", "https://")):
        return None, f"{where} key {ref.key!r} does not hold an http(s) URL"
    return url, ""
