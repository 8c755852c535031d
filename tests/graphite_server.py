"""A real Graphite for the graphite provider's tests: Debian's carbon-cache (package
graphite-carbon) and graphite-web (package graphite-web, served by Django's runserver with
graphite's own settings), each on free loopback ports in a temp dir, configured by files written
here (nothing under /etc or /var is read or written). Points go in over carbon's plaintext
protocol; queries go through graphite-web's /render API, as the provider sends them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.processes import free_port, missing_part

CARBON_CACHE = "/usr/bin/carbon-cache"
# graphite-web is a Debian Python package: it runs under Debian's own interpreter, which has
# Django and graphite in its dist-packages (the tests' interpreter may be another one).
DEBIAN_PYTHON = "/usr/bin/python3"
GRAPHITE_WEB = "/usr/lib/python3/dist-packages/graphite/settings.py"


def require_graphite() -> None:
    """CI installs both packages (.ci/run), so there a missing one is a failure."""
    missing = [path for path in (CARBON_CACHE, GRAPHITE_WEB, DEBIAN_PYTHON) if not os.path.exists(path)]
    if missing:
        message = (
            f"Graphite is not installed ({', '.join(missing)} missing): "
            "apt-get install -y --no-install-recommends graphite-carbon graphite-web"
        )
        missing_part(message)


def _wait_port(port: int, what: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}): {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(
        f"{what} did not listen on 127.0.0.1:{port} within {timeout}s: {log.read_text()[-2000:]}"
    )


class GraphiteServer:
    """carbon-cache + graphite-web; `url` is graphite-web's base URL, `send` writes points."""

    def __init__(self) -> None:
        require_graphite()
        self.directory = Path(tempfile.mkdtemp(prefix="graphite-"))
        self.line_port, self.pickle_port, self.query_port, self.web_port = (free_port() for _ in range(4))
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            self._start_carbon()
            self._start_web()
        except BaseException:  # nobody will stop a server whose constructor failed
            self.stop()
            raise

    def _start_carbon(self) -> None:
        conf = self.directory / "carbon"
        storage = self.directory / "storage"
        for folder in (conf, storage / "whisper", storage / "log", storage / "run"):
            folder.mkdir(parents=True)
        # One point a second kept for an hour: a test's points land in their own slots.
        (conf / "storage-schemas.conf").write_text("[default]\npattern = .*\nretentions = 1s:1h\n")
        (conf / "carbon.conf").write_text(
            textwrap.dedent(
                f"""\
                [cache]
                STORAGE_DIR = {storage}/
                LOCAL_DATA_DIR = {storage}/whisper/
                CONF_DIR = {conf}/
                LOG_DIR = {storage}/log/
                PID_DIR = {storage}/run/
                DATABASE = whisper
                ENABLE_LOGROTATION = False
                USER =
                MAX_CACHE_SIZE = inf
                MAX_UPDATES_PER_SECOND = 1000
                MAX_CREATES_PER_MINUTE = inf
                LINE_RECEIVER_INTERFACE = 127.0.0.1
                LINE_RECEIVER_PORT = {self.line_port}
                ENABLE_UDP_LISTENER = False
                PICKLE_RECEIVER_INTERFACE = 127.0.0.1
                PICKLE_RECEIVER_PORT = {self.pickle_port}
                CACHE_QUERY_INTERFACE = 127.0.0.1
                CACHE_QUERY_PORT = {self.query_port}
                LOG_LISTENER_CONN_SUCCESS = False
                """
            )
        )
        log = storage / "log" / "carbon-cache.out"
        process = subprocess.Popen(
            [CARBON_CACHE, f"--config={conf}/carbon.conf", "--debug", "start"],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        _wait_port(self.line_port, "carbon-cache", process, log, timeout=30)

    def _start_web(self) -> None:
        storage = self.directory / "storage"
        settings = self.directory / "web"
        settings.mkdir()
        # graphite.settings imports the module GRAPHITE_SETTINGS_MODULE names (Debian's default
        # is /etc/graphite/local_settings.py); this one points it at the temp dir and carbon.
        (settings / "rollout_graphite_settings.py").write_text(
            textwrap.dedent(
                f"""\
                SECRET_KEY = "graphite-provider-tests"
                STORAGE_DIR = "{storage}"
                WHISPER_DIR = "{storage}/whisper"
                LOG_DIR = "{storage}/log"
                INDEX_FILE = "{storage}/index"
                CARBONLINK_HOSTS = ["127.0.0.1:{self.query_port}"]
                ALLOWED_HOSTS = ["127.0.0.1"]
                DEFAULT_XFILES_FACTOR = 0
                TAGDB = ""
                DATABASES = {{
                    "default": {{"NAME": "{storage}/graphite.db", "ENGINE": "django.db.backends.sqlite3"}}
                }}
                """
            )
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(settings),
            "GRAPHITE_SETTINGS_MODULE": "rollout_graphite_settings",
            "DJANGO_SETTINGS_MODULE": "graphite.settings",
        }
        log = storage / "log" / "graphite-web.out"
        manage = [DEBIAN_PYTHON, "-m", "django"]
        with log.open("w") as out:
            subprocess.run(
                [*manage, "migrate", "--noinput"], env=env, stdout=out, stderr=subprocess.STDOUT, check=True
            )
        process = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{self.web_port}"],
            env=env,
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        _wait_port(self.web_port, "graphite-web", process, log, timeout=60)

    def send(self, path: str, points: list[tuple[float, int]]) -> None:
        """Points over carbon's plaintext protocol: `path value timestamp` lines."""
        lines = "".join(f"{path} {value} {timestamp}\n" for value, timestamp in points)
        with socket.create_connection(("127.0.0.1", self.line_port), timeout=5) as s:
            s.sendall(lines.encode())

    def wait_for_points(self, target: str, count: int, timeout: float = 30.0) -> None:
        """Until graphite-web renders `count` non-null points of `target` (carbon created the
        whisper file and answers for its cache)."""
        query = urllib.parse.urlencode({"target": target, "from": "-10min", "format": "json"})
        deadline = time.monotonic() + timeout
        seen: list[dict] = []
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.url}/render?{query}", timeout=5) as response:
                seen = json.load(response)
            points = [v for series in seen for v, _ in series["datapoints"] if v is not None]
            if len(points) >= count:
                return
            time.sleep(0.2)
        raise TimeoutError(f"Graphite did not render {count} points of {target} within {timeout}s: {seen}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)
