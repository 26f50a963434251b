"""A report as people and programs read it: an aligned table, CSV for a spreadsheet, or JSON.

Durations and ratios are shown the same way in every format that people read; CSV and JSON
carry exact seconds and ratios for programs.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from monitor.core.availability import Figures
from monitor.report.build import Report, Row
from monitor.report.indicators import Indicator

FORMATS = ("table", "csv", "json")


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


def duration(seconds: float | None, day_unit: str = "d") -> str:
    """`3d 04:05:06`, `04:05:06`; to the second (rounded half up at the millisecond);
    `day_unit` is what follows the days (the HTML report's is " ngày")."""
    if seconds is None:
        return "-"
    whole = int(seconds + 0.5)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}{day_unit} {clock}" if days else clock


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.3f}"


Column = tuple[str, Callable[[Figures], str]]


# Durations of a row add up its sites' time (site-time: two sites down for an hour each are
# 02:00:00 down), which a 15-hour window of 378 sites turns into 236 days of "unknown"; the
# columns are grouped under what they count so that nobody reads them as a clock.
_SITE_TIME: tuple[Column, ...] = (
    ("down", lambda f: duration(f.down)),
    ("unreach.", lambda f: duration(f.unreachable)),
    ("maint.", lambda f: duration(f.maintenance)),
    ("unknown", lambda f: duration(f.unknown)),
)
_PER_OUTAGE: tuple[Column, ...] = (
    ("longest", lambda f: duration(f.longest_outage)),
    ("MTTR", lambda f: duration(f.mttr)),
    ("MTBF", lambda f: duration(f.mtbf)),
)
_TABLE_FIGURES: tuple[Column, ...] = (
    ("avail %", lambda f: percent(f.availability)),
    *_SITE_TIME,
    ("outages", lambda f: str(f.outages)),
    *_PER_OUTAGE,
)
_GROUPS = (
    ("site-time, summed over sites", [title for title, _ in _SITE_TIME]),
    ("per outage", [title for title, _ in _PER_OUTAGE]),
)
LEGEND = (
    "site-time: each site's time added up (2 sites down for 1 h each: 02:00:00 down)",
    "longest: the longest outage, wall time; MTTR: down site-time per outage (the mean "
    "outage); MTBF: up site-time per outage",
    "availability = (up + degraded) / (window - unknown - maintenance - unreachable)",
    "outages: stretches of down time; unknown time inside one (a monitor gap) does not split "
    "it and is not counted as down",
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
    widths = _fit_groups(head, [max(len(c[i]) for c in [head, *lines]) for i in range(len(head))])
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
    window = report.end - report.start
    sites = report.total.sites
    scope = (
        f"window: {duration(window)} of wall time; {sites} site{'s' if sites != 1 else ''}: "
        f"{duration(report.total.figures.window)} of site-time"
    )
    out = [title, scope, "", _group_line(head, widths), fmt(head), fmt(["-" * w for w in widths])]
    out += [fmt(cells) for cells in lines[:-1]]
    out += [fmt(["-" * w for w in widths]), fmt(lines[-1])]
    out.append("")
    out.extend(LEGEND)
    for path, heartbeat in report.running:
        out.append(
            f"running: the daemon of {path.name} (last heartbeat {_when(report, heartbeat)}); "
            "its last seconds are not written yet"
        )
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


def _fit_groups(head: list[str], widths: list[int]) -> list[int]:
    """Widen the columns of a group whose label is wider than they are, evenly."""
    widths = list(widths)
    for label, titles in _GROUPS:
        members = [head.index(title) for title in titles]
        span = sum(widths[i] for i in members) + 2 * (len(members) - 1)
        short = len(label) + 2 - span
        if short <= 0:
            continue
        for n, index in enumerate(members):
            widths[index] += short // len(members) + (1 if n < short % len(members) else 0)
    return widths


def _group_line(head: list[str], widths: list[int]) -> str:
    """A line above the column titles naming what each group of columns counts, drawn over
    exactly those columns: `---- site-time, summed over the row's sites ----`."""
    starts = []
    column = 0
    for size in widths:
        starts.append(column)
        column += size + 2
    line = [" "] * column
    for label, titles in _GROUPS:
        first, last = head.index(titles[0]), head.index(titles[-1])
        a, b = starts[first], starts[last] + widths[last]
        text = f" {label} "
        fill = b - a - len(text)
        drawn = "-" * (fill // 2) + text + "-" * (fill - fill // 2)
        line[a:b] = drawn
    return "".join(line).rstrip()


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
    ("window_site_seconds", lambda f: _seconds(f.window)),
    ("up_site_seconds", lambda f: _seconds(f.up)),
    ("degraded_site_seconds", lambda f: _seconds(f.degraded)),
    ("down_site_seconds", lambda f: _seconds(f.down)),
    ("unreachable_site_seconds", lambda f: _seconds(f.unreachable)),
    ("maintenance_site_seconds", lambda f: _seconds(f.maintenance)),
    ("unknown_site_seconds", lambda f: _seconds(f.unknown)),
    ("outages", lambda f: str(f.outages)),
    ("longest_outage_seconds", lambda f: _seconds(f.longest_outage)),
    ("mttr_seconds", lambda f: _seconds(f.mttr)),
    ("mtbf_site_seconds", lambda f: _seconds(f.mtbf)),
)


def render_csv(report: Report) -> str:
    """Plain seconds and a percentage, one row per site or group, then the total. Written with
    a UTF-8 byte order mark by the command line, so that spreadsheets read the names right.
    Columns named `_site_seconds` add up the row's sites (site-time); longest_outage_seconds
    and mttr_seconds are the length of one outage (wall time)."""
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
        "window_site_seconds": f.window,
        "up_site_seconds": f.up,
        "degraded_site_seconds": f.degraded,
        "down_site_seconds": f.down,
        "unreachable_site_seconds": f.unreachable,
        "maintenance_site_seconds": f.maintenance,
        "unknown_site_seconds": f.unknown,
        "outages": f.outages,
        "longest_outage_seconds": f.longest_outage,
        "mttr_seconds": f.mttr,
        "mtbf_site_seconds": f.mtbf,
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
        "window_seconds": report.end - report.start,
        "time": "*_site_seconds add up the sites of a row (site-time); longest_outage_seconds "
        "and mttr_seconds are the length of one outage (wall time)",
        "formula": "(up + degraded) / (window - unknown - maintenance - unreachable)",
        "rows": [row_json(row) for row in report.rows],
        "total": row_json(report.total),
        "monitor_gaps": [
            {"ledger": str(g.ledger), "from": g.start, "to": g.end, "cause": g.cause}
            for g in report.gaps
        ],
        "ledgers": [str(p) for p in report.ledgers],
        "running": [{"ledger": str(p), "heartbeat": beat} for p, beat in report.running],
        "warnings": report.warnings,
    }
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


