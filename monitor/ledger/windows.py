"""Maintenance windows stored in the ledger: set from the command line, read by the daemon.

`districtmon maintenance add` writes here so that the running daemon picks a window up within
seconds, without a reload; each window is stored as its spec (the keys of maintenance.yaml)
with its own timezone, so it reads the same whatever the configuration says later.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from pathlib import Path

from monitor.config.maintenance import Window, spec_json, window_from_spec
from monitor.ledger.schema import LedgerError, prepare

log = logging.getLogger(__name__)


def read_ledger_windows(path: Path) -> list[Window]:
    """Windows added with `districtmon maintenance add`. One whose stored spec no longer
    validates (edited by hand) is skipped with a warning rather than stopping the daemon; a
    ledger that cannot be read raises LedgerError."""
    if not path.exists():
        return []
    try:
        rows = _stored_windows(path)
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: {exc}") from exc
    windows = []
    for window_id, spec in rows:
        try:
            windows.append(window_from_spec(json.loads(spec)))
        except (ValueError, TypeError) as exc:
            log.warning("maintenance window %r in %s is unreadable: %s", window_id, path, exc)
    return windows


def _stored_windows(path: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
        try:
            query = "SELECT id, spec FROM maintenance_windows ORDER BY created, id"
            return [(str(row[0]), str(row[1])) for row in conn.execute(query)]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # a ledger older than maintenance windows
                return []
            raise


def add_ledger_window(path: Path, window: Window, now: float) -> None:
    """Store a window; ValueError if the id is taken."""
    prepare(path)
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        conn.execute("PRAGMA busy_timeout=10000")
        try:
            conn.execute(
                "INSERT INTO maintenance_windows (id, spec, created) VALUES (?, ?, ?)",
                (window.id, spec_json(window), now),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"a window with id '{window.id}' already exists") from None


def remove_ledger_window(path: Path, window_id: str) -> bool:
    """Delete a stored window; False if there was none. History is untouched: time already
    recorded as maintenance stays so."""
    if not path.exists():
        return False
    prepare(path)
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        conn.execute("PRAGMA busy_timeout=10000")
        cursor = conn.execute("DELETE FROM maintenance_windows WHERE id = ?", (window_id,))
        return cursor.rowcount > 0
