"""The ledger: intervals from transitions, clean stops, crash recovery, schema versioning."""

import asyncio
import sqlite3
from pathlib import Path

import pytest

from monitor.core.model import Site, SnmpProbe, State, Transition
from monitor.ledger.records import read_intervals, read_runs
from monitor.ledger.schema import SCHEMA_VERSION, LedgerError
from monitor.ledger.writer import Ledger


def site(site_id: str) -> Site:
    return Site(
        site_id,
        "bts",
        f"BTS {site_id}",
        "thanh-nua",
        "viettel",
        21.4,
        103.0,
        SnmpProbe("127.0.0.1"),
    )


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def open_ledger(path: Path, clock: FakeClock) -> Ledger:
    ledger = await Ledger.open(path, clock=clock, heartbeat_seconds=0.05)
    await ledger.sync_sites([site("a"), site("b")])
    return ledger


async def test_transitions_become_back_to_back_intervals(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    clock = FakeClock(1000.0)
    ledger = await open_ledger(path, clock)
    writer = asyncio.create_task(ledger.run())
    ledger.record(Transition("a", State.UNKNOWN, 1000.0, State.UNKNOWN, "no data yet"))
    ledger.record(Transition("a", State.UP, 1010.0, State.UNKNOWN))
    ledger.record(Transition("a", State.DOWN, 1070.0, State.UP, "snmp timeout"))
    ledger.record(Transition("a", State.UP, 1250.0, State.DOWN))
    ledger.stop()
    await writer
    await ledger.close(at=1300.0)

    rows = [(i.state, i.start, i.end, i.reason) for i in read_intervals(path, "a")]
    assert rows == [
        (State.UNKNOWN, 1000.0, 1010.0, "no data yet"),
        (State.UP, 1010.0, 1070.0, ""),
        (State.DOWN, 1070.0, 1250.0, "snmp timeout"),
        (State.UP, 1250.0, 1300.0, ""),
    ]
    [run] = read_runs(path)
    assert run.clean and run.stopped == 1300.0


async def test_close_writes_what_was_queued_even_without_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = await open_ledger(path, FakeClock(0.0))
    ledger.record(Transition("b", State.UP, 5.0, State.UNKNOWN))
    await ledger.close(at=9.0)
    assert [(i.state, i.start, i.end) for i in read_intervals(path)] == [(State.UP, 5.0, 9.0)]


async def test_a_crash_leaves_the_gap_unknown_and_closes_intervals_at_the_last_heartbeat(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    clock = FakeClock(2000.0)
    ledger = await open_ledger(path, clock)
    writer = asyncio.create_task(ledger.run())
    ledger.record(Transition("a", State.UP, 2000.0, State.UNKNOWN))
    clock.now = 2030.0
    # committed with a heartbeat at t=2030: the writer's first turn comes after the clock moved
    await asyncio.wait_for(ledger.flushed(), 10)
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    await ledger._db.close()  # the process dies: no clean close

    clock.now = 2500.0
    reopened = await Ledger.open(path, clock=clock)
    assert reopened.recovered_gap == (2030.0, 2500.0)
    await reopened.close(at=2600.0)
    assert [(i.state, i.start, i.end) for i in read_intervals(path)] == [(State.UP, 2000.0, 2030.0)]
    first, second = read_runs(path)
    assert (first.clean, first.stopped) == (False, 2030.0)
    assert (second.clean, second.started) == (True, 2500.0)


async def test_writes_survive_in_wal_mode_and_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = await open_ledger(path, FakeClock(0.0))
    await ledger.close(at=1.0)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_ledger_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LedgerError, match="newer"):
        await Ledger.open(path)


async def test_an_interval_can_never_end_before_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = await open_ledger(path, FakeClock(0.0))
    ledger.record(Transition("a", State.UP, 50.0, State.UNKNOWN))
    ledger.record(Transition("a", State.DOWN, 40.0, State.UP))  # clock stepped back
    await ledger.close(at=60.0)
    for interval in read_intervals(path):
        assert interval.end is not None and interval.end >= interval.start
