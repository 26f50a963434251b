"""The simulator's watch on its own event loop: a held-up loop is reported with its length, so a
probe that timed out in a whole-stack run can be told apart from a district that was late."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

import pytest
from pyasn1.codec.ber import encoder
from pysnmp.proto import api
from simpeers import SHIPPED

from monitor.config.load import load_config
from monitor.core.model import SnmpProbe
from monitor.simulator.agent import AgentServer, Responder
from monitor.simulator.clock import ManualClock
from monitor.simulator.stalls import StallWatch
from monitor.simulator.world import World


async def test_a_held_up_loop_is_logged_and_counted_with_its_length(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = StallWatch(every=0.02, report_seconds=0.2)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.1)
        with caplog.at_level(logging.WARNING, logger="monitor.simulator.stalls"):
            time.sleep(0.5)  # noqa: ASYNC251 -- the whole loop held, as a slow call in it would
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert watch.stalls >= 1
    assert 0.45 <= watch.worst < 1.5
    lines = [r.getMessage() for r in caplog.records if "held up" in r.getMessage()]
    assert lines and any(f"{watch.worst:.2f} s" in line for line in lines)
    assert watch.stats() == {"stalls": watch.stalls, "worst_seconds": round(watch.worst, 3)}


async def test_a_burst_of_snmp_requests_is_answered_in_turns_so_other_devices_run_between() -> None:
    """A poll round's requests arrive together; answering them all before anything else ran
    held every portal and publisher of the district up (a whole-stack day failed on it)."""
    config = load_config(SHIPPED, environ={})
    world = World(config, ManualClock())
    sim = world.sites["gw-district-core"]
    assert isinstance(sim.probe, SnmpProbe)
    server = AgentServer(world, Responder(world.clock), mode="shared")
    server.start()
    burst = 120
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for request_id in range(1, burst + 1):
            client.sendto(
                _get_uptime(sim.community, request_id), (sim.probe.address, sim.probe.port)
            )
        answered: list[int] = []
        async with asyncio.timeout(20):
            while sum(server.stats.answered.values()) < burst:
                await asyncio.sleep(0)  # one turn of the loop: what a portal's callback gets
                answered.append(sum(server.stats.answered.values()))
        client.setblocking(False)
        replies = 0
        with contextlib.suppress(BlockingIOError):
            while client.recv(65535):
                replies += 1
    finally:
        client.close()
        server.close()
    assert replies == burst  # every request answered: none dropped to make room
    per_turn = [b - a for a, b in zip([0, *answered], answered, strict=False)]
    assert max(per_turn) <= 32, per_turn  # a portal waits on a few dozen answers, not a round


def _get_uptime(community: bytes, request_id: int) -> bytes:
    v2c = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = v2c.GetRequestPDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, request_id)
    v2c.apiPDU.set_varbinds(pdu, [((1, 3, 6, 1, 2, 1, 1, 3, 0), v2c.Null(""))])
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, community)
    v2c.apiMessage.set_pdu(message, pdu)
    packet: bytes = encoder.encode(message)
    return packet
