"""Reading a ledger for figures: tallies of any window, from rollups where they are final and
from raw intervals elsewhere. Synchronous (sqlite3) on purpose: it runs in reports, in a
worker thread of the daemon, never on the event loop.

A window `[start, end)` is cut into pieces, each read from the cheapest source that is exact:
whole UTC days below the rollup watermark from the daily columns (summed in SQL), whole hours
of the other days below it from the hourly records, and everything else (partial hours, days
marked dirty by a late transition, the time after the watermark) from the intervals. The
pieces' tallies are chained per site in time order, which is exact (see availability.Tally).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from monitor.core.availability import (
    DAY_MS,
    HOUR_MS,
    STATE_CODES,
    Tally,
    fold_hours,
    sweep,
    to_ms,
)

_CODE_OF = {state.value: code for state, code in STATE_CODES.items()}

Intervals = dict[str, list[tuple[int, int, int]]]


@contextlib.contextmanager
def open_readonly(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection: safe beside the running writer (WAL readers never block it)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such ledger")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        yield conn
    finally:
        conn.close()


def fetch_intervals(conn: sqlite3.Connection, start: int, end: int, open_end: int) -> Intervals:
    """Every interval overlapping `[start, end)` (ms), per site, sorted; an open interval ends at
    `open_end`. Two index seeks per site on (site, start), whatever the ledger's age."""
    # Sites drive the loop (CROSS JOIN fixes the order): left to itself the planner scans
    # every interval and runs the subquery per row, which grows with the ledger.
    rows = conn.execute(
        """
        WITH bounds AS (
          SELECT s.id AS site,
                 COALESCE((SELECT MAX(j.start) FROM intervals AS j
                           WHERE j.site = s.id AND j.start <= :start), :start) AS low
          FROM sites AS s)
        SELECT i.site, i.state, i.start, i."end"
        FROM bounds AS b CROSS JOIN intervals AS i
        WHERE i.site = b.site AND i.start >= b.low AND i.start < :end
        ORDER BY i.site, i.start, i.id
        """,
        {"start": start / 1000, "end": end / 1000},
    )
    found: Intervals = defaultdict(list)
    code_of = _CODE_OF
    for site, state, s, e in rows:
        found[site].append((code_of[state], to_ms(s), open_end if e is None else to_ms(e)))
    return found


def open_end_of(conn: sqlite3.Connection) -> int:
    """Where open intervals end for a reader: the last heartbeat of the run that is (or was,
    if it crashed) writing. Nothing after it is known."""
    row = conn.execute("SELECT MAX(heartbeat) FROM monitor_runs WHERE stopped IS NULL").fetchone()
    return to_ms(row[0]) if row and row[0] is not None else 0


def watermark_of(conn: sqlite3.Connection) -> int:
    """Rollups are final for every time before this (ms); 0 on a ledger without rollups."""
    try:
        query = "SELECT value FROM ledger_meta WHERE key = 'rollup_watermark'"
        row = conn.execute(query).fetchone()
    except sqlite3.OperationalError:  # schema 1: no rollups at all
        return 0
    return int(row[0]) if row else 0


def dirty_days(conn: sqlite3.Connection) -> set[int]:
    try:
        return {int(d) for (d,) in conn.execute("SELECT day FROM rollup_dirty")}
    except sqlite3.OperationalError:
        return set()


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a window and where its figures come from: 'days', 'hours' or 'raw'."""

    source: str
    start: int
    end: int


def plan(start: int, end: int, watermark: int, dirty: set[int]) -> list[Piece]:
    """Cut `[start, end)` into pieces, in time order (see the module docstring)."""
    pieces: list[Piece] = []

    def push(source: str, a: int, b: int) -> None:
        if b <= a:
            return
        if pieces and pieces[-1].source == source and pieces[-1].end == a and source != "hours":
            pieces[-1] = Piece(source, pieces[-1].start, b)
        else:
            pieces.append(Piece(source, a, b))

    rolled_end = min(end, watermark)
    t = start
    while t < rolled_end:
        day = t // DAY_MS
        day_start, day_end = day * DAY_MS, (day + 1) * DAY_MS
        upto = min(day_end, rolled_end)
        if day in dirty:
            push("raw", t, upto)
        elif t == day_start and upto == day_end:
            push("days", t, upto)
        else:
            first_hour = -(-t // HOUR_MS) * HOUR_MS
            last_hour = upto // HOUR_MS * HOUR_MS
            if first_hour >= last_hour:
                push("raw", t, upto)
            else:
                push("raw", t, first_hour)
                push("hours", first_hour, last_hour)
                push("raw", last_hour, upto)
        t = upto
    push("raw", max(start, rolled_end), end)
    return pieces


def window_tallies(conn: sqlite3.Connection, start: int, end: int) -> dict[str, Tally]:
    """Each site's tally of `[start, end)` (ms) in one ledger. Sites with nothing known in the
    window are absent (the caller decides which sites a report must list anyway)."""
    keys = site_keys(conn)
    open_end = open_end_of(conn)
    pieces = plan(start, end, watermark_of(conn), dirty_days(conn))
    return join_pieces(pieces, [piece_tallies(conn, keys, p, open_end) for p in pieces])


def read_tallies(path: Path, start: int, end: int) -> dict[str, Tally]:
    """`window_tallies` of the ledger at `path`, for a page read beside the running writer: a
    ledger that cannot be read raises OSError (only this layer knows SQLite)."""
    try:
        with open_readonly(path) as conn:
            return window_tallies(conn, start, end)
    except sqlite3.Error as exc:
        raise OSError(f"{path}: {exc}") from None


def piece_tallies(
    conn: sqlite3.Connection, keys: dict[int, str], piece: Piece, open_end: int
) -> dict[str, Tally]:
    """The tallies of one piece of a window, from the source the plan chose for it."""
    if piece.source == "days":
        return _days(conn, keys, piece.start, piece.end)
    if piece.source == "hours":
        return _hours(conn, keys, piece.start, piece.end)
    intervals = fetch_intervals(conn, piece.start, piece.end, open_end)
    return {site: sweep(ivs, piece.start, piece.end) for site, ivs in intervals.items()}


def join_pieces(pieces: list[Piece], per_piece: list[dict[str, Tally]]) -> dict[str, Tally]:
    """Chain each site's tallies of consecutive pieces; a piece without the site is unknown."""
    sites: set[str] = set()
    for found in per_piece:
        sites.update(site for site, t in found.items() if t.unknown < t.length)
    result: dict[str, Tally] = {}
    for site in sites:
        total = Tally(0)
        for piece, found in zip(pieces, per_piece, strict=True):
            total = total.then(found.get(site) or Tally(piece.end - piece.start))
        result[site] = total
    return result


