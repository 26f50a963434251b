"""Rollups are a faithful cache: any window read through rollups gives exactly the figures of the
raw intervals, including after transitions that arrive late (below the watermark), and raw
intervals past retention are pruned only once rolled up."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest

from monitor.config.settings import Retention
from monitor.core.availability import DAY_MS, HOUR_MS, STATE_CODES, Tally, sweep, to_ms
from monitor.core.model import Site, SnmpProbe, State, Transition
from monitor.ledger.records import read_intervals
from monitor.ledger.views import open_readonly, plan, watermark_of, window_tallies
from monitor.ledger.writer import Ledger

T0 = 1_700_000_123.456  # not aligned on anything
GRACE = 600.0
SITES = [f"s{i}" for i in range(6)]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def site(site_id: str) -> Site:
    return Site(site_id, "bts", site_id, "c", "o", 0.0, 0.0, SnmpProbe("127.0.0.1"))


async def settle(ledger: Ledger, clock: Clock) -> None:
    """Until the writer has written everything and rolled up all that is due (bounded)."""
    target = (to_ms(clock.now) - ledger.rollup_grace_ms) // HOUR_MS * HOUR_MS
    for _ in range(2000):
        if ledger.pending == 0 and ledger.watermark >= target:
            await asyncio.wait_for(ledger.flushed(), 10)  # the batch taken last is committed too
            if ledger.pending == 0:
                return
        await asyncio.sleep(0.002)
    raise AssertionError(f"writer did not settle: watermark {ledger.watermark} < {target}")


def raw_tallies(path: Path, start: int, end: int, open_end: int) -> dict[str, Tally]:
    by_site: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for i in read_intervals(path):
        stop = open_end if i.end is None else to_ms(i.end)
        by_site[i.site].append((STATE_CODES[i.state], to_ms(i.start), stop))
    found = {s: sweep(ivs, start, end) for s, ivs in by_site.items()}
    return {s: t for s, t in found.items() if t.unknown < t.length}


def windows(rng: random.Random, low: int, high: int) -> list[tuple[int, int]]:
    day0 = -(-low // DAY_MS) * DAY_MS
    out = [(low, high), (day0, day0 + DAY_MS), (day0 - 7 * HOUR_MS, day0 + DAY_MS + 3 * HOUR_MS)]
    for _ in range(40):
        a, b = sorted(rng.sample(range(low, high), 2))
        if rng.random() < 0.5:  # hour-aligned, like monthly reports in local time
            a, b = a // HOUR_MS * HOUR_MS, b // HOUR_MS * HOUR_MS + HOUR_MS
        out.append((a, b))
    return out


async def test_windows_read_through_rollups_equal_the_raw_intervals(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "ledger.sqlite"
    clock = Clock(T0)
    ledger = await Ledger.open(
        path, clock=clock, heartbeat_seconds=0.005, rollup_grace_seconds=GRACE
    )
    await ledger.sync_sites([site(s) for s in SITES])
    writer = asyncio.create_task(ledger.run())
    states = list(State)
    last = dict.fromkeys(SITES, T0)
    late = 0
    while clock.now < T0 + 3.2 * 86400:
        clock.now += rng.uniform(30, 1800)
        for s in rng.sample(SITES, rng.randrange(0, 4)):
            since = rng.uniform(max(last[s], clock.now - GRACE / 2), clock.now)
            if rng.random() < 0.04:  # a transition dated long ago (clock step, late source)
                since = max(last[s], clock.now - rng.uniform(2, 30) * 3600)
                late += 1
            last[s] = since
            ledger.record(Transition(s, rng.choice(states), since, State.UNKNOWN, "r"))
        await settle(ledger, clock)
    assert late > 3
    with open_readonly(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM rollup_days").fetchone()[0] > 0
        low, high = to_ms(T0) - HOUR_MS, to_ms(clock.now) + HOUR_MS
        open_end = to_ms(clock.now)  # the last heartbeat
        for a, b in windows(rng, low, high):
            assert window_tallies(conn, a, b) == raw_tallies(path, a, b, open_end), (a, b)
    ledger.stop()
    await writer
    await ledger.close(at=clock.now + 1)
    with open_readonly(path) as conn:
        for a, b in windows(rng, low, high):
            assert window_tallies(conn, a, b) == raw_tallies(path, a, b, 0), (a, b)


async def test_a_late_transition_marks_days_dirty_and_the_next_pass_recomputes_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    clock = Clock(T0)
    ledger = await Ledger.open(path, clock=clock, heartbeat_seconds=0.005, rollup_grace_seconds=0)
    await ledger.sync_sites([site("s0")])
    writer = asyncio.create_task(ledger.run())
    ledger.record(Transition("s0", State.UP, T0, State.UNKNOWN))
    clock.now = T0 + 2 * 86400
    await settle(ledger, clock)
    # A down dated 30 h back: the rolled-up days from then on are wrong until recomputed.
    ledger.record(Transition("s0", State.DOWN, clock.now - 30 * 3600, State.UP))
    await asyncio.wait_for(ledger.flushed(), 10)
    with open_readonly(path) as conn:
        dirty = {d for (d,) in conn.execute("SELECT day FROM rollup_dirty")}
        assert len(dirty) == 2
        wm = watermark_of(conn)
        pieces = plan(wm - 2 * DAY_MS, wm, wm, dirty)
        assert {p.source for p in pieces if p.start // DAY_MS in dirty} == {"raw"}
        a, b = to_ms(T0), wm
        assert window_tallies(conn, a, b) == raw_tallies(path, a, b, to_ms(clock.now))
    clock.now += 3600
    await settle(ledger, clock)
    with open_readonly(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] == 0
        a, b = to_ms(T0), watermark_of(conn)
        assert window_tallies(conn, a, b) == raw_tallies(path, a, b, to_ms(clock.now))
        down_since = T0 + 2 * 86400 - 30 * 3600
        assert window_tallies(conn, a, b)["s0"].ms[2] == b - to_ms(down_since)
    ledger.stop()
    await writer
    await ledger.close()


async def test_raw_intervals_past_retention_are_pruned_and_rollups_keep_the_figures(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    clock = Clock(T0)
    ledger = await Ledger.open(
        path,
        clock=clock,
        heartbeat_seconds=0.005,
        rollup_grace_seconds=0,
        retention=Retention(intervals_days=2, rollups_days=4),
    )
    await ledger.sync_sites([site("s0")])
    writer = asyncio.create_task(ledger.run())
    for day in range(6):
        for hour, state in ((1, State.UP), (13, State.DOWN)):
            clock.now = T0 + day * 86400 + hour * 3600
            ledger.record(Transition("s0", state, clock.now, State.UNKNOWN))
            await settle(ledger, clock)
    final = clock.now + 86400  # the next prune is due by then (they run daily)
    # a whole day older than interval retention, younger than rollup retention
    day = to_ms(final - 4 * 86400) // DAY_MS + 1
    window = (day * DAY_MS, (day + 1) * DAY_MS)
    assert window[1] <= to_ms(final - 2 * 86400)
    with open_readonly(path) as conn:
        before = window_tallies(conn, *window)
    assert before["s0"].ms[2] > 0 and before["s0"].ms[0] > 0
    clock.now = final
    await settle(ledger, clock)
    first_kept_day = to_ms(final - 4 * 86400) // DAY_MS

    def pruned() -> bool:
        """Both halves of the prune are committed: raw intervals first, then old rollups."""
        with open_readonly(path) as conn:
            oldest_day: int | None = conn.execute("SELECT MIN(day) FROM rollup_days").fetchone()[0]
        intervals_gone = min(i.start for i in read_intervals(path)) >= window[1] / 1000 - 12 * 3600
        return intervals_gone and oldest_day is not None and oldest_day >= first_kept_day

    for _ in range(200):
        if pruned():
            break
        await asyncio.sleep(0.01)
    assert min(i.start for i in read_intervals(path)) >= window[1] / 1000 - 12 * 3600
    with open_readonly(path) as conn:
        days = [d for (d,) in conn.execute("SELECT DISTINCT day FROM rollup_days")]
        assert min(days) == first_kept_day, "rollups past retention remain"
        assert window_tallies(conn, *window) == before
    ledger.stop()
    await writer
    await ledger.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_outages_spanning_whole_days_keep_their_length_through_daily_rollups(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    day0 = (to_ms(T0) // DAY_MS + 1) * DAY_MS / 1000  # a UTC midnight
    clock = Clock(day0 - 3600)
    ledger = await Ledger.open(path, clock=clock, heartbeat_seconds=0.005, rollup_grace_seconds=0)
    await ledger.sync_sites([site("long"), site("gaps"), site("blind")])
    writer = asyncio.create_task(ledger.run())
    script = [
        ("long", State.UP, -3600),
        ("long", State.DOWN, 86400 * 0.5),  # down 2.5 days, over two whole days
        ("long", State.UP, 86400 * 3),
        ("gaps", State.UP, -3600),
        ("gaps", State.DOWN, 86400 - 600),  # across midnight into day 1
        ("gaps", State.UP, 86400 + 600),
        ("gaps", State.DOWN, 3 * 86400 + 100),  # day 3, after a day without down
        ("gaps", State.UP, 3 * 86400 + 200),
        ("gaps", State.DOWN, 5 * 86400 - 50),  # touching the end of day 4
        ("blind", State.UP, -3600),
        ("blind", State.DOWN, 86400 * 0.5),
        ("blind", State.UNKNOWN, 86400 * 0.9),  # the monitor blind for over a whole day
        ("blind", State.DOWN, 86400 * 2.2),  # and the site still down after: one outage
        ("blind", State.UP, 86400 * 2.5),
    ]
    for site_id, state, offset in script:
        clock.now = day0 + offset
        ledger.record(Transition(site_id, state, day0 + offset, State.UNKNOWN))
        await settle(ledger, clock)
    clock.now = day0 + 6 * 86400
    await settle(ledger, clock)
    ledger.stop()
    await writer
    await ledger.close(at=clock.now)
    start = to_ms(day0)
    with open_readonly(path) as conn:
        for a, b in [(start, start + 5 * DAY_MS), (start + DAY_MS, start + 3 * DAY_MS),
                     (start - HOUR_MS, start + 5 * DAY_MS + HOUR_MS)]:  # fmt: skip
            assert window_tallies(conn, a, b) == raw_tallies(path, a, b, 0)
            assert {p.source for p in plan(a, b, watermark_of(conn), set())} >= {"days"}
        whole = window_tallies(conn, start, start + 5 * DAY_MS)
    assert (whole["long"].runs, whole["long"].longest) == (1, int(2.5 * DAY_MS))
    assert (whole["gaps"].runs, whole["gaps"].longest, whole["gaps"].tail) == (3, 1_200_000, 50_000)
    blind = whole["blind"]  # its unknown day has no rollup row: the outage passes through it
    assert (blind.runs, blind.longest) == (1, round(0.7 * DAY_MS))
    assert blind.ms[2] == round(0.7 * DAY_MS) and blind.unknown == round(1.3 * DAY_MS)


@pytest.mark.parametrize(
    ("start", "end", "sources"),
    [
        (0, 2 * DAY_MS, ["days"]),
        (HOUR_MS, DAY_MS + 2 * HOUR_MS, ["hours", "hours"]),
        (HOUR_MS + 5, DAY_MS, ["raw", "hours"]),
        (0, 3 * DAY_MS, ["days", "raw"]),  # past the watermark
    ],
)
def test_a_window_is_cut_into_days_hours_and_raw_pieces(
    start: int, end: int, sources: list[str]
) -> None:
    pieces = plan(start, end, 2 * DAY_MS + HOUR_MS // 2, set())
    assert [p.source for p in pieces if p.end > p.start] == sources
    assert pieces[0].start == start and pieces[-1].end == end
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))


async def test_a_failing_rollup_pass_never_holds_transitions_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.ledger import rollup

    real = rollup.compute
    failures: list[int] = []

    def broken_once(
        conn: sqlite3.Connection, watermark: int, target: int, dirty: Iterable[int]
    ) -> rollup.RollupPlan:
        if not failures:
            failures.append(1)
            raise RuntimeError("disk on fire")
        return real(conn, watermark, target, dirty)

    monkeypatch.setattr(rollup, "compute", broken_once)
    errors: list[int] = []
    path = tmp_path / "ledger.sqlite"
    clock = Clock(T0)
    ledger = await Ledger.open(
        path,
        clock=clock,
        heartbeat_seconds=0.005,
        rollup_grace_seconds=0,
        on_error=lambda: errors.append(1),
    )
    await ledger.sync_sites([site("s0")])
    writer = asyncio.create_task(ledger.run())
    ledger.record(Transition("s0", State.UP, T0, State.UNKNOWN))
    clock.now = T0 + 2 * 3600
    ledger.record(Transition("s0", State.DOWN, T0 + 2 * 3600, State.UP))
    await settle(ledger, clock)
    assert failures and errors
    assert [i.state for i in read_intervals(path)] == [State.UP, State.DOWN]
    assert ledger.watermark == (to_ms(clock.now) // HOUR_MS) * HOUR_MS  # the retry went through
    ledger.stop()
    await writer
    await ledger.close()
