"""The text of the device values, kept per site and family, made again only where a poll
changed a site's values.

At 20,000 sites read through the shipped profiles the device values are half a million
lines, and a quarter of the sites answer a poll between two scrapes (60 s polls, 15 s
scrapes). Making every line at each scrape costs about 2 µs a line in Python; even walking
kept lines one by one costs a microsecond each. So the lines are kept as each family's column
of the texts of the sites that have it (a site's lines of that family joined; spliced.py): a
scrape joins each column in C, and only a site whose values or rows are not the objects its
text was made from (a poll replaces them; a change of state does not) has its lines made
again.
`update()` makes them; the daemon calls it every second between scrapes (monitor/runtime), so
the text of a value is made about when the value arrives, as prometheus-client's own
instruments do their work when a value is set rather than when it is scraped, and a scrape
finds little left to make.

The body is the one `DeviceValueCollector.collect()` gives through generate_latest, byte for
byte (tests hold the two equal): families in the order a walk over the sites first meets them,
each site's lines in the order of its values and rows, a value whose name is already a family
under other label names left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, count
from operator import is_not

from monitor.core.model import Sample, Site
from monitor.expose.site_metrics import SITE_LABELS, site_label_values
from monitor.expose.spliced import Pieces
from monitor.expose.textformat import label_parts, value_text
from monitor.state.live import SiteView

Labels = tuple[tuple[str, str], ...]
#: A family as kept: the value's name and its label names (beyond the site's own).
Key = tuple[str, tuple[str, ...]]


@dataclass(slots=True, eq=False)
class _Column:
    """One family's text: the lines of each site that has some, in the order of the sites
    (spliced.py; most families are of one kind of device: only the sites it has)."""

    sample: bytes  # the sample's name
    text: Pieces = field(default_factory=Pieces)


@dataclass(slots=True)
class _Made:
    """What a site's text was made from, and what it holds."""

    values: Mapping[str, float | str]
    samples: tuple[Sample, ...]
    columns: tuple[_Column, ...]  # its families, in the order its values and rows met them
    parts: dict[Labels, bytes]  # `{labels} ` by row labels (() for its unlabelled values)


# a line whose `{labels} ` part is still to be made: its site's lines of one family, its place
# there, the site's place in the table, the row's labels, the sample's name and the value
_Later = tuple[list[bytes | None], int, int, Labels, bytes, float]


