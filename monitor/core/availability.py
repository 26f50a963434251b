"""Time-weighted availability from state intervals, exact to the millisecond, for any window.

Everything here counts time, never samples: a `Tally` says how many milliseconds of one stretch
of time a site spent in each state, and what shape its down time had (how many separate
outages, the longest, whether the stretch begins or ends inside one). Tallies of consecutive
stretches combine exactly (`then`), so a month can be summed from daily rollups, hourly
rollups and raw intervals in any mix and give the same figures as the raw intervals alone.

Times are integer milliseconds since the epoch (`to_ms`): sums of integers never drift, and a
millisecond is finer than any poll.

Semantics (README "Availability"):

    available   = up + degraded
    counted     = window - unknown - maintenance - unreachable
    availability = available / counted                       (None when counted is 0)

Time not covered by any interval (before a site was first watched, while the monitor was
stopped or crashed) is unknown, like explicit `unknown` intervals (no data yet, broker lost).
Unreachable time (the parent was down) is charged to the parent: it leaves the child's
denominator, and the parent's own down time already counts against the parent.

An outage is a maximal stretch of `down` time in which the monitor may have been blind: up,
degraded, unreachable and maintenance end it, unknown time does not. Unknown time is time the
monitor could not watch (a gap between two runs of the daemon, a crash, a broker loss, its own
credential refused, no data yet after a start): a site down on both sides of such a stretch
had one outage, not two, so a restart neither doubles the outage count nor halves the MTTR.
The unknown time inside an outage is still counted as unknown, never as down: an outage's
length (and the longest outage) is its down time. In other words: remove the unknown time,
and an outage is a maximal run of down time in what is left. Outages in a window are counted
clipped to the window (one that began before the window counts once), and so is the longest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from monitor.core.model import State

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# Stable codes: they are stored in hourly rollups, so never renumber.
STATE_CODES: dict[State, int] = {
    State.UP: 0,
    State.DEGRADED: 1,
    State.DOWN: 2,
    State.UNREACHABLE: 3,
    State.MAINTENANCE: 4,
    State.UNKNOWN: 5,
}
UP, DEGRADED, DOWN, UNREACHABLE, MAINTENANCE, UNKNOWN = range(6)
KNOWN = 5  # codes 0..4 are counted per state; unknown is what remains of the length


def to_ms(seconds: float) -> int:
    """Wall-clock seconds (as stored in the ledger) to integer milliseconds."""
    return round(seconds * 1000)


class Tally(NamedTuple):
    """One site over one stretch of time `length` ms long.

    `ms` holds the milliseconds spent up, degraded, down, unreachable and in maintenance (by
    code); unknown is the rest. `runs` counts outages inside this one; `head` and `tail` are
    the down time of the outage touching its start and its end, unknown time skipped (0 when
    the first, or last, state that is not unknown is not down), which is what lets two tallies
    join an outage that crosses their boundary. A stretch with no time but down and unknown
    (`open`) lets an outage pass through it.

    A named tuple rather than a dataclass: a month's report for 20,000 sites builds a few
    hundred thousand of them, and tuples are several times cheaper to make."""

    length: int
    ms: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    runs: int = 0
    head: int = 0
    tail: int = 0
    longest: int = 0

    @classmethod
    def of(cls, code: int, length: int) -> Tally:
        """A stretch spent whole in one state (code UNKNOWN: nothing known)."""
        if code == UNKNOWN or length <= 0:
            return cls(max(length, 0))
        if code == DOWN:
            return cls(length, (0, 0, length, 0, 0), 1, length, length, length)
        ms = [0] * KNOWN
        ms[code] = length
        return cls(length, _five(ms))

    @property
    def unknown(self) -> int:
        return self.length - sum(self.ms)

    @property
    def open(self) -> bool:
        """Nothing here ends an outage: the stretch holds only down and unknown time."""
        ms = self.ms
        return ms[0] == ms[1] == ms[3] == ms[4] == 0

    def then(self, later: Tally) -> Tally:
        """This stretch followed directly by `later`."""
        a, b = self, later
        if a.length == 0:
            return b
        if b.length == 0:
            return a
        am, bm = a.ms, b.ms
        return Tally(
            a.length + b.length,
            (am[0] + bm[0], am[1] + bm[1], am[2] + bm[2], am[3] + bm[3], am[4] + bm[4]),
            a.runs + b.runs - (1 if a.tail and b.head else 0),
            a.head + b.head if a.open else a.head,
            b.tail + a.tail if b.open else b.tail,
            max(a.longest, b.longest, a.tail + b.head),
        )


def _five(values: Sequence[int]) -> tuple[int, int, int, int, int]:
    return (values[0], values[1], values[2], values[3], values[4])


def chain(tallies: Iterable[Tally]) -> Tally:
    result = Tally(0)
    for tally in tallies:
        result = result.then(tally)
    return result


def add(a: Tally, b: Tally) -> Tally:
    """Two tallies of the same stretch that cover disjoint parts of it (one site watched by
    two ledgers one after the other, after a re-shard). Durations add; the down shape is
    rebuilt conservatively: runs add, the longest is the larger."""
    return Tally(
        a.length,
        _five([x + y for x, y in zip(a.ms, b.ms, strict=True)]),
        a.runs + b.runs,
        max(a.head, b.head),
        max(a.tail, b.tail),
        max(a.longest, b.longest),
    )


def sweep(intervals: Iterable[tuple[int, int, int]], start: int, end: int) -> Tally:
    """Tally `[start, end)` from one site's intervals `(code, start_ms, end_ms)`, sorted by
    start. Gaps are unknown; an interval overlapping an earlier one only counts from where the
    earlier ended, so a damaged ledger can never count a second twice. Unknown time (a gap or
    an unknown interval) neither counts as down nor ends an outage."""
    ms = [0] * KNOWN
    cursor = start
    runs = longest = 0
    head = 0
    run = 0  # down time of the outage in progress
    in_run = False
    head_open = True  # nothing but unknown time before the outage in progress
    for code, s, e in intervals:
        s = max(s, cursor)
        e = min(e, end)
        if e <= s:
            continue
        cursor = e
        if code == UNKNOWN:
            continue
        length = e - s
        ms[code] += length
        if code == DOWN:
            if not in_run:
                runs += 1
                in_run = True
            run += length
            continue
        if in_run:  # up, degraded, unreachable or maintenance: the outage ends
            longest = max(longest, run)
            if head_open:
                head = run
            in_run, run = False, 0
        head_open = False
    tail = 0
    if in_run:
        longest = max(longest, run)
        tail = run
        if head_open:
            head = run
    return Tally(end - start, _five(ms), runs, head, tail, longest)


# --- hourly rollups: a compact byte string per site and day --------------------------------
#
# One record per hour, in order. An hour spent whole in one state is one byte, its state code
# (5 = unknown: nothing known). Any other hour is 0x40 | mask (bit i: code i has time), then a
# varint of milliseconds per set bit, then, if it had down time, varints runs, head, tail,
# longest. A day of a site that was up all along is 24 bytes.

_MIXED = 0x40


def encode_hour(t: Tally) -> bytes:
    for code in range(KNOWN):
        if t.ms[code] == t.length:
            return bytes((code,))
    if t.unknown == t.length:
        return bytes((UNKNOWN,))
    mask = 0
    out = bytearray(b"\0")
    for code in range(KNOWN):
        if t.ms[code]:
            mask |= 1 << code
            _varint(out, t.ms[code])
    if t.ms[DOWN]:
        for value in (t.runs, t.head, t.tail, t.longest):
            _varint(out, value)
    out[0] = _MIXED | mask
    return bytes(out)


def decode_hours(blob: bytes) -> Iterator[Tally]:
    """The hour tallies of one rollup byte string, in order."""
    pos = 0
    size = len(blob)
    while pos < size:
        first = blob[pos]
        pos += 1
        if first < _MIXED:
            yield Tally.of(first, HOUR_MS)
            continue
        ms = [0] * KNOWN
        for code in range(KNOWN):
            if first & (1 << code):
                ms[code], pos = _read_varint(blob, pos)
        runs = head = tail = longest = 0
        if ms[DOWN]:
            runs, pos = _read_varint(blob, pos)
            head, pos = _read_varint(blob, pos)
            tail, pos = _read_varint(blob, pos)
            longest, pos = _read_varint(blob, pos)
        yield Tally(HOUR_MS, _five(ms), runs, head, tail, longest)


def fold_hours(blob: bytes, skip: int, count: int) -> Tally:
    """The tally of `count` hour records after the first `skip`, as `chain(decode_hours(...))`
    would give, without making an object per hour: the common day (one state all along) is a
    byte count."""
    if count <= 0:
        return Tally(0)
    if max(blob, default=0) < _MIXED:  # every hour uniform: one byte each
        part = blob[skip : skip + count]
        if len(part) == count and part.count(part[0]) == count:
            return Tally.of(part[0], count * HOUR_MS)
    total = Tally(0)
    for index, hour in enumerate(decode_hours(blob)):
        if index >= skip + count:
            break
        if index >= skip:
            total = total.then(hour)
    return total


def _varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _read_varint(blob: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = blob[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


# --- the figures a report shows -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """What a report says about one site or group over one window (seconds, not ms)."""

    window: float
    up: float
    degraded: float
    down: float
    unreachable: float
    maintenance: float
    unknown: float
    outages: int
    longest_outage: float
    availability: float | None  # (up + degraded) / counted; None when nothing was counted
    mttr: float | None  # mean outage length: down / outages
    mtbf: float | None  # mean time between failures: (up + degraded) / outages

    @property
    def counted(self) -> float:
        return self.window - self.unknown - self.maintenance - self.unreachable


def figures(t: Tally) -> Figures:
    available = t.ms[UP] + t.ms[DEGRADED]
    counted = t.length - t.unknown - t.ms[MAINTENANCE] - t.ms[UNREACHABLE]
    return Figures(
        window=t.length / 1000,
        up=t.ms[UP] / 1000,
        degraded=t.ms[DEGRADED] / 1000,
        down=t.ms[DOWN] / 1000,
        unreachable=t.ms[UNREACHABLE] / 1000,
        maintenance=t.ms[MAINTENANCE] / 1000,
        unknown=t.unknown / 1000,
        outages=t.runs,
        longest_outage=t.longest / 1000,
        availability=available / counted if counted > 0 else None,
        mttr=t.ms[DOWN] / t.runs / 1000 if t.runs else None,
        mtbf=available / t.runs / 1000 if t.runs else None,
    )


def group_figures(tallies: Iterable[Tally]) -> Figures:
    """Figures of several sites over the same window: times add up (a group's window is the
    sum of its sites' windows), outages add up, the longest is the longest of any site."""
    length = runs = longest = 0
    ms = [0] * KNOWN
    for t in tallies:
        length += t.length
        runs += t.runs
        longest = max(longest, t.longest)
        for code in range(KNOWN):
            ms[code] += t.ms[code]
    return figures(Tally(length, _five(ms), runs, 0, 0, longest))
