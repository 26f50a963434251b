"""Every recording of a real device that snmpsim-data ships, served by snmpsim on loopback and
polled with `profile: auto`: which profile each one gets is pinned here, and every value that
profile reads is checked for plausibility - ratios within 0..1, volts, degrees and hertz in
the range such devices have, no "not available" sentinel exported as a figure, counters that
never go back between two polls, no loopback or null interface among the interfaces.

A recording is served trimmed to the OIDs that some profile or detection reads (the system
group, every source, label and `has` OID of config/profiles): a 3-million-OID chassis then
loads in seconds instead of minutes, and a value outside those subtrees is one no profile
reads, so nothing checked is lost. The trimmed copies are kept in the temporary directory
under a name that hashes the recordings package and the OIDs kept, so they are remade when
either changes. config/profiles/README.md lists the recordings each profile is checked on.
"""

from __future__ import annotations

import asyncio
import bz2
import hashlib
import importlib.metadata
import math
import re
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from peers import Snmpsim, recording
from test_snmp_poller import site

from monitor.config.credentials import Secret, SnmpCredential
from monitor.config.problems import ConfigProblem
from monitor.config.profile_reader import load_profiles
from monitor.config.profiles import Profile
from monitor.config.settings import PollSettings
from monitor.core.model import Observation
from monitor.probes.snmp.engines import create_engine
from monitor.probes.snmp.poller import SnmpPoller

PROFILES = Path(__file__).parents[1] / "config" / "profiles"
#: The first run trims 116 recordings (several GB decompressed) before anything is served.
pytestmark = pytest.mark.timeout(900)

