"""Reports from ledgers: shards merged, groups weighted by time, the command line's formats and
errors, availability gauges, and a ledger of the first schema migrated and reported on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from monitor.cli.main import main
from monitor.core.model import Commune, Owner, Site, SnmpProbe, State, Transition
from monitor.ledger.recent import compute
from monitor.ledger.records import read_runs
from monitor.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from monitor.ledger.writer import Ledger
from monitor.report.build import build_report, month_window, parse_moment
from monitor.report.render import duration, render

T0 = 1_740_000_000.0  # 2025-02-19 21:20 UTC


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def site(site_id: str, commune: str = "thanh-nua", owner: str = "viettel") -> Site:
    name = {"a": "Trạm Mường Phăng", "b": "Trạm Nà Tấu"}.get(site_id, site_id)
    return Site(site_id, "bts", name, commune, owner, 0.0, 0.0, SnmpProbe("127.0.0.1"))


async def write_ledger(
    path: Path, sites: list[Site], changes: list[tuple[str, State, float]], stop: float
) -> None:
    """A ledger holding `changes` (site, state, since seconds after T0), stopped at `stop`."""
    clock = Clock(T0)
    ledger = await Ledger.open(path, clock=clock)
    await ledger.sync_sites(
        sites,
        [Commune("thanh-nua", "Thanh Nưa", 0, 0), Commune("na-tau", "Nà Tấu", 0, 0)],
        [Owner("viettel", "Viettel", "operator"), Owner("vnpt", "VNPT", "operator")],
    )
    for site_id, state, since in changes:
        ledger.record(Transition(site_id, state, T0 + since, State.UNKNOWN))
    clock.now = T0 + stop
    await ledger.close(at=T0 + stop)


@pytest.fixture
def shards(tmp_path: Path) -> tuple[Path, Path]:
    """Two shards; site m moved from the first to the second at +600 s."""
    one, two = tmp_path / "shard-0.sqlite", tmp_path / "shard-1.sqlite"
    asyncio.run(
        write_ledger(
            one,
            [site("a"), site("m")],
            [("a", State.UP, 0), ("a", State.DOWN, 300), ("a", State.UP, 400), ("m", State.UP, 0)],
            600,
        )
    )
    asyncio.run(
        write_ledger(
            two,
            [site("b", "na-tau", "vnpt"), site("m")],
            [("b", State.UP, 0), ("m", State.DOWN, 600), ("m", State.UP, 660)],
            1000,
        )
    )
    return one, two


def test_shards_are_merged_and_a_site_that_moved_adds_its_seconds(
    shards: tuple[Path, Path],
) -> None:
    report = build_report(list(shards), T0, T0 + 1000, "site", now=T0 + 5000)
    rows = {row.key: row.figures for row in report.rows}
    assert set(rows) == {"a", "b", "m"}
    assert (rows["a"].up, rows["a"].down, rows["a"].unknown) == (500, 100, 400)
    assert (rows["b"].up, rows["b"].unknown) == (1000, 0)
    # m: up 600 s in shard 0, then down 60 s and up 340 s in shard 1
    assert (rows["m"].up, rows["m"].down, rows["m"].unknown, rows["m"].outages) == (940, 60, 0, 1)
    assert report.total.figures.availability == (500 + 1000 + 940) / (3000 - 400)
    owners = {r.key: r for r in build_report(list(shards), T0, T0 + 1000, "owner").rows}
    assert owners["viettel"].sites == 2 and owners["vnpt"].name == "VNPT"
    assert owners["viettel"].figures.down == 160


def test_a_window_in_the_future_stops_now_and_an_empty_one_is_refused(
    shards: tuple[Path, Path],
) -> None:
    report = build_report([shards[0]], T0, T0 + 10_000, "site", now=T0 + 500)
    assert report.end == T0 + 500
    with pytest.raises(ValueError, match="empty"):
        build_report([shards[0]], T0 + 10, T0 + 10, "site")


def test_the_command_line_writes_table_csv_and_json(
    shards: tuple[Path, Path], tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    base = [
        "report",
        "--from",
        "2025-02-19T21:20:00Z",
        "--to",
        "2025-02-19T21:36:40Z",
        "--tz",
        "UTC",
    ]
    ledgers = ["--ledger", str(shards[0]), "--ledger", str(shards[1])]
    assert main([*base, *ledgers]) == 0
    table = capsysbinary.readouterr().out.decode()
    assert "Trạm Mường Phăng" in table and "00:01:40" in table  # a's 100 s outage
    assert "Availability 2025-02-19 21:20:00 .. 2025-02-19 21:36:40 (UTC)" in table
    assert "a monitor gap) does not split it" in table  # the outage rule, said where it is read

    out = tmp_path / "thang.csv"
    assert (
        main([*base, *ledgers, "--format", "csv", "-o", str(out), "--tz", "Asia/Ho_Chi_Minh"]) == 0
    )
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and "Trạm Nà Tấu".encode() in data
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("site,name,commune,owner,kind,availability_percent,")
    assert lines[-1].startswith("TOTAL,3 sites,")

    assert main([*base, *ledgers, "--format", "json", "--by", "commune"]) == 0
    body = json.loads(capsysbinary.readouterr().out)
    assert {r["id"]: r["name"] for r in body["rows"]} == {
        "thanh-nua": "Thanh Nưa",
        "na-tau": "Nà Tấu",
    }
    assert body["total"]["down_site_seconds"] == 160


def test_the_command_line_refuses_what_it_cannot_answer(
    shards: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = ["--ledger", str(shards[0])]
    assert main(["report", *ledger]) == 2
    assert "say which window" in capsys.readouterr().err
    assert main(["report", "--from", "yesterday", *ledger]) == 2
    assert "not a date" in capsys.readouterr().err
    assert main(["report", "--month", "2025-02", "--tz", "Mars/Olympus", *ledger]) == 2
    assert "unknown time zone" in capsys.readouterr().err
    assert main(["report", "--month", "2025-02", "--ledger", "/nonexistent.sqlite"]) == 2
    assert "no such ledger" in capsys.readouterr().err


def test_months_and_moments_are_read_in_the_given_time_zone() -> None:
    start, end = month_window("2025-02", "Asia/Ho_Chi_Minh")
    assert (start, end) == (1_738_342_800.0, 1_740_762_000.0)  # 2025-01-31T17:00Z, 02-28T17:00Z
    assert parse_moment("2025-02-01", "Asia/Ho_Chi_Minh") == start
    assert parse_moment("2025-02-01T00:00+07:00", "UTC") == start
    assert duration(90061.4) == "1d 01:01:01" and duration(None) == "-"


def test_gauges_weigh_sites_by_time_and_leave_out_what_was_not_counted(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    sites = [site("a"), site("b"), site("c", owner="vnpt")]
    asyncio.run(
        write_ledger(
            path,
            sites,
            [
                ("a", State.UP, 0),
                ("a", State.DOWN, 3000),  # down the last 600 s of the hour
                ("b", State.UP, 0),
                ("c", State.MAINTENANCE, 0),
            ],
            3600,
        )
    )
    snap = compute(path, {s.id: s for s in sites}, T0 + 3600)
    assert snap.sites["a"]["1h"] == 3000 / 3600
    assert snap.sites["b"]["1h"] == 1.0
    assert "1h" not in snap.sites["c"]  # all maintenance: nothing to count
    assert snap.sites["a"]["30d"] == 3000 / 3600  # the rest of 30 days is unknown
    assert snap.groups[("owner", "viettel")]["24h"] == (3000 + 3600) / 7200
    assert ("owner", "vnpt") not in snap.groups or "1h" not in snap.groups[("owner", "vnpt")]
    # beside each ratio, the time it was computed from: an hour, not 30 days
    assert snap.counted["a"]["30d"] == 3600 and snap.counted["b"]["1h"] == 3600
    assert "1h" not in snap.counted["c"]
    assert snap.group_counted[("owner", "viettel")]["30d"] == 7200
    assert snap.group_counted[("kind", "bts")]["24h"] == 7200  # c counted nothing
    # read as a dict of dicts by window, in the windows' order, the absent ones left out
    windows = ["1h", "24h", "7d", "30d"]
    assert snap.sites == {
        "a": dict.fromkeys(windows, 3000 / 3600),
        "b": dict.fromkeys(windows, 1.0),
        "c": {},
    }
    assert list(snap.sites) == ["a", "b", "c"] and list(snap.counted["a"]) == windows
    assert snap.sites.get("nowhere") is None and not snap.counted["c"]


def test_a_ledger_of_the_first_schema_is_migrated_and_reported_on(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        first = MIGRATIONS[0]
        assert isinstance(first, str)
        conn.executescript(first)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO sites VALUES ('a', 'bts', 'Trạm A', 'thanh-nua', 'viettel', NULL, ?, ?)",
            (T0, T0),
        )
        insert = 'INSERT INTO intervals (site, state, start, "end") VALUES (?, ?, ?, ?)'
        conn.execute(insert, ("a", "up", T0, T0 + 7200))
        conn.execute(insert, ("a", "down", T0 + 7200, T0 + 7500))
        conn.execute(
            "INSERT INTO monitor_runs (started, heartbeat, stopped, clean) VALUES (?, ?, ?, 1)",
            (T0, T0 + 7500, T0 + 7500),
        )

    async def reopen() -> None:
        clock = Clock(T0 + 3 * 86400)
        ledger = await Ledger.open(path, clock=clock, heartbeat_seconds=0.005)
        writer = asyncio.create_task(ledger.run())
        for _ in range(500):  # the first passes roll up the old days
            if ledger.watermark >= (T0 + 2 * 86400) * 1000:
                break
            await asyncio.sleep(0.01)
        ledger.stop()
        await writer
        await ledger.close()

    asyncio.run(reopen())
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT site FROM site_keys").fetchall() == [("a",)]
        assert conn.execute("SELECT COUNT(*) FROM rollup_days").fetchone()[0] >= 1
    [row] = build_report([path], T0, T0 + 7500, "site").rows
    assert (row.figures.up, row.figures.down, row.figures.outages) == (7200, 300, 1)


def test_by_kind_names_the_kind(shards: tuple[Path, Path]) -> None:
    report = build_report(list(shards), T0, T0 + 1000, "kind", now=T0 + 5000)
    [row] = report.rows
    assert (row.key, row.name, row.sites) == ("bts", "Mobile base stations (BTS)", 3)
    table = render(report, "table")
    assert "bts   Mobile base stations (BTS)" in table and "bts bts" not in table


def test_the_table_says_which_columns_are_site_time(shards: tuple[Path, Path]) -> None:
    """Three sites over 1000 s: the durations of the total add up 3000 s of site-time, and
    the lines above and below the columns say so."""
    report = build_report(list(shards), T0, T0 + 1000, "commune", now=T0 + 5000)
    assert report.total.figures.window == 3000
    lines = render(report, "table").splitlines()
    assert lines[1] == "window: 00:16:40 of wall time; 3 sites: 00:50:00 of site-time"
    group, head = lines[3], lines[4]
    label = " site-time, summed over sites "
    a = group.index("-")
    b = group.index(label) + len(label)
    b = b + len(group[b:]) - len(group[b:].lstrip("-"))  # through its trailing dashes
    inside = {title: a <= head.index(title) < b for title in ("avail %", "down", "unknown")}
    assert inside == {"avail %": False, "down": True, "unknown": True}
    assert head.index("outages") >= b
    assert "per outage" in group[head.index("longest") :]
    assert any(line.startswith("site-time: each site's time added up") for line in lines)


def test_csv_and_json_name_site_seconds_and_wall_seconds(shards: tuple[Path, Path]) -> None:
    report = build_report(list(shards), T0, T0 + 1000, "owner", now=T0 + 5000)
    header = render(report, "csv").splitlines()[0].split(",")
    assert "unknown_site_seconds" in header and "window_site_seconds" in header
    assert "longest_outage_seconds" in header and "unknown_seconds" not in header
    body = json.loads(render(report, "json"))
    assert body["window_seconds"] == 1000
    assert body["total"]["window_site_seconds"] == 3000


async def test_a_running_daemon_s_last_seconds_are_no_gap(tmp_path: Path) -> None:
    """Read while the writer runs: the seconds since its last heartbeat are not a "no
    heartbeat" gap; a run whose heartbeat stopped long ago (a hung or killed daemon) is."""
    path = tmp_path / "ledger.sqlite"
    clock = Clock(T0)
    ledger = await Ledger.open(path, clock=clock)
    writer = asyncio.create_task(ledger.run())
    try:
        await ledger.sync_sites([site("a")], [], [])
        ledger.record(Transition("a", State.UP, T0, State.UNKNOWN))
        clock.now = T0 + 600
        await asyncio.wait_for(ledger.flushed(), 10)
        [run] = await asyncio.to_thread(lambda: read_runs(path))
        assert run.stopped is None and run.heartbeat == T0 + 600

        live = build_report([path], T0, T0 + 620, "site", now=T0 + 620)
        assert live.gaps == [] and live.running == [(path, T0 + 600)]
        text = render(live, "table")
        assert "no heartbeat" not in text and "running: the daemon of ledger.sqlite" in text

        stale = build_report([path], T0, T0 + 900, "site", now=T0 + 900)
        assert [(g.start, g.end, g.cause) for g in stale.gaps] == [
            (T0 + 600, T0 + 900, "no heartbeat")
        ]
        assert stale.running == []
    finally:
        ledger.stop()
        await writer
        await ledger.close(at=T0 + 900)
