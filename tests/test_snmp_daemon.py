"""The daemon as a process with device profiles: device values on /metrics with their labels,
degraded states with reasons in the ledger, and traps sent with net-snmp's snmptrap and
snmpinform that change a site's state within a second. Hostile datagrams at the trap port
are counted and change nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for
from peers import ROUTER_RECORDING, Snmpd, Snmpsim, free_udp_port, recording

from monitor.core.model import State
from monitor.ledger.records import read_intervals
from monitor.probes.snmp.trap_receiver import REFUSED

DATA = Path(__file__).parent / "data"
PROFILES = Path(__file__).parents[1] / "config" / "profiles"
NET_SNMP_ENV = {**os.environ, "MIBS": "", "MIBDIRS": ""}

TRAP_COMMUNITY = "trap-Zq7-secret"
V3_ENGINE_ID = "0x8000000001020304"
V3_TRAP = ["-u", "trapper", "-l", "authPriv", "-a", "SHA", "-A", "trap-auth-Zq7"]
V3_TRAP += ["-x", "AES", "-X", "trap-priv-Zq7"]

UPS_ON_BATTERY = "1.3.6.1.2.1.33.2.1"
DOOR_OPENED = "1.3.6.1.4.1.32473.1.0.1"
DOOR_CLOSED = "1.3.6.1.4.1.32473.1.0.2"
DOOR_STATE = ".1.3.6.1.4.1.32473.1.3.0"

DOOR_SCRIPT = """#!/bin/sh
# snmpd `pass` script: serves envDoorState from a file the test writes.
[ "$1" = "-g" ] && [ "$2" = "{oid}" ] || exit 0
echo {oid}
echo integer
cat {state}
"""


def write_config(root: Path, http_port: int, sites: str, traps_port: int | None = None) -> Path:
    (root / "inventory").mkdir(parents=True)
    (root / "profiles").mkdir()
    for profile in PROFILES.glob("*.yaml"):
        (root / "profiles" / profile.name).write_text(profile.read_text())
    traps = (
        f"  traps: {{listen: '127.0.0.1:{traps_port}', credentials: [trap-v2c, trap-v3]}}\n"
        if traps_port
        else ""
    )
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{http_port}"}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: 3, timeout_seconds: 0.5, retries: 0}}
state: {{down_after: 3, up_after: 2}}
snmp:
  engine: {os.environ.get("DISTRICTMON_TEST_ENGINE", "gufo")}
{traps}"""
    )
    (root / "credentials.yaml").write_text(
        f"""
snmp:
  agent: {{version: 2c, community: agent-Zq7}}
  bts-battery: {{version: 2c, community: bts-battery}}
  bts-normal: {{version: 2c, community: bts-normal}}
  radio-fault: {{version: 2c, community: radio-fault}}
  cisco: {{version: 2c, community: cisco}}
  trap-v2c: {{version: 2c, community: {TRAP_COMMUNITY}}}
  trap-v3:
    version: 3
    user: trapper
    auth_protocol: SHA
    auth_key: trap-auth-Zq7
    priv_protocol: AES
    priv_key: trap-priv-Zq7
    engine_id: "{V3_ENGINE_ID}"
"""
    )
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-nua, name: Thanh Nưa, lat: 21.45, lon: 103.0}}
owners:
  - {{id: viettel, name: Viettel, kind: operator}}
  - {{id: rtv, name: Đài huyện, kind: broadcaster}}
