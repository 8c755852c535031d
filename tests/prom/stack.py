"""A real Prometheus and real workload processes for the analysis tests.

`PrometheusServer` runs the `prometheus` binary (Debian package `prometheus`) on a free loopback
port, scraping every second; `Workload` runs one revision of tests/prom/workload.py; and
`LoadGenerator` sends requests to the revisions in the proportion the HTTPRoute's weights give
(read from the route object, with each Service's `rollout.dev/revision` selector telling which
revision a backend is), or in proportion to ready pods when there is no route."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import yaml

from rollout.analysis.resolve import TemplateKey, builtin_args, resolve
from rollout.api.rollout import Rollout
from rollout.api.spec import RolloutAnalysis
from rollout.api.templates import parse_template
from rollout.kube import SERVICES, Resource
from tests.processes import debian_binary, free_port

REVISION = "rollout.dev/revision"
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
BUILTIN_TEMPLATES = Path(__file__).resolve().parents[2] / "examples" / "analysis-templates.yaml"


def first_query(rollout: Rollout, ref: RolloutAnalysis, stable: str, canary: str) -> str:
    """The first metric's query of a built-in template reference, resolved as the controller
    resolves it for this Rollout (to poll Prometheus for the value the controller will see)."""
    lookup = {
        TemplateKey(t["metadata"]["name"], True): parse_template(t)
        for t in yaml.safe_load_all(BUILTIN_TEMPLATES.read_text())
    }
    metrics, _ = resolve(ref, "query", lookup, builtin_args(rollout, stable, canary), bounded=False)
    return metrics[0].query


def _wait_http(url: str, timeout: float = 20.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers or {}), timeout=1
            ) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout}s")
        time.sleep(0.1)


def prometheus_binary() -> str:
    return debian_binary("prometheus", "prometheus")


class Workload:
    """One revision of the application, as a process of its own. `spaced_errors`: exactly one
    request in 1 / error_ratio errs, rather than each at random (see tests/prom/workload.py)."""

    def __init__(
        self,
        revision: str,
        *,
        error_ratio: float = 0.0,
        latency_ms: float = 50.0,
        spaced_errors: bool = False,
    ) -> None:
        self.revision = revision
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.prom.workload",
                "--port",
                str(self.port),
                "--error-ratio",
                str(error_ratio),
                "--latency-ms",
                str(latency_ms),
                *(["--spaced-errors"] if spaced_errors else []),
            ],
            cwd=Path(__file__).resolve().parents[2],
        )
        _wait_http(f"{self.url}/metrics")

    def configure(self, **settings: float) -> None:
        request = urllib.request.Request(
            f"{self.url}/config", data=json.dumps(settings).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class PrometheusServer:
    """`auth=(user, password)`: every request needs that basic auth (Prometheus' web config).
    `discovery`: the URL of an HTTP service discovery endpoint that names the targets and their
    labels (as a Kubernetes scrape config's relabelling would from the pods), instead of one
    static target per workload labelled with its revision (the server does not wait for any:
    `wait_scraping(n)` once the pods exist)."""

    def __init__(
        self,
        workloads: list[Workload],
        namespace: str,
        auth: tuple[str, str] | None = None,
        discovery: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        """`labels`: more target labels, on every workload's series."""
        self.headers = {"Authorization": basic_auth(*auth)} if auth else {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.directory = tempfile.mkdtemp(prefix="prometheus-")
        targets: dict[str, Any] = {
            "static_configs": [
                {
                    "targets": [f"127.0.0.1:{w.port}"],
                    # What a Kubernetes scrape config's relabelling gives from pod labels.
                    "labels": {"namespace": namespace, "rollout_dev_revision": w.revision, **(labels or {})},
                }
                for w in workloads
            ]
        }
        if discovery is not None:
            targets = {"http_sd_configs": [{"url": discovery, "refresh_interval": "1s"}]}
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "app", **targets}],
        }
        config_path = Path(self.directory, "prometheus.yml")
        config_path.write_text(yaml.safe_dump(config))
        flags = [
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.directory}/data",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        if auth:
            hashed = bcrypt.hashpw(auth[1].encode(), bcrypt.gensalt(rounds=4)).decode()
            web_config = Path(self.directory, "web.yml")
            web_config.write_text(yaml.safe_dump({"basic_auth_users": {auth[0]: hashed}}))
            flags.append(f"--web.config.file={web_config}")
        self.process = subprocess.Popen(
            [prometheus_binary(), *flags],
            stdout=subprocess.DEVNULL,
            stderr=open(Path(self.directory, "prometheus.log"), "w"),
        )
        try:
            _wait_http(f"{self.url}/-/ready", headers=self.headers)
            self.wait_scraping(0 if discovery is not None else len(workloads))
        except BaseException:  # nobody will stop a server whose constructor failed
            self.stop()
            raise

    def wait_scraping(self, targets: int, timeout: float = 30.0) -> None:
        """Prometheus hands new targets to its scrapers only every few seconds: wait until each
        target has been scraped, so that a test's first queries see data."""
        deadline = time.monotonic() + timeout
        query = urllib.parse.quote("count(up == 1)")
        while targets and time.monotonic() < deadline:
            request = urllib.request.Request(f"{self.url}/api/v1/query?query={query}", headers=self.headers)
            with urllib.request.urlopen(request, timeout=2) as response:
                result = json.load(response)["data"]["result"]
            if result and int(float(result[0]["value"][1])) >= targets:
                return
            time.sleep(0.2)
        if targets:
            raise TimeoutError(f"Prometheus did not scrape its {targets} targets within {timeout}s")

    def kill(self) -> None:
        """As a crash would: no clean shutdown."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
        shutil.rmtree(self.directory, ignore_errors=True)


WeightsFn = Callable[[], Awaitable[dict[str, int]]]


async def route_revision_weights(kube: Any, namespace: str, route: str, rule: str = "app") -> dict[str, int]:
    """revision -> weight, from an HTTPRoute rule's backendRefs and each Service's revision
    selector: what a proxy following the route sends to each revision."""
    doc = await kube.get(HTTPROUTES, namespace, route)
    weights: dict[str, int] = {}
    for ref in next(r for r in doc["spec"]["rules"] if r.get("name") == rule)["backendRefs"]:
        selector = (await kube.get(SERVICES, namespace, ref["name"]))["spec"]["selector"]
        if REVISION in selector:
            weights[selector[REVISION]] = weights.get(selector[REVISION], 0) + ref["weight"]
    return weights


class LoadGenerator:
    """Requests at about `rate` per second over `workers` connections; each goes to a revision
    drawn with the weights `weights()` gives (revision -> weight), refreshed every 0.2 s."""

    def __init__(
        self, workloads: list[Workload], weights: WeightsFn, *, rate: float = 40.0, workers: int = 8
    ):
        self.by_revision = {w.revision: w for w in workloads}
        self.weights_fn, self.rate, self.workers = weights, rate, workers
        self.weights: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> LoadGenerator:
        self.weights = await self.weights_fn()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._tasks = [asyncio.create_task(self._refresh())]
        self._tasks += [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._session.close()

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            with contextlib.suppress(Exception):  # a route read that fails keeps the last weights
                self.weights = await self.weights_fn()

    async def _worker(self) -> None:
        pause = self.workers / self.rate
        while True:
            started = time.monotonic()
            choices = [(rev, w) for rev, w in self.weights.items() if w > 0 and rev in self.by_revision]
            if choices:
                revision = random.choices([c[0] for c in choices], [c[1] for c in choices])[0]
                self.sent[revision] = self.sent.get(revision, 0) + 1
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with self._session.get(self.by_revision[revision].url + "/") as response:
                        await response.read()
            await asyncio.sleep(max(0.0, pause - (time.monotonic() - started)))
