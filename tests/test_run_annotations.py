"""The daemon says when its previous run ended (districtmon_previous_run_end_timestamp_seconds,
from the ledger), so that dashboards can mark the time the monitor was away: after a clean
stop, the moment of that stop (between the signal and the process's exit, as this test
measured it); after a kill, a time no later than the kill (the last heartbeat), marked
clean="false"; nothing on a ledger's first run."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from harness import Daemon, free_tcp_port, wait_for, write_settings

SITES = """
communes:
  - {id: thanh-nua, name: Thanh Nưa, lat: 21.45, lon: 103.0, areas: [Bản Ta Pô]}
owners:
  - {id: district-it, name: Trung tâm Văn hóa - Thông tin huyện, kind: agency}
sites:
  - {id: gw-a, kind: gateway, name: Cổng A, commune: thanh-nua, owner: district-it, lat: 21.4,
     lon: 103.0, probe: {icmp: {address: 127.0.0.1}}}
"""
FAMILY = "districtmon_previous_run_end_timestamp_seconds"


def previous_run_end(daemon: Daemon) -> dict[str, float] | None:
    """clean -> value of the family; None while /metrics is not served yet."""
    try:
        _, text = daemon.get("/metrics")
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        if line.startswith(FAMILY + "{"):
            clean = line.split('clean="')[1].split('"')[0]
            found[clean] = float(line.rsplit(" ", 1)[1])
    return found


def start(root: Path, port: int) -> tuple[Daemon, dict[str, float]]:
    daemon = Daemon(root, port)
    wait_for("metrics served", lambda: previous_run_end(daemon) is not None, daemon)
    found = previous_run_end(daemon)
    assert found is not None
    return daemon, found


def test_each_run_says_when_the_previous_one_ended_and_whether_cleanly(tmp_path: Path) -> None:
    port = free_tcp_port()
    write_settings(tmp_path, port, {})
    (tmp_path / "inventory" / "district.yaml").write_text(SITES, encoding="utf-8")

    first, found = start(tmp_path, port)
    assert found == {}, "a ledger's first run has no previous run"
    asked = time.time()
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=15) == 0
    exited = time.time()
    first.kill()

    second, found = start(tmp_path, port)
    assert list(found) == ["true"], found
    assert asked - 0.5 <= found["true"] <= exited + 0.5
    second.proc.send_signal(signal.SIGKILL)
    second.proc.wait(timeout=5)
    killed = time.time()
    second.kill()

    third, found = start(tmp_path, port)
    try:
        assert list(found) == ["false"], found
        # the last heartbeat of the killed run: after the run before it ended, before the kill
        assert exited <= found["false"] <= killed + 0.5
    finally:
        third.kill()
