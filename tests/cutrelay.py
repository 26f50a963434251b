"""A TCP relay between a client and a real mosquitto that decides how the broker's bytes reach
the client: as they come, one byte a write (every packet cut at every byte, its length bytes
too), held back and then written all at once (many packets in one read), or cut off in the
middle of a packet (the connection dropped after part of it).

The simulator's BrokerRelay, with its broker-to-client direction shaped; client-to-broker
bytes go through as they come. It knows nothing of MQTT: it counts and cuts bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

from monitor.simulator.relay import CHUNK, BrokerRelay

BYTE_PAUSE_SECONDS = 0.001  # between single bytes: the client reads each one on its own


class CutRelay(BrokerRelay):
    def __init__(self, broker: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), broker)
        self.bytewise = False
        self.writes = 0  # writes to the client
        self.cuts = 0
        self._held: dict[asyncio.StreamWriter, bytearray] | None = None
        self._cut: tuple[int, int] | None = None  # (a piece of at least this many bytes, keep)

    def hold(self) -> None:
        """Keep what the broker sends from now on, until `release`."""
        self._held = {}

    def release(self) -> int:
        """Write what was held, to each client in one write; returns the bytes written."""
        held, self._held = self._held or {}, None
        for writer, data in held.items():
            writer.write(bytes(data))
            self.writes += 1
        return sum(len(data) for data in held.values())

    def cut_within_next(self, at_least: int, keep: int) -> None:
        """In the next piece of at least `at_least` bytes from the broker, forward its first
        `keep` bytes, then drop the connection."""
        self._cut = (at_least, keep)

    async def _down(self, broker: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        sock = client.get_extra_info("socket")
        if sock is not None:  # each write its own segment: what the client reads apart
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while data := await broker.read(CHUNK):
                if self._cut is not None and len(data) >= self._cut[0]:
                    keep = self._cut[1]
                    self._cut = None
                    await self._write(client, data[:keep])
                    self.cuts += 1
                    return
                if self._held is not None:
                    self._held.setdefault(client, bytearray()).extend(data)
                elif self.bytewise:
                    for at in range(len(data)):
                        await self._write(client, data[at : at + 1])
                        await asyncio.sleep(BYTE_PAUSE_SECONDS)
                else:
                    await self._write(client, data)
        finally:
            with contextlib.suppress(Exception):
                client.transport.abort()

    async def _write(self, client: asyncio.StreamWriter, data: bytes) -> None:
        client.write(data)
        await client.drain()
        self.writes += 1


@contextlib.asynccontextmanager
async def cut_relay(broker: tuple[str, int]) -> AsyncIterator[CutRelay]:
    relay = CutRelay(broker)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()
