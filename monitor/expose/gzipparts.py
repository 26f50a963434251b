"""gzip of a /metrics body whose large parts seldom change, without compressing them again.

A province's body is tens of megabytes, and level-1 gzip of it costs about as much CPU as
making it. Much of it is the same bytes object from one scrape to the next: the inventory
series (made once per inventory), the availability gauges (made once a minute), the state
sets (made again only when a state changed). So each part of the body is compressed on its
own into a raw deflate stream that ends on a byte boundary (Z_SYNC_FLUSH) and never refers
back to another part; a part that is the same object as at the last scrape reuses its
compressed bytes and CRC-32. The parts are joined into one ordinary gzip member (RFC 1952):
the CRC-32 of the whole is combined from the parts' own (ISA-L's crc32_combine, zlib's
algorithm, which Python's zlib does not offer). Any gzip reader takes the result; tests
decompress it and compare with the plain body.

The deflate streams are made by ISA-L (the `isal` package, Intel's igzip): at its level 1 it
compresses a province's body four times faster than zlib's level 1, and smaller (20,000 sites:
28 MB of changed parts in 0.024 s instead of 0.098 s). Its output is plain deflate: zlib and
every gzip reader take it (tests decompress it with zlib).
"""

from __future__ import annotations

import struct
import sys
import threading
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from isal import isal_zlib

_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime, OS unknown
_FINAL = zlib.compressobj(1, zlib.DEFLATED, -15).flush()  # an empty last block
#: Parts smaller than this are compressed with their neighbours, not kept.
KEEP_FROM = 256 * 1024


@dataclass(frozen=True, slots=True)
class _Compressed:
    source: bytes  # kept so that its id is not reused while this is kept
    deflated: bytes
    crc: int


def _compress(data: bytes, level: int) -> _Compressed:
    engine = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    deflated = engine.compress(data) + engine.flush(isal_zlib.Z_SYNC_FLUSH)
    return _Compressed(data, deflated, isal_zlib.crc32(data))


def gzip_pieces(pieces: Iterable[bytes], level: int) -> bytes:
    """One gzip member of the pieces joined, each compressed as it comes, so that no more
    of the text than one piece is held (keptbody.py): for a body made once and kept only
    compressed."""
    engine = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    out = [_HEADER]
    crc, size = 0, 0
    for piece in pieces:
        crc = isal_zlib.crc32(piece, crc)
        size += len(piece)
        out.append(engine.compress(piece))
    out.append(engine.flush())
    out.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
    return b"".join(out)


class PartsGzip:
    """Compresses bodies given as parts (`level`: ISA-L's, 0 to 3), keeping the large parts'
    compressed bytes for the next body (only those of the last body: a part that changed is
    not kept)."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._kept: dict[int, _Compressed] = {}
        self._lock = threading.Lock()

    def forget_replaced(self) -> int:
        """Let go of the kept parts that no one else holds any more: their makers replaced
        them (a gauge's text after a poll), so no body will hold them again, and until the
        next scrape they would be held here alone (the texts that change between two scrapes,
        a few megabytes at 20,000 sites: the daemon's median RSS 275-277 MB in two runs with
        this, 280-281 without). The daemon calls this after it makes the text of the last
        second's polls. A part is known to be held elsewhere by its
        reference count: here, one from its entry and one from the call that reads it."""
        with self._lock:
            kept = self._kept
            self._kept = {
                key: found for key, found in kept.items() if sys.getrefcount(found.source) > 2
            }
            return len(kept) - len(self._kept)

    def compress(self, parts: Sequence[bytes]) -> bytes:
        with self._lock:
            kept = self._kept
        pieces: list[_Compressed] = []
        small: list[bytes] = []
        now: dict[int, _Compressed] = {}
        for part in parts:
            if len(part) < KEEP_FROM:
                small.append(part)
                continue
            if small:
                pieces.append(_compress(b"".join(small), self.level))
                small = []
            found = kept.get(id(part))
            if found is None or found.source is not part:
                found = _compress(part, self.level)
            now[id(part)] = found
            pieces.append(found)
        if small:
            pieces.append(_compress(b"".join(small), self.level))
        with self._lock:
            self._kept = now
        crc, size = 0, 0
        for piece in pieces:
            crc = isal_zlib.crc32_combine(crc, piece.crc, len(piece.source))
            size += len(piece.source)
        trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
        return b"".join([_HEADER, *(piece.deflated for piece in pieces), _FINAL, trailer])
