"""The scripted district day (config/scenarios/day.yaml) holds what the demo and the whole-stack
test need, each long enough to be confirmed and alerted: read from the simulator's own truth
while the world plays it on a clock the test moves."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from simpeers import SHIPPED

from monitor.config.load import load_config
from monitor.simulator.clock import ManualClock
from monitor.simulator.scenario import load_scenario, schedule
from monitor.simulator.truth import Truth
from monitor.simulator.world import World

CONFIG = load_config(SHIPPED, environ={})
DAY = SHIPPED / "scenarios" / "day.yaml"
LONG = 10 * 60  # an outage or a fault: confirmed (3 polls at 60 s), past its for:, paged
Record = dict[str, Any]


@pytest.fixture(scope="module")
def played() -> Iterator[list[Record]]:
    clock = ManualClock()
    truth = Truth()
    world = World(CONFIG, clock, truth)
    world.begin(icmp_cut=True)
    scenario = load_scenario(DAY, CONFIG)
    schedule(scenario, world, clock.t)
    end = clock.t + scenario.length + 60
    while clock.t < end:
        clock.t = min(end, clock.t + 10)
        world.run_due(clock.t)
    yield truth.records()


def spells(records: list[Record], site: str) -> list[tuple[float, float, str]]:
    """(from, to, why) of each spell the site did not answer, `why` as it was first."""
    found, since, why = [], None, ""
    for r in records:
        if r["type"] != "serves" or r["site"] != site:
            continue
        if not r["answering"] and since is None:
            since, why = r["sim"], r["why"]
        elif r["answering"] and since is not None:
            found.append((since, r["sim"], why))
            since = None
    assert since is None, f"{site} never answered again"
    return found


def fact_changes(records: list[Record], site: str, name: str) -> list[tuple[float, bool]]:
    return [
        (r["sim"], r["value"])
        for r in records[1:]
        if r["type"] == "condition" and r["site"] == site and r["name"] == name
    ][1:]  # after the start's own


def test_the_day_lasts_about_three_hours_and_ends_with_nothing_broken(
    played: list[Record],
) -> None:
    scenario = load_scenario(DAY, CONFIG)
    assert 2.5 * 3600 <= scenario.length <= 3.5 * 3600
    assert all(event.note for event in scenario.events), "every event says what to look at"
    last: dict[tuple[str, str], object] = {}
    for r in played:
        if r["type"] == "serves":
            last[(r["site"], "serves")] = (r["answering"], r["why"])
        elif r["type"] == "condition":
            last[(r["site"], r["name"])] = r["value"]
    nominal = {"mains": True, "battery_low": False, "door_open": False}
    for (site, what), value in last.items():
        expected = (True, "") if what == "serves" else nominal.get(what, True)
        assert value == expected, (site, what, value)


def test_a_bts_dies_alone_and_comes_back(played: list[Record]) -> None:
    down = next(r for r in played if r["type"] == "action" and r["action"] == "down")
    bts = down["target"]
    assert CONFIG.sites[bts].kind == "bts"
    [(start, end, why)] = spells(played, bts)
    assert why == "failed" and end - start >= LONG
    at_once = [r for r in played if r["sim"] == start and r["type"] == "serves"]
    assert [r["site"] for r in at_once] == [bts], "alone"


def test_the_power_cut_drains_the_commune_bts_then_power_returns(played: list[Record]) -> None:
    cut = next(r for r in played if r["type"] == "action" and r["action"] == "power-cut")
    commune = cut["target"]
    bts = [s.id for s in CONFIG.sites.values() if s.commune == commune and s.kind == "bts"]
    assert len(bts) == 8
    for site in bts:
        [(off, mains_off), (on, mains_on)] = fact_changes(played, site, "mains")
        [(low, low_set), (cleared, low_cleared)] = fact_changes(played, site, "battery_low")
        assert (mains_off, mains_on, low_set, low_cleared) == (False, True, True, False)
        [(empty, back, why)] = spells(played, site)
        assert why == "unpowered"
        assert off < low < empty < on <= back and cleared == on
        assert low - off >= LONG and empty - low >= 5 * 60 and back - empty >= LONG, site


def test_a_fibre_cut_makes_the_commune_gateway_down_and_what_hangs_off_it_unreachable(
    played: list[Record],
) -> None:
    cut = next(r for r in played if r["type"] == "action" and r["action"] == "fibre-cut")
    gateways = [
        s.id for s in CONFIG.sites.values() if s.commune == cut["target"] and s.kind == "gateway"
    ]
    [gateway] = gateways
    [(start, end, why)] = spells(played, gateway)
    assert why == "link" and end - start >= LONG
    behind = [s.id for s in CONFIG.sites.values() if s.parent == gateway]
    assert {CONFIG.sites[s].kind for s in behind} >= {"radio_station", "video_endpoint"}
    for site in behind:
        first = spells(played, site)[0]
        assert first[0] == start and first[2] == f"behind:{gateway}", site


def test_a_site_dying_behind_its_cut_parent_stays_down_after_the_parent_is_back(
    played: list[Record],
) -> None:
    found = []
    for r in played:
        if r["type"] == "serves" and r["why"] == "failed":
            site = CONFIG.sites[r["site"]]
            earlier = [
                x for x in played if x["type"] == "serves" and x["site"] == site.id
                and x["sim"] < r["sim"]
            ]  # fmt: skip
            if earlier and earlier[-1]["why"].startswith("behind:"):
                parent_back = [
                    x["sim"] for x in played
                    if x["type"] == "serves" and x["site"] == site.parent and x["answering"]
                    and x["sim"] > r["sim"]
                ]  # fmt: skip
                [(_, end, _)] = [s for s in spells(played, site.id) if s[0] < r["sim"] < s[1]]
                found.append((site.id, end - parent_back[0]))
    assert found, "no site dies during its parent's outage"
    assert all(still_down >= LONG for _, still_down in found), found


def test_health_faults_are_each_set_and_cleared_after_a_long_while(played: list[Record]) -> None:
    for name, bad in (("amplifier_ok", False), ("transmitter_ok", False), ("door_open", True)):
        changes = [
            (r["sim"], r["site"], r["value"])
            for r in played
            if r["type"] == "condition" and r["name"] == name and r["value"] == bad
        ]
        assert len(changes) == 1, name
        site = changes[0][1]
        [(start, first), (end, second)] = fact_changes(played, site, name)
        assert first == bad and second == (not bad) and end - start >= LONG, name


def test_a_gateway_flaps_and_the_broker_is_lost_then_back(played: list[Record]) -> None:
    flap = next(r for r in played if r["type"] == "action" and r["action"] == "flap")
    drops = spells(played, flap["target"])
    assert len(drops) >= 2 and all(
        why == "link" and end - start >= LONG for start, end, why in drops
    )
    broker = [(r["sim"], r["up"]) for r in played if r["type"] == "broker"][1:]
    [(lost, up_then), (back, up_again)] = broker
    assert (up_then, up_again) == (False, True) and back - lost >= 5 * 60


def test_the_timeline_says_what_happens_when() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "simulate", "-c", str(SHIPPED), "--scenario", str(DAY),
         "--speed", "60", "--timeline", "--start", "1750000000"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    assert lines[0] == "A district day: 18 events over 3h00m00s of simulated time, 3m00s at x60"
    assert lines[1].startswith("  22:06:45  t+   5m00s  down bts-vtl-thanh-nua-03")  # +07:00
    assert "dies alone" in lines[2]
    assert any("t+3h00m00s  restore" in line for line in lines)
