"""The monthly report as one HTML page, made from the ledger and the inventory: what
`districtmon report --format html` writes and what the daemon serves at /report.

The daemon's page is the same document with links to the months around it, so that what the
office prints from the browser is what the command would have filed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.config.load import Config
from monitor.report.build import Report, build_report, build_reports, month_window
from monitor.report.html import SECTIONS, render_html
from monitor.report.indicators import Indicator, infrastructure


def per_site_and_indicators(
    config: Config, ledgers: Sequence[Path], start: float, end: float, zone: str
) -> tuple[Report, list[Indicator]]:
    """The per-site report of the window and the infrastructure indicators made from it."""
    per_site = build_report(ledgers, start, end, "site", zone)
    return per_site, indicators_of(config, per_site)


def indicators_of(config: Config, per_site: Report) -> list[Indicator]:
    figures = {row.key: row.figures for row in per_site.rows}
    return infrastructure(config, figures, config.in_service)


def report_html(
    config: Config | None,
    ledgers: Sequence[Path],
    start: float,
    end: float,
    zone: str,
    links: Sequence[tuple[str, str]] = (),
) -> str:
    """The page of `[start, end)`; with the configuration, the indicators come first. The
    ledgers are read once for every section (bench/ledger_bench.py times it)."""
    per_site, *sections = build_reports(
        ledgers, start, end, ("site", *(by for by, _, _ in SECTIONS)), zone
    )
    if config is None:
        return render_html(sections, time.time(), links=links)
    found = indicators_of(config, per_site)
    return render_html(sections, time.time(), found, config.in_service, links)


def served_month(config: Config, month: str, now: float | None = None) -> str:
    """The daemon's /report?month=YYYY-MM ("" for the month so far), in the configuration's
    time zone, from its own ledger; ValueError for a month that is not one or not begun."""
    zone = config.timezone or "UTC"
    today = dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(zone))
    month = month or f"{today.year:04d}-{today.month:02d}"
    start, end = month_window(month, zone)
    first = dt.date.fromisoformat(month + "-01")
    following = (first + dt.timedelta(days=32)).replace(day=1)
    before, after = (first - dt.timedelta(days=1)).strftime("%Y-%m"), following.strftime("%Y-%m")
    links = [("Trang tình trạng", "/status"), (f"Tháng trước ({before})", f"?month={before}")]
    if following <= today.date():  # the next month has begun
        links.append((f"Tháng sau ({after})", f"?month={after}"))
    if not config.ledger_path.exists():
        raise OSError(f"{config.ledger_path}: no ledger yet")
    return report_html(config, [config.ledger_path], start, end, zone, links)
