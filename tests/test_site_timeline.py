"""A site's history as the status page reads it (/api/v1/sites/{id}/timeline), from a ledger
the test writes with outages it knows (tests/test_report_html.py: a 30-day November): the
spans, the seconds in each state, availability and outages are worked out here by hand."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_http_hardening import get
from test_report_html import DAY, END, MONTH, SITES, START, write_ledger

from monitor.core.model import Site, SnmpProbe, State, Transition
from monitor.expose.http import HttpServer
from monitor.expose.self_metrics import build_registry
from monitor.expose.timeline import site_timeline
from monitor.ledger.writer import Ledger
from monitor.state.live import LiveState


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite"
    asyncio.run(write_ledger(path))
    return path


def test_a_month_of_a_bts_gives_its_outages_latest_first_and_its_availability(
    ledger: Path,
) -> None:
    body = site_timeline(ledger, "bts-a", "30d", "Asia/Ho_Chi_Minh", now=END)
    assert (body["start"], body["end"]) == (START, END)
    assert body["seconds"] == {"up": MONTH - 1800, "down": 1800}
    assert body["availability"] == (MONTH - 1800) / MONTH
    assert body["outages_total"] == 2
    outages = body["outages"]
    assert isinstance(outages, list)
    assert [(o["start"], o["seconds"], o["ongoing"]) for o in outages] == [
        (START + 10 * DAY, 1200, False),
        (START + 1 * DAY, 600, False),
    ]
    assert outages[0]["start_local"] == "2025-11-11T00:00:00.000+07:00"  # in the office zone


def test_time_behind_a_parent_or_in_maintenance_is_drawn_but_not_counted(ledger: Path) -> None:
    body = site_timeline(ledger, "radio-d", "30d", None, now=END)
    spans = body["spans"]
    assert isinstance(spans, list)
    assert [s["state"] for s in spans] == ["up", "unreachable", "up", "maintenance", "up"]
    assert body["seconds"] == {"up": MONTH - 3600 - 7200, "unreachable": 3600, "maintenance": 7200}
    assert body["availability"] == 1.0 and body["outages_total"] == 0


def test_the_last_day_cuts_what_began_before_it(ledger: Path) -> None:
    # the day of bts-a's first outage, ending 300 s into it
    body = site_timeline(ledger, "bts-a", "1d", None, now=START + DAY + 300)
    assert body["seconds"] == {"up": DAY - 300, "down": 300}
    outages = body["outages"]
    assert isinstance(outages, list) and outages[0]["seconds"] == 300


def get_json(url: str) -> tuple[int, dict[str, object]]:
    status, body = get(url)
    return status, json.loads(body)


@contextlib.contextmanager
def serving(live: LiveState, ledger: Path) -> Iterator[str]:
    """The daemon's HTTP server over `live` and `ledger` on a free port: its base URL."""
    server = HttpServer("127.0.0.1", 0, build_registry()[0], live, ledger=ledger)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_the_daemon_serves_a_timeline_and_refuses_an_unknown_site_or_window(
    ledger: Path, tmp_path: Path
) -> None:
    sites = {
        s: Site(s, kind, s, commune, owner, 0, 0, SnmpProbe("127.0.0.1"), parent)
        for s, kind, commune, owner, parent in SITES
    }
    with serving(LiveState(sites), ledger) as url:
        base = f"{url}/api/v1/sites"
        status, body = get_json(f"{base}/bts-a/timeline?window=30d")
        assert status == 200 and body["site"] == "bts-a" and body["window"] == "30d"
        assert get_json(f"{base}/nowhere/timeline")[0] == 404
        status, body = get_json(f"{base}/bts-a/timeline?window=1y")
        assert status == 400 and "1d, 7d, 30d" in str(body["error"])
    with serving(LiveState(sites), tmp_path / "none.sqlite") as url:
        status, body = get_json(f"{url}/api/v1/sites/bts-a/timeline")
        assert status == 503 and body["error"] == "no ledger yet"


def test_an_outage_across_the_monitors_blind_time_is_one_as_in_the_report(tmp_path: Path) -> None:
    """Down, the daemon stopped (unknown), down again: one outage of the down time alone, as
    `districtmon report` counts it (monitor/core/availability.py)."""
    path = tmp_path / "ledger.sqlite"

    async def write() -> None:
        now = [START]
        ledger = await Ledger.open(path, clock=lambda: now[0])
        await ledger.sync_sites([Site("x", "bts", "X", "c", "o", 0, 0, SnmpProbe("127.0.0.1"))])
        for state, at in ((State.UP, 0.0), (State.DOWN, 100.0), (State.UNKNOWN, 160.0),
                          (State.DOWN, 400.0), (State.UP, 440.0)):  # fmt: skip
            ledger.record(Transition("x", state, START + at, State.UNKNOWN))
        now[0] = START + 1000
        await ledger.close(at=START + 1000)

    asyncio.run(write())
    body = site_timeline(path, "x", "1d", None, now=START + 1000)
    assert body["outages_total"] == 1
    outages = body["outages"]
    assert isinstance(outages, list) and len(outages) == 1
    assert (outages[0]["start"], outages[0]["seconds"]) == (START + 100, 100.0)
    assert body["seconds"] == {"up": 660.0, "down": 100.0, "unknown": 240.0}
