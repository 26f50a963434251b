"""Boot times through the pipeline into the ledger and back to the poller at start: a reboot
while the monitor was stopped is counted at the first poll, against a real snmpd."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

from conftest import SNMPD_COMMUNITY
from harness import Daemon, free_tcp_port, wait_for, write_config
from peers import Snmpd, Snmpsim

from monitor.config.credentials import Secret, SnmpCredential
from monitor.config.settings import PollSettings
from monitor.core.model import Observation, Site, SnmpProbe
from monitor.expose.self_metrics import build_registry
from monitor.ledger.records import read_boots
from monitor.ledger.schema import prepare
from monitor.ledger.writer import Ledger
from monitor.probes.snmp.engines import create_engine
from monitor.probes.snmp.poller import SnmpPoller
from monitor.state.boots import REFRESH_SECONDS, BootBook
from monitor.state.evaluator import Evaluator
from monitor.state.live import LiveState
from monitor.state.pipeline import Pipeline

T = 1_800_000_000.0


def snmp(t: float, uptime: float, site: str = "s") -> Observation:
    return Observation(site, t, True, values={"uptime_seconds": uptime}, probe="snmp")


def test_a_boot_time_is_recorded_when_new_when_later_and_hourly_when_it_drifts() -> None:
    book = BootBook()
    book.seed({"s": T - 1000}, at=T)
    assert book.seen(snmp(T + 10, 1010.5)) is None  # the same boot
    assert book.seen(snmp(T + 20, 1015.0)) is None  # drifted 5 s: not yet an hour
    drift = book.seen(snmp(T + REFRESH_SECONDS, REFRESH_SECONDS + 995.0))
    assert drift is not None and drift.boot == T - 995.0  # kept fresh, hourly
    boot = book.seen(snmp(T + REFRESH_SECONDS + 60, 12.0))  # a reboot: at once
    assert boot is not None and boot.boot == T + REFRESH_SECONDS + 48
    new = book.seen(snmp(T, 50.0, site="other"))
    assert new is not None and (new.site, new.boot) == ("other", T - 50)
    assert book.seen(Observation("s", T, False, probe="snmp")) is None
    assert (
        book.seen(Observation("s", T, True, values={"uptime_seconds": 5.0}, probe="mqtt")) is None
    )


async def test_boot_times_reach_the_ledger_and_come_back_at_start(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    site = Site("s", "bts", "s", "c", "o", 0.0, 0.0, SnmpProbe("127.0.0.1"))
    ledger = await Ledger.open(path, heartbeat_seconds=0.01)
    await ledger.sync_sites([site])
    writer = asyncio.create_task(ledger.run())
    _, metrics = build_registry()
    pipeline = Pipeline(Evaluator(), ledger, LiveState({"s": site}), metrics)
    pipeline.start(["s"], T)
    pipeline.observe(snmp(T + 1, 3600.0))
    await asyncio.wait_for(ledger.flushed(), 10)
    ledger.stop()
    await writer
    await ledger.close()
    assert read_boots(path) == {"s": T + 1 - 3600}
    assert read_boots(tmp_path / "none.sqlite") == {}


async def test_a_reboot_while_stopped_is_counted_at_the_first_poll_of_a_real_agent(
    snmpd: Snmpd,
) -> None:
    """snmpd has been up for seconds. A ledger that says the device booted an hour ago means it
    rebooted while the monitor was stopped; one that gives its real boot time means it did
    not. Either engine."""
    site = Site("s", "bts", "s", "c", "o", 0.0, 0.0, SnmpProbe("127.0.0.1", snmpd.port, "ro"))
    credentials = {"ro": SnmpCredential("ro", "2c", community=Secret(SNMPD_COMMUNITY))}
    for engine_name in ("gufo", "pysnmp"):
        engine = create_engine(engine_name)
        try:
            settings = PollSettings(timeout_seconds=1.0, retries=1)
            first = SnmpPoller(engine, settings, credentials)
            first.known_boots({"s": time.time() - 3600})
            rebooted = await first.poll(site)
            assert rebooted.ok and rebooted.values["reboots_total"] == 1.0, engine_name
            uptime = rebooted.values["uptime_seconds"]
            assert isinstance(uptime, float)
            second = SnmpPoller(engine, settings, credentials)
            second.known_boots({"s": rebooted.time - uptime})
            same = await second.poll(site)
            assert same.ok and same.values["reboots_total"] == 0.0, engine_name
        finally:
            await engine.close()


def test_the_daemon_hands_the_kept_boot_times_to_its_poller(
    tmp_path: Path, snmpd: Snmpd, snmpsim_agent: Snmpsim
) -> None:
    """The ledger of the previous run says bts-snmpd booted two hours ago; the agent has been
    up for seconds: it rebooted while the daemon was stopped, and the first poll counts it.
    The next run, with the boot time this one kept, counts nothing."""
    port = free_tcp_port()
    config = write_config(tmp_path / "config", port, snmpd, snmpsim_agent)
    path = config / "ledger.sqlite"
    prepare(path)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO device_boots (site, boot, seen) VALUES ('bts-snmpd', ?, ?)",
            (time.time() - 7200, time.time() - 3600),
        )
    for expected in (1.0, 0.0):
        daemon = Daemon(config, port)

        def polled(d: Daemon = daemon) -> bool:
            return all(
                d.metric("districtmon_device_reboots_total", site=site) is not None
                for site in ("bts-snmpd", "bts-ups")
            )

        try:
            wait_for("first polls", polled, daemon)
            assert daemon.metric("districtmon_device_reboots_total", site="bts-snmpd") == expected
            assert daemon.metric("districtmon_device_reboots_total", site="bts-ups") == 0.0
        finally:
            assert daemon.stop() == 0
        assert read_boots(path)["bts-snmpd"] > time.time() - 3600  # the boot it really had
