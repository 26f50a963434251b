"""`profile: auto`: the poller asks a device what it is and picks the profile that fits, as
LibreNMS recognises a device; the choice is exported as an info series and shown by the JSON
API. Devices are snmpsim-data recordings of real ones, served by snmpsim on loopback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from peers import Snmpsim, free_udp_port, recording
from test_snmp_poller import site

from monitor.config.credentials import Secret, SnmpCredential
from monitor.config.problems import ConfigProblem
from monitor.config.profile_reader import load_profiles
from monitor.config.profiles import Profile
from monitor.config.settings import PollSettings
from monitor.core.model import Sample
from monitor.expose.api import site_record
from monitor.expose.device_metrics import DeviceValueCollector
from monitor.probes.snmp.engines import create_engine
from monitor.probes.snmp.poller import SnmpPoller
from monitor.state.live import Inventory, LiveState

PROFILES = Path(__file__).parents[1] / "config" / "profiles"
#: recording -> (the profile auto must pick, its vendor)
EXPECTED = {
    "UPS/huawei-gse200m.snmprec.bz2": ("huawei-ups", "Huawei"),  # net-snmp sysObjectID
    "UPS/eastpower-istars-swv053.snmprec.bz2": ("ups-mib", "generic"),
    "os/linux/slackware.snmprec.bz2": ("linux-host", "net-snmp"),
    "network/router/cisco-unmarked-0.snmprec.bz2": ("router", "generic"),  # the catch-all
    "network/appliance/huawei-ism.snmprec.bz2": ("system", ""),  # a storage array: no match
}
COMMUNITY = {path: f"c{number}" for number, path in enumerate(EXPECTED)}


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    problems: list[ConfigProblem] = []
    found = load_profiles(PROFILES, problems)
    assert not problems
    return found


@pytest.fixture(scope="module")
def sim() -> Iterator[Snmpsim]:
    sources: dict[str, str | Path] = {COMMUNITY[p]: recording(p) for p in EXPECTED}
    with Snmpsim(sources, probe_oid="1.3.6.1.2.1.1.2.0") as agent:
        agent.start(timeout=60)
        yield agent


@pytest.fixture
async def poller(profiles: dict[str, Profile]) -> AsyncIterator[SnmpPoller]:
    engine = create_engine("gufo")
    credentials = {c: SnmpCredential(c, "2c", Secret(c)) for c in COMMUNITY.values()}
    yield SnmpPoller(engine, PollSettings(timeout_seconds=2.0, retries=0), credentials, profiles)
    await engine.close()


@pytest.mark.parametrize("path", list(EXPECTED))
async def test_auto_picks_the_profile_that_fits_the_device(
    poller: SnmpPoller, sim: Snmpsim, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    profile, vendor = EXPECTED[path]
    where = site(sim.port, COMMUNITY[path], "auto")
    obs = await poller.poll(where)
    assert obs.ok, obs.error
    assert poller.profile_of(where).id == profile
    assert (obs.values["device_profile"], obs.values["device_vendor"]) == (profile, vendor)
    info = [s for s in obs.samples if s.name == "profile_info"]
    labels = (("chosen", "auto"), ("profile", profile), ("vendor", vendor))
    assert info == [Sample("profile_info", labels, 1.0)]
    assert f"site={where.id} profile auto: {profile} (" in caplog.text
    # the profile's own values were read at the same poll, not one poll later
    if profile == "huawei-ups":
        assert obs.values["battery_volts"] == 538.5
    # a second poll keeps the choice without asking again
    caplog.clear()
    assert (await poller.poll(where)).values["device_profile"] == profile
    assert "profile auto" not in caplog.text


async def test_the_detected_profile_is_an_info_series_and_in_the_api(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    where = site(sim.port, COMMUNITY["UPS/huawei-gse200m.snmprec.bz2"], "auto")
    live = LiveState({where.id: where})
    live.apply_observation(await poller.poll(where))
    families = {f.name: f for f in DeviceValueCollector(live).collect()}
    family = families["districtmon_device_profile_info"]
    assert family.documentation.startswith("The SNMP profile of the last poll")
    (sample,) = family.samples
    assert sample.value == 1.0
    assert {k: sample.labels[k] for k in ("site", "chosen", "profile", "vendor")} == {
        "site": where.id,
        "chosen": "auto",
        "profile": "huawei-ups",
        "vendor": "Huawei",
    }
    record = site_record(where, live.views[where.id], Inventory())
    assert (record["profile"], record["vendor"]) == ("huawei-ups", "Huawei")


async def test_a_named_profile_is_reported_as_chosen_by_name(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    obs = await poller.poll(site(sim.port, COMMUNITY["os/linux/slackware.snmprec.bz2"], "router"))
    info = [s for s in obs.samples if s.name == "profile_info"]
    assert info == [
        Sample(
            "profile_info", (("chosen", "named"), ("profile", "router"), ("vendor", "generic")), 1.0
        )
    ]


async def test_a_device_that_reboots_as_another_is_detected_again(
    poller: SnmpPoller, caplog: pytest.LogCaptureFixture
) -> None:
    # The same address and community answer first as the Huawei UPS (uptime 231 days),
    # then, after a restart, as the Slackware host (uptime 27 days): sysUpTime went back.
    caplog.set_level(logging.INFO)
    port = free_udp_port()
    community = COMMUNITY["UPS/huawei-gse200m.snmprec.bz2"]
    where = site(port, community, "auto")
    with Snmpsim({community: recording("UPS/huawei-gse200m.snmprec.bz2")}, ports=[port]) as ups:
        ups.start(timeout=60)
        assert (await poller.poll(where)).values["device_profile"] == "huawei-ups"
    with Snmpsim({community: recording("os/linux/slackware.snmprec.bz2")}, ports=[port]) as host:
        host.start(timeout=60)
        rebooted = await poller.poll(where)  # sees the reboot: detects again at the next poll
        assert rebooted.values["reboots_total"] == 1.0
        assert (await poller.poll(where)).values["device_profile"] == "linux-host"
    assert f"site={where.id} profile auto: linux-host (" in caplog.text
