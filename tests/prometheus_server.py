"""A real Prometheus 2.42 (Debian's ``prometheus``) on a loopback port, as the reference the
PromQL API is compared with byte for byte."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from conftest import free_port, wait_until


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise AssertionError("prometheus is not installed (apt-get install -y prometheus; "
                             "scripts/test does it)")
    return found


def backfill(openmetrics: str, folder: Path) -> Path:
    """A Prometheus data directory holding the samples of an OpenMetrics text (``promtool
    tsdb create-blocks-from openmetrics``: timestamps in seconds, ``# EOF`` last)."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: apt-get install prometheus"
    source = folder / "data.om"
    source.write_text(openmetrics)
    data = folder / "data"
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source),
                           str(data)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return data


class PrometheusProcess:
    """``prometheus`` with an empty configuration (it scrapes nothing) and its own data dir
    (``data``: one made by ``backfill``, kept ten years)."""

    def __init__(self, folder: Path, data: Path | None = None) -> None:
        config = folder / "prometheus.yml"
        config.write_text("global: {}\n")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(folder / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={config}",
             f"--storage.tsdb.path={data or folder / 'data'}",
             "--storage.tsdb.retention.time=10y",
             f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._ready, 30, message="prometheus to be ready")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def post(self, path: str, form: dict[str, str]) -> tuple[int, bytes]:
        """The status and body of a form-encoded POST, as Grafana sends queries."""
        return request(self.url + path, form)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def request(url: str, form: dict[str, str] | None = None, method: str = "POST",
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Status and body of a request (form-encoded body for POST, query string for GET)."""
    data = urllib.parse.urlencode(form or {})
    if method == "GET":
        req = urllib.request.Request(url + ("?" + data if data else ""), headers=headers or {})
    else:
        req = urllib.request.Request(url, data=data.encode(), method=method, headers={
            "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
