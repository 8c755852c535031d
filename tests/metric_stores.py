"""Real metric stores for the provider tests: `influxd` from Debian's `influxdb` package (1.6,
InfluxQL only) with its own temporary directories and config, and moto's CloudWatch server
(`ThreadedMotoServer`), each on loopback ports, stopped when the block ends."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import requests
from moto.server import ThreadedMotoServer

from tests.processes import debian_binary, free_port

INFLUX_USER = ("rollout", "s3cret-'pass")


class InfluxServer:
    """A running influxd 1.x with HTTP authentication on: `user` is its admin."""

    def __init__(self, url: str, database: str, user: tuple[str, str]) -> None:
        self.url = url
        self.database = database
        self.user = user

    def query(self, q: str) -> dict:
        response = requests.post(f"{self.url}/query", data={"q": q}, auth=self.user, timeout=10)
        response.raise_for_status()
        return response.json()

    def write(self, lines: list[str]) -> None:
        """Points in line protocol, timestamps in seconds."""
        response = requests.post(
            f"{self.url}/write",
            params={"db": self.database, "precision": "s"},
            data="\n".join(lines).encode(),
            auth=self.user,
            timeout=10,
        )
        assert response.status_code == 204, response.text


def _config(directory: Path, http_port: int, rpc_port: int) -> str:
    return f"""
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{directory / "meta"}"
[data]
  dir = "{directory / "data"}"
  wal-dir = "{directory / "wal"}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = true
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""


@contextlib.contextmanager
def influxd(database: str = "app") -> Iterator[InfluxServer]:
    binary = debian_binary("influxd", "influxdb")
    directory = Path(tempfile.mkdtemp(prefix="influxd-"))
    http_port, rpc_port = free_port(), free_port()
    (directory / "influxdb.conf").write_text(_config(directory, http_port, rpc_port))
    log = (directory / "influxd.log").open("w")
    process = subprocess.Popen(
        [binary, "-config", str(directory / "influxdb.conf")], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/ping", timeout=1).status_code == 204:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"influxd did not start: {(directory / 'influxd.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        # With no user yet, the first admin may be created without credentials.
        name, password = INFLUX_USER
        escaped = password.replace("\\", "\\\\").replace("'", "\\'")
        created = requests.post(
            f"{url}/query",
            data={"q": f"CREATE USER \"{name}\" WITH PASSWORD '{escaped}' WITH ALL PRIVILEGES"},
            timeout=10,
        )
        assert created.status_code == 200 and "error" not in created.text, created.text
        server = InfluxServer(url, database, INFLUX_USER)
        server.query(f'CREATE DATABASE "{database}"')
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


# --- CloudWatch on moto's server ------------------------------------------------------------------

MOTO_REGION = "eu-west-1"
MOTO_KEYS = ("AKIDMOTOTEST", "moto-secret-key")


class CloudWatchServer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = boto3.client(
            "cloudwatch",
            endpoint_url=url,
            region_name=MOTO_REGION,
            aws_access_key_id=MOTO_KEYS[0],
            aws_secret_access_key=MOTO_KEYS[1],
        )

    def put(
        self, namespace: str, name: str, dimensions: dict[str, str], values: list[float], ago: float = 30.0
    ) -> None:
        """Datapoints `ago` seconds back, one second apart (newest last)."""
        now = datetime.now(UTC)
        self.client.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    "Value": value,
                    "Timestamp": now - timedelta(seconds=ago + len(values) - 1 - i),
                }
                for i, value in enumerate(values)
            ],
        )


@contextlib.contextmanager
def moto_cloudwatch() -> Iterator[CloudWatchServer]:
    """moto's server (the AWS API emulator, `moto[server]`) on a free loopback port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()  # moto's state is per process
    try:
        yield CloudWatchServer(url)
    finally:
        server.stop()
