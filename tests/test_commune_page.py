"""A commune's page (/api/v1/communes/{id}), the monitor's own health on the status page, and the
monthly report the daemon serves (/report): each against figures worked out here by hand, from a
ledger the test writes with outages it knows (tests/test_report_html.py: a 30-day November)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
from test_report_html import DAY, END, MONTH, SITES, START, write_ledger
from test_site_timeline import get_json, serving

from monitor.config.load import load_config
from monitor.core.model import Commune, Observation, Site, SnmpProbe, State, Transition
from monitor.expose.api import monitor_report, summary_report
from monitor.expose.commune import WindowTallies, commune_report
from monitor.probes.mqtt.counts import MqttCounts
from monitor.report.monthly import report_html, served_month
from monitor.state.live import LiveState

SHIPPED = Path(__file__).resolve().parents[1] / "config"
ZONE = "Asia/Ho_Chi_Minh"


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite"
    asyncio.run(write_ledger(path))
    return path


def month_live() -> LiveState:
    sites = {
        s: Site(s, kind, f"Điểm {s}", commune, owner, 0, 0, SnmpProbe("127.0.0.1"), parent)
        for s, kind, commune, owner, parent in SITES
    }
    communes = {
        "thanh-nua": Commune("thanh-nua", "Thanh Nưa", 21.4, 103.0),
        "na-tau": Commune("na-tau", "Nà Tấu", 21.5, 103.1),
    }
    return LiveState(sites, communes)


def test_a_commune_s_month_sums_its_sites_per_kind_as_the_report_does(ledger: Path) -> None:
    body = commune_report(month_live(), "thanh-nua", WindowTallies(ledger), "30d", now=END)
    assert body is not None and body["name"] == "Thanh Nưa" and body["sites_total"] == 2
    history = body["history"]
    assert isinstance(history, dict) and (history["start"], history["end"]) == (START, END)
    # bts-a down 600 s and 1200 s, bts-b up all month: two sites' months counted together
    bts = history["kinds"]["bts"]
    assert bts["sites"] == 2 and bts["outages"] == 2
    assert bts["availability"] == (2 * MONTH - 1800) / (2 * MONTH)
    assert (bts["down_seconds"], bts["longest_outage_seconds"], bts["mttr_seconds"]) == (
        1800,
        1200,
        900,
    )
    assert history["total"] == bts  # the commune has nothing else


def test_time_behind_a_parent_and_in_maintenance_is_not_counted_in_a_commune(ledger: Path) -> None:
    body = commune_report(month_live(), "na-tau", WindowTallies(ledger), "30d", now=END)
    assert body is not None
    history = body["history"]
    assert isinstance(history, dict)
    kinds = history["kinds"]
    assert kinds["radio_station"]["availability"] == 1.0  # unreachable an hour, maintenance two
    assert kinds["gateway"]["availability"] == (MONTH - 3600) / MONTH
    total = history["total"]
    # the station's counted time is its month less the three hours it was not to blame for
    assert total["availability"] == (2 * MONTH - 3600 - 3 * 3600) / (2 * MONTH - 3 * 3600)
    assert total["outages"] == 1


def test_a_window_is_read_from_the_ledger_once_a_minute_for_every_commune(ledger: Path) -> None:
    tallies = WindowTallies(ledger)
    first = tallies.get("30d", END)
    assert first is not None and first[0] == END and "bts-a" in first[1]
    assert tallies.get("30d", END + 59) is first  # the next refresh, any commune
    later = tallies.get("30d", END + 61)
    assert later is not None and later is not first and later[0] == END + 61
    assert tallies.get("1d", END + 61) is not later  # each window its own
    assert WindowTallies(ledger.with_name("none.sqlite")).get("1d", END) is None


def test_the_last_day_of_a_commune_cuts_what_began_before_it(ledger: Path) -> None:
    body = commune_report(
        month_live(), "thanh-nua", WindowTallies(ledger), "1d", now=START + 10 * DAY + 600
    )
    assert body is not None
    history = body["history"]
    assert isinstance(history, dict)
    assert history["kinds"]["bts"]["down_seconds"] == 600  # the outage so far, not the old one
    assert history["kinds"]["bts"]["outages"] == 1


def speakers_live() -> LiveState:
    def cluster(n: int, covers: tuple[str, ...]) -> Site:
        return Site(
            f"loa-{n}", "loudspeaker", f"Loa {n}", "c", "rtv", 0, 0, SnmpProbe("x"), None, covers
        )

    sites = {
        s.id: s
        for s in (
            cluster(1, ("ban-a", "ban-b")),
            cluster(2, ("ban-b",)),  # ban-b is reached by two
            cluster(3, ("ban-c",)),
            cluster(4, ("ban-d",)),
            Site("bts-x", "bts", "BTS", "c", "viettel", 0, 0, SnmpProbe("x")),
        )
    }
    commune = Commune("c", "Xã C", 21.0, 103.0, ("ban-a", "ban-b", "ban-c", "ban-d", "ban-e"))
    return LiveState(sites, {"c": commune})


def observe(live: LiveState, site: str, state: State, **values: float | str) -> None:
    live.apply_transition(Transition(site, state, 100.0, State.UNKNOWN, "why"))
    live.apply_observation(Observation(site, 100.0, state is not State.DOWN, 0.01, values=values))


def test_the_areas_a_commune_hears_now_are_those_of_its_working_clusters() -> None:
    live = speakers_live()
    observe(live, "loa-1", State.UP, amplifier_ok=1)
    observe(live, "loa-2", State.DEGRADED, amplifier_ok=0)  # answers and plays nothing
    observe(live, "loa-3", State.DEGRADED, battery_volts=11.2)  # on battery, still playing
    observe(live, "loa-4", State.DOWN)
    observe(live, "bts-x", State.UP)
    body = commune_report(live, "c", None, "1d")
    assert body is not None and body["history"] is None  # no ledger: nothing to read
    assert body["coverage"] == {
        "areas": 5,
        "covered": 3,  # ban-a, ban-b (once, by loa-1), ban-c
        "uncovered": ["ban-d", "ban-e"],
        "clusters": 4,
        "clusters_working": 2,
    }
    assert body["kinds"] == {"loudspeaker": {"up": 1, "degraded": 2, "down": 1}, "bts": {"up": 1}}
    wrong = body["wrong"]
    assert isinstance(wrong, list) and [w["id"] for w in wrong] == ["loa-2", "loa-3", "loa-4"]


def test_the_monitor_panel_says_when_the_broker_is_lost_and_the_ledger_cannot_write() -> None:
    live = speakers_live()
    observe(live, "loa-1", State.UP)
    observe(live, "loa-4", State.DOWN)
    counts = MqttCounts(connected=True, sites=4, reconnects=2)
    healthy = monitor_report(live, 10.0, counts)
    assert healthy["ok"] is True and healthy["broker"] == {
        "connected": True,
        "sites": 4,
        "reconnects": 2,
    }
    assert healthy["polls"] == {
        "sites": 5,
        "polled": 2,
        "answered": 1,
        "newest_age_seconds": pytest.approx(time.time() - 100.0, abs=5),
    }
    counts.connected = False
    live.health.ledger_trouble = "ledger cannot write (disk full)"
    troubled = monitor_report(live, 10.0, counts)
    assert troubled["ok"] is False and troubled["problems"] == ["ledger cannot write (disk full)"]
    assert troubled["broker"] == {"connected": False, "sites": 4, "reconnects": 2}
    assert summary_report(live)["monitor"]["broker"] is None  # type: ignore[index]


def test_the_daemon_serves_a_commune_and_refuses_an_unknown_one_or_window(ledger: Path) -> None:
    with serving(month_live(), ledger) as url:
        base = f"{url}/api/v1/communes"
        status, body = get_json(f"{base}/thanh-nua?window=7d")
        assert status == 200 and body["id"] == "thanh-nua" and body["window"] == "7d"
        assert get_json(f"{base}/nowhere")[0] == 404
        status, body = get_json(f"{base}/thanh-nua?window=1y")
        assert status == 400 and "1d, 7d, 30d" in str(body["error"])
        status, body = get_json(f"{url}/report")
        assert status == 503 and "ledger" in str(body["error"])  # no report without one


def shipped_with_ledger(tmp_path: Path, ledger: Path) -> Path:
    """The shipped configuration whose ledger is the test's November."""
    root = tmp_path / "config"
    root.mkdir()
    for path in SHIPPED.rglob("*"):
        if path.is_file():
            target = root / path.relative_to(SHIPPED)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    settings = root / "districtmon.yaml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(f"{text}\nledger:\n  path: {ledger}\n", encoding="utf-8")
    return root


def test_the_served_month_is_the_command_s_page_with_links_to_the_months_around(
    tmp_path: Path, ledger: Path
) -> None:
    config = load_config(shipped_with_ledger(tmp_path, ledger), {})
    assert config.ledger_path == ledger and config.timezone == ZONE
    page = served_month(config, "2025-11", now=END + 40 * DAY)
    assert '<a href="?month=2025-10">' in page and '<a href="?month=2025-12">' in page
    assert '<a href="/status">' in page
    filed = report_html(config, [ledger], START, END, ZONE)
    strip = re.compile(r"<nav>.*?</nav>\n|Lập ngày [^<]*")
    assert strip.sub("", page) == strip.sub("", filed)  # the same document, printed
    assert "Tháng sau" not in served_month(config, "2025-11", now=END - DAY)  # not over yet
    with pytest.raises(ValueError, match="not a month"):
        served_month(config, "November")
    with pytest.raises(ValueError, match="window is empty"):
        served_month(config, "2099-01")
