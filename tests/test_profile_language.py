"""What the profile language does for real devices, read from snmpsim-data recordings of them
served by snmpsim on loopback: values the device marks "not available", fallbacks between
OIDs, derived values, profiles that extend a base one, exact scaling, exclude patterns that
match whole names, and what a poll says when its walks run out of time. Each test reads the
figure a person would check on the device itself (the recording's raw value, by hand)."""

from __future__ import annotations

import bz2
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from peers import Snmpsim, recording
from test_snmp_poller import huge_interface_table, samples, site, slow_agent

from monitor.config.credentials import Secret, SnmpCredential
from monitor.config.problems import ConfigProblem
from monitor.config.profile_reader import load_profiles
from monitor.config.profiles import Profile
from monitor.config.settings import SNMP_ENGINES, PollSettings
from monitor.core.model import Observation
from monitor.probes.snmp.engine import SnmpEngine, SnmpTarget, SnmpValue, WalkResult
from monitor.probes.snmp.engines import create_engine
from monitor.probes.snmp.poller import SnmpPoller

PROFILES = Path(__file__).parents[1] / "config" / "profiles"
RECORDINGS = {
    "ups5000": "UPS/huawei-gse200m.snmprec.bz2",  # Huawei UPS5000, GSE200M card
    "zte5250": "network/switch/zte-zxr10-5250.snmprec.bz2",  # no ifXTable at all
    "s5720": "network/router/huawei-s5720.snmprec.bz2",  # InLoopBack0, NULL0
    "slackware": "os/linux/slackware.snmprec.bz2",  # memAvailReal without buffers/cache
    "cisco": "network/router/cisco-unmarked-0.snmprec.bz2",  # has ifHighSpeed
    "arista": "cloud/arista-dcs-7150s-52-cl.snmprec.bz2",  # ENTITY-SENSOR-MIB, 95 sensors
}


@dataclass
class CountingEngine:
    """A real engine that notes which columns it was asked to walk."""

    inner: SnmpEngine
    walked: list[str] = field(default_factory=list)
    name: str = "counting"

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpValue]:
        return await self.inner.get(target, oids)

    async def walk(self, target: SnmpTarget, oid: str, max_rows: int) -> WalkResult:
        self.walked.append(oid)
        return await self.inner.walk(target, oid, max_rows)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    problems: list[ConfigProblem] = []
    found = load_profiles(PROFILES, problems)
    assert not problems
    return found


def without_subtrees(source: Path, prefixes: Sequence[str], out: Path) -> Path:
    """The recording ``source`` less the subtrees ``prefixes``, written to ``out``.

    The ZTE switch's recording holds 390,000 OIDs, nearly all of its private MIB and its
    VLAN tables, which no profile reads; snmpsim answers a walk of its ports from the whole
    file slowly enough that a loaded machine spends a poll's time budget. Its ports, as
    recorded, are what the test reads, so only what it never asks for is left out."""
    kept = [
        line
        for line in bz2.decompress(source.read_bytes()).decode().splitlines(keepends=True)
        if not line.startswith(tuple(f"{prefix}." for prefix in prefixes))
    ]
    out.write_text("".join(kept))
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpsim]:
    sources: dict[str, str | Path] = {name: recording(path) for name, path in RECORDINGS.items()}
    sources["zte5250"] = without_subtrees(
        recording(RECORDINGS["zte5250"]),
        ["1.3.6.1.4.1.3902.15", "1.3.6.1.2.1.17.7"],  # ZTE private MIB, Q-BRIDGE VLANs
        tmp_path_factory.mktemp("zte") / "zte5250.snmprec",
    )
    sources["huge"] = huge_interface_table(tmp_path_factory.mktemp("huge") / "h.snmprec", 3000)
    with Snmpsim(sources, probe_oid="1.3.6.1.2.1.1.3.0") as agent:
        agent.start(timeout=60)
        yield agent


@pytest.fixture(params=SNMP_ENGINES)
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[CountingEngine]:
    counting = CountingEngine(create_engine(request.param))
    yield counting
    await counting.close()


