"""Schema 3 changes what stored rollups mean (unknown time no longer ends an outage): a ledger
written under the old meaning is recomputed, from its intervals where they are kept and from
its hourly records where they are pruned, and its reports follow the new rule."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from monitor.core.availability import DAY_MS, DOWN, HOUR_MS, UP, Tally, encode_hour
from monitor.ledger.records import read_intervals
from monitor.ledger.schema import MIGRATIONS, SCHEMA_VERSION, prepare
from monitor.ledger.views import open_readonly, window_tallies
from monitor.ledger.writer import Ledger
from monitor.report.build import build_report

DAY0 = 19_800  # a UTC day number (2024-03-19)
H = HOUR_MS


def write_schema_2(path: Path, with_intervals: bool) -> None:
    """A schema-2 ledger: site `a` down 12:00..21:36 on DAY0, the monitor blind from then
    until 04:48 on DAY0+2 (no rollup row for DAY0+1: nothing known), down again until 12:00,
    up after. Rollups carry the old rule: two outages."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for migration in MIGRATIONS[:2]:
            assert isinstance(migration, str)
            conn.executescript(migration)
        conn.execute("PRAGMA user_version = 2")
        conn.execute("INSERT INTO sites VALUES ('a', 'bts', 'A', 'c', 'o', NULL, ?, ?)", (0, 0))
        conn.execute("INSERT INTO site_keys (key, site) VALUES (1, 'a')")
        d0, d2 = DAY0 * DAY_MS, (DAY0 + 2) * DAY_MS
        # DAY0: unknown 0..12 h, down 12 h..21.6 h, unknown after
        day0 = [Tally(H)] * 12 + [Tally.of(DOWN, H)] * 9
        day0 += [Tally(H, (0, 0, int(0.6 * H), 0, 0), 1, int(0.6 * H), 0, int(0.6 * H))]
        day0 += [Tally(H)] * 2
        # DAY0+2: unknown 0..4.8 h, down 4.8..12 h, up after
        day2 = [Tally(H)] * 4 + [
            Tally(H, (0, 0, int(0.2 * H), 0, 0), 1, 0, int(0.2 * H), int(0.2 * H))
        ]
        day2 += [Tally.of(DOWN, H)] * 7 + [Tally.of(UP, H)] * 12
        rows = [
            # day, ms, runs, head, tail, longest (old rule: the unknown ends each outage)
            (DAY0, (0, 0, int(9.6 * H), 0, 0), 1, 0, 0, int(9.6 * H), day0),
            (DAY0 + 2, (12 * H, 0, int(7.2 * H), 0, 0), 1, 0, 0, int(7.2 * H), day2),
        ]
        for day, ms, runs, head, tail, longest, hours in rows:
            conn.execute(
                "INSERT INTO rollup_days VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (day, *ms, runs, head, tail, longest, b"".join(encode_hour(h) for h in hours)),
            )
        conn.execute(
            "INSERT INTO ledger_meta (key, value) VALUES ('rollup_watermark', ?)", (d2 + DAY_MS,)
        )
        conn.execute(
            "INSERT INTO monitor_runs (started, heartbeat, stopped, clean) VALUES (?, ?, ?, 1)",
            ((d0 + 12 * H) / 1000, (d0 + 21.6 * H) / 1000, (d0 + 21.6 * H) / 1000),
        )
        conn.execute(
            "INSERT INTO monitor_runs (started, heartbeat, stopped, clean) VALUES (?, ?, ?, 1)",
            ((d2 + 4.8 * H) / 1000, (d2 + DAY_MS) / 1000, (d2 + DAY_MS) / 1000),
        )
        if with_intervals:
            insert = 'INSERT INTO intervals (site, state, start, "end") VALUES (?, ?, ?, ?)'
            conn.execute(insert, ("a", "down", (d0 + 12 * H) / 1000, (d0 + 21.6 * H) / 1000))
            conn.execute(insert, ("a", "down", (d2 + 4.8 * H) / 1000, (d2 + 12 * H) / 1000))
            conn.execute(insert, ("a", "up", (d2 + 12 * H) / 1000, (d2 + DAY_MS) / 1000))


def whole(path: Path) -> Tally:
    with open_readonly(path) as conn:
        return window_tallies(conn, DAY0 * DAY_MS, (DAY0 + 3) * DAY_MS)["a"]


def test_rollups_whose_intervals_are_pruned_are_recomputed_from_their_hours(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    write_schema_2(path, with_intervals=False)
    assert whole(path).runs == 2  # the old meaning, read by this version: two outages
    prepare(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] == 0
    t = whole(path)
    assert (t.runs, t.longest, t.ms[DOWN]) == (1, int(16.8 * H), int(16.8 * H))
    assert t.unknown == 3 * DAY_MS - int(16.8 * H) - 12 * H


def test_rollups_with_their_intervals_kept_are_recomputed_from_them(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    write_schema_2(path, with_intervals=True)
    prepare(path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        dirty = {d for (d,) in conn.execute("SELECT day FROM rollup_dirty")}
    # DAY0 itself may have lost intervals to pruning before its first kept end: only the
    # days after it are certainly whole in the intervals
    assert dirty == {DAY0 + 2}
    assert [i.codes for i in read_intervals(path)] == [(), (), ()]  # the new column, empty

    async def writer_pass() -> None:
        ledger = await Ledger.open(path, clock=lambda: (DAY0 + 4) * 86400.0)
        run = asyncio.create_task(ledger.run())
        for _ in range(500):
            with open_readonly(path) as conn:
                if not conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0]:
                    break
            await asyncio.sleep(0.01)
        ledger.stop()
        await run
        await ledger.close()

    asyncio.run(writer_pass())
    t = whole(path)
    assert (t.runs, t.longest) == (1, int(16.8 * H))
    [row] = build_report([path], DAY0 * 86400.0, (DAY0 + 3) * 86400.0, "site", now=1e12).rows
    assert (row.figures.outages, row.figures.down) == (1, 16.8 * 3600)
