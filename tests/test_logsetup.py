"""Log lines journald keeps well: one line per event, syslog priority under systemd, JSON."""

from __future__ import annotations

import io
import json
import logging
import os
import socket

import pytest

from monitor.core.logsetup import configure_logging
from monitor.runtime.notify import Notifier


def emit(fmt: str, monkeypatch: pytest.MonkeyPatch, journal: bool) -> list[str]:
    if journal:
        monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    else:
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    configure_logging("info", fmt, stream)
    log = logging.getLogger("monitor.test")
    log.warning("site=%s down", "bts-1", extra={"site": "bts-1"})
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        log.exception("poll crashed")
    log.debug("not shown at info")
    logging.getLogger().handlers.clear()
    return stream.getvalue().splitlines()


def test_text_lines_carry_the_syslog_priority_under_journald(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = emit("text", monkeypatch, journal=True)
    assert lines[0] == "<4>WARNING monitor.test: site=bts-1 down"
    assert lines[1].startswith("<3>ERROR monitor.test: poll crashed | Traceback")
    assert len(lines) == 2, "a traceback stays on one line"


def test_text_lines_have_no_priority_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    assert emit("text", monkeypatch, journal=False)[0] == "WARNING monitor.test: site=bts-1 down"


def test_json_lines_carry_structured_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = (json.loads(line) for line in emit("json", monkeypatch, journal=False))
    assert first["level"] == "warning" and first["site"] == "bts-1"
    assert "line two" in second["exception"]


def test_notifier_reaches_an_abstract_socket() -> None:
    name = f"districtmon-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(b"\0" + name.encode())
    server.settimeout(2)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        notifier.ready("watching 3 sites")
        assert server.recv(1024) == b"READY=1\nSTATUS=watching 3 sites"
        notifier.close()
    finally:
        server.close()


def test_notifier_is_silent_outside_systemd_and_obeys_watchdog_pid() -> None:
    assert not Notifier({}).enabled
    assert Notifier({"WATCHDOG_USEC": "2000000"}).watchdog_seconds == 2.0
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}).watchdog_seconds is None
