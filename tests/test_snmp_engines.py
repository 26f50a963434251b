"""Both SNMP engines keep one contract (monitor.probes.snmp.engine) against the same real agents:
net-snmp snmpd (v2c; v3 authNoPriv and authPriv with SHA/AES and SHA-256/AES-256) and
snmpsim. Every test runs once per engine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import pytest
from peers import LOCALHOST, SYS_NAME, SYS_UPTIME, Snmpd, free_udp_port

from monitor.config.credentials import Secret, SnmpCredential
from monitor.config.settings import SNMP_ENGINES as ENGINES
from monitor.probes.snmp.engine import SnmpEngine, SnmpError, SnmpTarget
from monitor.probes.snmp.engines import create_engine
from monitor.probes.snmp.gufo_engine import GufoEngine

COMMUNITY = "engine-test"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
LOOPBACK_IP_ENTRY = "1.3.6.1.2.1.4.20.1.1.127.0.0.1"  # ipAdEntAddr: an IpAddress
NOT_THERE = "1.3.6.1.2.1.1.99.0"

V3_EXTRA = """
createUser noauth-user
createUser auth-user SHA auth-pass-sha1
createUser strong-user SHA-256 auth-pass-256 AES-256 priv-pass-256
rouser noauth-user noauth
rouser auth-user auth
rouser strong-user priv
"""


@pytest.fixture(scope="module")
def agent() -> Iterator[Snmpd]:
    with Snmpd(community=COMMUNITY, extra_config=V3_EXTRA) as snmpd:
        snmpd.start()
        yield snmpd


@pytest.fixture(params=ENGINES)
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[SnmpEngine]:
    made = create_engine(request.param)
    yield made
    await made.close()


def v2c(community: str = COMMUNITY) -> SnmpCredential:
    return SnmpCredential("test", "2c", Secret(community))


def target(agent: Snmpd, credential: SnmpCredential, timeout: float = 1.0) -> SnmpTarget:
    return SnmpTarget(LOCALHOST, agent.port, credential, timeout, 0)


V3_CREDENTIALS = {
    "authPriv SHA/AES": SnmpCredential(
        "v3",
        "3",
        user="districtmon",
        auth_protocol="SHA",
        auth_key=Secret("districtmon-auth"),
        priv_protocol="AES",
        priv_key=Secret("districtmon-priv"),
    ),
    "authPriv SHA-256/AES-256": SnmpCredential(
        "v3",
        "3",
        user="strong-user",
        auth_protocol="SHA-256",
        auth_key=Secret("auth-pass-256"),
        priv_protocol="AES-256",
        priv_key=Secret("priv-pass-256"),
    ),
    "authNoPriv SHA": SnmpCredential(
        "v3", "3", user="auth-user", auth_protocol="SHA", auth_key=Secret("auth-pass-sha1")
    ),
    "noAuthNoPriv": SnmpCredential("v3", "3", user="noauth-user"),
}


async def test_get_returns_plain_values_by_oid_and_leaves_missing_ones_out(
    agent: Snmpd, engine: SnmpEngine
) -> None:
    oids = [SYS_UPTIME, SYS_NAME, SYS_OBJECT_ID, LOOPBACK_IP_ENTRY, NOT_THERE]
    values = await engine.get(target(agent, v2c()), oids)
    assert set(values) == {SYS_UPTIME, SYS_NAME, SYS_OBJECT_ID, LOOPBACK_IP_ENTRY}
    uptime = values[SYS_UPTIME]
    assert isinstance(uptime, int) and uptime >= 0
    assert values[SYS_NAME] == agent.sys_name.encode()
    assert values[SYS_OBJECT_ID] == "1.3.6.1.4.1.8072.3.2.10"  # net-snmp's Linux agent
    assert values[LOOPBACK_IP_ENTRY] == "127.0.0.1"


@pytest.mark.parametrize("security", list(V3_CREDENTIALS))
async def test_snmpv3_at_each_security_level_reads_the_agent(
    agent: Snmpd, engine: SnmpEngine, security: str
) -> None:
    values = await engine.get(target(agent, V3_CREDENTIALS[security]), [SYS_NAME])
    assert values == {SYS_NAME: agent.sys_name.encode()}


async def test_a_wrong_v3_key_is_an_auth_error_not_a_timeout(
    agent: Snmpd, engine: SnmpEngine
) -> None:
    good = V3_CREDENTIALS["authPriv SHA-256/AES-256"]
    wrong = SnmpCredential(
        "v3",
        "3",
        user=good.user,
        auth_protocol=good.auth_protocol,
        auth_key=Secret("not-the-auth-pass"),
        priv_protocol=good.priv_protocol,
        priv_key=good.priv_key,
    )
    with pytest.raises(SnmpError) as caught:
        await engine.get(target(agent, wrong), [SYS_NAME])
    assert caught.value.reason == "auth"
    assert "not-the-auth-pass" not in str(caught.value)


async def test_a_wrong_community_gets_no_answer_and_times_out_within_the_budget(
    agent: Snmpd, engine: SnmpEngine
) -> None:
    started = time.monotonic()
    with pytest.raises(SnmpError) as caught:
        await engine.get(SnmpTarget(LOCALHOST, agent.port, v2c("wrong"), 0.2, 1), [SYS_NAME])
    assert caught.value.reason == "timeout"
    assert 0.35 <= time.monotonic() - started < 2.0  # two attempts of 0.2 s, not more
    assert "wrong" not in str(caught.value)


async def test_a_port_with_no_agent_times_out(engine: SnmpEngine) -> None:
    silent = SnmpTarget(LOCALHOST, free_udp_port(), v2c(), 0.2, 0)
    with pytest.raises(SnmpError) as caught:
        await engine.get(silent, [SYS_NAME])
    assert caught.value.reason == "timeout"


async def test_walk_returns_the_rows_of_one_subtree_in_order(
    agent: Snmpd, engine: SnmpEngine
) -> None:
    result = await engine.walk(target(agent, v2c()), IF_DESCR, 1000)
    assert not result.truncated
    assert result.rows, "every Linux host has at least lo"
    assert all(oid.startswith(IF_DESCR + ".") for oid, _ in result.rows)
    assert b"lo" in [value for _, value in result.rows]
    indexes = [int(oid.rsplit(".", 1)[1]) for oid, _ in result.rows]
    assert indexes == sorted(indexes)


async def test_walk_over_snmpv3_authpriv(agent: Snmpd, engine: SnmpEngine) -> None:
    result = await engine.walk(target(agent, V3_CREDENTIALS["authPriv SHA/AES"]), IF_DESCR, 100)
    assert b"lo" in [value for _, value in result.rows]


async def test_walk_stops_at_max_rows_and_says_so(agent: Snmpd, engine: SnmpEngine) -> None:
    result = await engine.walk(target(agent, v2c()), "1.3.6.1.2.1", 40)
    assert len(result.rows) == 40
    assert result.truncated and result.problem == "more than 40 rows"


async def test_walk_of_an_absent_subtree_is_empty_not_an_error(
    agent: Snmpd, engine: SnmpEngine
) -> None:
    result = await engine.walk(target(agent, v2c()), "1.3.6.1.2.1.33.1.3.3.1.3", 100)
    assert result.rows == [] and not result.truncated


async def test_many_requests_in_flight_to_one_agent_all_get_their_own_answers(
    agent: Snmpd, engine: SnmpEngine
) -> None:
    answers = await asyncio.gather(
        *(engine.get(target(agent, v2c()), [SYS_NAME, SYS_UPTIME]) for _ in range(50))
    )
    assert all(answer[SYS_NAME] == agent.sys_name.encode() for answer in answers)


# --- the gufo engine keeps its sessions: sockets, late answers, cancellation, bounds ----------


def open_sockets() -> int:
    """Sockets this process holds now (every fd that is one), the ground truth for leaks."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