#: recording (under snmpsim_data/data) -> the profile `auto` picks for it
PICKED = {
    "UPS/apc-7902b.snmprec": "router",
    "UPS/apc-8641.snmprec": "router",
    "UPS/apc-8932.snmprec": "router",
    "UPS/eastpower-istars-swv053.snmprec.bz2": "ups-mib",
    "UPS/eaton-93e-80.snmprec.bz2": "eaton-xups",
    "UPS/eaton-9px-partial.snmprec.bz2": "eaton-xups",
    "UPS/emerson-network-power.snmprec.bz2": "router",
    "UPS/huawei-gse200m.snmprec.bz2": "huawei-ups",
    "UPS/ingrasys-power-switch.snmprec.bz2": "ups-mib",
    "UPS/juniper-ac.snmprec.bz2": "system",
    "UPS/phoenixtec-power.snmprec.bz2": "ups-mib",
    "UPS/vertiv-power.snmprec.bz2": "router",
    "bmc/hp-onboard-administrator.snmprec.bz2": "router",
    "camera/hikvision-network-video-recorder.snmprec.bz2": "router",
    "camera/hikvision.snmprec.bz2": "system",
    "camera/samsung-ipolis.snmprec.bz2": "router",
    "camera/semac-ipcam-500.snmprec.bz2": "linux-host",
    "camera/wds-ips-1022.snmprec.bz2": "router",
    "cloud/arista-dcs-7150s-52-cl.snmprec.bz2": "router",
    "iot/geist-temperature-sensor.snmprec": "router",
    "network/appliance/cisco-controller.snmprec.bz2": "router",
    "network/appliance/cisco-ucs-6100-k9.snmprec.bz2": "router",
    "network/appliance/cisco-ucs-6100.snmprec.bz2": "router",
    "network/appliance/cisco-unknown-01.snmprec.bz2": "router",
    "network/appliance/empirical-hw-mgmt.snmprec.bz2": "router",
    "network/appliance/huawei-ism.snmprec.bz2": "system",
    "network/appliance/infosec-nsae-6500.snmprec.bz2": "router",
    "network/appliance/meru-networks-controller.snmprec.bz2": "router",
    "network/appliance/network-research-squid.snmprec.bz2": "system",
    "network/appliance/nsfocus-ads.snmprec.bz2": "router",
    "network/appliance/tripplite-poweralert.snmprec": "router",
    "network/appliance/ucdavis-sic.snmprec.bz2": "system",
    "network/appliance/vss-monitoring-optimizer-2400-span.snmprec.bz2": "system",
    "network/firewall/clavister-amaranten.snmprec.bz2": "router",
    "network/firewall/fortinet-xcu.snmprec.bz2": "router",
    "network/firewall/legend-holdings-firewall-2.snmprec.bz2": "router",
    "network/firewall/legend-holdings-firewall.snmprec.bz2": "router",
    "network/firewall/netentsec-ngfw.snmprec.bz2": "router",
    "network/firewall/nsfocus-osms.snmprec.bz2": "router",
    "network/firewall/paloalto-pa-5000.snmprec.bz2": "router",
    "network/firewall/sangfor-ad1800-fp2.snmprec.bz2": "router",
    "network/firewall/sangfor-vad1.snmprec.bz2": "router",
    "network/firewall/topsec-ngfw4000-uf.snmprec.bz2": "router",
    "network/firewall/venus-unknown-001.snmprec.bz2": "router",
    "network/firewall/venus-vsos-v0600r0705b20180507.snmprec.bz2": "router",
    "network/firewall/venus-vsos-v070060600.snmprec.bz2": "router",
    "network/router/brocade-unknown-001.snmprec.bz2": "router",
    "network/router/cisco-unmarked-0.snmprec.bz2": "router",
    "network/router/huawei-acu2.snmprec.bz2": "huawei-switch",
    "network/router/huawei-s5720.snmprec.bz2": "huawei-switch",
    "network/router/huawei-unknown-001.snmprec.bz2": "router",
    "network/router/huawei-unknown-002.snmprec.bz2": "router",
    "network/router/juniper-mx960-12-3r6-6.snmprec.bz2": "router",
    "network/router/juniper-mx960-13-3r9-13.snmprec.bz2": "router",
    "network/router/juniper-mx960-16-1r6-7-a.snmprec.bz2": "router",
    "network/router/juniper-mx960-16-1r6-7-b.snmprec.bz2": "router",
    "network/router/ruijie-n18010.snmprec.bz2": "router",
    "network/router/vyatta-unknown.snmprec.bz2": "router",
    "network/switch/bdcom-s5612.snmprec.bz2": "router",
    "network/switch/brocade-ds-5100b.snmprec.bz2": "router",
    "network/switch/brocade-fiber-channel.snmprec.bz2": "router",
    "network/switch/brocade-icx6430-24.snmprec.bz2": "router",
    "network/switch/cisco-c3560.snmprec.bz2": "router",
    "network/switch/cisco-c3750.snmprec.bz2": "router",
    "network/switch/cisco-n5000-uk9.snmprec.bz2": "router",
    "network/switch/cisco-n5000.snmprec.bz2": "router",
    "network/switch/cts-media-converter.snmprec.bz2": "router",
    "network/switch/dcrs-5980-28t-dc.snmprec.bz2": "router",
    "network/switch/dcs-3726c.snmprec.bz2": "router",
    "network/switch/dlink-des3038.snmprec.bz2": "dlink-des3028",
    "network/switch/dlink-des3200.snmprec.bz2": "router",
    "network/switch/dptech-dpx800-a5.snmprec.bz2": "router",
    "network/switch/h3c-comware-7-1-075.snmprec.bz2": "router",
    "network/switch/h3c-comware-lsq1wcmd0-2509p61.snmprec.bz2": "router",
    "network/switch/h3c-comware-lsq1wcmd0.snmprec.bz2": "system",
    "network/switch/h3c-e528-1.snmprec.bz2": "router",
    "network/switch/h3c-e528-2.snmprec.bz2": "router",
    "network/switch/h3c-wx6103.snmprec.bz2": "router",
    "network/switch/hpe-procurve-516733-b21.snmprec.bz2": "router",
    "network/switch/huawei-s12704.snmprec.bz2": "huawei-switch",
    "network/switch/maipu-sm4200-16gef8ge-ac.snmprec.bz2": "router",
    "network/switch/metel-poe-box.snmprec.bz2": "router",
    "network/switch/ruijie-s5750-24gt12sfp.snmprec.bz2": "router",
    "network/switch/zte-zrx10.snmprec.bz2": "zte-switch",
    "network/switch/zte-zxr10-5250.snmprec.bz2": "zte-switch",
    "network/wifi/aruba-7010.snmprec.bz2": "system",
    "network/wifi/aruba-7020.snmprec.bz2": "system",
    "network/wifi/aruba-7210.snmprec.bz2": "router",
    "network/wifi/juniper-wlc2800.snmprec.bz2": "system",
    "network/wifi/ruckus-smartcell-gateway.snmprec.bz2": "router",
    "network/wifi/ruijie-m18000.snmprec.bz2": "router",
    "network/wifi/sangfor-wac-2.snmprec.bz2": "router",
    "network/wifi/sangfor-wac.snmprec.bz2": "router",
    "network/wifi/ubiquiti-m5.snmprec.bz2": "router",
    "os/linux/ibm-power-chrp.snmprec.bz2": "router",
    "os/linux/ibm-x3550-m3.snmprec.bz2": "linux-host",
    "os/linux/netmanage.snmprec.bz2": "system",
    "os/linux/sangfor.snmprec.bz2": "router",
    "os/linux/slackware.snmprec.bz2": "linux-host",
    "os/linux/unknown-001.snmprec.bz2": "linux-host",
    "os/linux/unknown-002.snmprec.bz2": "linux-host",
    "os/linux/unknown-003.snmprec.bz2": "linux-host",
    "os/linux/unknown-004.snmprec.bz2": "linux-host",
    "os/linux/unknown-005.snmprec.bz2": "router",
    "os/linux/unknown-006.snmprec.bz2": "linux-host",
    "os/linux/unknown-007.snmprec.bz2": "linux-host",
    "os/linux/unknown-008.snmprec.bz2": "router",
    "os/linux/zte-embsys-cgel.snmprec.bz2": "system",
    "os/windows/XP.snmprec.bz2": "router",
    "os/windows/server-2003-5-2.snmprec.bz2": "router",
    "storage/isilon-onefs.snmprec.bz2": "router",
    "storage/netapp-fas3270.snmprec.bz2": "router",
    "storage/netapp-ontap-8-2-3.snmprec.bz2": "router",
    "unclassified/01.snmprec.bz2": "router",
    "unclassified/02.snmprec.bz2": "system",
    "unclassified/03.snmprec.bz2": "system",
}

