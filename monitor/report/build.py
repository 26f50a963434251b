"""Availability reports: per site, commune, owner or kind, over any window, from one ledger or
several (one per shard), as a table for people, CSV for a spreadsheet, or JSON.

A report reads through read-only connections, so it can run beside the daemon. Each site's
tally comes from the ledger that watched it; a site found in several ledgers (it moved between
shards) has its figures added, which is exact when the ledgers watched it at different times.
The monitor's own gaps (clean stops, crashes, power cuts) are listed: every site is unknown
during them, and unknown time leaves the denominator.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.core.availability import Figures, Tally, add, figures, group_figures, to_ms
from monitor.ledger.views import SiteInfo, open_readonly, read_names, read_sites, window_tallies

BY = ("site", "commune", "owner", "kind")
FORMATS = ("table", "csv", "json")


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


def build_report(
    ledgers: Sequence[Path],
    start: float,
    end: float,
    by: str = "site",
    timezone: str = "UTC",
    now: float | None = None,
) -> Report:
    """Figures of `[start, end)` (UTC seconds); a window reaching past `now` stops at now."""
    if by not in BY:
        raise ValueError(f"--by must be one of {', '.join(BY)}")
    now = time.time() if now is None else now
    end = min(end, now)
    if end <= start:
        raise ValueError("the window is empty (it must start before it ends, and before now)")
    a, b = to_ms(start), to_ms(end)
    tallies: dict[str, Tally] = {}
    infos: dict[str, SiteInfo] = {}
    names: dict[str, dict[str, str]] = {"commune": {}, "owner": {}}
    gaps: list[Gap] = []
    warnings: list[str] = []
    for path in ledgers:
        with open_readonly(path) as conn:
            found = window_tallies(conn, a, b)
            sites = read_sites(conn)
            names["commune"].update(read_names(conn, "communes"))
            names["owner"].update(read_names(conn, "owners"))
            gaps.extend(_gaps(conn, path, start, end))
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
    if by == "site":
        rows = [_site_row(infos[s], per_site[s]) for s in sorted(per_site)]
    else:
        rows = _group_rows(by, infos, per_site, names)
    total = Row("*", "all sites", len(per_site), group_figures(per_site.values()))
    return Report(start, end, by, timezone, rows, total, gaps, list(ledgers), warnings)


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


def _gaps(conn: sqlite3.Connection, path: Path, start: float, end: float) -> list[Gap]:
    """Where no run of this ledger's daemon covers the window: before the first run, between
    runs (a clean stop or a crash, whose run ends at its last heartbeat), after the last."""
    rows = conn.execute(
        "SELECT started, COALESCE(stopped, heartbeat), clean, stopped IS NULL "
        "FROM monitor_runs ORDER BY started"
    ).fetchall()
    gaps: list[Gap] = []
    cursor, cause = start, "not running"
    for started, stopped, clean, running in rows:
        if started > cursor:
            _clip(gaps, path, cursor, min(started, end), cause)
        cursor = max(cursor, stopped)
        cause = "stopped" if clean else ("no heartbeat" if running else "crashed")
        if cursor >= end:
            break
    if cursor < end:
        _clip(gaps, path, cursor, end, cause)
    return gaps


def _clip(gaps: list[Gap], path: Path, a: float, b: float, cause: str) -> None:
    if b > a:
        gaps.append(Gap(path, a, b, cause))


# --- rendering ------------------------------------------------------------------------------


def render(report: Report, fmt: str) -> str:
    if fmt == "table":
        return render_table(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    raise ValueError(f"--format must be one of {', '.join(FORMATS)}")


def _when(report: Report, t: float) -> str:
    zone = ZoneInfo(report.timezone)
    return dt.datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """`3d 04:05:06`, `04:05:06`; to the second (rounded half up at the millisecond)."""
    if seconds is None:
        return "-"
    whole = int(seconds + 0.5)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.3f}"


Column = tuple[str, Callable[[Figures], str]]

_TABLE_FIGURES: tuple[Column, ...] = (
    ("avail %", lambda f: percent(f.availability)),
    ("down", lambda f: duration(f.down)),
    ("outages", lambda f: str(f.outages)),
    ("longest", lambda f: duration(f.longest_outage)),
    ("MTTR", lambda f: duration(f.mttr)),
    ("MTBF", lambda f: duration(f.mtbf)),
    ("unreach.", lambda f: duration(f.unreachable)),
    ("maint.", lambda f: duration(f.maintenance)),
    ("unknown", lambda f: duration(f.unknown)),
)


def render_table(report: Report) -> str:
    by = report.by
    head = ["site", "name", "commune", "owner", "kind"] if by == "site" else [by, "name", "sites"]
    head += [title for title, _ in _TABLE_FIGURES]
    lines: list[list[str]] = []
    for row in [*report.rows, report.total]:
        if by == "site":
            cells = [row.key, row.name, row.commune, row.owner, row.kind]
            if row is report.total:
                cells = ["*", f"all {row.sites} sites", "", "", ""]
        else:
            cells = [row.key, row.name, str(row.sites)]
        cells += [show(row.figures) for _, show in _TABLE_FIGURES]
        lines.append(cells)
    widths = [max(len(c[i]) for c in [head, *lines]) for i in range(len(head))]
    numeric = len(head) - len(_TABLE_FIGURES)

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i >= numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    title = (
        f"Availability {_when(report, report.start)} .. {_when(report, report.end)} "
        f"({report.timezone}), by {by}"
    )
    out = [title, "", fmt(head), fmt(["-" * w for w in widths])]
    out += [fmt(cells) for cells in lines[:-1]]
    out += [fmt(["-" * w for w in widths]), fmt(lines[-1])]
    out.append("")
    out.append("availability = (up + degraded) / (window - unknown - maintenance - unreachable)")
    if report.gaps:
        out.append("")
        out.append("Monitor not running (every site of that ledger unknown):")
        for gap in report.gaps:
            out.append(
                f"  {_when(report, gap.start)} .. {_when(report, gap.end)}  "
                f"{duration(gap.end - gap.start):>12}  {gap.cause}  ({gap.ledger.name})"
            )
    for warning in report.warnings:
        out.append(f"warning: {warning}")
    return "\n".join(out) + "\n"


def _percent4(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio * 100:.4f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


_CSV_FIGURES: tuple[Column, ...] = (
    (
        "availability_percent",
        lambda f: "" if f.availability is None else f"{f.availability * 100:.4f}",
    ),
    ("window_seconds", lambda f: _seconds(f.window)),
    ("up_seconds", lambda f: _seconds(f.up)),
    ("degraded_seconds", lambda f: _seconds(f.degraded)),
    ("down_seconds", lambda f: _seconds(f.down)),
    ("unreachable_seconds", lambda f: _seconds(f.unreachable)),
    ("maintenance_seconds", lambda f: _seconds(f.maintenance)),
    ("unknown_seconds", lambda f: _seconds(f.unknown)),
    ("outages", lambda f: str(f.outages)),
    ("longest_outage_seconds", lambda f: _seconds(f.longest_outage)),
    ("mttr_seconds", lambda f: _seconds(f.mttr)),
    ("mtbf_seconds", lambda f: _seconds(f.mtbf)),
)


def render_csv(report: Report) -> str:
    """Plain seconds and a percentage, one row per site or group, then the total. Written with
    a UTF-8 byte order mark by the command line, so that spreadsheets read the names right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    by = report.by
    keys = ["site", "name", "commune", "owner", "kind"] if by == "site" else [by, "name", "sites"]
    writer.writerow(keys + [title for title, _ in _CSV_FIGURES])
    for row in [*report.rows, report.total]:
        if by == "site":
            cells = [row.key, row.name, row.commune, row.owner, row.kind]
            if row is report.total:
                cells = ["TOTAL", f"{row.sites} sites", "", "", ""]
        else:
            cells = ["TOTAL" if row is report.total else row.key, row.name, str(row.sites)]
        writer.writerow(cells + [show(row.figures) for _, show in _CSV_FIGURES])
    return buffer.getvalue()


