"""The ledger under a real daemon process against real SNMP agents: SIGKILL at random moments
never corrupts it nor loses a closed interval and leaves an unknown gap; availability gauges on
/metrics; maintenance added from the command line while it runs; reports read beside it."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for, write_config
from peers import Snmpd, Snmpsim, free_udp_port

from monitor.core.model import State
from monitor.expose.availability_metrics import AVAILABILITY_PATH
from monitor.ledger.records import read_intervals, read_runs
from monitor.report.build import build_report

KILLS = 50


def add_dead_site(config: Path) -> None:
    """A site whose agent never answers (nothing listens on its port): it goes down."""
    inventory = config / "inventory" / "district.yaml"
    inventory.write_text(
        inventory.read_text(encoding="utf-8")
        + f"""
  - id: bts-dead
    kind: bts
    name: BTS Viettel Thanh Nưa 03
    commune: thanh-nua
    owner: viettel
    lat: 21.47
    lon: 103.03
    parent: bts-snmpd
    probe: {{snmp: {{address: 127.0.0.1, port: {free_udp_port()}, credential: agent-ro}}}}
""",
        encoding="utf-8",
    )


Closed = set[tuple[str, str, float, float]]


def closed_intervals(path: Path) -> Closed:
    """Closed intervals as a reader sees them (read-only, beside a running writer)."""
    if not path.exists():
        return set()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                'SELECT site, state, start, "end" FROM intervals WHERE "end" IS NOT NULL'
            ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # killed before its first migration committed
            return set()
        raise
    return {(r[0], r[1], r[2], r[3]) for r in rows}


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def runs_started(path: Path) -> int:
    try:
        return len(read_runs(path))
    except sqlite3.OperationalError:
        return 0


def more_runs_than(path: Path, count: int) -> Callable[[], bool]:
    """For `wait_for`: the ledger at `path` holds more runs than `count`."""
    return lambda: runs_started(path) > count


def test_sigkill_at_random_moments_never_corrupts_the_ledger_nor_loses_closed_intervals(
    tmp_path: Path, snmpd: Snmpd, snmpsim_agent: Snmpsim
) -> None:
    seed = int(os.environ.get("KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    port = free_tcp_port()
    config = write_config(tmp_path / "config", port, snmpd, snmpsim_agent)
    add_dead_site(config)
    ledger = config / "ledger.sqlite"
    kept: Closed = set()
    deadline = time.monotonic() + 150
    for kill in range(KILLS):
        assert time.monotonic() < deadline, f"too slow: {kill} kills (seed {seed})"
        runs_before = runs_started(ledger)
        daemon = Daemon(config, port)
        try:
            if kill % 2:  # anywhere in start-up: migration, crash recovery, first writes
                time.sleep(rng.uniform(0.0, 0.6))
            else:  # once it writes: transitions, heartbeats, inventory, rollups
                wait_for("the run row", more_runs_than(ledger, runs_before), daemon)
                # now and then long enough for the dead site to be declared down
                time.sleep(rng.uniform(0.0, 2.5 if kill % 10 == 0 else 0.9))
            seen = closed_intervals(ledger)
        finally:
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.kill()
        assert integrity(ledger) == "ok", f"kill {kill} (seed {seed})"
        after = closed_intervals(ledger)
        lost = (seen | kept) - after
        assert not lost, f"kill {kill} lost closed intervals {lost} (seed {seed})"
        kept = after

    # One clean run: it recovers the last crash and stops cleanly.
    daemon = Daemon(config, port)
    try:
        wait_for(
            "the dead site down",
            lambda: daemon.metric("districtmon_site_state", site="bts-dead", state="down") == 1,
            daemon,
        )
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert integrity(ledger) == "ok"
    intervals = read_intervals(ledger)
    assert kept <= closed_intervals(ledger)
    assert all(i.end is not None for i in intervals)
    states = {i.state for i in intervals}
    assert {State.UP, State.DOWN, State.UNKNOWN} <= states, states

    runs = read_runs(ledger)
    assert len(runs) > KILLS / 2 and runs[-1].clean and not any(r.clean for r in runs[:-1])
    stops = [(a.stopped, b.started) for a, b in itertools.pairwise(runs)]
    assert all(a is not None and a <= b for a, b in stops)
    gaps = [(a, b) for a, b in stops if a is not None]  # all of them, as just asserted
    by_site: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for i in intervals:
        assert i.end is not None
        by_site[i.site].append((i.start, i.end))
        for gap_start, gap_end in gaps:  # nothing is known while the daemon was dead
            assert i.end <= gap_start or i.start >= gap_end, (i, gap_start, gap_end)
    for spans in by_site.values():  # intervals of a site never overlap
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))

    # the report shows each crash as a gap, and every site as unknown during all of them
    start, end = runs[0].started, runs[-1].stopped
    assert end is not None
    report = build_report([ledger], start, end, "site")
    crashed = sum(b - a for a, b in gaps)
    assert [(g.start, g.end) for g in report.gaps] == [g for g in gaps if g[1] > g[0]]
    assert all(g.cause == "crashed" for g in report.gaps)
    for row in report.rows:
        assert row.figures.unknown >= crashed - 0.002, row.key  # ms rounding per gap edge


@pytest.fixture
def running(tmp_path: Path, snmpd: Snmpd, snmpsim_agent: Snmpsim) -> Iterator[tuple[Daemon, Path]]:
    port = free_tcp_port()
    config = write_config(tmp_path / "config", port, snmpd, snmpsim_agent)
    settings = config / "districtmon.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace(
            "ledger: {path: ledger.sqlite}",
            "ledger: {path: ledger.sqlite, availability_refresh_seconds: 0.3}\n"
            "timezone: Asia/Ho_Chi_Minh",
        ),
        encoding="utf-8",
    )
    daemon = Daemon(config, port)
    yield daemon, config
    daemon.kill()


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "-c", str(config)],
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_gauges_maintenance_from_the_command_line_and_reports_beside_the_daemon(
    running: tuple[Daemon, Path], snmpd: Snmpd
) -> None:
    daemon, config = running
    began = time.time()
    snmpd_site = {"site": "bts-snmpd", "window": "1h", "served_at": AVAILABILITY_PATH}
    wait_for(
        "availability of an answering site",
        lambda: daemon.metric("districtmon_site_availability_ratio", **snmpd_site) == 1.0,
        daemon,
    )
    # each site's figures are on their own path, not on /metrics; the groups' stay there
    assert daemon.metric("districtmon_site_availability_ratio", site="bts-snmpd") is None
    for group, key in (("commune", "thanh-nua"), ("owner", "viettel"), ("kind", "bts")):
        ratio = daemon.metric(
            f"districtmon_{group}_availability_ratio", window="30d", **{group: key}
        )
        assert ratio == 1.0, group
        counted = daemon.metric(
            f"districtmon_{group}_availability_counted_seconds", window="30d", **{group: key}
        )
        assert counted is not None and 0 < counted < 2 * (time.time() - began + 5), group
    # a 30-day ratio a few seconds after a fresh start: computed from those few seconds
    watched = daemon.metric(
        "districtmon_site_availability_counted_seconds",
        site="bts-snmpd",
        window="30d",
        served_at=AVAILABILITY_PATH,
    )
    assert watched is not None and 0 < watched <= time.time() - began + 5

    snmpd.stop()
    wait_for(
        "the outage in the 1 h figure",
        lambda: (daemon.metric("districtmon_site_availability_ratio", **snmpd_site) or 1) < 1,
        daemon,
    )
    ratio = daemon.metric("districtmon_owner_availability_ratio", owner="viettel", window="24h")
    assert ratio is not None and 0 < ratio < 1

    # a window added from the command line holds the site as soon as the daemon reloads
    now = time.time()
    added = cli(
        config, "maintenance", "add", "ups-works", "--site", "bts-ups",
        "--start", time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 60)),
        "--end", time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now + 3600)),
        "--reason", "thay ắc quy",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr.decode()
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(
        "bts-ups in maintenance",
        lambda: daemon.metric("districtmon_site_state", site="bts-ups", state="maintenance") == 1,
        daemon,
    )
    assert daemon.metric("districtmon_site_up", site="bts-ups") is None
    assert cli(config, "maintenance", "remove", "ups-works").returncode == 0
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(
        "bts-ups back up",
        lambda: daemon.metric("districtmon_site_state", site="bts-ups", state="up") == 1,
        daemon,
    )

    # reports, read while the daemon writes
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(began - 5))
    out = cli(config, "report", "--from", since, "--format", "csv")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.startswith(b"\xef\xbb\xbf")  # UTF-8 byte order mark
    text = out.stdout.decode("utf-8-sig")
    assert "BTS Viettel Thanh Nưa 01" in text
    header, *rows = text.splitlines()
    columns = header.split(",")
    found = {r.split(",")[0]: dict(zip(columns, r.split(","), strict=True)) for r in rows}
    snmpd_row, ups_row = found["bts-snmpd"], found["bts-ups"]
    assert float(snmpd_row["down_site_seconds"]) > 0 and snmpd_row["outages"] == "1"
    assert float(ups_row["maintenance_site_seconds"]) > 0 and ups_row["outages"] == "0"

    out = cli(config, "report", "--from", since, "--by", "commune", "--format", "json")
    body = json.loads(out.stdout)
    [commune] = body["rows"]
    assert (commune["id"], commune["name"], commune["sites"]) == ("thanh-nua", "Thanh Nưa", 2)
    assert 0 < commune["availability"] < 1

    out = cli(config, "report", "--from", since)
    assert out.returncode == 0 and "bts-snmpd" in out.stdout.decode()
    assert daemon.stop() == 0
    states = [i.state for i in read_intervals(config / "ledger.sqlite", "bts-ups")]
    assert State.MAINTENANCE in states and states[-1] is State.UP
