"""`rollout sandbox --analysis`: a real Prometheus (the `prometheus` binary) gating the canary.

The emulated cluster has no real pods, so the sandbox's application is emulated too: one
in-process HTTP endpoint exports `sandbox_http_requests_total{revision, code}` (prometheus-client)
for the traffic each revision would get, split by the HTTPRoute's weights (each backend Service's
`rollout.dev/revision` selector says which revision it reaches) over 20 requests a second. Pods of
an image in `failing_images` answer half of their requests with a 500. Prometheus scrapes that
endpoint every second; the controller's analysis step queries Prometheus like any other, sees
the error rate and aborts the update on its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp.web
import yaml
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from rollout.api.revision import REVISION_LABEL
from rollout.kube import REPLICASETS, SERVICES, Resource
from rollout.sandbox.cluster import EmulatedCluster
from rollout.sandbox.kubelet import images

HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
REQUESTS_PER_SECOND = 20.0
ERROR_SHARE = 0.5  # of a failing revision's requests
TEMPLATE = "error-rate"
MAX_ERROR_RATE = 0.05

ANALYSIS_STEPS: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"analysis": {"templates": [{"name": TEMPLATE}]}},
    {"setWeight": 50},
    {"pause": {"duration": "1s"}},
]


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def error_rate_template(namespace: str) -> dict[str, Any]:
    """The share of 500s among the canary revision's requests, measured 3 times a second apart."""
    selector = 'revision="{{args.canary-hash}}"'
    errors = f'sandbox_http_requests_total{{{selector}, code="500"}}'
    requests = f"sandbox_http_requests_total{{{selector}}}"
    query = f"(sum(rate({errors}[5s])) or vector(0)) / sum(rate({requests}[5s]))"
    return {
        "apiVersion": "rollout.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": TEMPLATE, "namespace": namespace},
        "spec": {
            "metrics": [
                {
                    "name": "error-rate",
                    "interval": "1s",
                    "count": 3,
                    "initialDelay": "5s",
                    "failureLimit": 0,
                    "successCondition": f"result[0] <= {MAX_ERROR_RATE}",
                    "provider": {"prometheus": {"query": query}},
                }
            ]
        },
    }


class EmulatedTraffic:
    """Counts the requests each revision would serve, following the route's weights."""

    def __init__(
        self, cluster: EmulatedCluster, namespace: str, route: str, failing_images: set[str]
    ) -> None:
        self.cluster, self.namespace, self.route = cluster, namespace, route
        self.failing_images = failing_images
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sandbox_http_requests", "Requests served", ["revision", "code"], registry=self.registry
        )
        self.last = time.monotonic()

    async def _shares(self) -> dict[str, float]:
        """revision -> share of the traffic, for revisions with ready pods."""
        route = await self.cluster.kube.get(HTTPROUTES, self.namespace, self.route) or {}
        ready = {
            (rs["metadata"].get("labels") or {}).get(REVISION_LABEL): rs
            for rs in await self.cluster.kube.list(REPLICASETS, self.namespace)
            if (rs.get("status") or {}).get("readyReplicas")
        }
        shares: dict[str, float] = {}
        refs = [
            r for rule in (route.get("spec") or {}).get("rules") or [] for r in rule.get("backendRefs") or []
        ]
        total = sum(int(r.get("weight", 1)) for r in refs) or 1
        for ref in refs:
            service = await self.cluster.kube.get(SERVICES, self.namespace, str(ref.get("name")))
            revision = ((service or {}).get("spec") or {}).get("selector", {}).get(REVISION_LABEL)
            if revision in ready:
                shares[revision] = shares.get(revision, 0.0) + int(ref.get("weight", 1)) / total
        return shares

    async def tick(self) -> None:
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        replicasets = {
            (rs["metadata"].get("labels") or {}).get(REVISION_LABEL): rs
            for rs in await self.cluster.kube.list(REPLICASETS, self.namespace)
        }
        for revision, share in (await self._shares()).items():
            served = REQUESTS_PER_SECOND * share * elapsed
            failing = bool(set(images(replicasets[revision])) & self.failing_images)
            errors = served * ERROR_SHARE if failing else 0.0
            self.requests.labels(revision, "200").inc(served - errors)
            self.requests.labels(revision, "500").inc(errors)

    async def metrics(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        await self.tick()
        return aiohttp.web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def _wait_scraping(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until Prometheus has scraped the app once: it hands a new target to its scrapers only
    after a few seconds, and an analysis started before that would find no data."""
    deadline = time.monotonic() + timeout
    query = urllib.parse.quote('up{job="sandbox"} == 1')
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with code {process.returncode}")
        with contextlib.suppress(OSError, ValueError, KeyError):
            with urllib.request.urlopen(f"{url}/api/v1/query?query={query}", timeout=1) as response:
                if json.load(response)["data"]["result"]:
                    return
        time.sleep(0.2)
    raise TimeoutError(f"prometheus at {url} did not scrape the sandbox within {timeout:.0f}s")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def prometheus_watching(traffic: EmulatedTraffic, binary: str) -> AsyncIterator[str]:
    """Serve the traffic's metrics and run Prometheus scraping them every second; its URL."""
    app = aiohttp.web.Application()
    app.router.add_get("/metrics", traffic.metrics)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    metrics_port, prometheus_port = _free_port(), _free_port()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", metrics_port)
    await site.start()
    directory = Path(tempfile.mkdtemp(prefix="rollout-sandbox-prometheus-"))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "sandbox", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{prometheus_port}"
    with open(directory / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        await asyncio.to_thread(_wait_scraping, url, process)
        yield url
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.wait, 20)
        if process.poll() is None:
            process.kill()
        await runner.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
