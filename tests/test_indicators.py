"""The infrastructure indicators of the shipped district, from per-site figures the test sets:
what the office files (BTS by operator, communes with fibre, 3G/4G coverage, radio on air,
areas with working loudspeakers, agency LANs online, meeting system, post points) follows
what each site went through, and says which site, commune or area fell short."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from test_objectives import district, problems
from test_report_html import write_ledger

from monitor.cli.main import main
from monitor.config.load import load_config
from monitor.core.availability import Figures
from monitor.report.indicators import Indicator, infrastructure

CONFIG = load_config(Path(__file__).parents[1] / "config", {})
MONTH = 30 * 86400.0


def figures(up: float = 1.0, degraded: float = 0.0, maintenance: float = 0.0) -> Figures:
    """A site's month: shares of the window up, degraded, in maintenance; the rest down."""
    counted = MONTH * (1 - maintenance)
    down = counted - MONTH * (up + degraded)
    available = MONTH * (up + degraded)
    return Figures(
        MONTH, MONTH * up, MONTH * degraded, down, 0.0, MONTH * maintenance, 0.0,
        1 if down else 0, down, available / counted if counted else None, None, None,
    )  # fmt: skip


def everything_up() -> dict[str, Figures]:
    return {site: figures() for site in CONFIG.sites}


def covered() -> set[tuple[str, str]]:
    """The (commune, area) pairs the inventory's clusters name, within their commune's areas."""
    areas = {(c.id, a) for c in CONFIG.communes.values() for a in c.areas}
    return {
        (s.commune, a) for s in CONFIG.sites.values() if s.kind == "loudspeaker" for a in s.covers
    } & areas


def by_key(items: list[Indicator]) -> dict[str, Indicator]:
    return {i.key: i for i in items}


def test_a_month_without_a_fault_meets_every_indicator_over_the_whole_inventory() -> None:
    found = by_key(infrastructure(CONFIG, everything_up()))
    sites = list(CONFIG.sites.values())
    count = {kind: sum(s.kind == kind for s in sites) for kind in ("radio_station", "post_point")}
    assert {k: (i.met, i.of) for k, i in found.items()} == {
        "bts:viettel": (100, 100),
        "bts:vnpt": (70, 70),
        "bts:mobifone": (60, 60),
        "communes_fibre": (25, 25),
        "communes_mobile": (25, 25),
        "radio_on_air": (count["radio_station"], count["radio_station"]),
        # the inventory's clusters cover what they cover, not every area of the district
        "loudspeaker_areas": (len(covered()), sum(len(c.areas) for c in CONFIG.communes.values())),
        "agencies_online": (33, 33),
        "communes_meeting": (25, 25),
        "post_points": (count["post_point"], count["post_point"]),
    }
    assert all(not i.short for k, i in found.items() if k != "loudspeaker_areas")
    uncovered = {(c.id, area) for c in CONFIG.communes.values() for area in c.areas} - covered()
    assert set(found["loudspeaker_areas"].short) == {f"{c}/{a}" for c, a in uncovered}


def test_an_operator_without_a_working_bts_in_a_commune_uncovers_only_that_commune() -> None:
    per_site = everything_up()
    commune = "muong-phang"
    theirs = [
        s.id
        for s in CONFIG.sites.values()
        if s.kind == "bts" and s.owner == "vnpt" and s.commune == commune
    ]
    assert theirs
    for site in theirs:
        per_site[site] = figures(up=0.97)  # 21.6 hours down in the month
    found = by_key(infrastructure(CONFIG, per_site))
    assert (found["bts:vnpt"].met, found["bts:vnpt"].short) == (70 - len(theirs), tuple(theirs))
    assert found["bts:viettel"].met == 100
    assert found["communes_mobile"].short == (commune,)
    assert found["communes_mobile"].met == 24


