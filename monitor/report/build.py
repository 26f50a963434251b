"""Availability reports: per site, commune, owner or kind, over any window, from one ledger or
several (one per shard); render.py shows them as a table, CSV or JSON.

A report reads through read-only connections, so it can run beside the daemon. Each site's
tally comes from the ledger that watched it; a site found in several ledgers (it moved between
shards) has its figures added, which is exact when the ledgers watched it at different times.
The monitor's own gaps (clean stops, crashes, power cuts) are listed: every site is unknown
during them, and unknown time leaves the denominator.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.core.availability import Figures, Tally, add, figures, group_figures, to_ms
from monitor.core.model import KIND_NAMES
from monitor.ledger.records import MonitorRun, runs_of
from monitor.ledger.views import (
    SiteInfo,
    open_readonly,
    read_names,
    read_sites,
    window_tallies,
)

BY = ("site", "commune", "owner", "kind")
#: A run that has not stopped and whose last heartbeat is this recent (seconds before now) is
#: running: the daemon beats every 5 s, so its last seconds are not yet written, not a gap.
RUNNING_WITHIN = 30.0


@dataclass(frozen=True, slots=True)
class Row:
    key: str  # site id, or the commune / owner / kind id
    name: str
    sites: int
    figures: Figures
    kind: str = ""
    commune: str = ""
    owner: str = ""


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch of the window during which a ledger's daemon was not running."""

    ledger: Path
    start: float
    end: float
    cause: str  # "not running" (before the first run), "stopped", "crashed", "no heartbeat"


@dataclass(frozen=True, slots=True)
class Report:
    start: float
    end: float
    by: str
    timezone: str
    rows: list[Row]
    total: Row
    gaps: list[Gap]
    ledgers: list[Path]
    warnings: list[str] = field(default_factory=list)
    # ledgers whose daemon is running, with its last heartbeat: figures reach that far
    running: list[tuple[Path, float]] = field(default_factory=list)


def build_report(
    ledgers: Sequence[Path],
    start: float,
    end: float,
    by: str = "site",
    timezone: str = "UTC",
    now: float | None = None,
) -> Report:
    """Figures of `[start, end)` (UTC seconds); a window reaching past `now` stops at now."""
    return build_reports(ledgers, start, end, (by,), timezone, now)[0]


def build_reports(
    ledgers: Sequence[Path],
    start: float,
    end: float,
    bys: Sequence[str],
    timezone: str = "UTC",
    now: float | None = None,
) -> list[Report]:
    """One report per `by` of `bys`, from one reading of the ledgers: the monthly page needs
    four of the same window, and reading a province's month costs seconds each time."""
    for by in bys:
        if by not in BY:
            raise ValueError(f"--by must be one of {', '.join(BY)}")
    now = time.time() if now is None else now
    end = min(end, now)
    if end <= start:
        raise ValueError("the window is empty (it must start before it ends, and before now)")
    a, b = to_ms(start), to_ms(end)
    tallies: dict[str, Tally] = {}
    infos: dict[str, SiteInfo] = {}
    names: dict[str, dict[str, str]] = {"commune": {}, "owner": {}, "kind": dict(KIND_NAMES)}
    gaps: list[Gap] = []
    warnings: list[str] = []
    running: list[tuple[Path, float]] = []
    for path in ledgers:
        with open_readonly(path) as conn:
            found = window_tallies(conn, a, b)
            sites = read_sites(conn)
            names["commune"].update(read_names(conn, "communes"))
            names["owner"].update(read_names(conn, "owners"))
            runs = runs_of(conn)
            gaps.extend(_gaps(runs, path, start, end, now))
            running.extend((path, run.heartbeat) for run in runs if _is_running(run, now))
        for site_id, info in sites.items():
            if info.first_seen < end and (site_id in found or info.last_seen >= start):
                known = infos.get(site_id)
                if known is None or info.last_seen > known.last_seen:
                    infos[site_id] = info
        for site_id, tally in found.items():
            if site_id in tallies:
                tallies[site_id] = add(tallies[site_id], tally)
                if tallies[site_id].unknown < 0:
                    warnings.append(f"site {site_id} is covered twice by the ledgers given")
            else:
                tallies[site_id] = tally
    length = b - a
    per_site = {site: tallies.get(site) or Tally(length) for site in infos}
    total = Row("*", "all sites", len(per_site), group_figures(per_site.values()))
    reports = []
    for by in bys:
        if by == "site":
            rows = [_site_row(infos[s], per_site[s]) for s in sorted(per_site)]
        else:
            rows = _group_rows(by, infos, per_site, names)
        reports.append(
            Report(start, end, by, timezone, rows, total, gaps, list(ledgers), warnings, running)
        )
    return reports


def _site_row(info: SiteInfo, tally: Tally) -> Row:
    return Row(info.id, info.name, 1, figures(tally), info.kind, info.commune, info.owner)


def _group_rows(
    by: str,
    infos: dict[str, SiteInfo],
    per_site: dict[str, Tally],
    names: dict[str, dict[str, str]],
) -> list[Row]:
    members: dict[str, list[Tally]] = {}
    for site_id, tally in per_site.items():
        members.setdefault(getattr(infos[site_id], by), []).append(tally)
    known = names.get(by, {})
    return [
        Row(key, known.get(key, key), len(members[key]), group_figures(members[key]))
        for key in sorted(members)
    ]


def _is_running(run: MonitorRun, now: float) -> bool:
    return run.stopped is None and now - run.heartbeat <= RUNNING_WITHIN


def _gaps(runs: list[MonitorRun], path: Path, start: float, end: float, now: float) -> list[Gap]:
    """Where no run of this ledger's daemon covers the window: before the first run, between
    runs (a clean stop or a crash, whose run ends at its last heartbeat), after the last. A
    run that is running covers the window to its end: the seconds since its last heartbeat
    are not yet written, they are no gap."""
    gaps: list[Gap] = []
    cursor, cause = start, "not running"
    for run in runs:
        if run.started > cursor:
            _clip(gaps, path, cursor, min(run.started, end), cause)
        running = run.stopped is None
        if _is_running(run, now):
            cursor = max(cursor, end)
        else:
            cursor = max(cursor, run.heartbeat if run.stopped is None else run.stopped)
        cause = "stopped" if run.clean else ("no heartbeat" if running else "crashed")
        if cursor >= end:
            break
    if cursor < end:
        _clip(gaps, path, cursor, end, cause)
    return gaps


def _clip(gaps: list[Gap], path: Path, a: float, b: float, cause: str) -> None:
    if b > a:
        gaps.append(Gap(path, a, b, cause))


# --- rendering ------------------------------------------------------------------------------


def parse_moment(text: str, zone: str) -> float:
    """`2025-03-01`, `2025-03-01 08:00`, `2025-03-01T08:00+07:00`; without an offset, in
    `zone`. A bare date is that day's midnight."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time(), ZoneInfo(zone))
        else:
            moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not a date or date-time: {text!r} (e.g. 2025-03-01 or 2025-03-01T08:00+07:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.timestamp()


def month_window(month: str, zone: str) -> tuple[float, float]:
    """`2025-03` -> [2025-03-01 00:00, 2025-04-01 00:00) in `zone`."""
    try:
        first = dt.date.fromisoformat(month + "-01")
    except ValueError:
        raise ValueError(f"not a month: {month!r} (e.g. 2025-03)") from None
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    tz = ZoneInfo(zone)
    return (
        dt.datetime.combine(first, dt.time(), tz).timestamp(),
        dt.datetime.combine(following, dt.time(), tz).timestamp(),
    )
