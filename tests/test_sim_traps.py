"""Traps at the moment of a fault, received by net-snmp's snmptrapd, from each device's own
address and with its own community."""

from __future__ import annotations

from pathlib import Path

from simpeers import Simulator, Snmptrapd, wait_until, write_district

UPS_TRAP_ON_BATTERY = ".1.3.6.1.2.1.33.2.1"
AMPLIFIER_FAULT = ".1.3.6.1.4.1.32473.3.0.1"
LINK_DOWN = ".1.3.6.1.6.3.1.1.5.3"


def test_faults_send_traps_from_the_faulty_device(tmp_path: Path) -> None:
    config = write_district(tmp_path / "config", communes=["thanh-nua", "muong-nha", "thanh-xuong"])
    with (
        Snmptrapd() as receiver,
        Simulator(config, "--traps", f"127.0.0.1:{receiver.port}") as sim,
    ):
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
        assert "SNMP v2c, community sim-viettel" in on_battery[0]
        assert ".1.3.6.1.2.1.33.1.2.3.0 = INTEGER: 120" in on_battery[0]  # minutes left
        assert '.1.3.6.1.2.1.1.5.0 = STRING: "bts-vtl-thanh-nua-01"' in on_battery[0]
        assert len([t for t in receiver.traps() if UPS_TRAP_ON_BATTERY in t]) == 16
        amplifier = received(AMPLIFIER_FAULT, "127.2.1.2")
        assert amplifier and ".1.3.6.1.4.1.32473.3.1.0 = INTEGER: 2" in amplifier[0]
        [link_down] = received(LINK_DOWN, "127.3.0.1")  # the core router, about its port
        assert "SNMP v2c, community sim-district" in link_down
        assert ".1.3.6.1.2.1.2.2.1.8." in link_down and "INTEGER: 2" in link_down
