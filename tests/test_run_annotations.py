"""What the dashboards' annotations read besides states. The daemon says when its previous
run ended (districtmon_previous_run_end_timestamp_seconds, from the ledger), so that
dashboards can mark the time the monitor was away: after a clean stop, the moment of that
stop (between the signal and the process's exit, as this test measured it); after a kill, a
time no later than the kill (the last heartbeat), marked clean="false"; nothing on a
ledger's first run. And it serves its maintenance windows, open or not, with their reason."""

from __future__ import annotations

import re
import signal
import time
from datetime import UTC, datetime
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
    found: dict[str, float] = {}
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


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def window_series(daemon: Daemon) -> dict[tuple[str, str], str] | None:
    """(family, window) -> value, or the reason for the info family; None until served."""
    try:
        _, text = daemon.get("/metrics")
    except OSError:
        return None
    found: dict[tuple[str, str], str] = {}
    for line in text.splitlines():
        match = re.match(r"(districtmon_maintenance_window_\w+)\{(.*)\} (\S+)$", line)
        if match:
            labels: dict[str, str] = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            found[str(match.group(1)), labels["window"]] = labels.get("reason", match.group(3))
    return found


def test_maintenance_windows_are_served_open_or_not_with_their_reason(tmp_path: Path) -> None:
    """A window open now is 1, one to come 0, each with the sites it holds and its reason:
    what the maintenance-window annotation draws."""
    port = free_tcp_port()
    write_settings(tmp_path, port, {})
    (tmp_path / "inventory" / "district.yaml").write_text(SITES, encoding="utf-8")
    now = time.time()
    (tmp_path / "maintenance.yaml").write_text(
        f"""
windows:
  - id: fibre-now
    sites: [gw-a]
    reason: Thay cáp quang
    start: "{iso(now - 3600)}"
    end: "{iso(now + 3600)}"
  - id: later
    communes: [thanh-nua]
    start: "{iso(now + 86400)}"
    end: "{iso(now + 90000)}"
""",
        encoding="utf-8",
    )
    daemon = Daemon(tmp_path, port)
    try:
        wait_for("windows served", lambda: bool(window_series(daemon)), daemon)
        assert window_series(daemon) == {
            ("districtmon_maintenance_window_active", "fibre-now"): "1.0",
            ("districtmon_maintenance_window_active", "later"): "0.0",
            ("districtmon_maintenance_window_sites", "fibre-now"): "1.0",
            ("districtmon_maintenance_window_sites", "later"): "1.0",
            ("districtmon_maintenance_window_info", "fibre-now"): "Thay cáp quang",
            ("districtmon_maintenance_window_info", "later"): "",
        }
    finally:
        daemon.kill()