async def test_gufo_keeps_one_socket_per_agent_between_polls_and_closes_it_on_close(
    agent: Snmpd,
) -> None:
    engine = GufoEngine()
    before = open_sockets()
    for _ in range(20):
        values = await engine.get(target(agent, v2c()), [SYS_NAME])
        assert values == {SYS_NAME: agent.sys_name.encode()}
    walked = await engine.walk(target(agent, v2c()), IF_DESCR, 100)
    assert walked.rows
    assert open_sockets() == before + 1  # twenty GETs and a walk, one socket
    await engine.get(target(agent, V3_CREDENTIALS["authNoPriv SHA"]), [SYS_NAME])
    assert open_sockets() == before + 2  # another credential: a session of its own
    await engine.close()
    assert open_sockets() == before


class DelayingProxy(asyncio.DatagramProtocol):
    """A UDP relay in front of an agent that holds back the agent's n-th reply `delays[n]`
    seconds (in order of the requests), so that an answer can come after its request gave up."""

    def __init__(self, upstream: tuple[str, int], delays: list[float]) -> None:
        self.upstream, self.delays = upstream, delays
        self.client: tuple[str, int] | None = None
        self.replies = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if addr == self.upstream:
            delay = self.delays[self.replies] if self.replies < len(self.delays) else 0.0
            self.replies += 1
            client = self.client
            assert client is not None
            asyncio.get_running_loop().call_later(delay, self.transport.sendto, data, client)
        else:
            self.client = addr
            self.transport.sendto(data, self.upstream)


