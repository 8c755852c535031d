"""A tiny HTTP service standing in for one revision of an application: answers `GET /` after
`latency_ms` with a 500 for `error_ratio` of the requests, and exports http_requests_total{code}
and http_request_duration_seconds (prometheus-client) on /metrics. `POST /config` with JSON
{"error_ratio": .., "latency_ms": ..} changes its behaviour while it runs.

Errors are drawn at random, as real traffic's are (the judge's bench measures its error rates
so); `--spaced-errors` answers exactly one request in 1 / error_ratio with a 500 instead, for a
test whose verdict must not hinge on how a few rare errors happen to fall.

Run as a process: `python -m tests.prom.workload --port 8080 --error-ratio 0 --latency-ms 50`."""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry()
REQUESTS = Counter("http_requests", "Requests served", ["code"], registry=REGISTRY)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to serve a request",
    # Fine steps from 50 to 100 ms, so that a quantile tells a 20 % slower revision apart (the
    # canary judge's tests and bench); the coarse ones cover the threshold tests' slow revisions.
    buckets=(0.025, 0.05, 0.055, 0.06, 0.065, 0.07, 0.075, 0.08, 0.09, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5),
    registry=REGISTRY,
)
CONFIG = {"error_ratio": 0.0, "latency_ms": 50.0}
SPACED = {"on": False, "owed": 0.0}  # spaced errors: the fraction of an error owed so far
LOCK = threading.Lock()


def answers_error(error_ratio: float) -> bool:
    """Whether this request gets a 500 (called under LOCK)."""
    if not SPACED["on"]:
        return random.random() < error_ratio
    SPACED["owed"] += error_ratio
    if SPACED["owed"] < 1.0:
        return False
    SPACED["owed"] -= 1.0
    return True


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._reply(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            return
        with LOCK:
            latency_ms = CONFIG["latency_ms"]
            code = 500 if answers_error(CONFIG["error_ratio"]) else 200
        started = time.monotonic()
        time.sleep(latency_ms / 1000)
        LATENCY.observe(time.monotonic() - started)
        REQUESTS.labels(code=str(code)).inc()
        self._reply(code, b"ok\n" if code == 200 else b"error\n", "text/plain")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        update = json.loads(self.rfile.read(length) or b"{}")
        with LOCK:
            CONFIG.update({k: float(v) for k, v in update.items() if k in CONFIG})
            body = json.dumps(CONFIG).encode()
        self._reply(200, body, "application/json")

    def _reply(self, code: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the load generator gave up on this request (its timeout, or it stopped)

    def log_message(self, format: str, *args: object) -> None:  # quiet: thousands of requests
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--error-ratio", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--spaced-errors", action="store_true")
    args = parser.parse_args()
    CONFIG.update(error_ratio=args.error_ratio, latency_ms=args.latency_ms)
    SPACED["on"] = args.spaced_errors
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
