"""Running as a service: the sd_notify protocol on a real unix socket, the watchdog fed by the
event loop, SIGHUP reloads (good and broken configs) and journald/JSON log lines."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for, write_config
from peers import Snmpd, Snmpsim

from monitor.core.model import State
from monitor.ledger.records import read_intervals
from monitor.runtime.notify import Notifier


class NotifySocket:
    """The systemd side: a datagram socket read by a thread that stamps each arrival, so the
    timing of keep-alives is seen as it happens even while the test's own loop is blocked."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._closing = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closing:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))

    def has(self, key: str, value: str = "1") -> bool:
        return any(m.get(key) == value for _, m in list(self.messages))

    def close(self) -> None:
        self._closing = True
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    yield sock
    sock.close()


def test_ready_status_watchdog_reload_and_stopping_reach_the_notify_socket(
    tmp_path: Path, snmpd: Snmpd, snmpsim_agent: Snmpsim, notify_socket: NotifySocket
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path / "config", port, snmpd, snmpsim_agent)
    daemon = Daemon(
        config,
        port,
        env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"},
    )
    try:
        wait_for("READY=1", lambda: notify_socket.has("READY"), daemon)
        # READY only once the listener is bound: /metrics answers straight away
        assert daemon.get("/healthz")[0] == 200
        ready = next(m for _, m in notify_socket.messages if m.get("READY") == "1")
        assert ready["STATUS"].startswith("watching 2 sites")

        time.sleep(1.0)
        watchdog = [t for t, m in notify_socket.messages if m.get("WATCHDOG") == "1"]
        assert len(watchdog) >= 4, "keep-alives every WATCHDOG_USEC/2 = 0.2 s"
        assert any("up" in m.get("STATUS", "") for _, m in notify_socket.messages)

        before = len(notify_socket.messages)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(
            "RELOADING then READY",
            lambda: (
                [
                    "RELOADING" if "RELOADING" in m else "READY"
                    for _, m in notify_socket.messages[before:]
                    if "RELOADING" in m or "READY" in m
                ]
                == ["RELOADING", "READY"]
            ),
            daemon,
        )
        reloading = next(m for _, m in notify_socket.messages[before:] if "RELOADING" in m)
        assert int(reloading["MONOTONIC_USEC"]) > 0

        assert daemon.stop() == 0
        assert notify_socket.has("STOPPING")
    finally:
        daemon.kill()


async def test_watchdog_keep_alives_stop_while_the_event_loop_is_blocked(tmp_path: Path) -> None:
    sock = NotifySocket(str(tmp_path / "wd.sock"))
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "wd.sock"), "WATCHDOG_USEC": "100000"})
    task = asyncio.create_task(notifier.keep_alive())
    try:
        await asyncio.sleep(0.3)
        blocked_from = time.monotonic()
        time.sleep(0.6)  # noqa: ASYNC251 - the point: a stuck loop, no coroutine runs
        blocked_until = time.monotonic()
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        notifier.close()
    arrivals = [t for t, m in list(sock.messages) if m.get("WATCHDOG") == "1"]
    sock.close()
    during = [t for t in arrivals if blocked_from + 0.02 < t < blocked_until]
    assert during == [], "no keep-alive may leave a blocked loop"
    assert len([t for t in arrivals if t < blocked_from]) >= 4
    assert len([t for t in arrivals if t > blocked_until + 0.06]) >= 3, "they resume after"


def test_sighup_swaps_the_inventory_and_a_broken_config_keeps_the_old_one(
    tmp_path: Path, snmpd: Snmpd, snmpsim_agent: Snmpsim
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path / "config", port, snmpd, snmpsim_agent)
    inventory = config / "inventory" / "district.yaml"
    daemon = Daemon(config, port, extra_args=("--log-format", "json"))
    try:
        wait_for(
            "both up",
            lambda: (
                daemon.metric("districtmon_site_up", site="bts-snmpd") == 1
                and daemon.metric("districtmon_site_up", site="bts-ups") == 1
            ),
            daemon,
        )
        # remove bts-ups, add bts-new (same agent as bts-snmpd), rename bts-snmpd
        text = inventory.read_text(encoding="utf-8")
        kept, _removed = text.split("  - id: bts-ups")
        kept = kept.replace("BTS Viettel Thanh Nưa 01", "BTS Viettel Thanh Nưa 01 (mới)")
        added = kept[kept.index("  - id: bts-snmpd") :].replace("bts-snmpd", "bts-new")
        inventory.write_text(kept + added, encoding="utf-8")
        reloaded_at = time.time()
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(
            "the new site up",
            lambda: daemon.metric("districtmon_site_up", site="bts-new") == 1,
            daemon,
        )
        assert daemon.metric("districtmon_site_info", site="bts-ups") is None
        assert (
            daemon.metric(
                "districtmon_site_info", site="bts-snmpd", name="BTS Viettel Thanh Nưa 01 (mới)"
            )
            == 1
        )
        assert daemon.metric("districtmon_site_up", site="bts-snmpd") == 1

        # a broken config is refused whole and the running one stays
        inventory.write_text(kept + added + "    colour: red\n", encoding="utf-8")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for("the refusal", lambda: "refused" in daemon.log.read_text(), daemon)
        assert daemon.proc.poll() is None
        assert daemon.metric("districtmon_site_up", site="bts-new") == 1
        assert daemon.metric("districtmon_site_up", site="bts-snmpd") == 1
        assert daemon.stop() == 0
    finally:
        daemon.kill()

    events = [json.loads(line) for line in daemon.log.read_text().splitlines() if line]
    refusal = [e for e in events if "colour" in e["message"]]
    assert refusal and "district.yaml:" in refusal[0]["message"]
    assert any(e.get("site") == "bts-new" and e.get("state") == "up" for e in events)

    ledger = config / "ledger.sqlite"
    kept_history = read_intervals(ledger, "bts-snmpd")
    assert [i.state for i in kept_history] == [State.UNKNOWN, State.UP], "history kept"
    gone = read_intervals(ledger, "bts-ups")
    assert gone[-1].state is State.UP and gone[-1].end is not None
    assert reloaded_at <= gone[-1].end <= reloaded_at + 2, "closed at the reload, not the stop"
    new = read_intervals(ledger, "bts-new")
    assert [i.state for i in new] == [State.UNKNOWN, State.UP]
    assert new[0].start >= reloaded_at