@pytest.fixture
def poller(engine: CountingEngine, profiles: dict[str, Profile]) -> SnmpPoller:
    credentials = {name: SnmpCredential(name, "2c", Secret(name)) for name in [*RECORDINGS, "huge"]}
    return SnmpPoller(engine, PollSettings(timeout_seconds=2.0, retries=0), credentials, profiles)


async def poll(poller: SnmpPoller, sim: Snmpsim, name: str, profile: str) -> Observation:
    obs = await poller.poll(site(sim.port, name, profile))
    assert obs.ok, obs.error
    return obs


async def test_values_a_ups_marks_not_available_are_left_out_and_said_so(
    poller: SnmpPoller, sim: Snmpsim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    obs = await poll(poller, sim, "ups5000", "ups-mib")
    # upsEstimatedMinutesRemaining, upsEstimatedChargeRemaining and upsBatteryTemperature
    # are -1 in the recording: not -60 s, -0.01 and -1 degC
    unavailable = {"battery_remaining_seconds", "battery_charge_ratio"}
    assert not (unavailable | {"battery_temperature_celsius"}) & set(obs.values)
    assert obs.values["battery_volts"] == 538.5  # upsBatteryVoltage 5385
    assert (
        "device says not available: battery_remaining_seconds, battery_charge_ratio, "
        "battery_temperature_celsius" in caplog.text
    )
    # the three, and upsInputLineBads, which the card lacks; no alarm rows is no problem
    assert "not answered: input_line_bads_total;" in caplog.text
    assert obs.values["snmp_values_missing"] == 4.0
    assert obs.degraded_reason is None


async def test_a_profile_extending_ups_mib_reads_huawei_units_and_keeps_the_rest(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    generic = await poll(poller, sim, "ups5000", "ups-mib")
    assert samples(generic, "input_volts") == {(("line", "1"),): 2369.0}  # the RFC's reading
    obs = await poll(poller, sim, "ups5000", "huawei-ups")
    one = (("line", "1"),)
    assert samples(obs, "input_volts") == {one: 236.9}  # 2369 in 0.1 V
    assert samples(obs, "input_frequency_hertz") == {one: 50.0}  # 5000 in 0.01 Hz
    assert samples(obs, "output_volts") == {one: 219.9}
    assert samples(obs, "bypass_volts") == {one: 235.8}
    assert obs.values["output_frequency_hertz"] == 49.99
    # inherited untouched: the output load (8 %), the sentinels, the health rules
    assert samples(obs, "output_load_ratio") == {one: 0.08}
    assert "battery_charge_ratio" not in obs.values and obs.values["mains_ok"] == 1.0


async def test_a_switch_without_ifhighspeed_gets_its_speed_from_ifspeed(
    poller: SnmpPoller, engine: CountingEngine, sim: Snmpsim
) -> None:
    obs = await poller.poll(site(sim.port, "zte5250", "router"))
    assert obs.ok, obs.error
    speeds = samples(obs, "if_speed_bits_per_second")
    assert len(speeds) == len(samples(obs, "if_oper_up")) >= 52  # every port has its speed
    first = next(labels for labels in speeds if dict(labels)["if"] == "1/1")
    assert speeds[first] == 100_000_000.0  # ifSpeed.1 100000000
    assert "1.3.6.1.2.1.2.2.1.5" in engine.walked
    # where ifHighSpeed answers on every row, ifSpeed is not walked at all
    engine.walked.clear()
    cisco = await poll(poller, sim, "cisco", "router")
    assert len(samples(cisco, "if_speed_bits_per_second")) == 27
    assert "1.3.6.1.2.1.2.2.1.5" not in engine.walked


async def test_loopback_and_null_interfaces_are_excluded_by_their_whole_name(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    obs = await poll(poller, sim, "s5720", "router")
    names = {dict(labels)["if"] for labels in samples(obs, "if_oper_up")}
    assert not names & {"InLoopBack0", "NULL0"}
    # a name that only contains a pattern's letters is kept: the whole name must match
    assert {"MEth0/0/1", "Vlanif1", "GigabitEthernet0/0/1"} <= names


async def test_memory_available_counts_buffers_and_cache_and_a_full_disk_is_seen(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    obs = await poll(poller, sim, "slackware", "linux-host")
    # memAvailReal 63676 kB (62 MiB: "memory low" below 64 MiB), memBuffer 23936 kB,
    # memCached 207212 kB: 288 MiB are there for programs
    assert obs.values["memory_free_bytes"] == 63676 * 1024
    assert obs.values["memory_available_bytes"] == (63676 + 23936 + 207212) * 1024
    assert obs.degraded_reason is not None and "memory low" not in obs.degraded_reason
    # hrStorageTable: file systems only, in bytes; /export is 94.2 % full
    total = samples(obs, "storage_total_bytes")
    assert total == {
        (("path", "/"),): 2164327 * 4096,
        (("path", "/usr/local"),): 16822765 * 4096,
        (("path", "/export"),): 96144541 * 4096,
    }
    used = samples(obs, "storage_used_ratio")[(("path", "/export"),)]
    assert used == 90601816 / 96144541
    assert obs.degraded_reason == "file system /export is 0.94235 used, over 0.9"
    assert not samples(obs, "storage_unit_bytes")  # read to derive, not exported
    assert "storage_size_units" not in obs.values


async def test_walks_out_of_time_say_which_columns_were_not_walked(
    poller: SnmpPoller, sim: Snmpsim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with slow_agent(sim.port, 0.15) as port:
        obs = await poller.poll(site(port, "huge", "router", timeout_seconds=0.8))
    assert obs.ok, obs.error
    line = next(r.getMessage() for r in caplog.records if "SNMP values" in r.getMessage())
    assert "not walked (time budget spent): " in line
    assert "tables incomplete" in line
    # the columns the walk never reached are not claimed absent from the device
    not_answered = line.split("not answered: ")[1].split(";")[0] if "not answered" in line else ""
    assert "if_out_errors_total" not in not_answered
    assert "if_out_errors_total" in line.split("not walked (time budget spent): ")[1]


async def test_entity_sensors_are_read_by_kind_scale_and_precision_and_only_when_working(
    poller: SnmpPoller, sim: Snmpsim
) -> None:
    # 52 ports and 95 sensors: walks of a few seconds, more with the pure-Python engine
    obs = await poller.poll(site(sim.port, "arista", "router", timeout_seconds=6.0))
    assert obs.ok, obs.error
    celsius = samples(obs, "sensor_celsius")
    # "Cpu temp sensor": celsius(8), units(9), precision 1, value 282
    assert celsius[(("sensor", "Cpu temp sensor"),)] == 28.2
    # "DOM TX Bias Sensor for Ethernet5": amperes(5), milli(8), precision 2, value 509
    amperes = samples(obs, "sensor_amperes")
    assert amperes[(("sensor", "DOM TX Bias Sensor for Ethernet5"),)] == 0.00509
    assert len(celsius) == 17 and len(samples(obs, "sensor_ok")) == 95  # one series per row
    # two boards share a name: each row keeps its own series, told apart by its index
    assert celsius[(("sensor", "Board temp sensor (100006003)"),)] == 23.0
    # six sensors are not operational (a fan tray not fitted reads 0 rpm): no reading
    fans = samples(obs, "sensor_fan_rpm")
    assert (("sensor", "Fan Tray 1 Fan 1 Sensor 1"),) not in fans
    assert sum(1 for ok in samples(obs, "sensor_ok").values() if ok == 0.0) == 6
    assert not samples(obs, "sensor_raw")  # read to compute the others, not exported
    # and the switch's processors (hrProcessorLoad 13, 12, 13 percent)
    assert samples(obs, "cpu_load_ratio") == {
        (("cpu", "1"),): 0.13,
        (("cpu", "2"),): 0.12,
        (("cpu", "3"),): 0.13,
    }
