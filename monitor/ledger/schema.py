"""The ledger's schema and its migrations: append-only, versioned by `PRAGMA user_version`.

A released migration is never edited; the schema version is its index + 1. A ledger from a
newer districtmon is refused untouched.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import aiosqlite

from monitor.core.model import State

log = logging.getLogger(__name__)


_STATES = ", ".join(f"'{s.value}'" for s in State)


# Append only: a released migration is never edited; the schema version is its index + 1.
MIGRATIONS: tuple[str, ...] = (
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
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
            log.info("ledger %s migrated to schema version %d", path, number + 1)
    finally:
        conn.close()


def _statements(script: str) -> list[str]:
    """Split a migration into statements (migrations hold no ';' inside literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]
