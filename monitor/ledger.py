"""The uptime ledger: state intervals per site in SQLite, written by one task.

Only state transitions are stored (Prometheus keeps the fine-grained series), as intervals
`[start, end)` with `end` NULL while open. One writer task drains a queue and commits in
batches, so a burst of transitions costs one fsync, and the poll path never waits on disk.

WAL with synchronous=NORMAL: a power cut can lose the last commits (seconds) but never
corrupts the file. The daemon's own runs are recorded with a heartbeat; after a crash the open
intervals are closed at the last heartbeat, and the time until the restart is left without
any interval, i.e. unknown, never silently up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from monitor.model import Site, State, Transition

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
)

SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class Interval:
    site: str
    state: State
    start: float
    end: float | None
    reason: str


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


@dataclass(frozen=True, slots=True)
class SiteRetired:
    """A site left the inventory: its open interval ends here."""

    site: str
    at: float


Entry = Transition | InventorySync | SiteRetired


class LedgerError(Exception):
    pass


CommitHook = Callable[[float, int], None]


class Ledger:
    """Owns the database connection. `record` may be called from anywhere in the event loop;
    only `run` (the writer task) touches the database after `open`."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        run_id: int,
        clock: Callable[[], float],
        heartbeat_seconds: float,
        on_commit: CommitHook | None,
        on_error: Callable[[], None] | None,
    ) -> None:
        self._db = db
        self._run_id = run_id
        self._clock = clock
        self._heartbeat_seconds = heartbeat_seconds
        self._on_commit = on_commit
        self._on_error = on_error
        self._queue: asyncio.Queue[Entry | None] = asyncio.Queue()
        self._stopped = False
        self.recovered_gap: tuple[float, float] | None = None

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        heartbeat_seconds: float = 5.0,
        on_commit: CommitHook | None = None,
        on_error: Callable[[], None] | None = None,
    ) -> Ledger:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await _configure(db)
            await _migrate(db, path)
            now = clock()
            gap_start = await _recover_unclean_runs(db)
            cursor = await db.execute(
                "INSERT INTO monitor_runs (started, heartbeat) VALUES (?, ?)", (now, now)
            )
            run_id = cursor.lastrowid
            assert run_id is not None
        except BaseException:
            await db.close()
            raise
        ledger = cls(db, run_id, clock, heartbeat_seconds, on_commit, on_error)
        if gap_start is not None:
            ledger.recovered_gap = (gap_start, now)
            log.warning(
                "previous run ended without a clean stop; %.0f s from its last heartbeat to now "
                "are unknown for every site",
                now - gap_start,
            )
        return ledger

    async def sync_sites(self, sites: Iterable[Site]) -> None:
        """Record the inventory before the writer starts (later changes go through `record`)."""
        await self._write([InventorySync(tuple(sites), self._clock())])

    def record(self, entry: Entry) -> None:
        """Queue a transition (or an inventory change); never blocks the caller."""
        if self._stopped:
            raise LedgerError("ledger is stopped")
        self._queue.put_nowait(entry)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self) -> None:
        """Ask the writer to finish: everything queued before this is still written."""
        if not self._stopped:
            self._stopped = True
            self._queue.put_nowait(None)

    async def run(self) -> None:
        """The single writer task. Returns after `stop()` once the queue is drained."""
        while True:
            try:
                first = await asyncio.wait_for(self._queue.get(), self._heartbeat_seconds)
            except TimeoutError:
                await self._write([])
                continue
            batch: list[Entry] = []
            done = first is None
            if first is not None:
                batch.append(first)
            while not done and not self._queue.empty() and len(batch) < 1000:
                item = self._queue.get_nowait()
                if item is None:
                    done = True
                else:
                    batch.append(item)
            await self._write(batch)
            if done:
                return

    async def _write(self, batch: list[Entry]) -> None:
        """Commit one batch (plus the heartbeat); on a database error retry with backoff, so a
        full disk delays the ledger but loses nothing queued."""
        delay = 0.5
        while True:
            started = time.monotonic()
            try:
                await self._write_once(batch)
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    await self._db.execute("ROLLBACK")
                if self._on_error:
                    self._on_error()
                log.error("ledger write failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if self._on_commit:
                self._on_commit(time.monotonic() - started, len(batch))
            return

    async def _write_once(self, batch: list[Entry]) -> None:
        db = self._db
        await db.execute("BEGIN IMMEDIATE")
        for entry in batch:
            if isinstance(entry, InventorySync):
                await db.executemany(_UPSERT_SITE, [_site_row(s, entry.at) for s in entry.sites])
                continue
            at = entry.since if isinstance(entry, Transition) else entry.at
            await db.execute(
                'UPDATE intervals SET "end" = MAX(start, ?) WHERE site = ? AND "end" IS NULL',
                (at, entry.site),
            )
            if isinstance(entry, Transition):
                await db.execute(
                    "INSERT INTO intervals (site, state, start, reason) VALUES (?, ?, ?, ?)",
                    (entry.site, entry.state.value, entry.since, entry.reason),
                )
        await db.execute(
            "UPDATE monitor_runs SET heartbeat = ? WHERE id = ?", (self._clock(), self._run_id)
        )
        await db.execute("COMMIT")

    async def close(self, at: float | None = None) -> None:
        """Clean stop: close every open interval and mark the run stopped. Call after `run`
        has returned (or was never started: anything still queued is written here)."""
        at = self._clock() if at is None else at
        pending: list[Entry] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                pending.append(item)
        self._stopped = True
        try:
            if self._db.in_transaction:  # the writer was cancelled mid-batch
                await self._db.execute("ROLLBACK")
            if pending:
                await self._write(pending)
            await self._db.execute("BEGIN IMMEDIATE")
            await self._db.execute(
                'UPDATE intervals SET "end" = MAX(start, ?) WHERE "end" IS NULL', (at,)
            )
            await self._db.execute(
                "UPDATE monitor_runs SET heartbeat = ?, stopped = ?, clean = 1 WHERE id = ?",
                (at, at, self._run_id),
            )
            await self._db.execute("COMMIT")
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await self._db.close()


_UPSERT_SITE = """
    INSERT INTO sites (id, kind, name, commune, owner, parent, first_seen, last_seen)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, name=excluded.name,
      commune=excluded.commune, owner=excluded.owner, parent=excluded.parent,
      last_seen=excluded.last_seen"""


def _site_row(site: Site, at: float) -> tuple[object, ...]:
    return (site.id, site.kind, site.name, site.commune, site.owner, site.parent, at, at)


async def _configure(db: aiosqlite.Connection) -> None:
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("PRAGMA foreign_keys=ON")
    await db.execute("PRAGMA busy_timeout=5000")


async def _migrate(db: aiosqlite.Connection, path: Path) -> None:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"{path}: ledger schema version {version} is newer than this districtmon "
            f"understands ({SCHEMA_VERSION}); refusing to touch it"
        )
    for number in range(version, SCHEMA_VERSION):
        await db.execute("BEGIN IMMEDIATE")
        for statement in _statements(MIGRATIONS[number]):
            await db.execute(statement)
        await db.execute(f"PRAGMA user_version = {number + 1}")
        await db.execute("COMMIT")
        log.info("ledger %s migrated to schema version %d", path, number + 1)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (migrations hold no ';' inside literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]


