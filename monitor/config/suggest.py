"""Suggestions for what was misspelt: the closest known key, id or name ("did you mean").

A refusal that only says `unknown owner 'vietel'` sends the operator to read a list of 40
owners at three in the morning; one that adds `did you mean 'viettel'?` ends the search. The
match is difflib's ratio on case-folded text (Vietnamese ids and names included), so `Viettel`
finds `viettel` and `gw-distric-core` finds `gw-district-core`, while a word like no known
one gets no suggestion at all rather than a misleading one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: How alike two words must be (difflib's ratio) for one to be offered for the other.
CUTOFF = 0.6
#: Stricter, for a key typed in a file that holds secrets: the key is shown only when it is
#: plainly a misspelling of a known key, never when it could be a pasted community or key.
SENSITIVE_CUTOFF = 0.8


def closest(word: str, known: Iterable[str], cutoff: float = CUTOFF) -> str | None:
    """The known word most like `word`, or None when none is alike enough (or `word` is
    itself known: there is nothing to suggest)."""
    folded: dict[str, str] = {}
    for option in known:
        folded.setdefault(option.casefold(), option)
    target = word.casefold()
    if word in folded.values():
        return None
    if target in folded:  # only the case differs
        return folded[target]
    found = difflib.get_close_matches(target, folded, n=1, cutoff=cutoff)
    return folded[found[0]] if found else None


def did_you_mean(word: str, known: Iterable[str], cutoff: float = CUTOFF) -> str:
    """`; did you mean 'x'?` to append to a message, or "" when nothing is alike."""
    match = closest(word, known, cutoff)
    return "" if match is None else f"; did you mean '{match}'?"
