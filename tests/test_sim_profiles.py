"""The simulator's own devices get their own profiles by `profile: auto`: a BTS, a radio
station, a loudspeaker cluster and a gateway of the shipped district, served by
`districtmon simulate` on loopback, are recognised by their sysObjectID (the simulator's
products arc, 1.3.6.1.4.1.32473.1.9.K) and read in base units, checked against the
simulator's own state (its control API), not against what the poller computed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from peers import free_udp_port
from simpeers import Simulator, write_district

from monitor.config.load import Config, load_config
from monitor.config.settings import PollSettings
from monitor.core.model import Site, SnmpProbe
from monitor.probes.snmp.engines import create_engine
from monitor.probes.snmp.poller import SnmpPoller

KINDS = {
    "bts": "sim-bts",
    "radio_station": "sim-radio",
    "loudspeaker": "sim-loudspeaker",
    "gateway": "sim-gateway",
}


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, Config]]:
    root = write_district(tmp_path_factory.mktemp("district") / "config", port=free_udp_port())
    (root / "profiles").symlink_to(Path(__file__).parents[1] / "config" / "profiles")
    with Simulator(root) as sim:
        sim.wait_ready()
        yield sim, load_config(root, {})


def first_of(config: Config, kind: str) -> Site:
    site = next(s for s in config.sites.values() if s.kind == kind)
    assert isinstance(site.probe, SnmpProbe)
    return replace(site, probe=replace(site.probe, profile="auto"))


@pytest.fixture
async def poller(district: tuple[Simulator, Config]) -> AsyncIterator[SnmpPoller]:
    config = district[1]
    engine = create_engine("gufo")
    settings = PollSettings(timeout_seconds=2.0, retries=1)
    yield SnmpPoller(engine, settings, config.credentials, config.profiles)
    await engine.close()


@pytest.mark.parametrize("kind", list(KINDS))
async def test_each_simulated_kind_gets_its_profile(
    poller: SnmpPoller, district: tuple[Simulator, Config], kind: str
) -> None:
    sim, config = district
    site = first_of(config, kind)
    obs = await poller.poll(site)
    assert obs.ok, obs.error
    assert obs.values["device_profile"] == KINDS[kind]
    assert obs.values["device_vendor"] == "districtmon-sim"
    assert obs.values["snmp_values_missing"] == 0.0 and obs.values["snmp_values_malformed"] == 0
    truth = sim.state(site.id)
    v = {name: value for name, value in obs.values.items() if isinstance(value, float)}
    if kind == "bts":
        assert abs(v["battery_charge_ratio"] - truth["battery_charge"]) <= 0.01
        assert 44.0 <= v["battery_volts"] <= 56.0  # a 48 V string (0.1 V units)
        assert 10.0 <= v["cabinet_temperature_celsius"] <= 45.0
        assert obs.values["door_open"] == 0.0 and obs.values["mains_ok"] == 1.0
    elif kind == "radio_station":
        assert obs.values["transmitter_on_air"] == 1.0
        assert 96e6 <= v["transmitter_frequency_hertz"] <= 107.9e6
    elif kind == "loudspeaker":
        assert obs.values["amplifier_ok"] == 1.0
        assert 11.0 <= v["battery_volts"] <= 14.0  # a 12 V battery (0.1 V units)
        assert 0.0 <= v["volume_ratio"] <= 1.0
    else:
        names = {dict(s.labels)["if"] for s in obs.samples if s.name == "if_oper_up"}
        assert {"wan0", "lan0"} <= names and "lo0" not in names


FAULTS = {  # kind -> (fault, repair, the value it moves: before, during)
    "bts": ("door-open", "door-close", "door_open", (0.0, 1.0), "cabinet door open"),
    "radio_station": (
        "transmitter-fault",
        "transmitter-restore",
        "transmitter_on_air",
        (1.0, 0.0),
        "transmitter off air",
    ),
    "loudspeaker": (
        "amplifier-fault",
        "amplifier-restore",
        "amplifier_ok",
        (1.0, 0.0),
        "amplifier fault",
    ),
}


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_a_fault_the_simulator_plays_is_read_and_degrades_the_site(
    poller: SnmpPoller, district: tuple[Simulator, Config], kind: str
) -> None:
    sim, config = district
    site = first_of(config, kind)
    fault, repair, value, (before, during), reason = FAULTS[kind]
    assert (await poller.poll(site)).values[value] == before
    sim.ctl(f"/sites/{site.id}/{fault}")
    try:
        obs = await poller.poll(site)
        assert obs.values[value] == during
        assert obs.degraded_reason is not None and reason in obs.degraded_reason
    finally:
        sim.ctl(f"/sites/{site.id}/{repair}")
    assert (await poller.poll(site)).values[value] == before
