"""The shipped device profiles and the simulator speak one MIB.

The daemon, polling the simulated district through the shipped profiles, reads every value each
profile names, for every kind the simulator plays over SNMP. A profile reading an OID the
simulator does not serve shows here as a missing series and a non-zero
`districtmon_device_snmp_values_missing`.

And the simulator's own devices get their own profiles by `profile: auto`: a BTS, a radio
station, a loudspeaker cluster and a gateway of the shipped district, served by
`districtmon simulate` on loopback, are recognised by their sysObjectID (the products arc of
the districtmon MIB, 1.3.6.1.4.1.32473.10.K) and read in base units, checked against the
simulator's own state (its control API), not against what the poller computed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for
from peers import free_udp_port
from simpeers import Simulator, write_district

from monitor.config.load import Config, load_config
from monitor.config.settings import PollSettings
from monitor.core.model import Site, SnmpProbe
from monitor.probes.snmp.engines import create_engine
from monitor.probes.snmp.poller import SnmpPoller

COMMUNES = ["thanh-nua", "muong-nha", "thanh-xuong"]  # BTS, gateways, radio stations of each


def series(text: str) -> set[tuple[str, str]]:
    """(metric name, site) of every sample on /metrics."""
    found = set()
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, labels = line.split("{", 1)
        site = re.search(r'site="([^"]*)"', labels)
        if site:
            found.add((name, site.group(1)))
    return found


def sample_values(text: str) -> dict[tuple[str, str], float]:
    """(metric name, site) -> value of every sample on /metrics with a site label."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        site = re.search(r'site="([^"]*)"', rest)
        if site:
            found[(name, site.group(1))] = float(rest.rsplit(" ", 1)[1])
    return found


def test_every_value_of_the_shipped_profiles_is_answered_by_the_simulator(tmp_path: Path) -> None:
    port, http = free_udp_port(), free_tcp_port()
    settings = f"""
http: {{listen: "127.0.0.1:{http}"}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: 1.0, timeout_seconds: 1.0, retries: 1}}
"""
    # the walk budget (timeout x tries x 3 = 6 s) holds the router's interface, processor
    # and sensor walks of a gateway on a loaded machine, mostly: a poll that is cut short
    # anyway is followed by others, and the test waits for one scrape where all are whole
    config = write_district(
        tmp_path / "config", communes=COMMUNES, kinds=["bts", "gateway", "radio_station"],
        port=port, settings=settings, profiles=True,
    )  # fmt: skip
    loaded = load_config(config, environ={})
    by_profile: dict[str, list[str]] = {}
    for each in loaded.sites.values():
        profile = getattr(each.probe, "profile", None)
        assert profile is not None, each.id
        by_profile.setdefault(profile, []).append(each.id)
    assert set(by_profile) == {"bts-power", "router", "radio-transmitter"}
    with Simulator(config) as sim:
        sim.wait_ready()
        daemon = Daemon(config, http)
        try:

            def all_polled() -> bool:
                try:
                    _, text = daemon.get("/metrics")
                except OSError:
                    return False
                # every poll through a profile names it (a zero count of missing values
                # is not a series)
                info = "districtmon_device_profile_info"
                polled = {site for name, site in series(text) if name == info}
                return polled >= set(loaded.sites)

            wait_for("a profile poll of every site", all_polled, daemon, limit=60)
            exported: dict[str, list[str]] = {}
            for profile_id in by_profile:
                profile = loaded.profiles[profile_id]
                # what the profile exports; a table that may be empty (the processor and
                # sensor tables of the generic router) is one the simulator does not serve
                names = [v.name for v in profile.scalars if v.kind != "text" and v.export]
                names += [
                    c.name
                    for table in profile.tables
                    if not table.may_be_empty
                    for c in table.columns
                    if c.export
                ]
                exported[profile_id] = names
            lacking: list[str] = []

            def every_value_read() -> bool:
                """One scrape in which every site's last poll read all its profile exports."""
                try:
                    _, text = daemon.get("/metrics")
                except OSError:
                    return False
                found = sample_values(text)
                lacking.clear()
                for profile_id, sites in by_profile.items():
                    for site in sites:
                        for count in ("snmp_values_missing", "snmp_values_malformed"):
                            value = found.get((f"districtmon_device_{count}", site))
                            if value is not None:  # absent: none
                                lacking.append(f"{site}: {count} {value}")
                        absent = [
                            n
                            for n in exported[profile_id]
                            if (f"districtmon_device_{n}", site) not in found
                        ]
                        if absent:
                            lacking.append(f"{site} ({profile_id}) lacks {absent}")
                return not lacking

            try:
                wait_for("every value of every site in one scrape", every_value_read, daemon, 60)
            except AssertionError as exc:
                raise AssertionError(f"{lacking[:10]}\n{exc}") from None
            log = daemon.log.read_text()
            assert "not answered" not in log and "malformed" not in log, log[-3000:]
            # what the simulator serves reads as the profile means it
            assert daemon.metric("districtmon_device_door_open", site="bts-vtl-thanh-nua-01") == 0
            sim.ctl("/sites/bts-vtl-thanh-nua-01/door-open")
            wait_for(
                "the open door read through the profile",
                lambda: (
                    daemon.metric("districtmon_device_door_open", site="bts-vtl-thanh-nua-01") == 1
                ),
                daemon,
            )
            on_air = "districtmon_device_transmitter_on_air"
            assert daemon.metric(on_air, site="radio-muong-nha") == 1
            sim.ctl("/sites/radio-muong-nha/transmitter-fault")
            wait_for(
                "the transmitter fault read through the profile",
                lambda: (
                    daemon.metric(on_air, site="radio-muong-nha") == 0
                    and daemon.metric(
                        "districtmon_device_transmitter_fault", site="radio-muong-nha"
                    )
                    == 1
                ),
                daemon,
            )
            assert daemon.stop() == 0
        finally:
            daemon.kill()


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


FAULTS = {  # kind -> (fault, repair, the value it moves: before, during, reason, code)
    "bts": ("door-open", "door-close", "door_open", (0.0, 1.0), "cabinet door open", "door_open"),
    "radio_station": (
        "transmitter-fault",
        "transmitter-restore",
        "transmitter_on_air",
        (1.0, 0.0),
        "transmitter off air",
        "transmitter_off_air",
    ),
    "loudspeaker": (
        "amplifier-fault",
        "amplifier-restore",
        "amplifier_ok",
        (1.0, 0.0),
        "amplifier fault",
        "amplifier_fault",
    ),
}


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_a_fault_the_simulator_plays_is_read_and_degrades_the_site(
    poller: SnmpPoller, district: tuple[Simulator, Config], kind: str
) -> None:
    sim, config = district
    site = first_of(config, kind)
    fault, repair, value, (before, during), reason, code = FAULTS[kind]
    assert (await poller.poll(site)).values[value] == before
    sim.ctl(f"/sites/{site.id}/{fault}")
    try:
        obs = await poller.poll(site)
        assert obs.values[value] == during
        assert obs.degraded_reason is not None and reason in obs.degraded_reason
        assert code in obs.codes
    finally:
        sim.ctl(f"/sites/{site.id}/{repair}")
    assert (await poller.poll(site)).values[value] == before
