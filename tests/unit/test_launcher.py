"""The test control plane's launcher on failure: a component that cannot start is named, with the
tail of its log, and nothing it started is left running."""

import stat
import sys
from pathlib import Path

import pytest

from tests.cluster import launcher


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_an_etcd_that_cannot_bind_is_named_with_its_log(tmp_path, monkeypatch):
    bins = tmp_path / "bin"
    bins.mkdir()
    script(bins / "etcd", 'echo "listen tcp 127.0.0.1:2379: bind: address already in use" >&2; exit 1')
    monkeypatch.setattr(launcher, "build", lambda log=None: bins)
    with pytest.raises(launcher.ClusterError) as failure, launcher.ControlPlane.start(tmp_path / "plane"):
        pass
    assert "etcd exited with 1" in str(failure.value)
    assert "address already in use" in str(failure.value)


# An etcd that answers its health check (what the launcher waits for) and then keeps running.
HEALTHY_ETCD = f"""#!{sys.executable}
import http.server, sys
url = next(a for a in sys.argv if a.startswith("--listen-client-urls=")).split("=", 1)[1]
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", int(url.rsplit(":", 1)[1])), Health).serve_forever()
"""


def test_an_api_server_that_exits_is_named_and_etcd_is_stopped(tmp_path, monkeypatch):
    bins = tmp_path / "bin"
    bins.mkdir()
    etcd = bins / "etcd"
    etcd.write_text(HEALTHY_ETCD)
    etcd.chmod(etcd.stat().st_mode | stat.S_IEXEC)
    script(bins / "kube-apiserver", 'echo "Error: unknown flag: --etcd-servers" >&2; exit 1')
    monkeypatch.setattr(launcher, "build", lambda log=None: bins)
    with pytest.raises(launcher.ClusterError) as failure, launcher.ControlPlane.start(tmp_path / "plane"):
        pass
    assert "kube-apiserver exited with 1" in str(failure.value)
    assert "unknown flag" in str(failure.value)
    alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_etcd_of(p, tmp_path / "plane")]
    assert alive == [], "etcd left running"


def _is_etcd_of(proc: Path, workdir: Path) -> bool:
    try:
        return str(workdir / "etcd") in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