def site_keys(conn: sqlite3.Connection) -> dict[int, str]:
    try:
        return {int(k): str(s) for k, s in conn.execute("SELECT key, site FROM site_keys")}
    except sqlite3.OperationalError:
        return {}


def _days(conn: sqlite3.Connection, keys: dict[int, str], start: int, end: int) -> dict[str, Tally]:
    """Whole days: durations summed by SQLite; the outage shape of each site that had down
    time chained from its days (a few sites in a month)."""
    first, last = start // DAY_MS, end // DAY_MS
    length = end - start
    sums = conn.execute(
        """SELECT site_key, SUM(up), SUM(degraded), SUM(down), SUM(unreachable), SUM(maintenance)
           FROM rollup_days WHERE day >= ? AND day < ? GROUP BY site_key""",
        (first, last),
    )
    shapes = _down_shapes(conn, first, last)
    result: dict[str, Tally] = {}
    for key, up, degraded, down, unreachable, maintenance in sums:
        site = keys.get(key)
        if site is None:
            continue
        shape = shapes.get(key)
        ms = (int(up), int(degraded), int(down), int(unreachable), int(maintenance))
        result[site] = Tally(length, ms) if shape is None else shape
    return result


def _down_shapes(conn: sqlite3.Connection, first: int, last: int) -> dict[int, Tally]:
    """The whole tally over days [first, last) of every site with down time in them, chained
    day by day (availability.Tally.then): a day without a row had nothing known, so an outage
    passes through it; a day with a row but no down time ends it."""
    rows = conn.execute(
        """SELECT site_key, day, up, degraded, down, unreachable, maintenance,
                  runs, head, tail, longest
           FROM rollup_days
           WHERE day >= ? AND day < ? AND site_key IN (
               SELECT site_key FROM rollup_days WHERE day >= ? AND day < ? AND down > 0)
           ORDER BY site_key, day""",
        (first, last, first, last),
    )
    shapes: dict[int, Tally] = {}
    key_now: int | None = None
    total = Tally(0)
    next_day = first
    for key, day, up, degraded, down, unreachable, maintenance, runs, head, tail, longest in rows:
        if key != key_now:
            if key_now is not None:
                shapes[key_now] = total.then(Tally((last - next_day) * DAY_MS))
            key_now, total, next_day = key, Tally(0), first
        if day > next_day:  # days with nothing known
            total = total.then(Tally((day - next_day) * DAY_MS))
        ms = (int(up), int(degraded), int(down), int(unreachable), int(maintenance))
        total = total.then(Tally(DAY_MS, ms, runs, head, tail, longest))
        next_day = day + 1
    if key_now is not None:
        shapes[key_now] = total.then(Tally((last - next_day) * DAY_MS))
    return shapes


def _hours(
    conn: sqlite3.Connection, keys: dict[int, str], start: int, end: int
) -> dict[str, Tally]:
    """Whole hours inside one day, from the hourly records."""
    day = start // DAY_MS
    skip = (start - day * DAY_MS) // HOUR_MS
    count = (end - start) // HOUR_MS
    result: dict[str, Tally] = {}
    for key, blob in conn.execute("SELECT site_key, hours FROM rollup_days WHERE day = ?", (day,)):
        site = keys.get(key)
        if site is None:
            continue
        total = fold_hours(blob, skip, count)
        result[site] = total.then(Tally(end - start - total.length))
    return result


# --- what a report needs besides tallies ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteInfo:
    id: str
    name: str
    kind: str
    commune: str
    owner: str
    parent: str | None
    first_seen: float
    last_seen: float


def read_sites(conn: sqlite3.Connection) -> dict[str, SiteInfo]:
    rows = conn.execute(
        "SELECT id, name, kind, commune, owner, parent, first_seen, last_seen FROM sites"
    )
    return {r[0]: SiteInfo(*r) for r in rows}


def read_names(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """Display names of communes or owners as last synced (empty on a schema-1 ledger)."""
    assert table in ("communes", "owners")
    try:
        return {str(i): str(n) for i, n in conn.execute(f"SELECT id, name FROM {table}")}
    except sqlite3.OperationalError:
        return {}
