"""A text of pieces, kept either way, is always the pieces of its places joined in order, and
the same bytes object while no piece changed (what lets gzip reuse its compressed bytes)."""

from __future__ import annotations

import random

import pytest

from monitor.expose.spliced import Pieces, Spliced


def joined(pieces: dict[int, bytes]) -> bytes:
    return b"".join(pieces[at] for at in sorted(pieces))


@pytest.mark.parametrize("kind", [Pieces, Spliced])
def test_the_text_is_the_pieces_joined_in_the_order_of_their_places(
    kind: type[Pieces | Spliced],
) -> None:
    rng = random.Random(4)
    text, truth = kind(), {}
    assert text.text() == b"" and text.first() is None
    for _ in range(300):
        for _ in range(rng.choice([0, 1, 3, 40])):
            at = rng.randrange(200)
            piece = rng.choice([b"", b"x", b"line %d\n" % rng.randrange(10**6), b"ab\ncd\n" * 3])
            text.put(at, piece)
            if piece:
                truth[at] = piece
            else:
                truth.pop(at, None)
        assert text.text() == joined(truth)
        assert text.first() == (min(truth) if truth else None)


@pytest.mark.parametrize("kind", [Pieces, Spliced])
def test_the_text_stays_the_same_object_until_a_piece_really_changes(
    kind: type[Pieces | Spliced],
) -> None:
    text = kind()
    for at in range(10):
        text.put(at, b"site %d 1.0\n" % at)
    first = text.text()
    assert text.text() is first  # nothing new
    text.put(3, b"site 3 1.0\n")  # a site that answered the same again
    text.put(11, b"")  # a site that had no line and still has none
    assert text.text() is first
    text.put(3, b"site 3 0.0\n")
    second = text.text()
    assert second is not first and second == first.replace(b"site 3 1.0", b"site 3 0.0")
    text.put(0, b"")
    assert text.text() == second.removeprefix(b"site 0 1.0\n") and text.first() == 1