#: Sentinels of "not available" as they would read once scaled: never exported as figures.
SENTINELS = {2147483647.0, 4294967295.0, 65535.0}
#: Where a value of each unit is plausible on the devices of a district office.
RANGES = [
    (re.compile(r".*_ratio"), 0.0, 1.0),
    (re.compile(r"(input|output|bypass)_volts"), 0.0, 480.0),  # 0: no mains on that line
    (re.compile(r".*_volts"), 0.0, 1000.0),  # up to a large UPS's battery bus
    (re.compile(r".*_celsius.*"), -30.0, 110.0),
    (re.compile(r"(input|output)_frequency_hertz"), 0.0, 70.0),
    (re.compile(r"transmitter_frequency_hertz"), 87.5e6, 108e6),
    (re.compile(r".*_amperes"), -2000.0, 2000.0),  # negative: a battery charging
    (re.compile(r"rssi_dbm"), -140.0, 0.0),
    (re.compile(r"if_speed_bits_per_second"), 0.0, 1.0e12),
    (re.compile(r".*_(seconds|bytes|watts)|load(1|5|15)|processes|interfaces"), 0.0, math.inf),
    (re.compile(r".*_rpm"), 0.0, 100000.0),
    (re.compile(r".*_total"), 0.0, 2.0**64),
]
LOOPBACK = re.compile(r"(?i)lo[0-9]*|(in)?loop-?back[0-9/]*|null?[0-9]*")


def kept_prefixes(profiles: Mapping[str, Profile]) -> tuple[str, ...]:
    """The OID prefixes some profile (or detection) reads: a scalar's OID, a column's
    subtree, a label's subtree, a `has` OID; and the system group."""
    found = {"1.3.6.1.2.1.1."}
    for profile in profiles.values():
        for spec in profile.scalars:
            found.update(source.oid for source in spec.sources)
        for table in profile.tables:
            for column in table.columns:
                found.update(source.oid + "." for source in column.sources)
            for label in table.labels:
                found.update(oid + "." for oid in label.oids)
        if profile.detect is not None:
            found.update(profile.detect.has)
    return tuple(sorted(found))


def trim(source: Path, target: Path, prefixes: tuple[str, ...]) -> None:
    """Copy the records of `source` whose OID starts with one of `prefixes`."""
    raw = source.read_bytes()
    if source.name.endswith(".bz2"):
        raw = bz2.decompress(raw)
    wanted = tuple(prefix.encode() for prefix in prefixes)
    kept = [line for line in raw.split(b"\n") if line.startswith(wanted) and b"|" in line]
    partial = target.with_suffix(".part")
    partial.write_bytes(b"\n".join(kept) + b"\n")
    partial.rename(target)


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    problems: list[ConfigProblem] = []
    found = load_profiles(PROFILES, problems)
    assert not problems
    return found


