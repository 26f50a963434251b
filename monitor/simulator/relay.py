"""The path to the MQTT broker, as a TCP relay the simulator can cut: a broker outage.

With `--broker-relay HOST:PORT` the simulator listens there and forwards every connection to
the real broker (`--mqtt`); the daemon and the simulated devices connect to the relay. A
`broker-outage` closes every relayed connection and refuses new ones until `broker-restore`:
for everyone the broker is unreachable. The broker itself keeps running, so, as in a network
outage, it publishes the last wills of the devices whose connections were cut; the devices
publish `online` again when they reconnect. Bytes are copied as they are: the relay knows
nothing of MQTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

CHUNK = 65536


class BrokerRelay:
    def __init__(self, listen: tuple[str, int], broker: tuple[str, int]) -> None:
        self.listen = listen
        self.broker = broker
        self.up = True
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, *self.listen)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def set_up(self, up: bool) -> None:
        self.up = up
        log.info("broker relay: %s", "restored" if up else "outage, cutting every connection")
        if not up:
            for writer in list(self._open):
                writer.transport.abort()
            self._open.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):
                writer.transport.abort()
            await self._server.wait_closed()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if not self.up:
            self.refused += 1
            client_w.transport.abort()
            return
        try:
            broker_r, broker_w = await asyncio.open_connection(*self.broker)
        except OSError as exc:
            log.debug("broker relay: broker unreachable: %s", exc)
            client_w.transport.abort()
            return
        pair = {client_w, broker_w}
        self._open |= pair
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(_pump(client_r, broker_w))
                tasks.create_task(self._down(broker_r, client_w))
        except* (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._open -= pair
            for writer in pair:
                writer.transport.abort()

    async def _down(self, broker: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        """The broker's bytes to the client, as they come (tests shape them: tests/cutrelay.py)."""
        await _pump(broker, client)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until either side closes; then close the other direction too."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.transport.abort()
