"""The ledger on a disk that refuses writes: a real tmpfs of a few megabytes filled to the last
byte, and one mounted read-only. The daemon says so on /healthz, keeps changes in memory up to
its bound, catches up when space returns, stops within its stop timeout (counting and logging
what it could not write), and says clearly when the ledger cannot be opened at all."""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for

from monitor.config.settings import LedgerLimits
from monitor.core.model import Site, State, TcpProbe, Transition
from monitor.ledger.records import read_intervals, read_runs
from monitor.ledger.schema import prepare
from monitor.ledger.writer import QUEUE_FULL, Ledger

SITES = [f"svc-{n}" for n in range(10)]
STOP_TIMEOUT = 2.0


class Disk:
    """A tmpfs of `size` mounted for the test; `fill()` takes every free byte, `free()` gives
    them back."""

    def __init__(self, where: Path, size: str = "4m", read_only: bool = False) -> None:
        self.path = where
        where.mkdir(parents=True)
        options = f"size={size}" + (",ro" if read_only else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
        self.filler = where / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (65536, 4096, 512, 1):  # down to the last byte; bounded: 4 MB
                for _ in range(10_000):
                    try:
                        os.write(fd, b"\0" * size)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC
                        break
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    mounted = Disk(tmp_path / "disk")
    yield mounted
    mounted.close()


class Service:
    """A TCP port the sites are probed on, that the test opens and closes."""

    def __init__(self) -> None:
        self.port = free_tcp_port()
        self.sock: socket.socket | None = None

    def open(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", self.port), backlog=128)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def write_config(
    root: Path, http_port: int, service: int, ledger: Path, site_ids: list[str] = SITES
) -> Path:
    (root / "inventory").mkdir(parents=True)
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{http_port}"}}
ledger: {{path: {ledger}, stop_timeout_seconds: {STOP_TIMEOUT}, max_pending: 1000}}
poll: {{interval_seconds: 0.3, timeout_seconds: 0.2, retries: 0}}
state: {{down_after: 2, up_after: 1}}
""",
        encoding="utf-8",
    )
    (root / "credentials.yaml").write_text("snmp: {}\n", encoding="utf-8")
    sites = "\n".join(
        f"  - {{id: {site}, kind: portal, name: 'Dịch vụ {site}', commune: thanh-xuong,"
        f" owner: district-it, lat: 21.35, lon: 103.03,"
        f" probe: {{tcp: {{address: 127.0.0.1, port: {service}}}}}}}"
        for site in site_ids
    )
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-xuong, name: Thanh Xương, lat: 21.346, lon: 103.03}}
owners:
  - {{id: district-it, name: Trung tâm Văn hóa - Thông tin huyện Điện Biên, kind: agency}}
sites:
{sites}
""",
        encoding="utf-8",
    )
    return root


def all_up(daemon: Daemon, up: float) -> bool:
    return all(daemon.metric("districtmon_site_up", site=s) == up for s in SITES)


def health(daemon: Daemon) -> tuple[int, dict[str, object]]:
    status, body = daemon.get("/healthz")
    return status, json.loads(body)


def test_a_full_disk_is_said_caught_up_and_never_blocks_the_stop(
    tmp_path: Path, disk: Disk
) -> None:
    port, service = free_tcp_port(), Service()
    ledger = disk.path / "ledger.sqlite"
    config = write_config(tmp_path / "config", port, service.port, ledger)
    service.open()
    daemon = Daemon(config, port)
    try:
        wait_for("all up", lambda: all_up(daemon, 1), daemon)

        # full: the outage cannot be written, /healthz says so, the changes wait in memory
        disk.fill()
        cut = time.time()
        service.close()
        wait_for("all down", lambda: all_up(daemon, 0), daemon)
        wait_for("unhealthy", lambda: health(daemon)[0] == 503, daemon)
        problems = health(daemon)[1]["problems"]
        assert isinstance(problems, list) and len(problems) == 1
        assert "ledger cannot write (database or disk is full)" in str(problems[0])
        assert "changes held in memory (at most 1000)" in str(problems[0])
        assert (daemon.metric("districtmon_ledger_write_errors_total") or 0) >= 1

        # room again: the writer catches up, the outage is in the ledger with its own dates
        service.open()
        wait_for("all up again", lambda: all_up(daemon, 1), daemon)
        disk.free()
        wait_for("healthy", lambda: health(daemon)[0] == 200, daemon, limit=40)
        for site in SITES:
            states = [i.state for i in read_intervals(ledger, site)]
            assert states == [State.UNKNOWN, State.UP, State.DOWN, State.UP], (site, states)
        down = read_intervals(ledger, SITES[0])[2]
        assert cut <= down.start <= cut + 2

        # full again, and a stop: it ends within the stop timeout, saying what was lost
        disk.fill()
        service.close()
        wait_for("unhealthy again", lambda: health(daemon)[0] == 503, daemon)
        asked = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=STOP_TIMEOUT + 10)
        took = time.monotonic() - asked
    finally:
        daemon.kill()
        service.close()
    log = daemon.log.read_text()
    assert code == 0 and took < STOP_TIMEOUT + 3, (took, log[-2000:])
    assert "could not be written within the stop timeout (2 s: database or disk is full)" in log
    assert "Traceback" not in log
    print(f"\nstop on a full disk took {took:.2f} s (stop timeout {STOP_TIMEOUT} s)")

    # the disk back: the run was left unclean, its end is the last heartbeat, no overlap
    disk.free()
    runs = read_runs(ledger)
    assert [r.clean for r in runs] == [False]
    for site in SITES:
        intervals = read_intervals(ledger, site)
        for earlier, later in itertools.pairwise(intervals):
            assert earlier.end is not None and earlier.end <= later.start


