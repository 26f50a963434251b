"""Pin the behaviour of the test peers (tests/peers.py) with net-snmp's own snmpget."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from peers import (
    SYS_DESCR,
    SYS_LOCATION,
    SYS_NAME,
    AgentError,
    Snmpd,
    Snmpsim,
    free_udp_port,
    recording,
    snmpget,
)


def test_free_udp_port_is_bindable() -> None:
    port = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_snmpd_answers_configured_system_group(snmpd: Snmpd) -> None:
    assert snmpd.address[0] == "127.0.0.1"
    assert snmpget(snmpd.port, SYS_NAME, community=snmpd.community) == snmpd.sys_name
    assert snmpget(snmpd.port, SYS_LOCATION, community=snmpd.community) == snmpd.sys_location


def test_snmpd_ignores_other_communities(snmpd: Snmpd) -> None:
    assert snmpget(snmpd.port, SYS_NAME, community="wrong", timeout=0.3) is None


def test_snmpd_answers_snmpv3_auth_priv(snmpd: Snmpd) -> None:
    value = snmpget(snmpd.port, SYS_NAME, community="", extra_args=snmpd.v3_args())
    assert value == snmpd.sys_name


def test_snmpd_stop_then_start_on_same_port(snmpd: Snmpd) -> None:
    port = snmpd.port
    snmpd.stop()
    assert not snmpd.running
    assert snmpget(port, SYS_NAME, community=snmpd.community, timeout=0.3) is None

    snmpd.start()
    assert snmpd.port == port
    assert snmpget(port, SYS_NAME, community=snmpd.community) == snmpd.sys_name
    # The v3 user survives the restart (its persisted state is reloaded).
    assert snmpget(port, SYS_NAME, community="", extra_args=snmpd.v3_args()) == snmpd.sys_name


def test_snmpd_close_removes_everything() -> None:
    agent = Snmpd(sys_name="site-x")
    agent.start()
    pid, port, workdir = agent.pid, agent.port, agent.dir
    agent.close()
    assert pid is not None and not agent.running
    assert not workdir.exists()
    assert snmpget(port, SYS_NAME, community=agent.community, timeout=0.3) is None
    with pytest.raises(AgentError):
        agent.start()
    agent.close()  # idempotent


def test_snmpd_start_failure_reports_log() -> None:
    with Snmpd(extra_config="thisIsNotAnSnmpdDirective yes") as agent:
        # snmpd only warns about unknown tokens; a clash on the port is fatal.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind(agent.address)
            with pytest.raises(AgentError, match="exited"):
                agent.start(timeout=5)
        assert not agent.running


def test_snmpsim_serves_recording_per_community(snmpsim_agent: Snmpsim) -> None:
    port = snmpsim_agent.port
    ups = snmpget(port, SYS_DESCR, community="ups-test")
    router = snmpget(port, SYS_DESCR, community="router-test")
    assert ups is not None and ups.startswith("APC Web/SNMP Management Card")
    assert router == "Cisco Internetwork Operating System Software"


def test_snmpsim_unknown_community_times_out(snmpsim_agent: Snmpsim) -> None:
    assert snmpget(snmpsim_agent.port, SYS_DESCR, community="no-such", timeout=0.3) is None


def test_snmpsim_stop_then_start_on_same_port(snmpsim_agent: Snmpsim) -> None:
    port = snmpsim_agent.port
    snmpsim_agent.stop()
    assert snmpget(port, SYS_DESCR, community="ups-test", timeout=0.3) is None
    snmpsim_agent.start()
    assert snmpsim_agent.port == port
    assert snmpget(port, SYS_NAME, community="router-test") == "DUMSYS-50"


def test_snmpsim_several_endpoints() -> None:
    ports = [free_udp_port(), free_udp_port()]
    with Snmpsim({"ups": recording("UPS/apc-8932.snmprec")}, ports=ports) as agent:
        started = time.monotonic()
        agent.start()
        assert time.monotonic() - started < 10
        for port in ports:
            value = snmpget(port, SYS_DESCR, community="ups")
            assert value is not None and value.startswith("APC")


async def test_async_stop_start_keep_the_loop_running(snmpd: Snmpd) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    await snmpd.stop_async()
    await snmpd.start_async()
    ticker.cancel()
    # a blocked loop would let the ticker run once at most; start() takes ~0.2 s
    assert ticks >= 2
    assert snmpget(snmpd.port, SYS_NAME, community=snmpd.community) == snmpd.sys_name
