"""The MQTT client's socket that reads ahead (monitor/probes/mqtt/readahead.py), and the hook
that puts it under paho (pahosocket.py).

The socket's own contract on a socketpair: bytes in order however the kernel cut them, at
most what was asked, one large read per pass, errors and end of stream unchanged. Then the
libraries it relies on, against a real mosquitto: paho connects through it, and aiomqtt's read
callback takes every packet one read brought without waiting for more bytes. These last
tests are the ones that fail if paho or aiomqtt change under the hook."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import AsyncIterator, Iterator

import aiomqtt
import paho.mqtt.client as paho
import pytest
from broker import Mosquitto
from cutrelay import CutRelay, cut_relay

from monitor.probes.mqtt import pahosocket
from monitor.probes.mqtt.pahosocket import read_ahead
from monitor.probes.mqtt.readahead import ReadAheadSocket


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(writer, reader), the reader non-blocking as paho's is."""
    writer, reader = socket.socketpair()
    reader.setblocking(False)
    yield writer, reader
    writer.close()
    reader.close()


def drain_pass(sock: ReadAheadSocket, sizes: Iterator[int]) -> bytes:
    """Read as paho and aiomqtt do in one readiness of the socket: until the socket would
    block and `pending()` says nothing is left."""
    out = bytearray()
    while True:
        try:
            while True:
                size = next(sizes)
                data = sock.recv(size)
                assert 0 < len(data) <= size
                out += data
        except BlockingIOError:
            pass
        if sock.pending() == 0:
            return bytes(out)