def test_a_read_only_ledger_directory_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    readonly = Disk(tmp_path / "ro", read_only=True)
    try:
        config = write_config(
            tmp_path / "config", free_tcp_port(), free_tcp_port(), readonly.path / "l.sqlite"
        )
        result = subprocess.run(
            [sys.executable, "-m", "monitor", "run", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        readonly.close()
    assert result.returncode == 1
    assert f"districtmon: cannot open the ledger {readonly.path / 'l.sqlite'}: " in result.stderr
    assert f"must be able to write the file and its directory, {readonly.path}" in result.stderr
    assert "Traceback" not in result.stderr


async def test_past_its_bound_a_sites_changes_become_one_unknown_interval(disk: Disk) -> None:
    path = disk.path / "bound.sqlite"
    ledger = await Ledger.open(path, limits=LedgerLimits(max_pending=10, stop_timeout_seconds=1))
    await ledger.sync_sites(
        [Site("s", "portal", "S", "c", "o", 21.0, 103.0, TcpProbe("127.0.0.1", 1))]
    )
    writer = asyncio.create_task(ledger.run())
    try:
        disk.fill()
        t0 = time.time()
        states = [State.DOWN, State.UP] * 15
        for n, state in enumerate(states):  # 30 changes of one site, 10 held at most
            previous = State.UNKNOWN if n == 0 else states[n - 1]
            ledger.record(Transition("s", state, t0 + n, previous, "flap"))
        assert ledger.pending == 11  # the bound, and one `unknown` standing for the rest
        assert ledger.lost == 20
        ledger.record(Transition("s", State.DOWN, t0 + 40, State.UP, "after"))  # still full
        assert ledger.pending == 11
        disk.free()
        await asyncio.wait_for(ledger.flushed(), 40)
        ledger.record(Transition("s", State.UP, t0 + 50, State.DOWN, "room again"))
        await asyncio.wait_for(ledger.flushed(), 40)
    finally:
        ledger.stop()
        await writer
        await ledger.close()
    recorded = [(i.state, i.reason) for i in read_intervals(path, "s")]
    assert recorded[:10] == [(s, "flap") for s in states[:10]]
    assert recorded[10:] == [(State.UNKNOWN, QUEUE_FULL), (State.UP, "room again")]


def test_a_full_disk_at_start_does_not_hold_back_the_stop(tmp_path: Path, disk: Disk) -> None:
    """The ledger opens (a few pages), but the inventory does not fit: its writer retries, and
    a SIGTERM meanwhile stops the daemon at once instead of waiting for space forever."""
    ledger = disk.path / "ledger.sqlite"
    prepare(ledger)
    disk.fill()
    os.truncate(disk.filler, disk.filler.stat().st_size - 48 * 1024)  # 48 KiB left
    port = free_tcp_port()
    many = [f"svc-{n}" for n in range(3000)]  # hundreds of kilobytes of inventory rows
    config = write_config(tmp_path / "config", port, free_tcp_port(), ledger, site_ids=many)
    daemon = Daemon(config, port)
    try:
        wait_for("the refused inventory", lambda: "ledger write failed" in daemon.log.read_text(),
                 daemon, limit=60)  # fmt: skip
        asked = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=STOP_TIMEOUT + 10)
        took = time.monotonic() - asked
    finally:
        daemon.kill()
    log = daemon.log.read_text()
    assert code == 0 and took < STOP_TIMEOUT + 3, (took, log[-2000:])
    assert "stopping before the ledger took the inventory (database or disk is full)" in log
    assert "Traceback" not in log
