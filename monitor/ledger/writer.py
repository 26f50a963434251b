"""The uptime ledger: state intervals per site in SQLite, written by one task.

Only state transitions are stored (Prometheus keeps the fine-grained series), as intervals
`[start, end)` with `end` NULL while open. One writer task drains a queue and commits in
batches, so a burst of transitions costs one fsync, and the poll path never waits on disk.

WAL with synchronous=NORMAL: a power cut can lose the last commits (seconds) but never
corrupts the file. The daemon's own runs are recorded with a heartbeat; after a crash the open
intervals are closed at the last heartbeat, and the time until the restart is left without
any interval, i.e. unknown, never silently up.

Every new interval starts no earlier than the one before it of the same site and than the end
of the previous run, whatever the clock did: intervals never overlap, so no second is counted
twice.

When the disk is full or read-only, commits fail and are retried (with backoff up to 5 s:
once space returns, what waits in memory is at risk of a crash until the next attempt)
while new changes wait in memory, up to `max_pending` (LedgerLimits); beyond it, a site's
further changes are not kept: one `unknown` interval ("ledger queue full: changes lost")
stands for them until the queue has room again, so the ledger never records a state that
was not. A stop waits at most `stop_timeout_seconds` for the disk: what could not be written
by then is counted (`lost`) and logged, the run is left unmarked as if it had crashed, and
the next start counts the time since the last heartbeat as unknown. `trouble` says why the
last commit failed, for /healthz. A ledger that cannot be opened at all raises LedgerError
with the file and the system's reason.

The writer also rolls intervals up (hourly and daily per site, see rollup.py) a grace
period behind the clock, and prunes raw intervals past their retention, both between batches
and never on the poll path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import aiosqlite

from monitor.config.settings import LedgerLimits, Retention
from monitor.core.availability import DAY_MS, HOUR_MS, to_ms
from monitor.core.model import Commune, DeviceBoot, Owner, Site, State, Transition
from monitor.ledger import rollup
from monitor.ledger.records import Entry, InventorySync, codes_text
from monitor.ledger.schema import LedgerError, configure_connection, prepare

log = logging.getLogger(__name__)


CommitHook = Callable[[float, int], None]

DEFAULT_ROLLUP_GRACE_SECONDS = 900.0  # transitions are dated up to N polls in the past
QUEUE_FULL = "ledger queue full: changes lost"
RETRY_MAX_SECONDS = 5.0
_PRUNE_CHUNK = 20_000
_PRUNE_CHUNKS_PER_TURN = 5


class Ledger:
    """Owns the database connection. `record` may be called from anywhere in the event loop;
    only `run` (the writer task) touches the database after `open`."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: Path,
        run_id: int,
        clock: Callable[[], float],
        heartbeat_seconds: float,
        on_commit: CommitHook | None,
        on_error: Callable[[], None] | None,
        limits: LedgerLimits | None = None,
    ) -> None:
        self._db = db
        self.limits = limits or LedgerLimits()
        self.trouble: str | None = None  # why the last commit failed; None once one succeeds
        self.lost = 0  # changes not kept (queue full) or not written before the stop
        self._overflowed: set[str] = set()  # sites whose changes are lost until room returns
        self._in_flight = 0  # entries of the batch being written (out of the queue)
        self._give_up_at: float | None = None  # monotonic: a stop waits for the disk until then
        self._gave_up = False  # changes were lost at the stop: the run must not look clean
        self._stopping = asyncio.Event()
        self.path = path
        self._run_id = run_id
        self._clock = clock
        self._heartbeat_seconds = heartbeat_seconds
        self._on_commit = on_commit
        self._on_error = on_error
        self._queue: asyncio.Queue[Entry | None] = asyncio.Queue()
        self._stopped = False
        # entries recorded, and entries committed, since open: what `flushed` compares
        self._recorded = 0
        self._committed = 0
        self._commit = asyncio.Event()
        self._ended = False  # the writer task ran and returned (or died)
        self.recovered_gap: tuple[float, float] | None = None
        # No interval may start before `_floor` (the end of the previous run) or before the
        # last start of its own site: a clock stepping back must not make intervals overlap.
        self._floor = 0.0
        self._last_start: dict[str, float] = {}
        self.watermark = 0  # ms: rollups are final below it
        self.rollup_grace_ms = to_ms(DEFAULT_ROLLUP_GRACE_SECONDS)
        self.retention = Retention()
        self._next_prune = 0.0
        self.on_rollup: Callable[[int], None] | None = None

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        heartbeat_seconds: float = 5.0,
        on_commit: CommitHook | None = None,
        on_error: Callable[[], None] | None = None,
        retention: Retention | None = None,
        rollup_grace_seconds: float = DEFAULT_ROLLUP_GRACE_SECONDS,
        limits: LedgerLimits | None = None,
    ) -> Ledger:
        try:
            await asyncio.to_thread(prepare, path)
            db = await aiosqlite.connect(path, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(_cannot_open(path, exc)) from None
        try:
            await configure_connection(db)
            now = clock()
            gap_start = await _recover_unclean_runs(db)
            floor = await _scalar(db, "SELECT MAX(stopped) FROM monitor_runs")
            watermark = await _init_watermark(db, now)
            cursor = await db.execute(
                "INSERT INTO monitor_runs (started, heartbeat) VALUES (?, ?)", (now, now)
            )
            run_id = cursor.lastrowid
            assert run_id is not None
        except (sqlite3.Error, OSError) as exc:
            await db.close()
            raise LedgerError(_cannot_open(path, exc)) from None
        except BaseException:
            await db.close()
            raise
        ledger = cls(db, path, run_id, clock, heartbeat_seconds, on_commit, on_error, limits)
        ledger._floor = float(str(floor)) if floor is not None else 0.0
        ledger.watermark = watermark
        ledger.rollup_grace_ms = to_ms(rollup_grace_seconds)
        ledger.retention = retention or Retention()
        if gap_start is not None:
            await ledger._mark_dirty(gap_start)  # closed at the heartbeat: rollups must follow
            ledger.recovered_gap = (gap_start, now)
            log.warning(
                "previous run ended without a clean stop; %.0f s from its last heartbeat to now "
                "are unknown for every site",
                now - gap_start,
            )
        return ledger

    async def sync_sites(
        self,
        sites: Iterable[Site],
        communes: Iterable[Commune] = (),
        owners: Iterable[Owner] = (),
    ) -> None:
        """Record the inventory before the writer starts (later changes go through `record`)."""
        await self._write(
            [InventorySync(tuple(sites), self._clock(), tuple(communes), tuple(owners))]
        )

    def record(self, entry: Entry) -> None:
        """Queue a transition (or an inventory change); never blocks the caller. Past
        `limits.max_pending` a site's changes are replaced by one `unknown` interval (see the
        module doc): memory stays bounded, the ledger never says what was not."""
        if self._stopped:
            raise LedgerError("ledger is stopped")
        if not isinstance(entry, InventorySync):
            if self._queue.qsize() >= self.limits.max_pending:
                self.lost += 1
                if entry.site in self._overflowed:
                    return
                self._overflowed.add(entry.site)
                at = entry.since if isinstance(entry, Transition) else entry.at
                log.error(
                    "ledger queue full (%d changes waiting): the changes of site %s are lost "
                    "and recorded as unknown until there is room",
                    self._queue.qsize(),
                    entry.site,
                )
                entry = Transition(entry.site, State.UNKNOWN, at, State.UNKNOWN, QUEUE_FULL)
            else:
                self._overflowed.discard(entry.site)
        self._queue.put_nowait(entry)
        self._recorded += 1

    async def flushed(self) -> None:
        """Return once everything recorded so far is committed by the writer task (`run`):
        what a caller waits on instead of guessing how long a commit takes. Raises
        LedgerError if the writer has ended first."""
        target = self._recorded
        while self._committed < target:
            if self._ended:
                raise LedgerError("the ledger writer has ended: nothing more will be committed")
            self._commit.clear()
            await self._commit.wait()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def held(self) -> int:
        """Changes in memory not yet committed: queued, and in the batch being written."""
        return self._queue.qsize() + self._in_flight

    def stop(self) -> None:
        """Ask the writer to finish: everything queued before this is still written, if the
        disk lets it within `limits.stop_timeout_seconds`."""
        if not self._stopped:
            self._stopped = True
            self._queue.put_nowait(None)
        self._begin_stopping()

    def _begin_stopping(self) -> None:
        if self._give_up_at is None:
            self._give_up_at = time.monotonic() + self.limits.stop_timeout_seconds
            self._stopping.set()

    async def run(self) -> None:
        """The single writer task. Returns after `stop()` once the queue is drained. Between
        batches it rolls up finished hours and prunes old intervals, so that those never
        compete with transitions for the same connection."""
        try:
            while True:
                batch: list[Entry] = []
                try:
                    async with asyncio.timeout(self._heartbeat_seconds):  # see scheduler._sleep
                        first = await self._queue.get()
                except TimeoutError:  # nothing to write: the heartbeat alone
                    done = False
                else:
                    done = first is None
                    if first is not None:
                        batch.append(first)
                while not done and not self._queue.empty() and len(batch) < 1000:
                    item = self._queue.get_nowait()
                    if item is None:
                        done = True
                    else:
                        batch.append(item)
                if not await self._write(batch):  # stopping, and the disk still refuses
                    self._give_up(len(batch) + sum(1 for e in self._drain() if e is not None))
                    return
                self._committed += len(batch)
                self._commit.set()
                if done:
                    return
                await self._housekeeping()
        finally:
            self._ended = True
            self._commit.set()  # whoever waits in flushed() learns that the writer is gone

    async def _housekeeping(self) -> None:
        """Rollup passes while due (one day each, transitions get their turn in between),
        then pruning once a day."""
        while self._rollup_due() and self._queue.empty():
            if not await self._guarded(self._rollup_pass):
                return  # try again after the next batch or heartbeat
        if self._clock() >= self._next_prune and not self._rollup_due():
            self._next_prune = self._clock() + 86400.0
            await self._guarded(self._prune)

    def _rollup_due(self) -> bool:
        target = rollup.rollup_target(to_ms(self._clock()), self.rollup_grace_ms, self.watermark)
        return target > self.watermark

    async def _guarded(self, job: Callable[[], Awaitable[None]]) -> bool:
        """A failed rollup or prune is logged and retried at the next occasion: the
        intervals it works from are safe (readers fall back on them past the watermark), and
        transitions must keep flowing. False if it failed."""
        try:
            await job()
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):  # a full or read-only disk: said, not a bug
                self.trouble = str(exc)
                log.error("ledger housekeeping failed (%s); will retry", exc)
            else:
                log.exception("ledger housekeeping failed; will retry")
            if self._on_error:
                self._on_error()
            return False
        return True

    async def _rollup_pass(self) -> None:
        target = rollup.rollup_target(to_ms(self._clock()), self.rollup_grace_ms, self.watermark)
        async with self._db.execute("SELECT day FROM rollup_dirty") as cursor:
            dirty = [int(row[0]) for row in await cursor.fetchall()]
        started = time.monotonic()
        plan = await asyncio.to_thread(_compute_rollup, self.path, self.watermark, target, dirty)
        db = self._db
        await db.execute("BEGIN IMMEDIATE")
        await db.executemany(
            "DELETE FROM rollup_days WHERE day = ?", [(d,) for d in plan.replaced_days]
        )
        await db.executemany(rollup.UPSERT_ROLLUP, plan.rows)
        await db.executemany("DELETE FROM rollup_dirty WHERE day = ?", [(d,) for d in dirty])
        await db.execute(
            "INSERT OR REPLACE INTO ledger_meta (key, value) VALUES ('rollup_watermark', ?)",
            (plan.watermark,),
        )
        await self._heartbeat()
        await db.execute("COMMIT")
        self.watermark = plan.watermark
        log.debug(
            "rolled up to %s: %d rows in %.2f s",
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(plan.watermark / 1000)),
            len(plan.rows),
            time.monotonic() - started,
        )
        if self.on_rollup:
            self.on_rollup(plan.watermark)

    async def _prune(self) -> None:
        """Drop what retention no longer keeps, in chunks so that no transaction is long.
        Raw intervals go only once they are rolled up."""
        now = self._clock()
        cut = min(now - self.retention.intervals_days * 86400.0, self.watermark / 1000)
        removed = 0
        for _ in range(_PRUNE_CHUNKS_PER_TURN):
            cursor = await self._db.execute(
                """DELETE FROM intervals WHERE id IN (
                     SELECT i.id FROM sites AS s JOIN intervals AS i
                       ON i.site = s.id AND i.start < :cut
                     WHERE i."end" < :cut LIMIT :chunk)""",
                {"cut": cut, "chunk": _PRUNE_CHUNK},
            )
            removed += cursor.rowcount
            if cursor.rowcount < _PRUNE_CHUNK:
                break
        else:  # more to do: go on at the next turn, after the queued transitions
            self._next_prune = 0.0
        await self._db.execute(
            "DELETE FROM monitor_runs WHERE stopped < ? AND id != ?", (cut, self._run_id)
        )
        first_day = int((now - self.retention.rollups_days * 86400.0) * 1000) // DAY_MS
        cursor = await self._db.execute("DELETE FROM rollup_days WHERE day < ?", (first_day,))
        if removed or cursor.rowcount:
            log.info(
                "pruned %d intervals and %d rollup rows past retention", removed, cursor.rowcount
            )

    def _drain(self) -> list[Entry | None]:
        items: list[Entry | None] = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    def _give_up(self, unwritten: int) -> None:
        self._gave_up = True
        self.lost += unwritten
        log.error(
            "ledger: %d changes could not be written within the stop timeout (%g s: %s); "
            "they are lost, and the next start counts the time since the last heartbeat as "
            "unknown",
            unwritten,
            self.limits.stop_timeout_seconds,
            self.trouble,
        )

    async def _write(self, batch: list[Entry]) -> bool:
        """Commit one batch (plus the heartbeat); on a database error retry with backoff, so a
        full disk delays the ledger but loses nothing queued. False only when stopping and
        the stop timeout has passed without a commit."""
        delay = 0.5
        self._in_flight = len(batch)
        try:
            while True:
                started = time.monotonic()
                try:
                    await self._write_once(batch)
                except sqlite3.Error as exc:
                    with contextlib.suppress(sqlite3.Error):
                        await self._db.execute("ROLLBACK")
                    self.trouble = str(exc)
                    if self._on_error:
                        self._on_error()
                    wait = delay
                    if self._give_up_at is not None:
                        wait = min(delay, self._give_up_at - time.monotonic())
                        if wait <= 0:
                            return False
                    log.error(
                        "ledger write failed (%s); %d changes held in memory (at most %d); "
                        "retrying in %.1f s",
                        exc,
                        self.held,
                        self.limits.max_pending,
                        wait,
                    )
                    if self._give_up_at is None:  # a stop cuts the wait short
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(wait):  # see scheduler._sleep
                                await self._stopping.wait()
                    else:
                        await asyncio.sleep(wait)
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
                    continue
                self.trouble = None
                if self._on_commit:
                    self._on_commit(time.monotonic() - started, len(batch))
                return True
        finally:
            self._in_flight = 0

    async def _write_once(self, batch: list[Entry]) -> None:
        """The batch folded per site into two statements: close each site's open interval
        at its first change, insert the new intervals (closed ones for the changes that
        followed within the batch). A burst of 20,000 transitions is one transaction."""
        db = self._db
        await db.execute("BEGIN IMMEDIATE")
        boots: dict[str, DeviceBoot] = {}
        for entry in batch:
            if isinstance(entry, InventorySync):
                await self._sync(entry)
            elif isinstance(entry, DeviceBoot):
                boots[entry.site] = entry  # the latest of the batch
        if boots:
            await db.executemany(
                "INSERT OR REPLACE INTO device_boots (site, boot, seen) VALUES (?, ?, ?)",
                [(b.site, b.boot, b.at) for b in boots.values()],
            )
        last_start = dict(self._last_start)
        closes: dict[str, float] = {}
        rows: list[list[object]] = []
        open_row: dict[str, int] = {}
        earliest: float | None = None
        for entry in batch:
            if isinstance(entry, InventorySync | DeviceBoot):
                continue
            at = entry.since if isinstance(entry, Transition) else entry.at
            at = max(at, self._floor, last_start.get(entry.site, at))
            earliest = at if earliest is None else min(earliest, at)
            index = open_row.pop(entry.site, None)
            if index is not None:
                rows[index][3] = at
            elif entry.site not in closes:
                closes[entry.site] = at
            if isinstance(entry, Transition):
                open_row[entry.site] = len(rows)
                rows.append(
                    [entry.site, entry.state.value, at, None, entry.reason, codes_text(entry.codes)]
                )
                last_start[entry.site] = at
            else:
                last_start.pop(entry.site, None)
        if closes:
            await db.executemany(
                'UPDATE intervals SET "end" = MAX(start, ?) WHERE site = ? AND "end" IS NULL',
                [(at, site) for site, at in closes.items()],
            )
        if rows:
            await db.executemany(
                'INSERT INTO intervals (site, state, start, "end", reason, codes) '
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        if earliest is not None:
            await self._mark_dirty(earliest)
        await self._heartbeat()
        await db.execute("COMMIT")
        self._last_start = last_start

    async def _sync(self, entry: InventorySync) -> None:
        db = self._db
        await db.executemany(_UPSERT_SITE, [_site_row(s, entry.at) for s in entry.sites])
        await db.executemany(
            "INSERT OR IGNORE INTO site_keys (site) VALUES (?)", [(s.id,) for s in entry.sites]
        )
        await db.executemany(
            "INSERT OR REPLACE INTO communes (id, name) VALUES (?, ?)",
            [(c.id, c.name) for c in entry.communes],
        )
        await db.executemany(
            "INSERT OR REPLACE INTO owners (id, name, kind) VALUES (?, ?, ?)",
            [(o.id, o.name, o.kind) for o in entry.owners],
        )

    async def _mark_dirty(self, since: float) -> None:
        """A change dated below the watermark alters rolled-up days, from its day to the
        watermark's: they will be recomputed whole (readers use raw intervals meanwhile)."""
        since_ms = to_ms(since)
        if since_ms >= self.watermark:
            return
        last = (self.watermark - 1) // DAY_MS
        await self._db.executemany(
            "INSERT OR IGNORE INTO rollup_dirty (day) VALUES (?)",
            [(day,) for day in range(since_ms // DAY_MS, last + 1)],
        )

    async def _heartbeat(self) -> None:
        await self._db.execute(
            "UPDATE monitor_runs SET heartbeat = ? WHERE id = ?", (self._clock(), self._run_id)
        )

    async def close(self, at: float | None = None) -> None:
        """Clean stop: close every open interval and mark the run stopped. Call after `run`
        has returned (or was never started: anything still queued is written here)."""
        at = self._clock() if at is None else at
        pending = [item for item in self._drain() if item is not None]
        self._stopped = True
        self._begin_stopping()
        try:
            if self._db.in_transaction:  # the writer was cancelled mid-batch
                await self._db.execute("ROLLBACK")
            if pending and not await self._write(pending):
                self._give_up(len(pending))
            if not self._gave_up:  # else unclean: the next start counts from the heartbeat
                await self._mark_stopped(at)
        except sqlite3.Error as exc:
            log.error(
                "ledger: the clean stop could not be recorded (%s); the next start counts the "
                "time since the last heartbeat as unknown",
                exc,
            )
        finally:
            await self._db.close()

    async def _mark_stopped(self, at: float) -> None:
        """Close every open interval at `at` and mark the run stopped cleanly."""
        at = max(at, self._floor)
        stopped = max([at, *self._last_start.values()])  # no earlier than any end
        await self._db.execute("BEGIN IMMEDIATE")
        await self._db.execute(
            'UPDATE intervals SET "end" = MAX(start, ?) WHERE "end" IS NULL', (at,)
        )
        await self._mark_dirty(at)
        await self._db.execute(
            "UPDATE monitor_runs SET heartbeat = ?, stopped = ?, clean = 1 WHERE id = ?",
            (stopped, stopped, self._run_id),
        )
        await self._db.execute("COMMIT")
        await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _cannot_open(path: Path, exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    return (
        f"cannot open the ledger {path}: {reason} (the service user must be able to write "
        f"the file and its directory, {path.parent}, and the disk must have room)"
    )


def _compute_rollup(path: Path, watermark: int, target: int, dirty: list[int]) -> rollup.RollupPlan:
    """In a worker thread: a connection of its own, read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return rollup.compute(conn, watermark, target, dirty)


_UPSERT_SITE = """
    INSERT INTO sites (id, kind, name, commune, owner, parent, first_seen, last_seen)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, name=excluded.name,
      commune=excluded.commune, owner=excluded.owner, parent=excluded.parent,
      last_seen=excluded.last_seen"""


def _site_row(site: Site, at: float) -> tuple[object, ...]:
    return (site.id, site.kind, site.name, site.commune, site.owner, site.parent, at, at)


async def _scalar(db: aiosqlite.Connection, query: str) -> object:
    async with db.execute(query) as cursor:
        row = await cursor.fetchone()
    return row[0] if row else None


async def _init_watermark(db: aiosqlite.Connection, now: float) -> int:
    """The rollup watermark; a new (or newly migrated) ledger starts at the hour of its
    first run, or now."""
    row = await _scalar(db, "SELECT value FROM ledger_meta WHERE key = 'rollup_watermark'")
    if row is not None:
        return int(str(row))
    first = await _scalar(db, "SELECT MIN(started) FROM monitor_runs")
    start = float(str(first)) if first is not None else now
    watermark = to_ms(start) // HOUR_MS * HOUR_MS
    await db.execute(
        "INSERT INTO ledger_meta (key, value) VALUES ('rollup_watermark', ?)", (watermark,)
    )
    return watermark


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
