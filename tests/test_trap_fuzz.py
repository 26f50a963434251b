"""The trap receiver under a spray of hostile datagrams: random bytes, truncated and bit-flipped
real notifications (captured from net-snmp's snmptrap and snmpinform: v1, v2c, v3 authPriv,
an inform). Every datagram is counted exactly once under one result, nothing reaches asyncio's
exception handler (which logged a traceback per datagram), the log stays a few lines, and the
receiver still takes a real trap afterwards."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import subprocess
from collections import Counter

import pytest
from peers import LOCALHOST

from monitor.config.credentials import Secret, SnmpCredential
from monitor.config.settings import TrapSettings
from monitor.probes.snmp.trap_receiver import REFUSED, TrapEvent, TrapReceiver
from monitor.runtime.daemon import loop_error_handler

COMMUNITY = "fuzz-Zq7-community"
V3 = ["-u", "fuzzer", "-l", "authPriv", "-a", "SHA", "-A", "fuzz-auth-Zq7"]
V3 += ["-x", "AES", "-X", "fuzz-priv-Zq7", "-e", "0x8000000001020304"]
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
NET_SNMP_ENV = {"MIBS": "", "MIBDIRS": "", "PATH": "/usr/bin:/bin"}
DATAGRAMS = 12_000
BATCH = 200


def capture(tool: str, *args: str) -> bytes:
    """The first datagram net-snmp's `tool` sends to a socket of ours."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind((LOCALHOST, 0))
        sink.settimeout(10)
        port = sink.getsockname()[1]
        proc = subprocess.Popen(
            [tool, *args, f"{LOCALHOST}:{port}", "", LINK_DOWN, "1.3.6.1.2.1.2.2.1.1.3", "i", "3"],
            env=NET_SNMP_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            return sink.recv(65535)
        finally:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def real_notifications() -> list[bytes]:
    return [
        capture_v1(),
        capture("snmptrap", "-v", "2c", "-c", COMMUNITY),
        capture("snmpinform", "-v", "2c", "-c", COMMUNITY, "-t", "5", "-r", "0"),
        capture("snmptrap", "-v", "3", *V3),
    ]


def capture_v1() -> bytes:
    """v1 traps take other arguments: enterprise, agent address, generic and specific trap."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind((LOCALHOST, 0))
        sink.settimeout(10)
        port = sink.getsockname()[1]
        done = subprocess.run(
            [
                "snmptrap",
                "-v",
                "1",
                "-c",
                COMMUNITY,
                f"{LOCALHOST}:{port}",
                "1.3.6.1.4.1.99999",
                LOCALHOST,
                "2",
                "0",
                "",
            ],
            env=NET_SNMP_ENV,
            capture_output=True,
            timeout=10,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return sink.recv(65535)


def hostile(real: list[bytes], rng: random.Random) -> bytes:
    """One datagram: random bytes, a truncated real one, or a real one with bits flipped."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 600))
    base = rng.choice(real)
    if kind == 1:
        return base[: rng.randrange(0, len(base))]
    data = bytearray(base)
    for _ in range(rng.randrange(1, 6)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    if kind == 3:  # a flipped one, truncated too
        data = data[: rng.randrange(1, len(data) + 1)]
    return bytes(data)


async def test_every_hostile_datagram_is_counted_once_and_the_log_stays_short(
    real_notifications: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    credentials = {
        "fuzz-v2c": SnmpCredential("fuzz-v2c", "2c", community=Secret(COMMUNITY)),
        "fuzz-v3": SnmpCredential(
            "fuzz-v3",
            "3",
            user="fuzzer",
            auth_protocol="SHA",
            auth_key=Secret("fuzz-auth-Zq7"),
            priv_protocol="AES",
            priv_key=Secret("fuzz-priv-Zq7"),
            engine_id=bytes.fromhex("8000000001020304"),
        ),
    }
    events: list[TrapEvent] = []
    receiver = TrapReceiver(
        TrapSettings(LOCALHOST, 0, ("fuzz-v2c", "fuzz-v3")), credentials, events.append
    )
    receiver.start()
    loop_errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: loop_errors.append(ctx))
    rng = random.Random(16)
    sent = 0
    try:
        with caplog.at_level(logging.DEBUG), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for real in real_notifications:  # each real one first: the receiver takes them
                s.sendto(real, (LOCALHOST, receiver.port))
                sent += 1
            await counted(receiver, sent)
            assert len(events) == len(real_notifications), "all four taken"
            while sent < DATAGRAMS:
                for _ in range(BATCH):
                    s.sendto(hostile(real_notifications, rng), (LOCALHOST, receiver.port))
                    sent += 1
                await counted(receiver, sent)  # nothing lost on loopback
            s.sendto(real_notifications[1], (LOCALHOST, receiver.port))
            sent += 1
            await counted(receiver, sent)
    finally:
        receiver.close()
    refused = receiver.rejected()
    assert set(refused) == set(REFUSED)
    # exactly once each: handed on as events, or refused under one reason
    assert len(events) + sum(refused.values()) == sent == receiver.datagrams
    assert refused["malformed"] > 0 and refused["internal"] == 0
    assert events[-1].trap_oid == LINK_DOWN  # still taking real traps after all that
    assert loop_errors == []
    records = [r for r in caplog.records if r.name.startswith(("monitor", "asyncio", "pysnmp"))]
    assert not [r for r in records if r.exc_info], "no traceback in the log"
    per_reason = Counter(r.getMessage().split(": ")[-1].split(" (")[0] for r in records)
    assert len(records) <= 5 * len(REFUSED) + 1, per_reason  # 5 a minute per reason, + start
    text = "\n".join(r.getMessage() for r in records)
    assert COMMUNITY not in text and "fuzz-priv-Zq7" not in text
    print(f"\n{sent} datagrams: {len(events)} taken, refused {refused}")


async def counted(receiver: TrapReceiver, sent: int, limit: float = 20.0) -> None:
    for _ in range(int(limit / 0.01)):
        if receiver.datagrams >= sent:
            assert receiver.datagrams == sent
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{receiver.datagrams} of {sent} datagrams counted")


async def test_what_escapes_the_event_loop_is_logged_a_few_times_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The daemon's loop handler: the same fault a thousand times is three lines."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_error_handler())

    def broken() -> None:
        raise ValueError("a fault in a transport callback")

    with caplog.at_level(logging.DEBUG):
        for _ in range(1000):
            loop.call_soon(broken)
        await asyncio.sleep(0.1)
    records = [r for r in caplog.records if r.name == "monitor.runtime.loop"]
    assert len(records) == 3 and all(r.exc_info for r in records)
