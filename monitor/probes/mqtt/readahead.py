"""A socket that reads ahead: paho's byte-sized reads served from one large read.

paho-mqtt reads a packet with `recv(1)` for its command byte, `recv(1)` for each byte of its
remaining length, then `recv(n)` for the rest, and, for QoS 0 and 1, one packet per
`loop_read()`; aiomqtt calls `loop_read()` once per readiness of the socket, again only while
the socket's `pending()` is above zero (meant for TLS, whose records hold decoded bytes the
kernel no longer shows). For small messages that is three or more system calls and one pass
of the event loop per message: most of what a message cost the daemon.

This wrapper takes one large `recv` from the kernel and serves paho's reads from it, and
`pending()` tells aiomqtt how much is left, so one readiness of the socket handles every
whole packet that one read brought. The framing stays paho's: nothing here knows MQTT, the
bytes come out in order, each `recv` returns at most what was asked, as a socket's does.

One large read per readiness, no more: when the buffer is empty again within the same pass
(a packet cut at its end), reads go straight to the socket with paho's own sizes, so the
pass ends at the end of that packet instead of reading on while a fast broker keeps the
socket full -- the event loop (self-checks, heartbeats, the ledger writer) gets its turn after
at most `chunk` bytes. A pass ends when `pending()` reports nothing left.
"""

from __future__ import annotations

from typing import Protocol

#: bytes per read from the kernel: a few hundred small reports, a few ms of handling
CHUNK = 64 * 1024


class StreamSocket(Protocol):
    """What paho uses of a socket (its `SocketLike`), which this wrapper also is."""

    def recv(self, buffer_size: int, /) -> bytes: ...

    def send(self, buffer: bytes | bytearray, /) -> int: ...

    def close(self) -> None: ...

    def fileno(self) -> int: ...

    def setblocking(self, flag: bool, /) -> None: ...


class ReadAheadSocket:
    """`sock`, with reads served from a buffer filled `chunk` bytes at a time (see the module
    doc). Everything else goes to `sock` unchanged."""

    def __init__(self, sock: StreamSocket, chunk: int = CHUNK) -> None:
        self.inner = sock
        self._chunk = chunk
        self._buffer = b""
        self._at = 0
        self._filled = False  # this pass (since pending() last found nothing) read ahead once
        self.reads = 0  # from the kernel
        self.send = sock.send
        self.fileno = sock.fileno
        self.setblocking = sock.setblocking

    def recv(self, size: int) -> bytes:
        """At most `size` bytes: from the buffer while it holds any, else from the socket (its
        errors, BlockingIOError and end of stream as b"", pass through unchanged)."""
        at = self._at
        buffer = self._buffer
        if at < len(buffer):
            end = at + size
            self._at = end
            return buffer[at:end]
        self.reads += 1
        if self._filled:  # read ahead once already in this pass: no more than asked
            return self.inner.recv(size)
        data = self.inner.recv(max(size, self._chunk))
        self._filled = True
        if len(data) <= size:
            self._buffer, self._at = b"", 0
            return data
        self._buffer, self._at = data, size
        return data[:size]

    def pending(self) -> int:
        """Bytes readable without the kernel: what the buffer holds, else what the socket
        under it holds decoded (TLS). Nothing left ends the pass (see the module doc)."""
        left = len(self._buffer) - self._at
        if left > 0:
            return left
        inner = getattr(self.inner, "pending", None)
        left = int(inner()) if inner is not None else 0
        if left <= 0:
            self._filled = False
        return left

    def close(self) -> None:
        self._buffer, self._at = b"", 0
        self.inner.close()
