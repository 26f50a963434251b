"""The simulated agents are genuine SNMP: net-snmp's own tools read them, and faults injected
through the control change what the tools see."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers import free_udp_port
from simpeers import Simulator, number, snmp, values, write_district

SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_TABLE = "1.3.6.1.2.1.2.2"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1"
UPS_OUTPUT_SOURCE = "1.3.6.1.2.1.33.1.4.1.0"
AMP_STATUS = "1.3.6.1.4.1.32473.3.1.0"

BTS = ("127.1.0.1", "sim-viettel", "bts-vtl-thanh-nua-01")
CORE = ("127.3.0.1", "sim-district", "gw-district-core")
SPEAKER = ("127.2.1.2", "sim-rtv", "loa-thanh-nua-02")
BEHIND_FIBRE = ("127.2.1.49", "sim-rtv", "loa-muong-nha-01")


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, int]]:
    port = free_udp_port()
    config = write_district(tmp_path_factory.mktemp("district") / "config", port=port)
    with Simulator(config) as sim:
        sim.wait_ready()
        yield sim, port


def get(district: tuple[Simulator, int], site: tuple[str, str, str], *oids: str,
        version: str = "2c", timeout: float = 1.0) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return snmp("snmpget", site[0], district[1], site[1], *oids, version=version, timeout=timeout)


def test_system_group_names_the_site_in_ascii(district: tuple[Simulator, int]) -> None:
    out = get(district, BTS, SYS_NAME, "1.3.6.1.2.1.1.6.0", "1.3.6.1.2.1.1.2.0")
    assert out.returncode == 0, out.stderr
    found = values(out.stdout)
    assert found[SYS_NAME] == 'STRING: "bts-vtl-thanh-nua-01"'
    assert found["1.3.6.1.2.1.1.6.0"].startswith('STRING: "BTS Viettel Thanh Nua 01, Thanh Nua (')
    assert found["1.3.6.1.2.1.1.2.0"] == "OID: .1.3.6.1.4.1.32473.10.1"


def test_tables_walk_in_order_and_bulk_walks_agree(district: tuple[Simulator, int]) -> None:
    port = district[1]
    walk = snmp("snmpwalk", CORE[0], port, CORE[1], IF_TABLE)
    bulk = snmp("snmpbulkwalk", CORE[0], port, CORE[1], "-Cr25", IF_TABLE)
    assert walk.returncode == 0 and bulk.returncode == 0, walk.stderr + bulk.stderr
    oids = [tuple(int(p) for p in oid.split(".")) for oid in values(walk.stdout)]
    assert oids == sorted(oids) and len(set(oids)) == len(oids)
    assert values(walk.stdout).keys() == values(bulk.stdout).keys()
    if_number = "1.3.6.1.2.1.2.1.0"
    interfaces = number(values(get(district, CORE, if_number).stdout)[if_number])
    assert interfaces > 30  # wan, lan, lo0 and one port per child site
    descr = [v for oid, v in values(walk.stdout).items() if oid.startswith(IF_TABLE + ".1.2.")]
    assert len(descr) == interfaces and 'STRING: "ge-1/0/4 to gw-ubnd-huyen"' in descr
    ups = snmp("snmpbulkwalk", BTS[0], port, BTS[1], "1.3.6.1.2.1.33")
    assert values(ups.stdout)["1.3.6.1.2.1.33.1.2.1.0"] == "INTEGER: 2"  # batteryNormal


def test_counters_grow_and_uptime_ticks(district: tuple[Simulator, int]) -> None:
    oids = (SYS_UPTIME, IF_X_TABLE + ".1.6.1", IF_TABLE + ".1.10.1")
    first = values(get(district, BTS, *oids).stdout)
    time.sleep(1.2)
    second = values(get(district, BTS, *oids).stdout)
    assert number(second[SYS_UPTIME]) - number(first[SYS_UPTIME]) >= 100
    assert number(second[oids[1]]) > number(first[oids[1]])
    assert first[oids[1]].startswith("Counter64:") and first[oids[2]].startswith("Counter32:")
    assert number(first[oids[2]]) == number(first[oids[1]]) % 2**32  # one GET, one instant


def test_snmpv1_reads_and_skips_counter64(district: tuple[Simulator, int]) -> None:
    out = get(district, BTS, SYS_NAME, version="1")
    assert out.returncode == 0 and "bts-vtl-thanh-nua-01" in out.stdout
    refused = get(district, BTS, IF_X_TABLE + ".1.6.1", version="1")
    assert "There is no such variable name in this MIB" in refused.stdout + refused.stderr
    walk = snmp("snmpwalk", BTS[0], district[1], BTS[1], IF_X_TABLE, version="1")
    columns = {oid.split(".")[-2] for oid in values(walk.stdout)}
    assert columns == {"1", "15", "18"}  # ifName, ifHighSpeed, ifAlias: no Counter64


def test_missing_objects_instances_and_the_end_of_the_mib(district: tuple[Simulator, int]) -> None:
    found = values(get(district, BTS, "1.3.6.1.2.1.1.5", "1.3.6.1.2.1.99.1.0").stdout)
    assert found["1.3.6.1.2.1.1.5"] == "No Such Instance currently exists at this OID"
    assert found["1.3.6.1.2.1.99.1.0"] == "No Such Object available on this agent at this OID"
    end = snmp("snmpgetnext", BTS[0], district[1], BTS[1], "1.3.6.1.4.1.32473.9")
    assert "No more variables left in this MIB View" in end.stdout


def test_a_wrong_community_gets_no_reply(district: tuple[Simulator, int]) -> None:
    out = snmp("snmpget", BTS[0], district[1], "sim-vnpt", SYS_NAME, timeout=0.3)
    assert out.returncode != 0 and "Timeout" in out.stderr


def test_faults_change_what_snmpget_sees(district: tuple[Simulator, int]) -> None:
    sim, _ = district
    sim.ctl(f"/sites/{SPEAKER[2]}/down")
    assert "Timeout" in get(district, SPEAKER, SYS_NAME, timeout=0.3).stderr
    sim.ctl(f"/sites/{SPEAKER[2]}/up")
    uptime = number(values(get(district, SPEAKER, SYS_UPTIME).stdout)[SYS_UPTIME])
    assert uptime < 1000, "a device that comes back has rebooted"

    sim.ctl(f"/sites/{SPEAKER[2]}/amplifier-fault")
    assert values(get(district, SPEAKER, AMP_STATUS).stdout)[AMP_STATUS] == "INTEGER: 2"
    sim.ctl(f"/sites/{SPEAKER[2]}/amplifier-restore")

    reply = sim.ctl("/communes/thanh-nua/power-cut?battery_minutes=90&kinds=bts")
    assert reply == {"done": "power-cut", "commune": "thanh-nua"}
    assert values(get(district, BTS, UPS_OUTPUT_SOURCE).stdout)[UPS_OUTPUT_SOURCE] == "INTEGER: 5"
    sim.ctl("/communes/thanh-nua/power-restore")
    assert values(get(district, BTS, UPS_OUTPUT_SOURCE).stdout)[UPS_OUTPUT_SOURCE] == "INTEGER: 3"

    sim.ctl(f"/sites/{BTS[2]}/slow?delay=0.8")
    assert "Timeout" in get(district, BTS, SYS_NAME, timeout=0.3).stderr
    started = time.monotonic()
    assert get(district, BTS, SYS_NAME, timeout=3).returncode == 0
    assert time.monotonic() - started >= 0.8
    sim.ctl(f"/sites/{BTS[2]}/slow?delay=0")

    sim.ctl("/communes/muong-nha/fibre-cut")  # the cluster hangs off the commune's station
    assert "Timeout" in get(district, BEHIND_FIBRE, SYS_NAME, timeout=0.3).stderr
    assert get(district, SPEAKER, SYS_NAME).returncode == 0
    sim.ctl("/restore")
    assert get(district, BEHIND_FIBRE, SYS_NAME).returncode == 0


def test_bad_control_requests_are_refused_with_the_reason(district: tuple[Simulator, int]) -> None:
    sim, _ = district
    status, body = sim._call("POST", "/sites/bts-vtl-thanh-nua-01/amplifier-fault")
    assert status == 400 and "applies to loudspeaker sites" in body["error"]
    status, body = sim._call("POST", "/communes/thanh-nua/flap?period=1m")
    assert status == 400 and "does not apply to a commune" in body["error"]
    cli = subprocess.run(
        [sys.executable, "-m", "monitor", "simulate", "ctl", "--control", sim.control,
         "power-cut", "nowhere"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert cli.returncode == 1 and "unknown commune 'nowhere'" in cli.stdout
    cli = subprocess.run(
        [sys.executable, "-m", "monitor", "simulate", "ctl", "--control", sim.control,
         "status", "bts-vtl-thanh-nua-01"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert cli.returncode == 0 and '"reachable": true' in cli.stdout


def test_one_socket_per_address_serves_the_same(tmp_path: Path) -> None:
    port = free_udp_port()
    config = write_district(tmp_path / "config", communes=["thanh-nua"], kinds=["bts"], port=port)
    with Simulator(config, "--bind", "endpoint") as sim:
        sim.wait_ready()
        _, stats = sim.get("/stats")
        assert stats["bind"] == "endpoint" and stats["sockets"] == stats["sites"] == 16
        out = snmp("snmpget", "127.1.0.16", port, "sim-mobifone", SYS_NAME)
        assert 'STRING: "bts-mbf-thanh-nua-04"' in out.stdout


def test_a_site_off_loopback_is_refused_before_anything_is_bound(tmp_path: Path) -> None:
    config = write_district(tmp_path / "config", communes=["thanh-nua"], kinds=["bts"])
    inventory = config / "inventory" / "district.yaml"
    inventory.write_text(inventory.read_text().replace("127.1.0.3", "10.20.30.40", 1))
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "simulate", "-c", str(config), "--no-control"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert out.returncode == 2
    refused = "site 'bts-vtl-thanh-nua-03': address 10.20.30.40 is not a loopback address"
    assert refused in out.stderr
