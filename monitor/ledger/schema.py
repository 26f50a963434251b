"""The ledger's schema and its migrations: append-only, versioned by `PRAGMA user_version`.

A released migration is never edited; the schema version is its index + 1. A ledger from a
newer districtmon is refused untouched. A migration is SQL, or a function of the connection
when stored figures must be recomputed (it runs inside the migration's transaction).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import aiosqlite

from monitor.core.availability import (
    DAY_MS,
    DOWN,
    HOUR_MS,
    Tally,
    chain,
    decode_hours,
    encode_hour,
)
from monitor.core.model import State

log = logging.getLogger(__name__)


_STATES = ", ".join(f"'{s.value}'" for s in State)


def _outages_through_gaps(conn: sqlite3.Connection) -> None:
    """3: reason codes beside reasons, device boot times, and the outage rule that unknown
    time does not end an outage (monitor/core/availability.py).

    Stored rollups of days with down time hold the shape of that time (runs, head, tail,
    longest) under the old rule, so they are recomputed. From the intervals where they are
    still all kept (days from the earliest end of a kept interval on: pruning removes only
    intervals that ended before its cut), by marking those days dirty: the writer's next pass
    recomputes them whole, and readers use the intervals meanwhile. Older days, whose raw
    intervals are pruned, are recomputed from their hourly records: exact, except for an hour
    that held down time, unknown time and another state all at once (its own shape is kept)."""
    conn.execute("ALTER TABLE intervals ADD COLUMN codes TEXT NOT NULL DEFAULT ''")
    conn.execute(
        """CREATE TABLE device_boots (
               site TEXT PRIMARY KEY,
               boot REAL NOT NULL,
               seen REAL NOT NULL
           ) WITHOUT ROWID"""
    )
    rows = conn.execute("SELECT day, site_key, hours FROM rollup_days WHERE down > 0").fetchall()
    for day, key, blob in rows:
        hours = [_open_hour(hour) for hour in decode_hours(blob)]
        total = chain(hours)
        conn.execute(
            """UPDATE rollup_days SET runs = ?, head = ?, tail = ?, longest = ?, hours = ?
               WHERE day = ? AND site_key = ?""",
            (
                total.runs,
                total.head,
                total.tail,
                total.longest,
                b"".join(encode_hour(hour) for hour in hours),
                day,
                key,
            ),
        )
    first = conn.execute('SELECT MIN("end") FROM intervals WHERE "end" IS NOT NULL').fetchone()[0]
    if first is not None:
        first_day = -(-round(first * 1000) // DAY_MS)
        conn.execute(
            """INSERT OR IGNORE INTO rollup_dirty (day)
               SELECT DISTINCT day FROM rollup_days WHERE down > 0 AND day >= ?""",
            (first_day,),
        )


def _open_hour(hour: Tally) -> Tally:
    """An hour of down and unknown time only is one outage under the new rule, whatever its
    old shape said; other hours keep theirs."""
    if hour.length == HOUR_MS and hour.ms[DOWN] and hour.open:
        down = hour.ms[DOWN]
        return Tally(HOUR_MS, hour.ms, 1, down, down, down)
    return hour


Migration = str | Callable[[sqlite3.Connection], None]

# Append only: a released migration is never edited; the schema version is its index + 1.
MIGRATIONS: tuple[Migration, ...] = (
    f"""
    CREATE TABLE sites (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        commune TEXT NOT NULL,
        owner TEXT NOT NULL,
        parent TEXT,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL
    );
    CREATE TABLE intervals (
        id INTEGER PRIMARY KEY,
        site TEXT NOT NULL REFERENCES sites(id),
        state TEXT NOT NULL CHECK (state IN ({_STATES})),
        start REAL NOT NULL,
        "end" REAL CHECK ("end" IS NULL OR "end" >= start),
        reason TEXT NOT NULL DEFAULT ''
    );
    CREATE UNIQUE INDEX intervals_one_open_per_site ON intervals(site) WHERE "end" IS NULL;
    CREATE INDEX intervals_by_site_start ON intervals(site, start);
    CREATE TABLE monitor_runs (
        id INTEGER PRIMARY KEY,
        started REAL NOT NULL,
        heartbeat REAL NOT NULL,
        stopped REAL,
        clean INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 2: rollups, names for reports, planned maintenance set from the command line.
    """
    CREATE TABLE communes (id TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE owners (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL);
    CREATE TABLE site_keys (
        key INTEGER PRIMARY KEY,
        site TEXT NOT NULL UNIQUE REFERENCES sites(id)
    );
    INSERT INTO site_keys (site) SELECT id FROM sites ORDER BY id;
    CREATE TABLE rollup_days (
        day INTEGER NOT NULL,
        site_key INTEGER NOT NULL,
        up INTEGER NOT NULL,
        degraded INTEGER NOT NULL,
        down INTEGER NOT NULL,
        unreachable INTEGER NOT NULL,
        maintenance INTEGER NOT NULL,
        runs INTEGER NOT NULL,
        head INTEGER NOT NULL,
        tail INTEGER NOT NULL,
        longest INTEGER NOT NULL,
        hours BLOB NOT NULL,
        PRIMARY KEY (day, site_key)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_dirty (day INTEGER PRIMARY KEY);
    CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value NOT NULL);
    CREATE TABLE maintenance_windows (
        id TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        created REAL NOT NULL
    );
    """,
    _outages_through_gaps,
)


SCHEMA_VERSION = len(MIGRATIONS)


class LedgerError(Exception):
    pass


async def configure_connection(db: aiosqlite.Connection) -> None:
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("PRAGMA foreign_keys=ON")
    await db.execute("PRAGMA busy_timeout=5000")


def prepare(path: Path) -> None:
    """Create or migrate the ledger file (synchronous: the daemon runs it in a thread, the
    command line directly). A ledger from a newer districtmon is refused untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA journal_mode=WAL")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"{path}: ledger schema version {version} is newer than this districtmon "
                f"understands ({SCHEMA_VERSION}); refusing to touch it"
            )
        for number in range(version, SCHEMA_VERSION):
            conn.execute("BEGIN IMMEDIATE")
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current > number:  # another process migrated meanwhile
                conn.execute("COMMIT")
                continue
            migration = MIGRATIONS[number]
            if isinstance(migration, str):
                for statement in _statements(migration):
                    conn.execute(statement)
            else:
                migration(conn)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
            log.info("ledger %s migrated to schema version %d", path, number + 1)
    finally:
        conn.close()


def _statements(script: str) -> list[str]:
    """Split a migration into statements (migrations hold no ';' inside literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]