def _figures_json(f: Figures) -> dict[str, object]:
    return {
        "availability": f.availability,
        "window_seconds": f.window,
        "up_seconds": f.up,
        "degraded_seconds": f.degraded,
        "down_seconds": f.down,
        "unreachable_seconds": f.unreachable,
        "maintenance_seconds": f.maintenance,
        "unknown_seconds": f.unknown,
        "outages": f.outages,
        "longest_outage_seconds": f.longest_outage,
        "mttr_seconds": f.mttr,
        "mtbf_seconds": f.mtbf,
    }


def render_json(report: Report) -> str:
    def row_json(row: Row) -> dict[str, object]:
        out: dict[str, object] = {"id": row.key, "name": row.name, "sites": row.sites}
        if report.by == "site" and row is not report.total:
            out.update(kind=row.kind, commune=row.commune, owner=row.owner)
        out.update(_figures_json(row.figures))
        return out

    body = {
        "from": report.start,
        "to": report.end,
        "timezone": report.timezone,
        "by": report.by,
        "formula": "(up + degraded) / (window - unknown - maintenance - unreachable)",
        "rows": [row_json(row) for row in report.rows],
        "total": row_json(report.total),
        "monitor_gaps": [
            {"ledger": str(g.ledger), "from": g.start, "to": g.end, "cause": g.cause}
            for g in report.gaps
        ],
        "ledgers": [str(p) for p in report.ledgers],
        "warnings": report.warnings,
    }
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


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
