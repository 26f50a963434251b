"""Hourly and daily rollups per site, computed from the intervals (the one source of truth).

A rollup row holds one site's UTC day: milliseconds per state, the shape of its down time, and
one record per hour (availability's hourly encoding). Rows are final below the ledger's
watermark, which the writer advances hour by hour a grace period behind the clock, because a
transition is dated at the first observation of its run, minutes in the past. A transition
that still lands below the watermark marks the days it touches dirty; the next pass
recomputes them whole and readers use raw intervals for them meanwhile.

The computation is synchronous and reads through its own connection: the writer runs it in a
worker thread while it holds its own writes, so what is read is exactly what is committed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.core.availability import DAY_MS, HOUR_MS, UNKNOWN, Tally, encode_hour, sweep
from monitor.ledger.views import fetch_intervals

RollupRow = tuple[int, int, int, int, int, int, int, int, int, int, int, bytes]

UPSERT_ROLLUP = """
    INSERT OR REPLACE INTO rollup_days
      (day, site_key, up, degraded, down, unreachable, maintenance,
       runs, head, tail, longest, hours)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

_UNKNOWN_HOUR = bytes((UNKNOWN,))


@dataclass(frozen=True, slots=True)
class RollupPlan:
    """What one pass writes: rows, and the days whose old rows go first (recomputed whole)."""

    rows: list[RollupRow]
    replaced_days: list[int]
    watermark: int


def compute(
    conn: sqlite3.Connection, watermark: int, target: int, dirty: Iterable[int]
) -> RollupPlan:
    """Roll up `[watermark, target)` (ms, whole hours, at most into the next day), and the
    dirty days below `target` whole."""
    keys = {str(s): int(k) for k, s in conn.execute("SELECT key, site FROM site_keys")}
    dirty_set = {d for d in dirty if d * DAY_MS < target}
    rows: list[RollupRow] = []
    day = watermark // DAY_MS
    while day * DAY_MS < target:
        low = max(watermark, day * DAY_MS)
        high = min(target, (day + 1) * DAY_MS)
        if day not in dirty_set and low < high:
            rows.extend(_extend_day(conn, keys, day, low, high))
        day += 1
    for day in sorted(dirty_set):
        high = min(target, (day + 1) * DAY_MS)
        rows.extend(_extend_day(conn, keys, day, day * DAY_MS, high))
    return RollupPlan(rows, sorted(dirty_set), target)


def _extend_day(
    conn: sqlite3.Connection, keys: dict[str, int], day: int, low: int, high: int
) -> list[RollupRow]:
    """The rows of `day` once the hours `[low, high)` are added to what is stored (nothing is
    stored when `low` is the day's start)."""
    day_start = day * DAY_MS
    before: dict[int, tuple[Tally, bytes]] = {}
    if low > day_start:
        for row in conn.execute(
            """SELECT site_key, up, degraded, down, unreachable, maintenance,
                      runs, head, tail, longest, hours FROM rollup_days WHERE day = ?""",
            (day,),
        ):
            ms = (row[1], row[2], row[3], row[4], row[5])
            before[row[0]] = (Tally(low - day_start, ms, row[6], row[7], row[8], row[9]), row[10])
    intervals = fetch_intervals(conn, low, high, open_end=high)
    hours = range(low, high, HOUR_MS)
    rows: list[RollupRow] = []
    seen: set[int] = set()
    for site, ivs in intervals.items():
        key = keys.get(site)
        if key is None:
            continue
        tally, blob = before.get(key) or (
            Tally(low - day_start),
            _UNKNOWN_HOUR * ((low - day_start) // HOUR_MS),
        )
        parts = [blob]
        for hour in hours:
            t = sweep(ivs, hour, hour + HOUR_MS)
            tally = tally.then(t)
            parts.append(encode_hour(t))
        seen.add(key)
        if tally.unknown == tally.length:
            continue
        rows.append(_row(day, key, tally, b"".join(parts)))
    for key, (tally, blob) in before.items():
        if key not in seen:  # nothing known in the new hours
            gap = high - low
            rows.append(_row(day, key, tally.then(Tally(gap)), blob + _UNKNOWN_HOUR * len(hours)))
    return rows


def _row(day: int, key: int, t: Tally, blob: bytes) -> RollupRow:
    return (day, key, *t.ms, t.runs, t.head, t.tail, t.longest, blob)


def rollup_target(now_ms: int, grace_ms: int, watermark: int) -> int:
    """How far a pass may go: whole hours, a grace period behind now, one day at most."""
    target = (now_ms - grace_ms) // HOUR_MS * HOUR_MS
    next_day = (watermark // DAY_MS + 1) * DAY_MS
    return min(target, next_day)
