"""Availability over the last 1 h, 24 h, 7 d and 30 d, per site and per commune, owner and kind.

What the availability gauges on /metrics show: a background task recomputes every figure from
the ledger (rollups, plus raw intervals for the last hour or so) in a worker thread with its
own read-only connection, and swaps in a frozen snapshot. The exposition reads that snapshot
(monitor/expose/availability_metrics.py), so a scrape never touches SQLite and figures are as of
the last refresh.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monitor.core.availability import DEGRADED, DOWN, UP, Tally, to_ms
from monitor.core.model import Site
from monitor.ledger.views import (
    dirty_days,
    open_end_of,
    open_readonly,
    piece_tallies,
    plan,
    site_keys,
    watermark_of,
)

log = logging.getLogger(__name__)


WINDOWS: tuple[tuple[str, float], ...] = (
    ("1h", 3600.0),
    ("24h", 86400.0),
    ("7d", 7 * 86400.0),
    ("30d", 30 * 86400.0),
)


GROUPS = ("commune", "owner", "kind")


REFRESH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Ratios by window: per site, and per (group kind, group id). Absent: nothing counted.
    `counted` and `group_counted` hold, beside each ratio, the time it was computed from
    (its denominator, in seconds: up + degraded + down), so that a rule can tell a 30-day
    ratio over a few watched minutes from one over a month."""

    at: float = 0.0
    sites: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    groups: Mapping[tuple[str, str], Mapping[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    counted: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    group_counted: Mapping[tuple[str, str], Mapping[str, float]] = field(default_factory=dict)


class SiteFigures(Mapping[str, Mapping[str, float]]):
    """A figure per site and window, read as `figures[site_id][window]`, kept as one array of
    floats per window in the order of the sites (NaN: none). As a dict of dicts a site, the
    ratios and counted times of 20,000 sites took about 14 MB by their sizes, made again at
    every refresh beside the ones being served, at the top of the daemon's RSS; as arrays
    they take about 2.5, their index shared (at 20,000 sites the daemon's median RSS went
    from 275-277 MB to 266-268, its peak from 309-314 to 289-298)."""

    __slots__ = ("_columns", "_index")

    def __init__(self, index: Mapping[str, int], columns: Mapping[str, array[float]]) -> None:
        self._index = index  # site id -> its place in every column
        self._columns = columns  # window -> a figure per place

    def __getitem__(self, site_id: str) -> Mapping[str, float]:
        return _SiteRow(self._columns, self._index[site_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


class _SiteRow(Mapping[str, float]):
    """One site's figures by window, in the windows' order, those it has."""

    __slots__ = ("_columns", "_place")

    def __init__(self, columns: Mapping[str, array[float]], place: int) -> None:
        self._columns = columns
        self._place = place

    def __getitem__(self, window: str) -> float:
        value = self._columns[window][self._place]
        if math.isnan(value):
            raise KeyError(window)
        return value

    def __iter__(self) -> Iterator[str]:
        place = self._place
        return (w for w, column in self._columns.items() if not math.isnan(column[place]))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _columns(count: int) -> dict[str, array[float]]:
    return {name: array("d", [math.nan]) * count for name, _ in WINDOWS}


RolledCache = dict[tuple[int, str, int, int], dict[str, Tally]]


def compute(
    path: Path, sites: Mapping[str, Site], now: float, rolled: RolledCache | None = None
) -> Snapshot:
    """Every gauge, from one read-only connection (synchronous: run it in a thread).

    `rolled` keeps the tallies of rolled-up pieces (whole days and hours) between calls: they
    change only when the watermark moves, once an hour, so a refresh in between reads only the
    raw intervals at the edges of each window."""
    started = time.monotonic()
    index = {site: place for place, site in enumerate(sites)}
    per_site, site_counted = _columns(len(index)), _columns(len(index))
    per_group: dict[tuple[str, str], dict[str, float]] = {}
    group_counted: dict[tuple[str, str], dict[str, float]] = {}
    end = to_ms(now)
    rolled = {} if rolled is None else rolled
    with open_readonly(path) as conn:
        watermark = watermark_of(conn)
        for stale in [k for k in rolled if k[0] != watermark]:
            del rolled[stale]
        keys = site_keys(conn)
        open_end = open_end_of(conn)
        dirty = dirty_days(conn)
        raw: dict[tuple[int, int], dict[str, Tally]] = {}
        for name, seconds in WINDOWS:
            start = end - to_ms(seconds)
            pieces = plan(start, end, watermark, dirty)
            per_piece = []
            for piece in pieces:
                if piece.source == "raw":
                    cache_key = (piece.start, piece.end)
                    if cache_key not in raw:
                        raw[cache_key] = piece_tallies(conn, keys, piece, open_end)
                    per_piece.append(raw[cache_key])
                    continue
                rolled_key = (watermark, piece.source, piece.start, piece.end)
                if rolled_key not in rolled:
                    rolled[rolled_key] = piece_tallies(conn, keys, piece, open_end)
                per_piece.append(rolled[rolled_key])
            # availability needs only two sums per site: counted time is up + degraded +
            # down (the window less unknown, maintenance and unreachable)
            sums: dict[str, list[int]] = {}
            for found in per_piece:
                for site_id, tally in found.items():
                    ms = tally.ms
                    available = ms[UP] + ms[DEGRADED]
                    acc = sums.get(site_id)
                    if acc is None:
                        sums[site_id] = [available, available + ms[DOWN]]
                    else:
                        acc[0] += available
                        acc[1] += available + ms[DOWN]
            groups: dict[tuple[str, str], list[int]] = {}
            ratios, counts = per_site[name], site_counted[name]
            for place, (site_id, site) in enumerate(sites.items()):
                available, counted = sums.get(site_id) or (0, 0)
                if counted:
                    ratios[place] = available / counted
                    counts[place] = counted / 1000
                for group in GROUPS:
                    acc = groups.setdefault((group, getattr(site, group)), [0, 0])
                    acc[0] += available
                    acc[1] += counted
            for group_key, (available, counted) in groups.items():
                if counted:
                    per_group.setdefault(group_key, {})[name] = available / counted
                    group_counted.setdefault(group_key, {})[name] = counted / 1000
    seconds = time.monotonic() - started
    by_site, counted_by_site = SiteFigures(index, per_site), SiteFigures(index, site_counted)
    return Snapshot(now, by_site, per_group, seconds, counted_by_site, group_counted)


class AvailabilityGauges:
    """Holds the latest snapshot; `run` refreshes it in the background."""

    def __init__(self, path: Path, period: float = REFRESH_SECONDS) -> None:
        self.path = path
        self.period = period
        self.snapshot = Snapshot()
        self._rolled: RolledCache = {}  # used by one refresh at a time, in its worker thread

    async def refresh(self, sites: Mapping[str, Site]) -> None:
        self.snapshot = await asyncio.to_thread(
            compute, self.path, dict(sites), time.time(), self._rolled
        )

    async def run(self, sites: Callable[[], Mapping[str, Site]]) -> None:
        while True:
            try:
                await self.refresh(sites())
            except Exception:  # a locked or damaged ledger must not stop the daemon
                log.exception("availability gauges not refreshed")
            await asyncio.sleep(self.period)
