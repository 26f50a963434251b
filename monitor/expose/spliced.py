"""Long texts of one piece per site (a line, a site's lines of a family, a state set), in
the order of the sites, served as one bytes object that stays the same object while no piece
changed, so that gzip reuses its compressed bytes (gzipparts.py). Two ways to keep one:

- `Pieces` keeps every piece and their join: a new piece costs a list assignment, and the
  next read joins them again (in C). For a text some of whose pieces change between any two
  scrapes (poll times, device values): each byte is kept twice.
- `Spliced` keeps only the joined text, with each piece's size; new pieces wait, and when the
  text is read the runs of unchanged pieces are copied from the old text (memoryview slices)
  between the new ones. Each byte is kept once (the state sets: 15 MB at 20,000 sites), but a
  new piece costs some microseconds of Python at the read: for a text that seldom changes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from itertools import accumulate


class Pieces:
    """Pieces by place (a site's index in the site table), each kept, and their join.
    Not thread-safe: its owner holds a lock around it."""

    __slots__ = ("_at", "_pieces", "_text")

    def __init__(self) -> None:
        self._at: list[int] = []  # the places that have a piece, ascending
        self._pieces: list[bytes] = []  # their pieces, in the same order
        self._text: bytes | None = b""  # None: to be joined again

    def put(self, at: int, piece: bytes) -> None:
        """The piece of place `at` from now on (b"": it has none)."""
        places = self._at
        i = bisect_left(places, at)
        if i < len(places) and places[i] == at:
            if not piece:
                del places[i], self._pieces[i]
                self._text = None
            elif self._pieces[i] != piece:
                self._pieces[i], self._text = piece, None
        elif piece:
            places.insert(i, at)
            self._pieces.insert(i, piece)
            self._text = None

    def text(self) -> bytes:
        if self._text is None:
            self._text = b"".join(self._pieces)
        return self._text

    def first(self) -> int | None:
        """The first place that has a piece, None if none has."""
        return self._at[0] if self._at else None


class Spliced:
    """Pieces by place, kept joined only. Not thread-safe: its owner holds a lock around it."""

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
