"""The profile-driven poller against real agents: snmpsim replaying our BTS power system and
radio transmitter recordings (tests/data) and snmpsim-data's Eaton UPS and Cisco router, and
net-snmp snmpd as a Linux host. Values, scales, labels, counters, health rules and degraded
reasons are checked; so are agents that lie, stall, answer garbage or never answer. Every test
runs once per engine."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import pytest
from peers import LOCALHOST, ROUTER_RECORDING, Snmpd, Snmpsim, free_udp_port, recording

from monitor.config.credentials import Secret, SnmpCredential
from monitor.config.problems import ConfigProblem
from monitor.config.profile_reader import load_profiles
from monitor.config.profiles import Profile
from monitor.config.settings import SNMP_ENGINES as ENGINES
from monitor.config.settings import PollSettings
from monitor.core.model import Observation, Site, SnmpProbe
from monitor.probes.snmp.engines import create_engine
from monitor.probes.snmp.poller import SnmpPoller

DATA = Path(__file__).parent / "data"
PROFILES = Path(__file__).parents[1] / "config" / "profiles"
OURS = [
    "bts-power-normal",
    "bts-power-on-battery",
    "bts-power-depleted",
    "bts-power-broken",
    "radio-transmitter-on-air",
    "radio-transmitter-fault",
    "router-wan-down",
]
EATON = "UPS/eaton-93e-80.snmprec.bz2"


def huge_interface_table(path: Path, rows: int) -> Path:
    """An agent with `rows` interfaces: a hostile or just enormous device."""
    lines = [
        "1.3.6.1.2.1.1.3.0|67|100",
        "1.3.6.1.2.1.1.5.0|4|huge",
        f"1.3.6.1.2.1.2.1.0|2|{rows}",
    ]
    for column, tag, value in ((2, "4", "port"), (7, "2", "1"), (8, "2", "1")):
        for index in range(1, rows + 1):
            shown = f"{value}{index}" if tag == "4" else value
            lines.append(f"1.3.6.1.2.1.2.2.1.{column}.{index}|{tag}|{shown}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    problems: list[ConfigProblem] = []
    found = load_profiles(PROFILES, problems)
    assert not problems
    return found


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpsim]:
    recordings: dict[str, str | Path] = {name: DATA / f"{name}.snmprec" for name in OURS}
    recordings["eaton"] = recording(EATON)
    recordings["cisco"] = recording(ROUTER_RECORDING)
    recordings["huge"] = huge_interface_table(tmp_path_factory.mktemp("huge") / "h.snmprec", 3000)
    with Snmpsim(recordings, probe_oid="1.3.6.1.2.1.1.5.0") as agent:
        agent.start()
        yield agent


@pytest.fixture(scope="module")
def host() -> Iterator[Snmpd]:
    with Snmpd(community="host-test", extra_config="includeAllDisks 10%") as agent:
        agent.start()
        yield agent


@pytest.fixture(params=ENGINES)
async def poller(
    request: pytest.FixtureRequest, profiles: dict[str, Profile]
) -> AsyncIterator[SnmpPoller]:
    engine = create_engine(request.param)
    credentials = {
        name: SnmpCredential(name, "2c", Secret(name))
        for name in [*OURS, "eaton", "cisco", "huge", "host-test"]
    }
    credentials["v3"] = SnmpCredential(
        "v3",
        "3",
        user="districtmon",
        auth_protocol="SHA",
        auth_key=Secret("districtmon-auth"),
        priv_protocol="AES",
        priv_key=Secret("districtmon-priv"),
    )
    yield SnmpPoller(engine, PollSettings(timeout_seconds=1.0, retries=0), credentials, profiles)
    await engine.close()


def site(
    port: int,
    credential: str,
    profile: str | None,
    *,
    timeout_seconds: float | None = None,
    retries: int | None = None,
) -> Site:
    return Site(
        f"site-{credential}",
        "bts",
        "Site",
        "thanh-nua",
        "viettel",
        21.4,
        103.0,
        SnmpProbe(
            LOCALHOST,
            port,
            credential,
            timeout_seconds=timeout_seconds,
            retries=retries,
            profile=profile,
        ),
    )


async def poll(poller: SnmpPoller, sim: Snmpsim, name: str, profile: str | None) -> Observation:
    return await poller.poll(site(sim.port, name, profile))


def samples(obs: Observation, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {s.labels: s.value for s in obs.samples if s.name == name}


def number(obs: Observation, name: str) -> float:
    """An unlabelled value the test expects to be a number, not text."""
    value = obs.values[name]
    assert isinstance(value, int | float), f"{name} is {value!r}"
    return value


async def test_healthy_bts_power_system_reads_in_base_units_and_is_not_degraded(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    obs = await poll(poller, sim, "bts-power-normal", "bts-power")
    assert obs.ok and obs.degraded_reason is None
    v = obs.values
    assert v["battery_volts"] == 53.5  # upsBatteryVoltage 535 in 0.1 V
    assert v["battery_remaining_seconds"] == 240 * 60
    assert v["battery_charge_ratio"] == 1.0
    assert v["mains_ok"] == 1.0 and v["door_open"] == 0.0
    assert v["cabinet_temperature_celsius"] == 31.2
    assert v["uptime_seconds"] == 86400.0 and v["sys_name"] == "bts-power-sim"
    assert (v["snmp_values_missing"], v["snmp_values_malformed"]) == (0.0, 0.0)
    assert samples(obs, "input_volts") == {(("line", "1"),): 228.0}
    assert samples(obs, "input_frequency_hertz") == {(("line", "1"),): 50.0}


async def test_bts_on_battery_with_door_open_and_hot_cabinet_is_degraded_with_each_reason(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    obs = await poll(poller, sim, "bts-power-on-battery", "bts-power")
    assert obs.ok
    assert obs.degraded_reason == (
        "running on battery (mains failure); cabinet at 46.8 °C, above 45 °C; cabinet door open"
    )
    assert obs.codes == ("on_battery", "cabinet_hot", "door_open")  # one per rule, for labels
    assert obs.values["mains_ok"] == 0.0 and obs.values["on_battery_seconds"] == 840.0
    assert obs.values["battery_amperes"] == -21.5


async def test_depleted_battery_trips_the_voltage_threshold(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    obs = await poll(poller, sim, "bts-power-depleted", "bts-power")
    assert obs.degraded_reason is not None
    assert "battery low or depleted" in obs.degraded_reason
    assert "battery at 45.8 V, below 47 V" in obs.degraded_reason
    assert obs.codes == ("on_battery", "battery_low")  # two rules, one meaning: one code


async def test_wrong_types_and_missing_values_are_counted_per_value_not_a_failed_poll(
    poller: SnmpPoller, sim: Snmpsim, caplog: pytest.LogCaptureFixture
) -> None:
    obs = await poll(poller, sim, "bts-power-broken", "bts-power")
    assert obs.ok and obs.error is None
    assert "battery_volts" not in obs.values  # sent as text "fifty-three"
    assert "mains_ok" not in obs.values  # an OID where an enumeration belongs
    assert "cabinet_temperature_celsius" not in obs.values  # binary junk
    assert "on_battery_seconds" not in obs.values  # noSuchObject
    assert obs.values["snmp_values_missing"] == 1.0
    assert obs.values["snmp_values_malformed"] == 3.0
    assert obs.values["battery_charge_ratio"] == 1.0  # the rest is read as usual
    assert "site=site-bts-power-broken SNMP values: not answered: on_battery_seconds" in caplog.text
    assert "battery_volts: not a number (text)" in caplog.text
    # the same problems on the next poll are not logged again
    caplog.clear()
    await poll(poller, sim, "bts-power-broken", "bts-power")
    assert "SNMP values" not in caplog.text


async def test_a_recording_of_a_real_ups_reads_what_it_has_and_reports_the_rest_missing(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    obs = await poll(poller, sim, "eaton", "bts-power")
    assert obs.ok and obs.degraded_reason is None
    assert obs.values["battery_volts"] == 521.0  # a 93E's 520 V battery bus
    assert obs.values["mains_ok"] == 1.0
    assert obs.values["snmp_values_missing"] == 4.0  # no cabinet sensors on an Eaton 93E
    assert samples(obs, "input_volts") == {
        (("line", "1"),): 227.0,
        (("line", "2"),): 227.0,
        (("line", "3"),): 233.0,
    }


async def test_radio_transmitter_on_air_and_in_fault(poller: SnmpPoller, sim: Snmpsim) -> None:
    ok = await poll(poller, sim, "radio-transmitter-on-air", "radio-transmitter")
    assert ok.degraded_reason is None
    assert ok.values["transmitter_forward_power_watts"] == 300.0
    assert ok.values["transmitter_frequency_hertz"] == 98_500_000.0
    fault = await poll(poller, sim, "radio-transmitter-fault", "radio-transmitter")
    assert fault.degraded_reason == (
        "transmitter off air; transmitter fault: PA over-temperature shutdown; "
        "encoder has no programme audio"
    )
    assert fault.codes == ("transmitter_off_air", "transmitter_fault", "audio_lost")


async def test_router_interfaces_are_labelled_rows_and_missing_hc_counters_do_not_fail(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    obs = await poll(poller, sim, "cisco", "router")
    assert obs.ok
    oper = samples(obs, "if_oper_up")
    assert len(oper) == 27  # 28 interfaces, Null0 ("Nu0") excluded by the profile
    assert all(set(dict(labels)) == {"if", "alias"} for labels in oper)
    fa01 = (("alias", "xianlian-31.25-E126A_g1/2/1"), ("if", "Fa0/1"))  # ifName, ifAlias
    assert oper[fa01] == 1.0
    assert samples(obs, "if_speed_bits_per_second")[fa01] == 100_000_000.0
    assert len(samples(obs, "if_in_errors_total")) == 27  # ifInErrors on every row
    # the recording has 64-bit counters for Vlan1 only: the others are simply absent
    vlan1 = (("alias", ""), ("if", "Vl1"))
    assert samples(obs, "if_in_octets_total") == {vlan1: 535755000.0}
    assert samples(obs, "if_out_octets_total") == {vlan1: 699900191.0}
    assert obs.values["interfaces"] == 28.0 and obs.degraded_reason is None


async def test_an_enabled_wan_port_that_is_down_degrades_the_gateway_by_name(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    obs = await poll(poller, sim, "router-wan-down", "router")
    assert obs.ok
    # Gi0/2 is down too, but administratively: not a fault; Gi0/1 is the LAN
    assert obs.degraded_reason == "WAN interface Gi0/0 down"
    assert obs.codes == ("wan_down",)
    wan = (("alias", "WAN uplink VNPT"), ("if", "Gi0/0"))
    # near 2^64: a float64 on /metrics, as Prometheus holds every sample
    assert samples(obs, "if_in_octets_total")[wan] == float(18446744073709551000)
    assert samples(obs, "if_in_errors_total")[wan] == 17


async def test_linux_host_profile_against_snmpd(poller: SnmpPoller, host: Snmpd) -> None:
    obs = await poller.poll(site(host.port, "host-test", "linux-host"))
    assert obs.ok
    assert number(obs, "memory_total_bytes") > number(obs, "memory_available_bytes") > 0
    assert number(obs, "processes") > 1
    disks = samples(obs, "disk_total_bytes")
    assert (("path", "/"),) in disks and disks[(("path", "/"),)] > 0
    assert all(dict(labels)["if"] != "lo" for labels in samples(obs, "if_oper_up"))


async def test_snmpv3_authpriv_poll_through_a_profile(poller: SnmpPoller, host: Snmpd) -> None:
    obs = await poller.poll(site(host.port, "v3", "linux-host"))
    assert obs.ok, obs.error
    assert obs.values["sys_name"] == host.sys_name and number(obs, "memory_total_bytes") > 0


async def test_a_site_without_profile_gets_uptime_and_name_only(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    obs = await poll(poller, sim, "bts-power-normal", None)
    assert obs.ok and not obs.samples
    assert set(obs.values) == {"uptime_seconds", "reboots_total", "sys_name"}


async def test_a_huge_table_is_cut_at_max_rows_and_the_poll_still_answers(
    poller: SnmpPoller, sim: Snmpsim, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    obs = await poller.poll(site(sim.port, "huge", "router", timeout_seconds=3.0))
    assert obs.ok
    assert len(samples(obs, "if_oper_up")) == 1024  # the router profile's max_rows
    assert "table interfaces: more than 1024 rows" in caplog.text
    assert time.monotonic() - started < 30


async def test_a_dead_agent_fails_the_poll_with_timeout_in_bounded_time(
    poller: SnmpPoller,
) -> None:
    started = time.monotonic()
    obs = await poller.poll(site(free_udp_port(), "bts-power-normal", "bts-power", retries=1))
    assert not obs.ok and obs.error_reason == "timeout"
    assert time.monotonic() - started < 3.0  # 2 attempts x 1 s


class _SlowRelay(asyncio.DatagramProtocol):
    """A real agent behind a slow link: every datagram is delayed `delay` seconds each way."""

    def __init__(self, agent: tuple[str, int], delay: float) -> None:
        self.agent = agent
        self.delay = delay
        self.clients: dict[int, tuple[str, int]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.upstream: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a datagram endpoint's transport, though on Python 3.11 its class does not derive
        # from DatagramTransport: an isinstance check would refuse it
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        self.client = addr
        assert self.upstream is not None
        loop.call_later(self.delay, self.upstream.sendto, data, self.agent)

    def back(self, data: bytes) -> None:
        assert self.transport is not None
        asyncio.get_running_loop().call_later(self.delay, self.transport.sendto, data, self.client)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: _SlowRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.back(data)


@contextlib.asynccontextmanager
async def slow_agent(agent_port: int, delay: float) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    relay = _SlowRelay((LOCALHOST, agent_port), delay)
    front, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=(LOCALHOST, 0))
    back, _ = await loop.create_datagram_endpoint(
        lambda: _Upstream(relay), local_addr=(LOCALHOST, 0)
    )
    relay.upstream = back
    try:
        yield front.get_extra_info("sockname")[1]
    finally:
        front.close()
        back.close()


async def test_a_slow_agent_within_the_timeout_answers_and_one_beyond_it_times_out(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    async with slow_agent(sim.port, 0.1) as port:
        obs = await poller.poll(site(port, "radio-transmitter-on-air", "radio-transmitter"))
        assert obs.ok and obs.duration >= 0.2
    async with slow_agent(sim.port, 0.4) as port:
        obs = await poller.poll(
            site(port, "radio-transmitter-on-air", "radio-transmitter", timeout_seconds=0.5)
        )
        assert not obs.ok and obs.error_reason == "timeout"


async def test_walks_that_outrun_their_budget_keep_the_get_and_say_tables_are_incomplete(
    poller: SnmpPoller, sim: Snmpsim, caplog: pytest.LogCaptureFixture
) -> None:
    # 0.15 s each way, a 0.4 s timeout: each bulk page takes 0.3 s, the budget is 1.2 s,
    # and 3000 interfaces need far more pages than that.
    async with slow_agent(sim.port, 0.15) as port:
        started = time.monotonic()
        obs = await poller.poll(site(port, "huge", "router", timeout_seconds=0.4))
    assert obs.ok and obs.values["interfaces"] == 3000.0
    assert time.monotonic() - started < 3.0
    assert "tables incomplete" in caplog.text


async def test_an_agent_answering_garbage_fails_the_poll_without_raising(
    poller: SnmpPoller,
) -> None:
    garbage = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    garbage.bind((LOCALHOST, 0))
    garbage.setblocking(False)
    loop = asyncio.get_running_loop()

    def answer() -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                _data, addr = garbage.recvfrom(65535)
                garbage.sendto(b"\x30\x03\x02\x01\xff" + b"\x00" * 40, addr)

    loop.add_reader(garbage.fileno(), answer)
    try:
        obs = await poller.poll(
            site(garbage.getsockname()[1], "bts-power-normal", "bts-power", timeout_seconds=0.3)
        )
    finally:
        loop.remove_reader(garbage.fileno())
        garbage.close()
    assert not obs.ok
    assert obs.error_reason in ("malformed", "timeout")
