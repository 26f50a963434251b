"""Both SNMP engines keep one contract (monitor.probes.snmp.engine) against the same real agents:
net-snmp snmpd (v2c; v3 authNoPriv and authPriv with SHA/AES and SHA-256/AES-256) and
snmpsim. Every test runs once per engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from peers import LOCALHOST, SYS_NAME, SYS_UPTIME, Snmpd, free_udp_port

from monitor.config.credentials import Secret, SnmpCredential
from monitor.config.settings import SNMP_ENGINES as ENGINES
from monitor.probes.snmp.engine import SnmpEngine, SnmpError, SnmpTarget
from monitor.probes.snmp.engines import create_engine

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
