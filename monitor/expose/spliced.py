"""A long text of one piece per site, kept only joined, with new pieces spliced in when read.

The per-site families of /metrics are each one piece (a line, a site's lines of a family, a
state set) per site. Keeping every site's piece and also their joined text, for the scrape to
serve and gzip to keep compressed, held each byte twice: 50 MB at 20,000 sites. So only the
joined text is kept, with each piece's size; a new piece waits, and when the text is read
the runs of unchanged pieces are copied from the old text (memoryview slices, in C) between
the new ones: one copy of the text per scrape, Python work only per new piece. Reading it
again before any piece changed gives the same bytes object, and so does a splice whose new
pieces are the old ones again (a site that answered the same as before), so that gzip reuses
its compressed bytes (gzipparts.py).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from itertools import accumulate


class Spliced:
    """Pieces by place (a site's index in the site table), in the order of the places.
    Not thread-safe: its owner holds a lock around it."""

    __slots__ = ("_at", "_pending", "_sizes", "_text")

    def __init__(self) -> None:
        self._at = array("q")  # the places that have a piece, ascending
        self._sizes = array("q")  # their pieces' sizes, in the same order
        self._text = b""
        self._pending: dict[int, bytes] = {}  # new pieces (b"": none) since the last read

    def put(self, at: int, piece: bytes) -> None:
        """The piece of place `at` from now on (b"": it has none)."""
        self._pending[at] = piece

    def text(self) -> bytes:
        if self._pending:
            self._splice()
        return self._text

    def first(self) -> int | None:
        """The first place that has a piece, None if none has."""
        if self._pending:
            self._splice()
        return self._at[0] if self._at else None

    def _splice(self) -> None:
        pending, self._pending = self._pending, {}
        at, sizes = self._at, self._sizes
        old = memoryview(self._text)
        offsets = array("q", accumulate(sizes, initial=0))
        pieces: list[bytes | memoryview] = []
        new_at, new_sizes = array("q"), array("q")
        cursor, changed = 0, False
        for place in sorted(pending):
            piece = pending[place]
            i = bisect_left(at, place, cursor)
            if i > cursor:  # the unchanged run before it
                pieces.append(old[offsets[cursor] : offsets[i]])
                new_at.extend(at[cursor:i])
                new_sizes.extend(sizes[cursor:i])
            if i < len(at) and at[i] == place:
                changed = changed or old[offsets[i] : offsets[i + 1]] != piece
                cursor = i + 1
            else:
                changed = changed or bool(piece)
                cursor = i
            if piece:
                pieces.append(piece)
                new_at.append(place)
                new_sizes.append(len(piece))
        if not changed:
            return
        pieces.append(old[offsets[cursor] :])
        new_at.extend(at[cursor:])
        new_sizes.extend(sizes[cursor:])
        self._text = b"".join(pieces)
        self._at, self._sizes = new_at, new_sizes