sites:
{sites}"""
    )
    return root


def site(site_id: str, kind: str, owner: str, address: str, port: int, cred: str, prof: str) -> str:
    return (
        f"  - {{id: {site_id}, kind: {kind}, name: {site_id}, commune: thanh-nua, owner: {owner},"
        f" lat: 21.45, lon: 103.0, probe: {{snmp: {{address: {address}, port: {port},"
        f" credential: {cred}, profile: {prof}}}}}}}\n"
    )


# --- device values on /metrics ------------------------------------------------------------


@pytest.fixture(scope="module")
def devices() -> Iterator[Snmpsim]:
    recordings = {
        "bts-battery": DATA / "bts-power-on-battery.snmprec",
        "bts-normal": DATA / "bts-power-normal.snmprec",
        "radio-fault": DATA / "radio-transmitter-fault.snmprec",
        "cisco": recording(ROUTER_RECORDING),
    }
    with Snmpsim(recordings, probe_oid="1.3.6.1.2.1.1.5.0") as agent:
        agent.start()
        yield agent


@pytest.mark.parametrize("engine", ["gufo", "pysnmp"])
def test_device_values_reach_metrics_and_health_rules_reach_the_ledger(
    tmp_path: Path, devices: Snmpsim, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTRICTMON_TEST_ENGINE", engine)
    port = free_tcp_port()
    p = devices.port
    sites = "".join(
        site(
            site_id,
            kind,
            owner,
            "127.0.0.1",
            p,
            site_id if site_id != "gw-cisco" else "cisco",
            prof,
        )
        for site_id, kind, owner, prof in (
            ("bts-battery", "bts", "viettel", "bts-power"),
            ("bts-normal", "bts", "viettel", "bts-power"),
            ("radio-fault", "radio_station", "rtv", "radio-transmitter"),
            ("gw-cisco", "gateway", "viettel", "router"),
        )
    )
    config = write_config(tmp_path / "config", port, sites)
    daemon = Daemon(config, port)
    try:
        wait_for(
            "every site decided",
            lambda: all(
                daemon.metric("districtmon_site_up", site=s) == 1
                for s in ("bts-battery", "bts-normal", "radio-fault", "gw-cisco")
            ),
            daemon,
        )
        state = daemon.metric
        assert state("districtmon_site_state", site="bts-battery", state="degraded") == 1
        assert state("districtmon_site_state", site="radio-fault", state="degraded") == 1
        assert state("districtmon_site_state", site="bts-normal", state="up") == 1
        assert state("districtmon_site_state", site="gw-cisco", state="up") == 1
        m = daemon.metric
        assert m("districtmon_device_battery_volts", site="bts-normal", kind="bts") == 53.5
        assert m("districtmon_device_battery_volts", site="bts-battery", owner="viettel") == 49.2
        assert m("districtmon_device_mains_ok", site="bts-battery") == 0
        assert m("districtmon_device_cabinet_temperature_celsius", site="bts-battery") == 46.8
        assert m("districtmon_device_input_volts", site="bts-normal", line="1") == 228
        assert m("districtmon_device_transmitter_on_air", site="radio-fault") == 0
        assert m("districtmon_device_if_oper_up", site="gw-cisco", **{"if": "Fa0/1"}) == 1
        assert m("districtmon_device_if_in_octets_total", site="gw-cisco", **{"if": "Vl1"}) == (
            535755000
        )
        assert m("districtmon_device_reboots_total", site="bts-normal") == 0
        # every value answered: a zero count is not a series (it would be 40,000 lines of
        # zeros at 20,000 healthy sites)
        assert m("districtmon_device_snmp_values_missing", site="bts-normal") is None
        _, text = daemon.get("/metrics")
        assert "# TYPE districtmon_device_if_in_octets_total counter" in text
        assert "# TYPE districtmon_device_battery_volts gauge" in text
        assert "# HELP districtmon_device_battery_volts Battery string voltage" in text
        assert "districtmon_device_sys_name" not in text  # text values are not series
        assert "districtmon_device_uptime_seconds" not in text  # the site collector has it
        assert "bts-battery" in text and "agent-Zq7" not in text
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    [_, degraded] = read_intervals(config / "ledger.sqlite", "bts-battery")
    assert degraded.state is State.DEGRADED
    assert degraded.reason == (
        "running on battery (mains failure); cabinet at 46.8 °C, above 45 °C; cabinet door open"
    )
    radio = read_intervals(config / "ledger.sqlite", "radio-fault")[-1]
    assert "transmitter fault: PA over-temperature shutdown" in radio.reason


# --- traps ---------------------------------------------------------------------------------


@pytest.fixture
def door(tmp_path: Path) -> Iterator[tuple[Snmpd, Path]]:
    """A real snmpd on 127.0.0.7 whose cabinet door the test opens and closes."""
    state = tmp_path / "door-state"
    state.write_text("1\n")
    script = tmp_path / "door.sh"
    script.write_text(DOOR_SCRIPT.format(oid=DOOR_STATE, state=state))
    script.chmod(0o755)
    # the agent lives on 127.0.0.7, its clients (the daemon, snmpget) speak from 127.0.0.1
    extra = f"rocommunity agent-Zq7 127.0.0.1\npass .1.3.6.1.4.1.32473.1 /bin/sh {script}\n"
    with Snmpd(community="agent-Zq7", host="127.0.0.7", extra_config=extra) as agent:
        agent.start()
        yield agent, state


def send(*args: str, tool: str = "snmptrap") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, env=NET_SNMP_ENV, timeout=20, check=False
    )


def v2c_trap(
    port: int, oid: str, source: str = "127.0.0.7", community: str = TRAP_COMMUNITY
) -> None:
    done = send("-v", "2c", "-c", community, f"--clientaddr={source}", f"127.0.0.1:{port}", "", oid)
    assert done.returncode == 0, done.stderr


def test_traps_change_state_within_a_second_and_hostile_datagrams_change_nothing(
    tmp_path: Path, door: tuple[Snmpd, Path]
) -> None:
    agent, door_state = door
    port, traps = free_tcp_port(), free_udp_port()
    sites = site("bts-door", "bts", "viettel", "127.0.0.7", agent.port, "agent", "bts-power")
    config = write_config(tmp_path / "config", port, sites, traps_port=traps)
    daemon = Daemon(config, port)

    def state(s: str) -> float | None:
        return daemon.metric("districtmon_site_state", site="bts-door", state=s)

    def traps_total(r: str) -> float:
        return daemon.metric("districtmon_snmp_traps_total", result=r) or 0

    try:
        wait_for("bts-door up", lambda: state("up") == 1, daemon)
        assert daemon.metric("districtmon_snmp_trap_receiver_up") == 1

        # v2c trap: the door opened; degraded at once, not after up_after polls
        door_state.write_text("2\n")
        sent = time.monotonic()
        v2c_trap(traps, DOOR_OPENED)
        wait_for("degraded by the trap", lambda: state("degraded") == 1, daemon, limit=5)
        assert time.monotonic() - sent < 1.0

        # v3 authPriv trap, a `poll` entry: the poll it asks for sees the door closed and
        # counts at once
        door_state.write_text("1\n")
        sent = time.monotonic()
        done = send("-v", "3", "-e", V3_ENGINE_ID, *V3_TRAP, "--clientaddr=127.0.0.7",
                    f"127.0.0.1:{traps}", "", DOOR_CLOSED)  # fmt: skip
        assert done.returncode == 0, done.stderr
        wait_for("up again by the trap's poll", lambda: state("up") == 1, daemon, limit=5)
        assert time.monotonic() - sent < 1.0

        # an inform is acknowledged (snmpinform waits for the response) and acted on
        sent = time.monotonic()
        done = send("-v", "2c", "-c", TRAP_COMMUNITY, "-t", "2", "-r", "0",
                    "--clientaddr=127.0.0.7", f"127.0.0.1:{traps}", "", UPS_ON_BATTERY,
                    tool="snmpinform")  # fmt: skip
        assert done.returncode == 0, done.stderr
        wait_for("degraded by the inform", lambda: state("degraded") == 1, daemon, limit=5)
        assert time.monotonic() - sent < 1.5
        assert traps_total("mapped") == 3

        # counted, logged, ignored: a trap no profile knows, one from no known site, a wrong
        # community, and garbage
        v2c_trap(traps, "1.3.6.1.4.1.12345.0.1")
        v2c_trap(traps, DOOR_OPENED, source="127.0.0.9")
        v2c_trap(traps, DOOR_OPENED, community="not-the-community")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
            for payload in (b"", b"\x30", b"\x30\x82\xff\xff\x02\x01", os.urandom(1400),
                            b"\x30\x0c\x02\x01\x01\x04\x03abc\xa7\x02\x05\x00"):  # fmt: skip
                junk.sendto(payload, ("127.0.0.1", traps))
        wait_for("unmapped counted", lambda: traps_total("unmapped") == 1, daemon, limit=5)
        wait_for("unknown source", lambda: traps_total("unknown_source") == 1, daemon, limit=5)
        wait_for("bad community", lambda: traps_total("bad_community") >= 1, daemon, limit=5)
        wait_for("garbage counted", lambda: traps_total("malformed") >= 1, daemon, limit=5)
        # the receiver still works after all that
        v2c_trap(traps, DOOR_OPENED)
        wait_for("still mapped", lambda: traps_total("mapped") == 4, daemon, limit=5)
        # 4 mapped, 3 refused or unknown, 5 pieces of junk: each datagram has exactly one result
        results = ("mapped", "unmapped", "unknown_source", *REFUSED)
        assert daemon.metric("districtmon_snmp_trap_datagrams_total") == 12
        assert sum(traps_total(r) for r in results) == 12
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    log = daemon.log.read_text()
    assert "trap 1.3.6.1.4.1.32473.1.0.1 from 127.0.0.9: no site has that address" in log
    assert "trap 1.3.6.1.4.1.12345.0.1 is not in its profile" in log
    assert TRAP_COMMUNITY not in log and "trap-priv-Zq7" not in log
    intervals = read_intervals(config / "ledger.sqlite", "bts-door")
    states = [(i.state, i.reason) for i in intervals]
    assert states[:4] == [
        (State.UNKNOWN, "no data yet"),
        (State.UP, ""),
        (State.DEGRADED, "cabinet door open"),
        (State.UP, ""),
    ]
    assert states[4] == (State.DEGRADED, "running on battery (mains failure)")


def test_a_taken_trap_port_is_reported_and_polling_goes_on(
    tmp_path: Path, door: tuple[Snmpd, Path]
) -> None:
    agent, _ = door
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = free_tcp_port()
        sites = site("bts-door", "bts", "viettel", "127.0.0.7", agent.port, "agent", "bts-power")
        config = write_config(tmp_path / "c", port, sites, traps_port=taken.getsockname()[1])
        daemon = Daemon(config, port)
        try:
            wait_for("polled", lambda: daemon.metric("districtmon_site_up", site="bts-door") == 1,
                     daemon)  # fmt: skip
            assert daemon.metric("districtmon_snmp_trap_receiver_up") == 0
            assert daemon.stop() == 0
        finally:
            daemon.kill()
    assert "trap receiver disabled: cannot listen on 127.0.0.1" in daemon.log.read_text()
