"""Aligned text columns for a terminal, Vietnamese names included.

Widths count what a terminal shows: a name typed with combining accents ("Mường" as `u` plus
U+031B plus U+0300) is as wide as the same name typed precomposed, so columns still line up.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def width(text: str) -> int:
    return sum(1 for char in text if not unicodedata.combining(char))


def pad(text: str, size: int, *, right: bool = False) -> str:
    fill = " " * (size - width(text))
    return fill + text if right else text + fill


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric: int = 0, indent: str = "  "
) -> str:
    """`header` and `rows` as aligned columns; the last `numeric` columns right-aligned."""
    columns = list(zip(header, *rows, strict=False))
    widths = [max(width(cell) for cell in column) for column in columns]
    first_numeric = len(header) - numeric
    lines = []
    for row in [header, *rows]:
        cells = [
            pad(cell, size, right=index >= first_numeric)
            for index, (cell, size) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(indent + "  ".join(cells).rstrip())
    return "\n".join(lines)