def test_bytes_come_out_in_order_and_at_most_as_asked_however_the_kernel_cut_them(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    writer, reader = pair
    sock = ReadAheadSocket(reader, chunk=1000)
    rng = random.Random(7)
    stream = rng.randbytes(200_000)
    sizes = iter(lambda: rng.choice((1, 1, 2, 7, 300, 5000)), None)
    got = bytearray()
    at = 0
    while at < len(stream):
        piece = rng.choice((1, 2, 3, 999, 1000, 1001, 4096, 30_000))
        writer.sendall(stream[at : at + piece])
        at += piece
        got += drain_pass(sock, sizes)
    assert bytes(got) == stream
    for size in (1, 2, 5000):  # never more than asked
        writer.sendall(b"x" * 6000)
        assert len(sock.recv(size)) <= size
        drain_pass(sock, iter(lambda: 5000, None))


def test_one_large_read_per_pass_then_only_what_is_asked(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A pass that empties its buffer mid-packet reads the rest with paho's own sizes, so
    that a broker keeping the socket full cannot keep one pass going."""
    writer, reader = pair
    sock = ReadAheadSocket(reader, chunk=4096)
    writer.sendall(bytes(range(256)) * 40)  # 10,240 bytes waiting
    assert sock.recv(1) == b"\x00"
    assert sock.reads == 1
    assert sock.pending() == 4095  # served without the kernel
    assert len(sock.recv(10_000)) == 4095  # what the buffer has, no read
    assert sock.reads == 1
    assert len(sock.recv(10)) == 10  # empty again in the same pass: exactly what is asked
    assert sock.reads == 2 and sock.pending() == 0  # nothing left: the pass ends
    assert len(sock.recv(1)) == 1  # a new pass reads ahead again
    assert sock.reads == 3 and sock.pending() == 4095


def test_would_block_and_end_of_stream_pass_through_after_what_was_buffered(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    writer, reader = pair
    sock = ReadAheadSocket(reader)
    with pytest.raises(BlockingIOError):
        sock.recv(1)
    assert sock.pending() == 0
    writer.sendall(b"abc")
    writer.close()
    assert sock.recv(1) == b"a"  # buffered: the first read took all three
    assert sock.recv(5) == b"bc"
    assert sock.recv(1) == b""  # then the end of the stream, as paho expects it


class _Decoded:
    """A stand-in for a TLS socket: bytes decoded but no longer visible to the kernel."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    def recv(self, size: int, /) -> bytes:
        if not self.data:
            raise BlockingIOError
        out, self.data = self.data[:size], self.data[size:]
        return out

    def pending(self) -> int:
        return len(self.data)

    def send(self, buffer: bytes | bytearray, /) -> int:
        return len(buffer)

    def close(self) -> None:
        self.closed = True

    def fileno(self) -> int:
        return -1

    def setblocking(self, flag: bool, /) -> None:
        pass


def test_pending_includes_what_the_socket_underneath_holds_decoded() -> None:
    inner = _Decoded(b"x" * 100)
    sock = ReadAheadSocket(inner, chunk=30)
    assert sock.recv(10) == b"x" * 10
    assert sock.pending() == 20  # ours first
    sock.recv(20)
    assert sock.pending() == 70  # then the TLS layer's: aiomqtt keeps reading
    assert sock.recv(100) == b"x" * 70  # same pass, already read ahead once: as asked
    assert sock.pending() == 0
    sock.close()
    assert inner.closed


# --- the libraries under the hook, against a real mosquitto ---------------------------------


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as running:
        running.start()
        yield running


@pytest.fixture
async def relay(broker: Mosquitto) -> AsyncIterator[CutRelay]:
    async with cut_relay((broker.host, broker.port)) as relay:
        yield relay


async def test_paho_connects_through_the_read_ahead_socket(broker: Mosquitto) -> None:
    client = aiomqtt.Client(broker.host, broker.port, identifier="read-ahead-test")
    assert read_ahead(client)
    async with client:
        sock = client._client.socket()
        assert isinstance(sock, ReadAheadSocket), type(sock)
        assert isinstance(sock.inner, socket.socket)
        await client.subscribe("t/#", qos=1)
        await client.publish("t/one", b"hello", qos=1)
        message = await asyncio.wait_for(anext(aiter(client.messages)), 5)
        assert (message.topic.value, message.payload) == ("t/one", b"hello")
        assert sock.reads >= 1


async def test_every_packet_one_read_brought_is_taken_without_waiting_for_more(
    broker: Mosquitto, relay: CutRelay
) -> None:
    """Hundreds of packets arrive in one write; the client takes them all in a few reads and
    at once: aiomqtt's callback goes on while `pending()` says bytes are left. If it stopped
    asking, the packets after the first would wait in the buffer for the next bytes from the
    broker (none come: no keepalive within the test), and this fails."""
    client = aiomqtt.Client(broker.host, relay.port, identifier="burst-test", keepalive=60)
    assert read_ahead(client)
    count = 500
    async with client:
        sock = client._client.socket()
        assert isinstance(sock, ReadAheadSocket)
        # QoS 0 to us: the broker sends them all at once, no acknowledgement held up in flight
        await client.subscribe("burst/#", qos=0)
        relay.hold()
        await asyncio.to_thread(
            broker.publish_many, [(f"burst/{n % 7}", f"m{n}") for n in range(count)]
        )
        await asyncio.sleep(0.2)  # the broker has sent them all to the relay
        reads_before = sock.reads
        assert relay.release() >= count * 14  # every packet, held, at once
        got: list[bytes] = []
        async with asyncio.timeout(3):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                got.append(message.payload)
                if len(got) == count:
                    break
        assert got == [f"m{n}".encode() for n in range(count)]
        reads = sock.reads - reads_before
        assert reads <= count // 20, f"{reads} reads for {count} packets"


async def test_without_the_hook_the_client_is_left_as_it_is_and_a_warning_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(paho.Client, "_create_socket")
    monkeypatch.setattr(pahosocket, "_warned", False)
    client = aiomqtt.Client("127.0.0.1", 1)
    with caplog.at_level(logging.WARNING, logger=pahosocket.__name__):
        assert not read_ahead(client)
        assert not read_ahead(client)
    warnings = [r.getMessage() for r in caplog.records if r.name == pahosocket.__name__]
    assert len(warnings) == 1 and "_create_socket" in warnings[0], warnings
    assert "_create_socket" not in vars(client._client)


async def test_the_hook_wraps_what_paho_itself_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """paho's own method still makes the socket (TCP, TLS, proxy...); ours only wraps it."""
    made = socket.socket()
    monkeypatch.setattr(paho.Client, "_create_socket", lambda self: made)
    client = aiomqtt.Client("127.0.0.1", 1)
    assert read_ahead(client, chunk=123)
    sock = client._client._create_socket()
    assert isinstance(sock, ReadAheadSocket) and sock.inner is made
    sock.close()
    assert made.fileno() == -1