@pytest.fixture(scope="module")
def trimmed(profiles: dict[str, Profile]) -> dict[str, Path]:
    """Community -> trimmed recording, made once per recordings package and set of OIDs."""
    prefixes = kept_prefixes(profiles)
    version = importlib.metadata.version("snmpsim-data")
    digest = hashlib.sha256("\n".join([version, *prefixes]).encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"districtmon-recordings-{digest}"
    cache.mkdir(exist_ok=True)
    files = {name: cache / f"r{number}.snmprec" for number, name in enumerate(PICKED)}
    todo = [(recording(name), files[name]) for name in PICKED if not files[name].is_file()]
    if todo:
        with ProcessPoolExecutor(max_workers=2) as pool:
            for result in [pool.submit(trim, src, dst, prefixes) for src, dst in todo]:
                result.result()
    return {f"r{number}": files[name] for number, name in enumerate(PICKED)}


@pytest.fixture(scope="module")
def sim(trimmed: dict[str, Path]) -> Iterator[Snmpsim]:
    with Snmpsim(dict(trimmed), probe_oid="1.3.6.1.2.1.1.2.0") as agent:
        agent.start(timeout=120)
        yield agent


@pytest.fixture(scope="module")
def twice(
    sim: Snmpsim, profiles: dict[str, Profile]
) -> dict[str, tuple[str, Observation, Observation]]:
    """Every recording polled twice with `profile: auto`: (picked profile, first, second)."""
    return asyncio.run(poll_all(sim, profiles))


async def poll_all(
    sim: Snmpsim, profiles: dict[str, Profile]
) -> dict[str, tuple[str, Observation, Observation]]:
    engine = create_engine("gufo")
    communities = {name: f"r{number}" for number, name in enumerate(PICKED)}
    credentials = {c: SnmpCredential(c, "2c", Secret(c)) for c in communities.values()}
    poller = SnmpPoller(engine, PollSettings(timeout_seconds=5.0, retries=0), credentials, profiles)
    found: dict[str, tuple[str, Observation, Observation]] = {}
    try:
        for name, community in communities.items():
            where = site(sim.port, community, "auto")
            first = await poller.poll(where)
            second = await poller.poll(where)
            found[name] = (poller.profile_of(where).id, first, second)
    finally:
        await engine.close()
    return found


def test_every_recording_gets_the_profile_pinned_for_it(
    twice: dict[str, tuple[str, Observation, Observation]],
) -> None:
    assert len(PICKED) == 116  # the whole snmpsim-data collection
    picked = {name: profile for name, (profile, _, _) in twice.items()}
    assert picked == PICKED
    assert all(first.ok and second.ok for _, first, second in twice.values())


def test_every_value_read_is_plausible(
    twice: dict[str, tuple[str, Observation, Observation]],
) -> None:
    wrong: list[str] = []
    checked = 0
    for name, (_, first, _) in twice.items():
        numbers: list[tuple[str, tuple[tuple[str, str], ...], float | str]] = [
            (key, (), value) for key, value in first.values.items()
        ]
        numbers += [(s.name, s.labels, s.value) for s in first.samples]
        for key, labels, value in numbers:
            if isinstance(value, str) or key == "profile_info":
                continue
            checked += 1
            where = f"{name}: {key}{dict(labels) if labels else ''} = {value!r}"
            if value in SENTINELS or not math.isfinite(value):
                wrong.append(f"{where} (a sentinel)")
                continue
            for pattern, low, high in RANGES:
                if pattern.fullmatch(key):
                    if not low <= value <= high:
                        wrong.append(f"{where} (outside {low}..{high})")
                    break
    assert not wrong, "\n".join(wrong)
    assert checked > 5000


def test_counters_never_go_back_between_two_polls(
    twice: dict[str, tuple[str, Observation, Observation]],
) -> None:
    back = []
    for name, (_, first, second) in twice.items():
        before = {(s.name, s.labels): s.value for s in first.samples if s.name.endswith("_total")}
        after = {(s.name, s.labels): s.value for s in second.samples if s.name.endswith("_total")}
        assert before.keys() == after.keys(), name
        back += [f"{name}: {key}" for key, value in before.items() if after[key] < value]
    assert not back


def test_no_loopback_or_null_interface_is_exported(
    twice: dict[str, tuple[str, Observation, Observation]],
) -> None:
    found = [
        f"{name}: {dict(s.labels)['if']}"
        for name, (_, first, _) in twice.items()
        for s in first.samples
        if s.name == "if_oper_up" and LOOPBACK.fullmatch(dict(s.labels)["if"])
    ]
    assert not found
