"""Logging to stderr, one line per event, in a form journald keeps well.

Under journald (stderr is the stream JOURNAL_STREAM names) a text line is `<N>LEVEL logger:
message`: the syslog priority lets `journalctl -p warning` filter by level, and the journal
stamps each entry itself. Anywhere else (a terminal, `var/demo/daemon.log`, a file a
supervisor writes) the line starts with its local time, ISO 8601 to the millisecond with the
UTC offset, so that a log read the next morning says when. JSON lines carry the same plus any
structured field passed as `extra=` (site, state...). Newlines inside a message or traceback
are escaped, so one event never splits into several journal entries.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _priority(levelno: int) -> int:
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


def local_time(seconds: float) -> str:
    """`2026-12-01T14:03:07.123+07:00`: the machine's local time, to the millisecond."""
    moment = dt.datetime.fromtimestamp(seconds).astimezone()
    return moment.isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def __init__(self, journal: bool) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += " | " + self.formatException(record.exc_info)
        line = line.replace("\n", "\\n")
        if self.journal:
            return f"<{_priority(record.levelno)}>{line}"
        return f"{local_time(record.created)} {line}"


def under_journald(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `stream` goes to the journal. systemd sets JOURNAL_STREAM to the device and
    inode of the service's stderr; a program started from a desktop terminal inherits the
    variable while writing elsewhere, so the two are compared when the stream has a file."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.StringIO and friends: trust the variable
        return True
    return value == f"{info.st_dev}:{info.st_ino}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event.update(_extras(record))
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(journal=under_journald(handler.stream)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pysnmp and asyncio chatter at debug would drown the daemon's own events
    for noisy in ("pysnmp", "asyncio", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
