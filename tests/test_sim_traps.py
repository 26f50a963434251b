"""Traps at the moment of a fault, from each device's own address and with the trap community of
the configuration: received by net-snmp's snmptrapd, and accepted and mapped by the daemon."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from harness import Daemon, free_tcp_port, wait_for
from peers import free_udp_port
from simpeers import Simulator, Snmptrapd, wait_until, write_district

UPS_TRAP_ON_BATTERY = ".1.3.6.1.2.1.33.2.1"
AMPLIFIER_FAULT = ".1.3.6.1.4.1.32473.3.0.1"
LINK_DOWN = ".1.3.6.1.6.3.1.1.5.3"


def trap_settings(port: int, extra: str = "") -> str:
    """A trap receiver accepting the shipped trap credential (community sim-trap)."""
    return f'snmp: {{traps: {{listen: "127.0.0.1:{port}", credentials: [district-trap]}}}}\n{extra}'


def test_faults_send_traps_from_the_faulty_device(tmp_path: Path) -> None:
    with Snmptrapd() as receiver:
        config = write_district(
            tmp_path / "config",
            communes=["thanh-nua", "muong-nha", "thanh-xuong"],
            settings=trap_settings(receiver.port),
        )
        with Simulator(config, "--traps", f"127.0.0.1:{receiver.port}") as sim:
            sim.wait_ready()
            sim.ctl("/communes/thanh-nua/power-cut?kinds=bts")
            sim.ctl("/sites/loa-thanh-nua-02/amplifier-fault")
            sim.ctl("/communes/muong-nha/fibre-cut")

            def received(oid: str, source: str) -> list[str]:
                return [t for t in receiver.traps() if oid in t and f"[{source}]" in t]

            wait_until(
                "the traps",
                lambda: bool(received(LINK_DOWN, "127.3.0.1")),
                15,
                receiver.log() + sim.log(),
            )
    on_battery = received(UPS_TRAP_ON_BATTERY, "127.1.0.1")
    assert on_battery, receiver.log()
    assert "SNMP v2c, community sim-trap" in on_battery[0]
    assert ".1.3.6.1.2.1.33.1.2.3.0 = INTEGER: 120" in on_battery[0]  # minutes left
    assert '.1.3.6.1.2.1.1.5.0 = STRING: "bts-vtl-thanh-nua-01"' in on_battery[0]
    assert len([t for t in receiver.traps() if UPS_TRAP_ON_BATTERY in t]) == 16
    amplifier = received(AMPLIFIER_FAULT, "127.2.1.2")
    assert amplifier and ".1.3.6.1.4.1.32473.3.1.0 = INTEGER: 2" in amplifier[0]
    [link_down] = received(LINK_DOWN, "127.3.0.1")  # the core router, about its port
    assert "SNMP v2c, community sim-trap" in link_down
    assert ".1.3.6.1.2.1.2.2.1.8." in link_down and "INTEGER: 2" in link_down
    assert not any("community sim-viettel" in t for t in receiver.traps()), "a read community"


def test_the_daemon_accepts_and_maps_the_simulators_traps(tmp_path: Path) -> None:
    """The daemon polls rarely here (every 30 s): what it shows in between, it has from the
    traps. Before the simulator sent the trap community, every one was refused as
    bad_community."""
    port, http, traps = free_udp_port(), free_tcp_port(), free_udp_port()
    settings = trap_settings(
        traps,
        f"""http: {{listen: "127.0.0.1:{http}"}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: 30, timeout_seconds: 0.3, retries: 0}}
""",
    )
    config = write_district(
        tmp_path / "config", communes=["thanh-nua"], kinds=["bts"], port=port,
        settings=settings, profiles=True,
    )  # fmt: skip
    with Simulator(config, "--traps", f"127.0.0.1:{traps}") as sim:
        sim.wait_ready()
        daemon = Daemon(config, http)
        try:
            polled: list[str] = []

            def first_polled() -> bool:  # first polls are spread over the interval
                try:
                    _, text = daemon.get("/metrics")
                except OSError:
                    return False
                polled.extend(
                    re.findall(
                        r'districtmon_site_state\{[^}]*site="([^"]+)"[^}]*state="up"[^}]*\} 1', text
                    )
                )
                return bool(polled)

            wait_for("a first poll", first_polled, daemon, limit=40)
            bts = polled[0]

            def state(name: str) -> bool:
                return daemon.metric("districtmon_site_state", site=bts, state=name) == 1

            sim.ctl(f"/sites/{bts}/door-open")
            wait_for("degraded by the door trap", lambda: state("degraded"), daemon)
            mapped = daemon.metric("districtmon_snmp_traps_total", result="mapped")
            assert mapped is not None and mapped >= 1
            sim.ctl("/communes/thanh-nua/power-cut?kinds=bts")
            wait_for(
                "16 on-battery traps mapped",
                lambda: (
                    (daemon.metric("districtmon_snmp_traps_total", result="mapped") or 0)
                    >= mapped + 16
                ),
                daemon,
            )
            assert not daemon.metric("districtmon_snmp_traps_total", result="bad_community")
            assert not daemon.metric("districtmon_snmp_traps_total", result="unknown_source")
            assert daemon.stop() == 0
        finally:
            daemon.kill()


def test_traps_without_a_trap_credential_are_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    config = write_district(tmp_path / "config", communes=["thanh-nua"], kinds=["bts"])
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "simulate", "-c", str(config), "--no-control",
         "--traps", "127.0.0.1:1162"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert "--traps needs the trap receiver of the configuration" in out.stderr
