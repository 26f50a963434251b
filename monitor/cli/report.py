"""`districtmon report`: availability over a window, from the ledger(s), for people or files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.cli.common import CONFIG_HELP, config_or_none, fail
from monitor.config.load import Config
from monitor.config.problems import ConfigError
from monitor.report.build import BY, build_report, month_window, parse_moment
from monitor.report.monthly import per_site_and_indicators, report_html
from monitor.report.render import FORMATS, render, render_indicators


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report",
        help="availability report (per site, commune, owner or kind) from the ledger",
        description="Availability over [--from, --to) or a whole --month, read from the "
        "ledger while the daemon runs. Dates without an offset are in --tz (default: the "
        "config's timezone, else UTC); a bare date is its midnight, and --to is exclusive: "
        "--from 2025-03-01 --to 2025-04-01 is March.",
    )
    report.add_argument("--from", dest="start", metavar="WHEN", help="start (inclusive)")
    report.add_argument("--to", dest="end", metavar="WHEN", help="end (exclusive; default: now)")
    report.add_argument("--month", metavar="YYYY-MM", help="a whole calendar month in --tz")
    report.add_argument("--by", choices=BY, default="site")
    report.add_argument(
        "--format",
        choices=(*FORMATS, "html"),
        default="table",
        help="html: the printable page the office files, in Vietnamese, per commune, owner "
        "and kind (--by is not used)",
    )
    report.add_argument(
        "--ledger",
        action="append",
        metavar="PATH",
        type=Path,
        help="a ledger file; repeat to merge shards (default: the configuration's ledger)",
    )
    report.add_argument(
        "--indicators",
        action="store_true",
        help="the district's infrastructure indicators over the window (BTS in service by "
        "operator, communes with fibre, 3G/4G coverage, radio on air, areas with loudspeakers, "
        "agencies online, meeting system, post points) instead of availability rows; needs the "
        "configuration (its inventory); the html page holds them whenever it has it",
    )
    report.add_argument("--tz", metavar="ZONE", help="IANA time zone, e.g. Asia/Ho_Chi_Minh")
    report.add_argument("-o", "--output", metavar="FILE", type=Path, help="write to FILE")
    report.add_argument("-c", "--config", metavar="PATH", help=CONFIG_HELP)
    report.set_defaults(handler=run_report)


def zone_of(args: argparse.Namespace, config: Config | None) -> str:
    name = args.tz or (config.timezone if config else None) or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name: Asia/Ho_Chi_Minh)") from None
    return str(name)


def run_report(args: argparse.Namespace) -> int:
    try:
        config = config_or_none(args, needed=not args.ledger)
    except ConfigError as exc:
        return fail(f"configuration refused: {exc.problems[0]} (and {len(exc.problems) - 1} more)")
    ledgers: list[Path] = args.ledger or ([config.ledger_path] if config else [])
    try:
        zone = zone_of(args, config)
        if args.month:
            if args.start or args.end:
                return fail("give --month or --from/--to, not both")
            start, end = month_window(args.month, zone)
        elif args.start:
            start = parse_moment(args.start, zone)
            end = parse_moment(args.end, zone) if args.end else time.time()
        else:
            return fail("say which window: --from WHEN [--to WHEN], or --month YYYY-MM")
        for path in ledgers:
            if not path.is_file():
                return fail(f"{path}: no such ledger")
        if args.indicators and config is None:
            return fail(
                "--indicators needs the configuration (-c DIR): the inventory says what to count"
            )
        if args.format == "html":
            text = report_html(config, ledgers, start, end, zone)
        elif args.indicators:
            assert config is not None
            per_site, items = per_site_and_indicators(config, ledgers, start, end, zone)
            text = render_indicators(items, per_site, config.in_service, args.format)
        else:
            text = render(build_report(ledgers, start, end, args.by, zone), args.format)
    except ValueError as exc:
        return fail(str(exc))
    # A byte order mark lets spreadsheet programs read the CSV as UTF-8 (Vietnamese names).
    data = (("\ufeff" if args.format == "csv" else "") + text).encode("utf-8")
    if args.output:
        args.output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0
