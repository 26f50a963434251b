"""The status page in headless Chromium (Debian's `chromium`, driven by Playwright), against the
daemon polling a simulated district: what the page shows is checked against what the simulator
says it did, not against what the daemon's API returned.

The screenshots are kept beside the test's files (its tmp_path) for whoever reads a failure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for
from peers import free_udp_port
from playwright.sync_api import Browser, Page, sync_playwright
from simpeers import Simulator, fast_settings, write_district

CHROMIUM = "/usr/bin/chromium"
POLL, TIMEOUT, DOWN_AFTER = 0.5, 0.2, 3
REFRESH = 0.5  # the page's own refresh (?refresh=), seconds
TAKEN = "bts-vtl-muong-phang-01"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # root in CI: Chromium's sandbox needs an unprivileged user
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def cells(page: Page, selector: str) -> list[list[str]]:
    return [
        [cell.inner_text().strip() for cell in row.query_selector_all("td")]
        for row in page.query_selector_all(selector)
    ]


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
        with Simulator(config) as sim:
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
            counts = page.query_selector('#counts tr[data-kind="bts"]')
            assert counts is not None
            up = counts.query_selector('td[data-state="up"]')
            assert up is not None and int(up.inner_text()) == len(district)
            assert page.query_selector_all("#wrong tr[data-site]") == []
            page.screenshot(path=str(tmp_path / "status-all-up.png"), full_page=True)

            sim.ctl(f"/sites/{TAKEN}/down")
            taken_at = time.time()
            truth = sim.state(TAKEN)
            assert not truth["answering"]
            # confirmed after DOWN_AFTER failed polls, then shown at the next refresh
            limit = (DOWN_AFTER + 1) * POLL + TIMEOUT + REFRESH + 5.0
            row = page.wait_for_selector(
                f'#wrong tr[data-site="{TAKEN}"][data-state="down"]', timeout=limit * 1000
            )
            assert row is not None and time.time() - taken_at < limit
            name, state, reason, since, lasted, commune, owner = cells(
                page, f'#wrong tr[data-site="{TAKEN}"]'
            )[0]
            assert TAKEN in name and state == "gián đoạn" and reason
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", since), since
            hours, minutes, seconds = map(int, lasted.split(":"))
            assert hours == minutes == 0 and seconds <= limit
            assert commune == "Mường Phăng" and owner == "Viettel"
            colour = row.eval_on_selector("td", "td => getComputedStyle(td).borderLeftColor")
            assert colour == "rgb(198, 40, 40)"  # --down
            listed = {
                r.get_attribute("data-site") for r in page.query_selector_all("#wrong tbody tr")
            }
            assert listed == {TAKEN}, "only the site the simulator took down"
            commune_dot = page.query_selector('#map g[data-commune="muong-phang"]')
            other_dot = page.query_selector('#map g[data-commune="thanh-nua"]')
            assert commune_dot is not None and other_dot is not None
            assert commune_dot.get_attribute("data-state") == "down"
            assert other_dot.get_attribute("data-state") == "up"
            page.screenshot(path=str(tmp_path / "status-one-down.png"), full_page=True)

            page.click("#lang")
            assert page.inner_text("h1") == "Information and communication infrastructure"
            assert cells(page, f'#wrong tr[data-site="{TAKEN}"]')[0][1] == "down"
            page.close()
    finally:
        daemon.stop()
    for shot in ("status-all-up.png", "status-one-down.png"):
        assert (tmp_path / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
