"""Mis-indented YAML explained in words, at the line that is wrong.

PyYAML and libyaml report a line indented too deep as "mapping values are not allowed here"
and one indented too shallow as "did not find expected key"; both often point at the line
*after* the mistake, the first place where the parser could no longer go on. An operator who
moved one line by two spaces gets neither what happened nor where. This module reads the
lines around the parser's position (only their indentation and their keys, never their
values) and says which line does not line up with which, and how far to move it.

It explains what it recognises and returns None otherwise; the parser's own words are then
kept. With `sensitive` (a file of secrets) keys are not named either: lines are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# `  - - key:` / `key: value` / `'quoted key': value`; values are never looked at beyond
# "is there one".
_LINE = re.compile(
    r"""(?P<indent>\ *)(?P<dashes>(?:-\ +)*)
        (?:(?P<key>'[^']*'|"[^"]*"|[^\s#'"{\[&*!|>%@`-][^:#]*?|-[^\s:#][^:#]*?)
           [\ \t]*:(?=\s|$)(?P<rest>.*))?""",
    re.VERBOSE,
)

MAPPING_VALUES = "mapping values are not allowed"
STRUCTURE = (
    "did not find expected <document start>",
    "did not find expected key",
    "did not find expected '-' indicator",
    "expected <block end>",
)


@dataclass(frozen=True, slots=True)
class _Line:
    number: int  # 1-based
    column: int  # where the key (or, without one, the content) starts
    key: str | None
    has_value: bool
    dash: int | None  # column of the innermost "- ", if the line starts an item


def _parse(number: int, raw: str) -> _Line | None:
    """A significant line (not blank, not a comment), or None."""
    text = raw.rstrip("\r\n")
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    match = _LINE.match(text)
    assert match is not None  # every group is optional
    indent = len(match.group("indent"))
    dashes = match.group("dashes")
    column = indent + len(dashes)
    dash = None
    if dashes:
        dash = indent + len(dashes.rstrip()) - 1
    key = match.group("key")
    rest = (match.group("rest") or "").strip()
    has_value = bool(rest) and not rest.startswith("#")
    return _Line(number, column, key.strip() if key else None, has_value, dash)


def _lines(text: str) -> dict[int, _Line]:
    found = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _parse(number, raw)
        if line is not None:
            found[number] = line
    return found


def _before(lines: dict[int, _Line], number: int) -> _Line | None:
    earlier = [n for n in lines if n < number]
    return lines[max(earlier)] if earlier else None


def _after(lines: dict[int, _Line], number: int) -> _Line | None:
    later = [n for n in lines if n > number]
    return lines[min(later)] if later else None


def _spaces(count: int) -> str:
    return f"{count} space" if count == 1 else f"{count} spaces"


def _depth(line: _Line) -> str:
    """How far in a line's key starts, as the operator counts it."""
    if line.dash is None:
        return f"indented {_spaces(line.column)}"
    return f"{line.column} characters in (after its '- ')"


class _Words:
    """How lines are named in a message: by their key, or (secrets) by their number only."""

    def __init__(self, sensitive: bool) -> None:
        self.sensitive = sensitive

    def this(self, line: _Line) -> str:
        if self.sensitive or line.key is None:
            return "this line"
        return f"'{line.key}'"

    def short(self, line: _Line) -> str:
        """A line named a second time in one message: its key alone, or its number."""
        if self.sensitive or line.key is None:
            return f"line {line.number}"
        return f"'{line.key}'"

    def that(self, line: _Line) -> str:
        if self.sensitive or line.key is None:
            return f"line {line.number}"
        return f"'{line.key}' (line {line.number})"


def explain(
    text: str, line: int, column: int, problem: str, *, sensitive: bool = False
) -> tuple[int, str] | None:
    """(line, message) for a parser error at `line` (1-based) and `column` (0-based) that
    comes from indentation, or None. The line returned is where the mistake most likely is."""
    raw_lines = text.splitlines()
    if 1 <= line <= len(raw_lines):
        leading = raw_lines[line - 1][
            : len(raw_lines[line - 1]) - len(raw_lines[line - 1].lstrip())
        ]
        if "\t" in leading:
            return line, "indented with a tab: YAML indents with spaces only"
    lines = _lines(text)
    here = lines.get(line)
    if here is None:
        return None
    words = _Words(sensitive)
    if problem.startswith(MAPPING_VALUES):
        return _too_deep(lines, here, column, words)
    if problem.startswith(STRUCTURE):
        return _between_levels(lines, here, words)
    return None


def _too_deep(
    lines: dict[int, _Line], here: _Line, column: int, words: _Words
) -> tuple[int, str] | None:
    """`key: value` followed by a line indented deeper: YAML reads that line as more of the
    value, then finds a second `:`. Either line may be the one that moved; the lines around
    them tell which."""
    if here.key is not None and column > here.column + len(here.key) + 1:
        # the colon is in the value of this line's own key: `name: Trạm: số 1`
        return here.number, "a value holding ': ' must be quoted, e.g. name: 'A: B'"
    above = _before(lines, here.number)
    if above is None or above.key is None or not above.has_value or here.column <= above.column:
        return None
    return _deeper_than_a_value(lines, above, here, words)


