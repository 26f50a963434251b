"""Running the daemon as a process for tests: config writing, /metrics reading, bounded waits."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from conftest import SNMPD_COMMUNITY, UPS_COMMUNITY
from peers import Snmpd, Snmpsim

INTERVAL = 0.4
TIMEOUT = 0.15
DOWN_AFTER = 3
UP_AFTER = 2


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_settings(root: Path, http_port: int, communities: dict[str, str]) -> None:
    """districtmon.yaml with the fast test timings, and credentials.yaml naming `communities`
    (credential name -> v2c community); the inventory folder is left for the caller to fill."""
    (root / "inventory").mkdir(parents=True)
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{http_port}"}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: {INTERVAL}, timeout_seconds: {TIMEOUT}, retries: 0}}
state: {{down_after: {DOWN_AFTER}, up_after: {UP_AFTER}}}
""",
        encoding="utf-8",
    )
    entries = "".join(
        f"  {name}: {{version: 2c, community: {community}}}\n"
        for name, community in communities.items()
    )
    (root / "credentials.yaml").write_text(f"snmp:\n{entries}", encoding="utf-8")


def write_config(root: Path, http_port: int, snmpd: Snmpd, sim: Snmpsim) -> Path:
    write_settings(root, http_port, {"agent-ro": SNMPD_COMMUNITY, "ups-ro": UPS_COMMUNITY})
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-nua, name: Thanh Nưa, lat: 21.45, lon: 103.0, areas: [Bản Ta Pô]}}
owners:
  - {{id: viettel, name: Viettel, kind: operator}}
sites:
  - id: bts-snmpd
    kind: bts
    name: BTS Viettel Thanh Nưa 01
    commune: thanh-nua
    owner: viettel
    lat: 21.45
    lon: 103.01
    probe: {{snmp: {{address: 127.0.0.1, port: {snmpd.port}, credential: agent-ro}}}}
  - id: bts-ups
    kind: bts
    name: BTS Viettel Thanh Nưa 02
    commune: thanh-nua
    owner: viettel
    lat: 21.46
    lon: 103.02
    probe: {{snmp: {{address: 127.0.0.1, port: {sim.port}, credential: ups-ro}}}}
""",
        encoding="utf-8",
    )
    return root


class Daemon:
    def __init__(
        self,
        config: Path,
        http_port: int,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.url = f"http://127.0.0.1:{http_port}"
        self.log = config / "daemon.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "run",
                "-c",
                str(config),
                "--log-level",
                "debug",
                *extra_args,
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=config,
            env={**os.environ, **(env or {})},
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:  # an error response holds its connection until closed
                return exc.code, exc.read().decode()

    def metric(self, metric: str, *, served_at: str = "/metrics", **labels: str) -> float | None:
        """The value of one sample on /metrics (or the path `served_at`), None when absent."""
        try:
            _, text = self.get(served_at)
        except OSError:
            return None
        for line in text.splitlines():
            if not line.startswith((metric + "{", metric + " ")):
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return None

    def stop(self) -> int:
        """Its exit code once stopped as systemd stops it (SIGTERM). One that is still up
        15 s later is killed and the test fails with its log's end: a daemon that does not
        stop is a bug, and one left running would go on holding its ports."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"the daemon did not stop within 15 s of SIGTERM: {self.log.read_text()[-3000:]}"
            ) from None
        finally:
            self._log_file.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log_file.close()


async def wait_in_loop(
    what: str, check: Callable[[], bool], daemon: asyncio.Task[None], tries: int = 300
) -> None:
    """`wait_for` for a daemon run in this process (`run_daemon` as a task): `check` runs in a
    thread, since it may block on the daemon's HTTP, and an OSError (not listening yet) is a
    "not yet"."""
    for _ in range(tries):
        assert not daemon.done(), f"the daemon ended while waiting for {what}"
        try:
            if await asyncio.to_thread(check):
                return
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for(what: str, check: Callable[[], bool], daemon: Daemon, limit: float = 15.0) -> float:
    """Poll `check` until true (bounded); return the wall time it became true."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return time.time()
        assert daemon.proc.poll() is None, daemon.log.read_text()
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{daemon.log.read_text()[-3000:]}")
