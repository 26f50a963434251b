"""Log lines journald keeps well: one line per event, syslog priority under systemd, JSON."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import socket
import time
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for, write_settings

from monitor.core.logsetup import configure_logging, under_journald
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


def test_text_lines_carry_local_time_and_no_priority_outside_journald(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = time.time()
    first = emit("text", monkeypatch, journal=False)[0]
    after = time.time()
    stamp, line = first.split(" ", 1)
    assert line == "WARNING monitor.test: site=bts-1 down"
    moment = dt.datetime.fromisoformat(stamp)
    assert moment.utcoffset() == dt.datetime.now().astimezone().utcoffset(), "local, offset given"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", stamp)
    assert before - 0.001 <= moment.timestamp() <= after


def test_journal_stream_names_the_stream_that_goes_to_the_journal(tmp_path: Path) -> None:
    """A terminal started by a desktop's systemd inherits JOURNAL_STREAM while it writes
    elsewhere: only a stream whose device and inode it names is the journal's."""
    with (tmp_path / "a.log").open("w") as mine, (tmp_path / "b.log").open("w") as other:
        info = os.fstat(mine.fileno())
        env = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        assert under_journald(mine, env)
        assert not under_journald(other, env)
        assert not under_journald(mine, {})


def test_a_daemon_log_file_has_a_time_on_every_line(tmp_path: Path) -> None:
    """`districtmon run` writing to a file with JOURNAL_STREAM inherited from elsewhere (as
    `./dev demo` from a desktop terminal): each line still starts with its time."""
    port = free_tcp_port()
    config = tmp_path / "config"
    write_settings(config, port, {})
    (config / "inventory" / "sites.yaml").write_text("sites: []\n", encoding="utf-8")
    started = time.time()
    daemon = Daemon(config, port, env={"JOURNAL_STREAM": "8:12345"})
    try:
        wait_for("the listener", lambda: "metrics on http" in daemon.log.read_text(), daemon)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    lines = daemon.log.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 2
    for line in lines:
        moment = dt.datetime.fromisoformat(line.split(" ", 1)[0])
        assert started - 1 <= moment.timestamp() <= time.time()
        assert not line.startswith("<")


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