# --- the infrastructure indicators (indicators.py) ------------------------------------------


def render_indicators(
    items: Sequence[Indicator], report: Report, threshold: float, fmt: str
) -> str:
    """The indicators of `report`'s window, in `fmt` (table, csv or json)."""
    if fmt == "json":
        body = {
            "from": report.start,
            "to": report.end,
            "timezone": report.timezone,
            "in_service": threshold,
            "rule": "a site is in service when its availability over the window reaches "
            "in_service; a radio station is on air on its up time only",
            "indicators": [
                {
                    "key": i.key,
                    "label": i.label,
                    "met": i.met,
                    "of": i.of,
                    "unit": i.unit,
                    "share": i.share,
                    "short": list(i.short),
                }
                for i in items
            ],
            "monitor_gaps": [{"from": g.start, "to": g.end, "cause": g.cause} for g in report.gaps],
        }
        return json.dumps(body, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["key", "label", "met", "of", "unit", "share", "short"])
        for i in items:
            share = "" if i.share is None else f"{i.share:.6f}"
            writer.writerow([i.key, i.label, i.met, i.of, i.unit, share, " ".join(i.short)])
        return out.getvalue()
    if fmt != "table":
        raise ValueError(f"--format must be one of {', '.join(FORMATS)} or html")
    head = (
        f"Infrastructure indicators {_when(report, report.start)} .. "
        f"{_when(report, report.end)} ({report.timezone}); in service: availability >= "
        f"{percent(threshold)} %"
    )
    width = max((len(i.label) for i in items), default=10)
    lines = [head, ""]
    for i in items:
        figure = f"{i.met}/{i.of} {i.unit}"
        shown = ", ".join(i.short[:SHORT_SHOWN])
        more = f" and {len(i.short) - SHORT_SHOWN} more" if len(i.short) > SHORT_SHOWN else ""
        short = f"  short: {shown}{more}" if i.short else ""
        lines.append(f"{i.label:<{width}}  {figure:>16}  {percent(i.share):>8} %{short}")
    if report.gaps:
        lines += ["", f"the monitor was not watching during {len(report.gaps)} stretch(es)"]
    return "\n".join(lines) + "\n"


SHORT_SHOWN = 5
