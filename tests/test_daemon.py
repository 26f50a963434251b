"""The whole pipeline against real agents: the daemon process polls net-snmp snmpd and
snmpsim on loopback, a stopped agent goes down after N failed polls, comes back after M
answers, and both /metrics and the ledger say so."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SNMPD_COMMUNITY, UPS_COMMUNITY
from harness import (
    DOWN_AFTER,
    INTERVAL,
    UP_AFTER,
    Daemon,
    free_tcp_port,
    wait_for,
    write_config,
)
from peers import Snmpd, Snmpsim
from promstack import Prometheus

from monitor.core.model import State
from monitor.ledger.records import read_intervals, read_runs


@pytest.fixture
def daemon_setup(
    tmp_path: Path, snmpd: Snmpd, snmpsim_agent: Snmpsim
) -> Iterator[tuple[Daemon, Path]]:
    port = free_tcp_port()
    config = write_config(tmp_path / "config", port, snmpd, snmpsim_agent)
    daemon = Daemon(config, port)
    try:
        yield daemon, config
    finally:
        daemon.kill()


def test_stopped_agent_goes_down_after_n_failures_and_back_up_in_ledger_and_metrics(
    daemon_setup: tuple[Daemon, Path], snmpd: Snmpd
) -> None:
    daemon, config = daemon_setup
    site = {"site": "bts-snmpd", "kind": "bts", "commune": "thanh-nua", "owner": "viettel"}
    wait_for(
        "both sites up",
        lambda: (
            daemon.metric("districtmon_site_up", site="bts-snmpd") == 1
            and daemon.metric("districtmon_site_up", site="bts-ups") == 1
        ),
        daemon,
    )
    assert daemon.metric("districtmon_site_up", **site) == 1
    assert (
        daemon.metric("districtmon_site_info", site="bts-snmpd", name="BTS Viettel Thanh Nưa 01")
        == 1
    )
    # sysUpTime of the UPS recording is a fixed 6742373.2 s... read through the real probe
    assert daemon.metric("districtmon_site_device_uptime_seconds", site="bts-ups") is not None

    stopped_at = time.time()
    snmpd.stop()
    seen_down = wait_for(
        "bts-snmpd down",
        lambda: daemon.metric("districtmon_site_up", site="bts-snmpd") == 0,
        daemon,
    )
    # N failed polls are needed: never sooner than (N - 1) intervals after the agent died
    assert seen_down - stopped_at >= (DOWN_AFTER - 1) * INTERVAL
    assert daemon.metric("districtmon_site_up", site="bts-ups") == 1
    assert daemon.metric("districtmon_site_state", site="bts-snmpd", state="down") == 1
    assert (
        daemon.metric("districtmon_poll_errors_total", probe="snmp", reason="timeout") or 0
    ) >= DOWN_AFTER

    restarted_at = time.time()
    snmpd.start()
    seen_up = wait_for(
        "bts-snmpd up again",
        lambda: daemon.metric("districtmon_site_up", site="bts-snmpd") == 1,
        daemon,
    )
    assert seen_up - restarted_at >= (UP_AFTER - 1) * INTERVAL * 0.5

    status, body = daemon.get("/healthz")
    assert status == 200 and '"ok"' in body
    assert daemon.stop() == 0
    stopped_daemon_at = time.time()

    intervals = read_intervals(config / "ledger.sqlite", "bts-snmpd")
    assert [i.state for i in intervals] == [State.UNKNOWN, State.UP, State.DOWN, State.UP]
    assert all(i.end is not None for i in intervals), "a clean stop closes every interval"
    for earlier, later in itertools.pairwise(intervals):
        assert earlier.end == later.start
    down = intervals[2]
    # dated at the first failed poll: after the agent stopped, within one interval of it
    assert stopped_at <= down.start <= stopped_at + INTERVAL + 0.5
    assert "timeout" in down.reason
    assert restarted_at <= intervals[3].start <= seen_up
    assert intervals[3].end is not None and intervals[3].end <= stopped_daemon_at
    [run] = read_runs(config / "ledger.sqlite")
    assert run.clean
    assert [i.state for i in read_intervals(config / "ledger.sqlite", "bts-ups")] == [
        State.UNKNOWN,
        State.UP,
    ]


def test_an_outage_the_daemon_was_restarted_in_continues_from_the_first_failed_poll(
    daemon_setup: tuple[Daemon, Path], snmpd: Snmpd
) -> None:
    """A restart in the middle of an outage is not a new outage: the previous run's last word
    (down) is carried, so the first failed poll confirms it again instead of `down_after`
    new ones (which would make a second alert with its own page)."""
    daemon, config = daemon_setup
    snmpd.stop()
    wait_for(
        "bts-snmpd down",
        lambda: daemon.metric("districtmon_site_up", site="bts-snmpd") == 0,
        daemon,
    )
    assert daemon.stop() == 0
    port = int(daemon.url.rsplit(":", 1)[1])
    restarted = Daemon(config, port)
    failed_polls: list[float] = []

    def down_again() -> bool:
        if restarted.metric("districtmon_site_up", site="bts-snmpd") != 0:
            return False
        errors = restarted.metric("districtmon_poll_errors_total", probe="snmp", reason="timeout")
        failed_polls.append(errors or 0)
        return True

    try:
        wait_for("bts-snmpd down again", down_again, restarted)
        assert restarted.stop() == 0
    finally:
        restarted.kill()
    # seen down with fewer failed polls than a new outage needs (the new process counts
    # from zero, and only bts-snmpd times out; the second read may be one poll later)
    assert 1 <= failed_polls[0] < DOWN_AFTER
    intervals = read_intervals(config / "ledger.sqlite", "bts-snmpd")
    assert [i.state for i in intervals[-3:]] == [State.DOWN, State.UNKNOWN, State.DOWN]
    assert intervals[-3].end is not None and intervals[-3].end <= intervals[-2].start
    assert intervals[-3].reason == intervals[-1].reason


def test_sigterm_stops_cleanly_within_seconds_and_leaves_no_open_interval(
    daemon_setup: tuple[Daemon, Path],
) -> None:
    daemon, config = daemon_setup
    wait_for(
        "first state", lambda: daemon.metric("districtmon_site_up", site="bts-ups") == 1, daemon
    )
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 5
    assert all(i.end is not None for i in read_intervals(config / "ledger.sqlite"))
    assert "stopped cleanly" in daemon.log.read_text()


def test_metrics_carry_no_secret(daemon_setup: tuple[Daemon, Path]) -> None:
    daemon, _ = daemon_setup
    wait_for(
        "first poll", lambda: daemon.metric("districtmon_site_up", site="bts-ups") == 1, daemon
    )
    _, text = daemon.get("/metrics")
    assert SNMPD_COMMUNITY not in text and UPS_COMMUNITY not in text
    assert daemon.stop() == 0
    log = daemon.log.read_text()
    assert SNMPD_COMMUNITY not in log and UPS_COMMUNITY not in log


def test_check_config_and_version_run_as_a_module() -> None:
    root = Path(__file__).parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "-c", str(root / "config")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "bts: 230" in out.stdout and "communes: 25" in out.stdout


def test_live_metrics_pass_promtool_check_metrics(daemon_setup: tuple[Daemon, Path]) -> None:
    daemon, _ = daemon_setup
    wait_for(
        "first poll", lambda: daemon.metric("districtmon_site_up", site="bts-ups") == 1, daemon
    )
    _, text = daemon.get("/metrics")
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


def test_a_real_prometheus_scrapes_the_daemon_with_vietnamese_names_intact(
    daemon_setup: tuple[Daemon, Path],
) -> None:
    daemon, _ = daemon_setup
    wait_for(
        "first poll", lambda: daemon.metric("districtmon_site_up", site="bts-ups") == 1, daemon
    )
    with Prometheus([daemon.url.removeprefix("http://")]) as prometheus:
        prometheus.start()
        deadline = time.monotonic() + 20
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not result:
            result = prometheus.query('districtmon_site_info{site="bts-snmpd"}')
            time.sleep(0.2)
        assert result, prometheus.log()[-2000:]
        assert result[0]["metric"]["name"] == "BTS Viettel Thanh Nưa 01"
        up = prometheus.query("sum by (commune) (districtmon_site_up)")
        assert up == [{"metric": {"commune": "thanh-nua"}, "value": [up[0]["value"][0], "2"]}]
