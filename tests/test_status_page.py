"""The status page in headless Chromium (Debian's `chromium`, driven by Playwright), against the
daemon polling a simulated district: what the page shows is checked against what the simulator
says it did, not against what the daemon's API returned.

The screenshots are kept beside the test's files (its tmp_path) for whoever reads a failure;
with DISTRICTMON_SCREENSHOTS=DIR the commune test copies its own to DIR (the README's pictures,
tests/screenshots/, are made so).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for
from peers import free_udp_port
from playwright.sync_api import Browser, Page, sync_playwright
from simpeers import SHIPPED, Simulator, fast_settings, write_district
from stack import unmeasured
from test_http_hardening import get
from test_objectives import district, problems

from monitor.config.load import load_config
from monitor.config.settings import HttpSettings
from monitor.core.model import Commune, Site, SnmpProbe, State, Transition
from monitor.expose.api import summary_report
from monitor.expose.http import HttpServer
from monitor.expose.self_metrics import build_registry
from monitor.state.live import LiveState

CHROMIUM = "/usr/bin/chromium"
# Polls of 0.5 s with 0.2 s timeouts (table walks included) kept the simulator near a whole
# core: in a full `./dev test` it fell behind for 1-2 s, and the daemon rightly charged the
# devices it played with outages the test never made. At 1 s and 0.4 s it has room.
POLL, TIMEOUT, DOWN_AFTER = 1.0, 0.4, 3
REFRESH = 0.5  # the page's own refresh (?refresh=), seconds
TAKEN = "bts-vtl-muong-phang-01"
# the columns of the page's counts table, after the kind
STATES = ("down", "unreachable", "degraded", "unknown", "maintenance", "up")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # root in CI: Chromium's sandbox needs an unprivileged user
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


# The page redraws at every refresh: each read below is one evaluation in the page, never an
# element handle kept across a redraw.


def cells(page: Page, selector: str) -> list[list[str]]:
    """The cells' text of every row matching `selector`."""
    found: list[list[str]] = page.eval_on_selector_all(
        selector,
        "rows => rows.map(r => [...r.querySelectorAll('td')].map(c => c.innerText.trim()))",
    )
    return found


def attributes(page: Page, selector: str, name: str) -> list[str | None]:
    found: list[str | None] = page.eval_on_selector_all(
        selector, f"nodes => nodes.map(n => n.getAttribute('{name}'))"
    )
    return found


def simulated(config: Path) -> Simulator:
    """The simulator of a page test, unmeasured: traced line by line under `./dev test`, it
    answers more slowly (see POLL), and what it plays must not depend on the machine. The
    pages are what these tests measure; the simulator's code is measured elsewhere."""
    with unmeasured():
        return Simulator(config)