def test_the_threshold_is_the_configured_share_and_degraded_time_serves() -> None:
    per_site = everything_up()
    site = next(s.id for s in CONFIG.sites.values() if s.kind == "bts")
    per_site[site] = figures(up=0.90, degraded=0.095)  # 99.5 % available, mostly on battery
    assert by_key(infrastructure(CONFIG, per_site, 0.99))["bts:viettel"].short == ()
    assert by_key(infrastructure(CONFIG, per_site, 0.996))["bts:viettel"].short == (site,)


def test_a_radio_station_off_air_is_not_on_air_though_it_answered() -> None:
    per_site = everything_up()
    station = next(s.id for s in CONFIG.sites.values() if s.kind == "radio_station")
    per_site[station] = figures(up=0.5, degraded=0.5)  # transmitter off air half the month
    found = by_key(infrastructure(CONFIG, per_site))
    assert found["radio_on_air"].short == (station,)


def test_a_commune_whose_line_failed_is_cut_and_so_is_its_agency_lan() -> None:
    per_site = everything_up()
    per_site["gw-ubnd-na-u"] = figures(up=0.98)
    found = by_key(infrastructure(CONFIG, per_site))
    assert found["communes_fibre"].short == ("na-u",)
    assert found["agencies_online"].short == ("gw-ubnd-na-u",)
    # the district town's line is its core router: the routers behind it do not enter it
    per_site = everything_up()
    per_site["gw-ubnd-huyen"] = figures(up=0.5)
    assert by_key(infrastructure(CONFIG, per_site))["communes_fibre"].short == ()
    per_site["gw-district-core"] = figures(up=0.5)
    assert by_key(infrastructure(CONFIG, per_site))["communes_fibre"].short == ("thanh-xuong",)


def test_areas_lose_their_loudspeakers_only_when_no_working_cluster_covers_them() -> None:
    clusters = [s for s in CONFIG.sites.values() if s.kind == "loudspeaker"]
    cluster = clusters[0]
    others = {(c.commune, area) for c in clusters if c is not cluster for area in c.covers}
    alone = [a for a in cluster.covers if (cluster.commune, a) not in others]
    per_site = everything_up()
    per_site[cluster.id] = figures(up=0.2)
    before = by_key(infrastructure(CONFIG, everything_up()))["loudspeaker_areas"]
    found = by_key(infrastructure(CONFIG, per_site))["loudspeaker_areas"]
    assert alone
    assert set(found.short) - set(before.short) == {f"{cluster.commune}/{a}" for a in alone}
    assert before.met - found.met == len(alone)


@pytest.mark.parametrize("left_out", ["never watched", "in maintenance throughout"])
def test_a_site_the_period_could_not_count_is_not_vouched_for(left_out: str) -> None:
    per_site = everything_up()
    site = (
        "pbv-thanh-nua"
        if "pbv-thanh-nua" in CONFIG.sites
        else next(s.id for s in CONFIG.sites.values() if s.kind == "post_point")
    )
    if left_out == "never watched":
        del per_site[site]
    else:
        per_site[site] = figures(up=0.0, maintenance=1.0)
    assert by_key(infrastructure(CONFIG, per_site))["post_points"].short == (site,)


def test_the_threshold_is_read_from_the_settings_and_a_percentage_is_refused_at_its_key(
    tmp_path: Path,
) -> None:
    root = district(tmp_path / "a", 9, "indicators: {in_service: 0.995}\n")
    assert load_config(root, {}).in_service == 0.995
    assert load_config(district(tmp_path / "b", 9, ""), {}).in_service == 0.99
    found = problems(district(tmp_path / "c", 9, "indicators: {in_service: 99, share: 1}\n"))
    assert any(
        re.match(r"districtmon\.yaml:\d+: indicators\.in_service: must be a number 0\.\.1", p)
        for p in found
    ), found
    assert any("indicators.share: unknown key" in p for p in found), found


def test_indicators_without_the_configuration_say_what_they_need(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config to fall back on
    ledger = tmp_path / "ledger.sqlite"
    asyncio.run(write_ledger(ledger))
    args = ["report", "--month", "2025-11", "--ledger", str(ledger), "--indicators"]
    assert main(args) != 0
    assert "--indicators needs the configuration (-c DIR)" in capsys.readouterr().err