async def test_gufo_never_takes_a_late_answer_for_the_answer_to_a_later_request(
    agent: Snmpd,
) -> None:
    """The kept socket gets the late answer to an attempt that timed out while the next poll
    waits for its own: that poll must get its own OIDs, not the stale sysName."""
    port = free_udp_port()
    loop = asyncio.get_running_loop()
    # The 1st attempt is answered after 3 s (it gave up at 2 s), its retry at once; the next
    # poll's answer is held 1.5 s, so the stale answer lands in the middle of its wait.
    transport, proxy = await loop.create_datagram_endpoint(
        lambda: DelayingProxy((LOCALHOST, agent.port), [3.0, 0.0, 1.5]),
        local_addr=(LOCALHOST, port),
    )
    engine = GufoEngine()
    try:
        through = SnmpTarget(LOCALHOST, port, v2c(), 2.0, 1)
        first = await engine.get(through, [SYS_NAME])
        assert first == {SYS_NAME: agent.sys_name.encode()}
        second = await engine.get(through, [SYS_UPTIME])
        assert set(second) == {SYS_UPTIME} and isinstance(second[SYS_UPTIME], int)
        assert proxy.replies == 3  # the late answer did reach the engine's socket, no retry
        third = await engine.get(through, [SYS_NAME, SYS_UPTIME])  # and nothing is left over
        assert third[SYS_NAME] == agent.sys_name.encode() and SYS_UPTIME in third
    finally:
        await engine.close()
        transport.close()


async def test_gufo_a_cancelled_poll_frees_its_session_and_close_leaves_no_socket(
    agent: Snmpd,
) -> None:
    before = open_sockets()
    engine = GufoEngine()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes, never answers
        silent.bind((LOCALHOST, 0))
        quiet = SnmpTarget(LOCALHOST, silent.getsockname()[1], v2c(), 5.0, 0)
        waiting = asyncio.create_task(engine.get(quiet, [SYS_NAME]))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # The session is free again (no lock left held): the same agent, asked with a
        # shorter timeout on the same session, times out on time.
        started = time.monotonic()
        with pytest.raises(SnmpError) as caught:
            await engine.get(SnmpTarget(LOCALHOST, quiet.port, v2c(), 0.2, 0), [SYS_NAME])
        assert caught.value.reason == "timeout" and time.monotonic() - started < 2.0
        assert await engine.get(target(agent, v2c()), [SYS_NAME])
        await engine.close()
    assert open_sockets() == before


async def test_gufo_keeps_no_more_sessions_than_its_bound(agent: Snmpd) -> None:
    before = open_sockets()
    engine = GufoEngine(max_sessions=2)
    credentials = [SnmpCredential(f"c{n}", "2c", Secret(COMMUNITY)) for n in range(5)]
    for _ in range(3):
        for credential in credentials:
            values = await engine.get(target(agent, credential), [SYS_NAME])
            assert values == {SYS_NAME: agent.sys_name.encode()}
            assert open_sockets() <= before + 2
    await engine.close()
    assert open_sockets() == before