class DeviceText:
    """The device values' text of one site table (a reload makes a new one).

    `hidden` are the names of values that are not series here, `if_not_zero` those shown only
    when not zero; `sample_name(key)` gives a family's sample name. Not thread-safe: the
    collector holds its lock around it."""

    def __init__(
        self,
        sites: Mapping[str, Site],
        hidden: frozenset[str],
        if_not_zero: frozenset[str],
        sample_name: Callable[[Key], bytes],
    ) -> None:
        self.sites = sites
        self._ids = list(sites)
        self._made: list[_Made | None] = [None] * len(self._ids)
        self._seen: Sequence[SiteView | None] = [None] * len(self._ids)  # the views last looked at
        self._columns: dict[Key, _Column] = {}
        self._hidden, self._if_not_zero = hidden, if_not_zero
        self._sample_name = sample_name

    def update(self, views: Mapping[str, SiteView]) -> int:
        """Make again the text of every site whose values changed; how many were. Which
        views were replaced since the last call is found in C (a millisecond at 20,000
        sites, for it runs every second); of those, a site's text is made again only if its
        values or rows are not the objects it was made from (a change of state keeps them).
        `views` are the live table's: in the order of its sites (monitor/state/live.py)."""
        now = list(views.values())
        if len(now) != len(self._ids):
            raise ValueError("the views are not those of this site table")
        made, seen = self._made, self._seen
        changed = []
        for at in compress(count(), map(is_not, now, seen)):
            view, kept = now[at], made[at]
            if kept is None or kept.values is not view.values or kept.samples is not view.samples:
                changed.append((at, view))
        self._seen = now
        if changed:
            self._remake(changed)
        return len(changed)

    def _remake(self, changed: list[tuple[int, SiteView]]) -> None:
        """The lines of the `changed` sites (place, view), grouped by family, in the columns.

        Written for speed (it runs for every value of every poll): one walk over a site's
        values and rows makes its lines; a row whose `{labels} ` part is not kept yet (a
        site's first poll, a renamed interface) gets a place, filled once the parts of all
        such rows are made, one call to the library per set of label names."""
        made, hidden, if_not_zero = self._made, self._hidden, self._if_not_zero
        column_of, text = self._column, value_text
        names_of: dict[Labels, tuple[str, ...]] = {}
        sites: list[tuple[int, _Made, dict[_Column, list[bytes | None]]]] = []
        later: list[_Later] = []
        for at, view in changed:
            kept = made[at]
            if kept is None:
                kept = made[at] = _Made(view.values, view.samples, (), {})
            rows: list[tuple[Key, Labels, float]] = [
                ((name, ()), (), value)
                for name, value in view.values.items()
                if not isinstance(value, str)
                and name not in hidden
                and not (value == 0 and name in if_not_zero)
            ]
            for sample in view.samples:
                labels = sample.labels
                extra = names_of.get(labels)
                if extra is None:
                    extra = names_of[labels] = tuple(key for key, _ in labels)
                rows.append(((sample.name, extra), labels, sample.value))
            parts = kept.parts
            if len(parts) > 2 * len(rows) + 4:  # rows renamed: drop the labels gone out of use
                parts = kept.parts = {row[1]: parts[row[1]] for row in rows if row[1] in parts}
            by_column: dict[_Column, list[bytes | None]] = {}  # keyed by identity: fast
            for key, labels, value in rows:
                column = column_of(key)
                named = column.sample
                lines = by_column.get(column)
                if lines is None:
                    lines = by_column[column] = []
                part = parts.get(labels)
                if part is None:
                    later.append((lines, len(lines), at, labels, named, value))
                    lines.append(None)
                else:
                    lines.append(b"%s%s%s\n" % (named, part, text(value)))
            kept.values, kept.samples = view.values, view.samples
            sites.append((at, kept, by_column))
        if later:
            self._make_parts(later)
        for at, kept, by_column in sites:
            self._set(at, kept, by_column)

    def _column(self, key: Key) -> _Column:
        column = self._columns.get(key)
        if column is None:
            column = self._columns[key] = _Column(self._sample_name(key))
        return column

    def _make_parts(self, later: list[_Later]) -> None:
        """The `{labels} ` parts not kept yet: one library call per set of label names."""
        made = self._made
        wanted: dict[tuple[str, ...], set[tuple[int, Labels]]] = {}
        for _lines, _place, at, labels, _sample, _value in later:
            wanted.setdefault(tuple(key for key, _ in labels), set()).add((at, labels))
        for names, rows in wanted.items():
            order = list(rows)
            table = [
                [*site_label_values(self.sites[self._ids[at]]), *(value for _, value in labels)]
                for at, labels in order
            ]
            for (at, labels), part in zip(
                order, label_parts([*SITE_LABELS, *names], table), strict=True
            ):
                kept = made[at]
                assert kept is not None
                kept.parts[labels] = part
        for lines, place, at, labels, sample, value in later:
            kept = made[at]
            assert kept is not None
            lines[place] = b"%s%s%s\n" % (sample, kept.parts[labels], value_text(value))

    def _set(self, at: int, kept: _Made, by_column: dict[_Column, list[bytes | None]]) -> None:
        """One site's lines in the columns."""
        for column in kept.columns:
            if column not in by_column:
                column.text.put(at, b"")
        for column, lines in by_column.items():
            column.text.put(at, lines[0] if len(lines) == 1 else b"".join(lines))  # type: ignore[arg-type]
        kept.columns = tuple(by_column)

    def families(self) -> list[tuple[Key, bytes]]:
        """Each family shown, in order, with the text of its samples."""
        made = self._made
        shown: list[tuple[int, int, Key, _Column]] = []
        for key, column in self._columns.items():
            first = column.text.first()
            if first is not None:
                kept = made[first]
                assert kept is not None
                shown.append((first, kept.columns.index(column), key, column))
        shown.sort(key=lambda item: item[:2])
        out: list[tuple[Key, bytes]] = []
        names: set[str] = set()
        for _first, _place, key, column in shown:
            if key[0] not in names:  # the first label names met are the family's
                names.add(key[0])
                out.append((key, column.text.text()))
        return out