def test_the_status_page_shows_a_site_the_simulator_takes_down_in_red_with_its_reason(
    tmp_path: Path, browser: Browser
) -> None:
    port, http = free_udp_port(), free_tcp_port()
    config = write_district(
        tmp_path / "config", communes=["muong-phang", "thanh-nua"], kinds=["bts"], port=port,
        settings=fast_settings(http, POLL, TIMEOUT, DOWN_AFTER),
    )  # fmt: skip
    daemon = Daemon(config, http)
    try:
        with simulated(config) as sim:
            sim.wait_ready()
            district = {s["site"]: s for s in sim.get("/sites")[1]["sites"]}
            assert all(s["answering"] for s in district.values())
            wait_for(
                "every site up",
                lambda: all(
                    daemon.metric("districtmon_site_up", site=site) == 1 for site in district
                ),
                daemon,
            )
            page = browser.new_page(viewport={"width": 420, "height": 900})  # a phone
            page.goto(f"http://127.0.0.1:{http}/?refresh={REFRESH}")
            page.wait_for_selector("body[data-updated]")
            # every BTS the simulator answers for is counted up, none is listed as wrong
            up = cells(page, '#counts tr[data-kind="bts"]')[0][STATES.index("up") + 1]
            assert int(up) == len(district)
            assert attributes(page, "#wrong tr[data-site]", "data-site") == []
            page.screenshot(path=str(tmp_path / "status-all-up.png"), full_page=True)

            sim.ctl(f"/sites/{TAKEN}/down")
            taken_at = time.time()
            truth = sim.state(TAKEN)
            assert not truth["answering"]
            # confirmed after DOWN_AFTER failed polls, then shown at the next refresh
            limit = (DOWN_AFTER + 1) * POLL + TIMEOUT + REFRESH + 5.0
            page.wait_for_selector(
                f'#wrong tr[data-site="{TAKEN}"][data-state="down"]', timeout=limit * 1000
            )
            assert time.time() - taken_at < limit
            name, state, reason, since, lasted, commune, owner = cells(
                page, f'#wrong tr[data-site="{TAKEN}"]'
            )[0]
            assert TAKEN in name and state == "gián đoạn" and reason
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", since), since
            hours, minutes, seconds = map(int, lasted.split(":"))
            assert hours == minutes == 0 and seconds <= limit
            assert commune == "Mường Phăng" and owner == "Viettel"
            colour = page.eval_on_selector(
                f'#wrong tr[data-site="{TAKEN}"] td', "td => getComputedStyle(td).borderLeftColor"
            )
            assert colour == "rgb(198, 40, 40)"  # --down
            listed = attributes(page, "#wrong tbody tr", "data-site")
            assert listed == [TAKEN], "only the site the simulator took down"
            assert attributes(page, '#map g[data-commune="muong-phang"]', "data-state") == ["down"]
            assert attributes(page, '#map g[data-commune="thanh-nua"]', "data-state") == ["up"]
            page.screenshot(path=str(tmp_path / "status-one-down.png"), full_page=True)

            # its page: the facts, and the ledger's timeline with the outage where it began
            page.click(f'#wrong tr[data-site="{TAKEN}"] a')
            page.wait_for_selector('#timeline rect[data-state="down"]', timeout=10_000)
            facts = dict(
                page.eval_on_selector_all(
                    "#site-facts tr",
                    "rows => rows.map(r => [r.dataset.fact, r.cells[1].innerText])",
                )
            )
            assert facts["id"] == TAKEN and facts["reason"], facts
            assert page.inner_text("#site-name").endswith("gián đoạn")
            spans = page.eval_on_selector_all(
                "#timeline rect", "rs => rs.map(r => [r.dataset.state, Number(r.dataset.start)])"
            )
            assert [state for state, _ in spans][-2:] == ["up", "down"], spans
            began = spans[-1][1]
            # dated at the first failed poll: after the test's own action, within one poll
            assert taken_at - 0.5 <= began <= taken_at + POLL + TIMEOUT + 1.0, (began, taken_at)
            first_outage = attributes(page, "#outages tbody tr", "data-start")[0]
            assert first_outage is not None and float(first_outage) == began
            page.screenshot(path=str(tmp_path / "status-site.png"), full_page=True)
            page.click('#site a[data-t="back"]')
            page.wait_for_selector("#overview:not([hidden])")

            page.click("#lang")
            assert page.inner_text("h1") == "Information and communication infrastructure"
            assert cells(page, f'#wrong tr[data-site="{TAKEN}"]')[0][1] == "down"
            page.close()
    finally:
        daemon.stop()
    for shot in ("status-all-up.png", "status-one-down.png", "status-site.png"):
        assert (tmp_path / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


SPEAKERS = "muong-phang"  # its clusters are played over SNMP (simpeers.write_district)
SILENCED = "loa-muong-phang-02"  # its amplifier fails: it answers and plays nothing
CUT = "bts-vnp-muong-phang-02"


def reached(sim: Simulator, commune: str, areas: list[str]) -> tuple[int, int]:
    """The simulator's own account of a commune: (areas a cluster that answers and has a
    working amplifier reaches, clusters in that case)."""
    clusters = [
        (site, sim.state(site["site"]))
        for site in sim.get("/sites")[1]["sites"]
        if site["kind"] == "loudspeaker" and site["commune"] == commune
    ]
    working = [site for site, truth in clusters if truth["answering"] and truth["amplifier_ok"]]
    heard = {area for site in working for area in COVERS[site["site"]]}
    return sum(1 for area in areas if area in heard), len(working)


COVERS = {
    site.id: site.covers for site in load_config(SHIPPED, environ={}).sites.values() if site.covers
}


def test_the_commune_page_the_monitor_panel_and_the_monthly_report_say_what_the_simulator_did(
    tmp_path: Path, browser: Browser
) -> None:
    port, http = free_udp_port(), free_tcp_port()
    config = write_district(
        tmp_path / "config", communes=[SPEAKERS, "thanh-nua"], kinds=["bts", "loudspeaker"],
        port=port, settings=fast_settings(http, POLL, TIMEOUT, DOWN_AFTER), profiles=True,
    )  # fmt: skip
    communes_areas = {
        c.id: list(c.areas) for c in load_config(config, environ={}).communes.values()
        if c.id in (SPEAKERS, "thanh-nua")
    }  # fmt: skip
    areas = communes_areas[SPEAKERS]
    daemon = Daemon(config, http)
    try:
        with simulated(config) as sim:
            sim.wait_ready()
            district = {s["site"]: s for s in sim.get("/sites")[1]["sites"]}
            wait_for(
                "every site up",
                lambda: all(
                    daemon.metric("districtmon_site_up", site=site) == 1 for site in district
                ),
                daemon,
            )
            page = browser.new_page(viewport={"width": 1000, "height": 1200})
            page.goto(f"http://127.0.0.1:{http}/?refresh={REFRESH}")
            page.wait_for_selector("body[data-updated]")
            # the monitor's own panel: healthy, every site the simulator answers for answered.
            # A poll of 0.2 s may time out on a loaded machine (an up site whose last poll
            # failed is rightly not counted as answered); the next one, 0.5 s later, answers,
            # so the panel is read again for a few of the page's refreshes.
            answered = sum(1 for s in district.values() if s["answering"])
            deadline = time.monotonic() + 10.0
            while True:
                panel = dict(
                    page.eval_on_selector_all(
                        "#monitor tr",
                        "rows => rows.map(r => [r.dataset.fact, r.cells[1].innerText])",
                    )
                )
                counted = panel["polls"].startswith(f"{answered} / {len(district)} ")
                if counted or time.monotonic() > deadline:
                    break
                time.sleep(REFRESH / 2)
            assert panel["monitor_state"] == "bình thường", panel
            assert counted, panel
            assert panel["broker"] == "không dùng"  # this district has no MQTT site
            assert page.is_hidden("#monitor-alert")
            page.screenshot(path=str(tmp_path / "status-district.png"), full_page=True)

            for commune, listed_areas in communes_areas.items():
                heard, _ = reached(sim, commune, listed_areas)
                row = f'#speakers tr[data-commune="{commune}"]'
                assert attributes(page, row, "data-covered") == [str(heard)], commune

            sim.ctl(f"/sites/{SILENCED}/amplifier-fault")
            sim.ctl(f"/sites/{CUT}/down")
            taken_at = time.time()
            assert not sim.state(CUT)["answering"] and not sim.state(SILENCED)["amplifier_ok"]
            covered, working = reached(sim, SPEAKERS, areas)
            assert covered < len(areas) and working == 2
            limit = (DOWN_AFTER + 1) * POLL + TIMEOUT + REFRESH + 5.0
            # the district's page first: the commune's row of live coverage
            page.wait_for_selector(
                f'#speakers tr[data-commune="{SPEAKERS}"][data-covered="{covered}"]',
                timeout=limit * 1000,
            )
            page.wait_for_selector(f'#wrong tr[data-site="{CUT}"]', timeout=limit * 1000)
            page.screenshot(path=str(tmp_path / "status-trouble.png"), full_page=True)
            page.click(f'#map a[href="#commune={SPEAKERS}"]')
            page.wait_for_selector("#commune:not([hidden])")
            page.wait_for_selector(
                f'#commune-wrong tr[data-site="{CUT}"][data-state="down"]', timeout=limit * 1000
            )
            page.wait_for_selector(
                f'#commune-coverage[data-covered="{covered}"][data-areas="{len(areas)}"]',
                timeout=limit * 1000,
            )
            assert page.inner_text("#commune-name") == "Mường Phăng"
            assert f"{working} / 3" in page.inner_text("#commune-coverage")
            shown = {
                row[0]: row
                for row in page.eval_on_selector_all(
                    "#commune-wrong tbody tr[data-site]",
                    "rows => rows.map(r => [r.dataset.site, r.dataset.state])",
                )
            }
            assert shown == {CUT: [CUT, "down"], SILENCED: [SILENCED, "degraded"]}, shown
            # each of the commune's sites, as the simulator answers for it
            listed = dict(
                page.eval_on_selector_all(
                    "#commune-sites tbody tr",
                    "rows => rows.map(r => [r.dataset.site, r.dataset.state])",
                )
            )
            mine = {site for site, s in district.items() if s["commune"] == SPEAKERS}
            assert set(listed) == mine
            assert [site for site, state in listed.items() if state == "up"] == sorted(
                mine - {CUT, SILENCED}
            )
            # the last day from the ledger: the one outage the simulator made, a BTS's
            history = {
                row[0]: row[1:]
                for row in cells(page, "#commune-history tbody tr")
            }  # fmt: skip
            assert history["BTS"][2] == "1" and history["Cụm loa"][2] == "0", history
            assert history["Tất cả"][0] == str(len(mine))
            page.screenshot(path=str(tmp_path / "status-commune.png"), full_page=True)
            # the silenced cluster's page: what the device said, beside what the simulator plays
            page.click(f'#commune-sites tr[data-site="{SILENCED}"] a')
            page.wait_for_selector('#site-values tr[data-value="amplifier_ok"]')
            values = dict(
                page.eval_on_selector_all(
                    "#site-values tr",
                    "rows => rows.map(r => [r.dataset.value, r.cells[1].innerText])",
                )
            )
            measured = sim.state(SILENCED)["measured"]
            assert values["amplifier_ok"] == "0", values
            assert float(values["battery_volts"]) == pytest.approx(
                measured["battery_volts"], abs=0.2
            )
            page.go_back()
            page.wait_for_selector("#commune:not([hidden])")

            # the monthly report, from the header's link, counts the same outage
            page.click("#report")
            page.wait_for_selector("h1")
            assert "Báo cáo độ khả dụng" in (page.text_content("h1") or "")
            by_commune = {row[0]: row for row in cells(page, "#theo-commune tbody tr")}
            # id, name, sites, availability, outages...
            assert by_commune[SPEAKERS][4] == "1", by_commune
            assert by_commune["thanh-nua"][4] == "0", by_commune
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            assert time.time() - taken_at < 60
            page.close()
    finally:
        daemon.stop()
    shots = ("status-district.png", "status-trouble.png", "status-commune.png", "report.png")
    for shot in shots:
        assert (tmp_path / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("DISTRICTMON_SCREENSHOTS")  # the README's come from here
    if keep:
        for shot in ("status-trouble.png", "status-commune.png"):
            shutil.copyfile(tmp_path / shot, Path(keep) / shot)


def test_the_summary_is_sized_by_what_is_wrong_and_counts_every_site() -> None:
    """/api/v1/summary, what the page draws: every site counted by kind and commune, each
    commune's worst state, the wrong ones longest first and cut at `shown` with their total."""
    sites = {
        f"s{n}": Site(
            f"s{n}", "bts" if n % 2 else "gateway", f"S{n}", f"c{n % 3}", "o", 0, 0,
            SnmpProbe("127.0.0.1"),
        )
        for n in range(12)
    }  # fmt: skip
    communes = {f"c{n}": Commune(f"c{n}", f"Xã {n}", 21.0 + n / 10, 103.0) for n in range(3)}
    live = LiveState(sites, communes=communes)
    # s3 down since 300, s6 unreachable since 100, s9 degraded since 200; the rest up
    for site, state, since in (("s3", State.DOWN, 300.0), ("s6", State.UNREACHABLE, 100.0),
                               ("s9", State.DEGRADED, 200.0)):  # fmt: skip
        live.apply_transition(Transition(site, state, since, State.UP, "why"))
    for site in sites:
        if site not in ("s3", "s6", "s9"):
            live.apply_transition(Transition(site, State.UP, 50.0, State.UNKNOWN))
    body = summary_report(live, shown=2)
    assert body["sites"] == 12
    assert body["kinds"] == {
        "gateway": {"up": 5, "unreachable": 1},
        "bts": {"up": 4, "down": 1, "degraded": 1},
    }
    wrong = body["wrong"]
    assert isinstance(wrong, list) and body["wrong_total"] == 3
    assert [w["id"] for w in wrong] == ["s6", "s9"]  # longest first, cut at 2
    by_commune = {c["id"]: c for c in body["communes"]}  # type: ignore[attr-defined]
    assert {c: p["worst"] for c, p in by_commune.items()} == {"c0": "down", "c1": "up", "c2": "up"}
    assert by_commune["c0"]["counts"] == {"up": 1, "down": 1, "unreachable": 1, "degraded": 1}
    assert (by_commune["c1"]["name"], by_commune["c1"]["lat"]) == ("Xã 1", 21.1)


def get_text(url: str, **headers: str) -> tuple[int, str]:
    status, body = get(url, **headers)
    return status, body.decode()


def test_the_status_page_can_be_turned_off_and_on_again_by_a_reload() -> None:
    sites = {"a": Site("a", "bts", "A", "c", "o", 0, 0, SnmpProbe("127.0.0.1"))}
    settings = HttpSettings("127.0.0.1", 0, status_page=False)
    server = HttpServer("127.0.0.1", 0, build_registry()[0], LiveState(sites), settings=settings)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        status, body = get_text(base + "/", Accept="text/html")
        assert status == 200 and "/status" not in json.loads(body)["endpoints"]
        for path in (
            "/status", "/api/v1/summary", "/api/v1/sites/a/timeline", "/api/v1/communes/c",
            "/report",
        ):  # fmt: skip
            status, body = get_text(base + path)
            assert status == 404 and "http.status_page: false" in body, path
        assert get_text(base + "/api/v1/sites")[0] == 200  # the scripts' API stays
        server.use_status_page(True)
        status, body = get_text(base + "/", Accept="text/html")
        assert status == 200 and body.startswith("<!DOCTYPE html>")
    finally:
        server.stop()


def test_the_switch_is_read_from_the_settings_and_anything_but_a_boolean_is_refused(
    tmp_path: Path,
) -> None:
    def with_http(root: Path, extra: str) -> Path:
        district(root, 9, "")
        path = root / "districtmon.yaml"
        text = path.read_text(encoding="utf-8")
        listen = 'http: {listen: "127.0.0.1:9"}'
        assert listen in text
        path.write_text(text.replace(listen, 'http: {listen: "127.0.0.1:9", ' + extra + "}"))
        return root

    assert (
        load_config(with_http(tmp_path / "a", "status_page: false"), {}).http.status_page is False
    )
    assert load_config(with_http(tmp_path / "b", "max_connections: 9"), {}).http.status_page
    found = problems(with_http(tmp_path / "c", 'status_page: "no"'))
    assert any(
        re.match(r"districtmon\.yaml:\d+: http\.status_page: must be true or false", p)
        for p in found
    ), found
