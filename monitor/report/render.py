"""A report as people and programs read it: an aligned table, CSV for a spreadsheet, or JSON.

Durations and ratios are shown the same way in every format that people read; CSV and JSON
carry exact seconds and ratios for programs.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from zoneinfo import ZoneInfo

from monitor.core.availability import Figures
from monitor.report.build import Report, Row

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
    out.append(
        "outages: stretches of down time; unknown time inside one (a monitor gap) does not "
        "split it and is not counted as down"
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
