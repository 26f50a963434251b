"""Real Prometheus and Alertmanager on 127.0.0.1 for tests (Debian's packages).

Each runs from a temporary directory with a generated config, on a free port, and is killed at
close. Queries go through their HTTP APIs; every wait is bounded.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

PROMETHEUS = "/usr/bin/prometheus"
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config" / "prometheus" / "prometheus.yml"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_json(url: str, data: bytes | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


class _Server:
    name = "server"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"districtmon-{self.name}-"))
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = self.dir / "server.log"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready_path(self) -> str:
        return "/-/ready"

    def start(self, timeout: float = 20.0) -> Self:
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + self._ready_path(), timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def shipped_jobs(targets: list[str]) -> list[dict[str, Any]]:
    """The scrape jobs of the shipped prometheus.yml, by name and path (districtmon: /metrics,
    districtmon_availability: /metrics/availability), each scraping `targets` at the
    test's interval."""
    jobs: list[dict[str, Any]] = yaml.safe_load(SHIPPED_CONFIG.read_text())["scrape_configs"]
    return [
        {
            "job_name": job["job_name"],
            "metrics_path": job.get("metrics_path", "/metrics"),
            "static_configs": [{"targets": targets}],
        }
        for job in jobs
    ]


class Prometheus(_Server):
    """Scrapes the given targets every `scrape_interval`, evaluates `rule_files`, and sends
    alerts to `alertmanager_url` when given; or runs a whole `config` (e.g. the shipped one,
    scaled: alerting.scaled_prometheus) with extra command-line `flags`."""

    name = "prometheus"

    def __init__(
        self,
        targets: list[str],
        rule_files: tuple[Path, ...] = (),
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        alertmanager_url: str | None = None,
        scrape_configs: list[dict[str, Any]] | None = None,
        *,
        config: dict[str, Any] | None = None,
        flags: tuple[str, ...] = (),
    ) -> None:
        """`scrape_configs` replaces the shipped jobs pointed at `targets` (shipped_jobs)."""
        super().__init__()
        self._flags = flags
        if config is not None:
            (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
            return
        rules = []
        for i, path in enumerate(rule_files):
            copy = self.dir / f"rules-{i}-{path.name}"
            shutil.copy(path, copy)
            rules.append(str(copy))
        generated: dict[str, Any] = {
            "global": {
                "scrape_interval": scrape_interval,
                "evaluation_interval": evaluation_interval,
            },
            "rule_files": rules,
            "scrape_configs": scrape_configs or shipped_jobs(targets),
        }
        if alertmanager_url is not None:
            host = alertmanager_url.removeprefix("http://")
            generated["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(generated))

    def _command(self) -> list[str]:
        return [
            PROMETHEUS,
            f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            *self._flags,
        ]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query, now or at `at` (Unix seconds); raises on a parse or evaluation
        error."""
        params: dict[str, str | float] = {"query": expr}
        if at is not None:
            params["time"] = at
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode(params)
        try:
            body = http_json(url)
        except urllib.error.HTTPError as exc:
            with exc:  # an error response holds its connection until closed
                raise ValueError(f"{expr}: {exc.read().decode()}") from exc
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return result


class Alertmanager(_Server):
    """Runs with the given config dict."""

    name = "alertmanager"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        (self.dir / "alertmanager.yml").write_text(yaml.safe_dump(config, allow_unicode=True))

    def _command(self) -> list[str]:
        return [
            ALERTMANAGER,
            f"--config.file={self.dir / 'alertmanager.yml'}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # no gossip: a lone instance on loopback
        ]

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v2/alerts")
        return result
