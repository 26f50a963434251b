"""What the ledger holds, as plain records, and the simplest ways to read them back.

`read_intervals` and `read_runs` use the standard library with a read-only connection: safe
beside the running writer (WAL), for reports, the command line and tests.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from monitor.core.model import Commune, DeviceBoot, Owner, Site, SiteRetired, State, Transition


@dataclass(frozen=True, slots=True)
class Interval:
    site: str
    state: State
    start: float
    end: float | None
    reason: str
    codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MonitorRun:
    started: float
    heartbeat: float
    stopped: float | None
    clean: bool


@dataclass(frozen=True, slots=True)
class InventorySync:
    """The inventory as it now is: recorded so that reports can name sites that left it."""

    sites: tuple[Site, ...]
    at: float
    communes: tuple[Commune, ...] = ()
    owners: tuple[Owner, ...] = ()


Entry = Transition | InventorySync | SiteRetired | DeviceBoot


def codes_text(codes: tuple[str, ...]) -> str:
    """Reason codes as stored: slugs, separated by spaces."""
    return " ".join(codes)


def read_intervals(path: Path, site: str | None = None) -> list[Interval]:
    """Read intervals with the standard library (for reports and tests; safe beside the
    running writer thanks to WAL). A ledger older than reason codes reads with none."""
    if site is None:
        return _select(path, "", ())
    return _select(path, " WHERE site = ?", (site,))


def _select(path: Path, where: str, args: tuple[str | float, ...]) -> list[Interval]:
    """The intervals matching `where`, by site then start, through a read-only connection."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(intervals)")}
        codes = "codes" if "codes" in columns else "''"
        query = f'SELECT site, state, start, "end", reason, {codes} FROM intervals{where}'
        rows = conn.execute(query + " ORDER BY site, start, id", args).fetchall()
    return [Interval(r[0], State(r[1]), r[2], r[3], r[4], tuple(r[5].split())) for r in rows]


def read_boots(path: Path) -> dict[str, float]:
    """Each device's last known boot time (UTC seconds), for the poller at start; empty on a
    ledger that has none yet (or none at all)."""
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        try:
            return {
                str(s): float(b) for s, b in conn.execute("SELECT site, boot FROM device_boots")
            }
        except sqlite3.OperationalError:  # a ledger older than boot times
            return {}


def read_final_states(path: Path) -> dict[str, State]:
    """Each site's last recorded state, as the previous run left it (read before this run
    records anything): what the evaluator carries across a restart."""
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            """SELECT i.site, i.state FROM intervals AS i
               WHERE i.id = (SELECT j.id FROM intervals AS j WHERE j.site = i.site
                             ORDER BY j.start DESC, j.id DESC LIMIT 1)"""
        ).fetchall()
    return {str(site): State(state) for site, state in rows}


def runs_of(conn: sqlite3.Connection) -> list[MonitorRun]:
    """The daemon's runs recorded in a ledger, in the order they started."""
    rows = conn.execute(
        "SELECT started, heartbeat, stopped, clean FROM monitor_runs ORDER BY started, id"
    ).fetchall()
    return [MonitorRun(r[0], r[1], r[2], bool(r[3])) for r in rows]


def read_runs(path: Path) -> list[MonitorRun]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return runs_of(conn)


def read_window(path: Path, site: str, start: float, end: float) -> list[Interval]:
    """One site's intervals that overlap `[start, end)` (an open one reaches to now), oldest
    first: what a timeline of the last day, week or month draws. Read-only, beside the
    writer; a ledger that cannot be read raises OSError (its layer alone knows SQLite)."""
    try:
        return _select(
            path,
            ' WHERE site = ? AND start < ? AND ("end" IS NULL OR "end" > ?)',
            (site, end, start),
        )
    except sqlite3.Error as exc:
        raise OSError(f"{path}: {exc}") from None