async def _recover_unclean_runs(db: aiosqlite.Connection) -> float | None:
    """Close what a crash left open, at the last heartbeat. Returns that heartbeat."""
    async with db.execute(
        "SELECT id, heartbeat FROM monitor_runs WHERE stopped IS NULL ORDER BY id DESC"
    ) as cursor:
        rows = list(await cursor.fetchall())
    if not rows:
        return None
    last_heartbeat = float(rows[0][1])
    await db.execute("BEGIN IMMEDIATE")
    await db.execute(
        'UPDATE intervals SET "end" = MAX(start, ?) WHERE "end" IS NULL', (last_heartbeat,)
    )
    await db.execute("UPDATE monitor_runs SET stopped = heartbeat, clean = 0 WHERE stopped IS NULL")
    await db.execute("COMMIT")
    return last_heartbeat


def read_intervals(path: Path, site: str | None = None) -> list[Interval]:
    """Read intervals with the standard library (for reports and tests; safe beside the
    running writer thanks to WAL)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        query = 'SELECT site, state, start, "end", reason FROM intervals'
        args: tuple[str, ...] = ()
        if site is not None:
            query += " WHERE site = ?"
            args = (site,)
        rows = conn.execute(query + " ORDER BY site, start, id", args).fetchall()
    return [Interval(r[0], State(r[1]), r[2], r[3], r[4]) for r in rows]


def read_runs(path: Path) -> list[MonitorRun]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT started, heartbeat, stopped, clean FROM monitor_runs ORDER BY id"
        ).fetchall()
    return [MonitorRun(r[0], r[1], r[2], bool(r[3])) for r in rows]