def _deeper_than_a_value(
    lines: dict[int, _Line], above: _Line, here: _Line, words: _Words
) -> tuple[int, str]:
    if _above_moved(lines, above, here):
        return above.number, (
            f"mis-indented: {words.this(above)} is {_depth(above)}, but the line after it "
            f"{_spaces(here.column)}; move {words.this(above)} to {here.column} like it "
            f"(or the line after it to {above.column})"
        )
    return here.number, (
        f"mis-indented: {words.this(here)} is {_depth(here)}, deeper than "
        f"{words.that(above)}, which has a value already; move it to {above.column}, beside "
        f"{words.short(above)}"
    )


def _above_moved(lines: dict[int, _Line], above: _Line, here: _Line) -> bool:
    """Whether, of two lines that do not line up, the first is the one out of place."""
    prev = _before(lines, above.number)
    opens = prev is not None and prev.key is not None and not prev.has_value
    if opens and prev is not None and above.column <= prev.column < here.column:
        return True  # `snmp:` then its first key at snmp's own column
    if prev is not None and prev.column == here.column and above.column < here.column:
        return True  # a dip: the lines before and after agree, the one between does not
    if prev is not None and prev.column == above.column:
        return False  # it agrees with the line before it
    below = _after(lines, here.number)
    return below is not None and below.key is not None and below.column == here.column


@dataclass(frozen=True, slots=True)
class _Level:
    column: int
    line: _Line
    dash: bool  # the column of an item's "- ", not of a key


def _levels(lines: dict[int, _Line], start: _Line) -> list[_Level]:
    """The columns at which a line after `start` may begin: `start`'s own, then each
    enclosing mapping's and sequence's, outwards."""
    levels = [_Level(start.column, start, False)]
    if start.dash is not None:
        levels.append(_Level(start.dash, start, True))
    for number in sorted((n for n in lines if n < start.number), reverse=True):
        line = lines[number]
        if line.column < levels[-1].column:
            levels.append(_Level(line.column, line, False))
        if line.dash is not None and line.dash < levels[-1].column:
            levels.append(_Level(line.dash, line, True))
        if line.column == 0:
            break
    return levels


def _between_levels(lines: dict[int, _Line], here: _Line, words: _Words) -> tuple[int, str] | None:
    """A line that lines up with nothing open above it, or an item whose "- " does not line
    up with the items before it."""
    above = _before(lines, here.number)
    if above is None:
        return None
    first = lines[min(lines)]
    if here.column == 0 and first.column > 0:
        return first.number, (
            f"mis-indented: {words.this(first)} is {_depth(first)}, but the keys at the top "
            f"of a file start at column 0, like line {here.number}; move it to 0"
        )
    levels = _levels(lines, above)
    dashes = [level for level in levels if level.dash]
    if here.dash is not None and dashes:
        if any(level.column == here.dash for level in dashes):
            return None
        below = _after(lines, here.number)
        if above.dash is not None and below is not None and below.dash == here.dash:
            return above.number, (
                f"mis-indented: the '- ' of this item is indented {_spaces(above.dash)}, but "
                f"the items after it have theirs at {here.dash}; move it to {here.dash}"
            )
        dash = here.dash
        item = min(dashes, key=lambda level: abs(level.column - dash))
        return here.number, (
            f"mis-indented: the '- ' of this item is indented {_spaces(dash)}, but the "
            f"items above have theirs at {item.column} (line {item.line.number}); move it to "
            f"{item.column}"
        )
    keys = [level for level in levels if not level.dash]
    if any(level.column == here.column for level in keys):
        return None
    if any(level.column == here.column for level in dashes):
        item = next(level for level in dashes if level.column == here.column)
        return here.number, (
            f"mis-indented: {words.this(here)} is {_depth(here)}, where the '- ' of the "
            f"items are (line {item.line.number}); the keys of an item start at "
            f"{item.line.column}, like {words.that(item.line)}"
        )
    if above.key is not None and above.has_value and here.column > above.column:
        return _deeper_than_a_value(lines, above, here, words)
    below = _after(lines, here.number)
    prev = _before(lines, above.number)
    agrees = prev is not None and prev.column == above.column
    if not agrees and below is not None and below.column == here.column:
        return above.number, (
            f"mis-indented: {words.this(above)} is {_depth(above)}, but the lines after it "
            f"{_spaces(here.column)}; move it to {here.column} like them"
        )
    deeper = [level for level in keys if level.column > here.column]
    shallower = [level for level in keys if level.column < here.column]
    near: list[str] = []
    if deeper:
        near.append(f"{words.that(deeper[-1].line)} is at {deeper[-1].column}")
    if shallower:
        near.append(f"{words.that(shallower[0].line)} at {shallower[0].column}")
    return here.number, (
        f"mis-indented: {words.this(here)} is {_depth(here)}, which lines up with no key "
        f"above it ({', '.join(near)}); move it to the column of the key it belongs beside"
    )
