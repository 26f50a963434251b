"""`districtmon maintenance add|list|remove`: planned windows stored in the ledger.

The running daemon reads them from the ledger every 15 s (and on SIGHUP), so a window added
here takes effect without a reload. Windows written in maintenance.yaml are listed too, but
are changed by editing the file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from collections.abc import Collection
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.cli.common import CONFIG_HELP, config_or_none, fail
from monitor.config.load import Config
from monitor.config.maintenance import Window, window_from_spec
from monitor.config.problems import ConfigError
from monitor.config.suggest import did_you_mean
from monitor.ledger.windows import add_ledger_window, read_ledger_windows, remove_ledger_window
from monitor.report.render import duration


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "maintenance",
        help="planned maintenance windows (add, list, remove)",
        description="Planned windows: sites inside one are in maintenance, which counts "
        "neither for nor against their availability.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add",
        help="add a window",
        description="Examples: maintenance add ups-swap --site bts-vtl-thanh-nua-01 "
        "--start now --for 2h; maintenance add fibre-works --commune thanh-nua "
        "--start '2025-03-04 01:00' --end '2025-03-04 03:30' --tz Asia/Ho_Chi_Minh; "
        "maintenance add viettel-weekly --owner viettel --weekly tue 02:00-04:00 "
        "(or --weekly tue 02:00 --for 2h)",
    )
    add.add_argument("id", help="a slug naming the window")
    target = add.add_mutually_exclusive_group(required=True)
    for name in ("site", "commune", "owner", "kind"):
        target.add_argument(f"--{name}", nargs="+", metavar="ID", help=f"{name}s it holds")
    add.add_argument(
        "--start", metavar="WHEN", help="one-off: start, e.g. '2025-03-04 01:00', or now"
    )
    ends = add.add_mutually_exclusive_group()
    ends.add_argument("--end", metavar="WHEN", help="one-off: end")
    ends.add_argument(
        "--for",
        dest="length",
        metavar="DURATION",
        type=_duration,
        help="instead of an end: how long, e.g. 2h, 90m, 1h30m, 1d (recurring: HH:MM plus this)",
    )
    add.add_argument(
        "--daily", metavar="HH:MM-HH:MM", help="every day, local time (or HH:MM with --for)"
    )
    add.add_argument(
        "--weekly",
        nargs=2,
        metavar=("DAYS", "HH:MM-HH:MM"),
        help="e.g. tue,thu 02:00-04:00 (or tue,thu 02:00 --for 2h)",
    )
    add.add_argument("--from", dest="first_day", metavar="DATE", help="recurring from this day")
    add.add_argument("--until", dest="last_day", metavar="DATE", help="recurring until this day")
    add.add_argument("--tz", metavar="ZONE", help="IANA time zone (default: the config's)")
    add.add_argument("--reason", default="", help="shown in the ledger and in reports")

    listing = actions.add_parser("list", help="list windows (config and ledger)")
    remove = actions.add_parser("remove", help="remove a window added with 'add'")
    remove.add_argument("id")
    for each in (add, listing, remove):
        each.add_argument("-c", "--config", metavar="PATH", help=CONFIG_HELP)
        each.add_argument("--ledger", metavar="PATH", type=Path, help="the ledger file")
    parser.set_defaults(handler=run_maintenance)


def run_maintenance(args: argparse.Namespace) -> int:
    try:
        config = config_or_none(args, needed=args.ledger is None)
    except ConfigError as exc:
        return fail(f"configuration refused: {exc.problems[0]} (and {len(exc.problems) - 1} more)")
    ledger: Path = args.ledger or (config.ledger_path if config else Path())
    if args.action == "add":
        return _add(args, config, ledger)
    if args.action == "remove":
        return _remove(args, config, ledger)
    return _list(config, ledger)


def _add(args: argparse.Namespace, config: Config | None, ledger: Path) -> int:
    spec: dict[str, object] = {"id": args.id}
    for name in ("site", "commune", "owner", "kind"):
        if getattr(args, name):
            spec[name + "s"] = list(getattr(args, name))
    if args.reason:
        spec["reason"] = args.reason
    zone = args.tz or (config.timezone if config else None)
    if zone:
        spec["timezone"] = zone  # stored with the window: it must not move with the config
    now = time.time()
    try:
        spec.update(_when(args, zone, now))
    except ValueError as exc:
        return fail(f"maintenance window refused: {exc}")
    for key, value in (("from", args.first_day), ("until", args.last_day)):
        if value is not None:
            spec[key] = value
    try:
        window = window_from_spec(spec, "ledger")
    except ValueError as exc:
        return fail(f"maintenance window refused: {exc}")
    if config is not None:
        known: dict[str, Collection[str]] = {
            "site": config.sites.keys(),
            "commune": config.communes.keys(),
            "owner": config.owners.keys(),
        }
        ids = known.get(window.selector)
        missing = [t for t in window.targets if ids is not None and t not in ids]
        if missing and ids is not None:
            hint = did_you_mean(missing[0], ids)
            return fail(
                f"maintenance window refused: unknown {window.selector} {missing[0]!r}{hint}"
            )
        if any(w.id == window.id for w in config.maintenance):
            return fail(f"a window '{window.id}' is already in maintenance.yaml")
    try:
        add_ledger_window(ledger, window, now)
    except ValueError as exc:
        return fail(str(exc))
    holds = f"{window.selector} {', '.join(window.targets)}"
    print(f"added {window.id}: {_confirmation(window)}, holding {holds}")
    return 0


def _confirmation(window: Window) -> str:
    """When the window holds, to the second, and for how long: what the operator checks
    before walking away from the console."""
    text = window.describe()
    if window.start is not None and window.end is not None:
        text += f" ({duration(window.end - window.start)})"
    return text


def _when(args: argparse.Namespace, zone: str | None, now: float) -> dict[str, object]:
    """The start/end or daily/weekly keys of the spec, `now` and `--for` resolved."""
    found: dict[str, object] = {}
    recurring = args.daily is not None or args.weekly is not None
    if args.start is not None:
        start = _moment(args.start, zone, now)
        found["start"] = start
        if args.length is not None:
            end = dt.datetime.fromisoformat(start) + dt.timedelta(seconds=args.length)
            found["end"] = end.isoformat(timespec="seconds")
    elif args.length is not None and not recurring:
        raise ValueError("--for needs a --start (a time, or now), or --daily/--weekly")
    if args.end is not None:
        found["end"] = _moment(args.end, zone, now)
    if args.daily:
        found["daily"] = _span(args.daily, args.length)
    if args.weekly:
        found["weekly"] = {"days": args.weekly[0].split(","), **_span(args.weekly[1], args.length)}
    return found


def _moment(text: str, zone: str | None, now: float) -> str:
    """`now` as this second in the window's zone (or UTC), with its offset; any other text
    as given, for the window's reader to check."""
    if text.strip().lower() != "now":
        return text
    tz = ZoneInfo(zone) if zone else dt.UTC
    try:
        moment = dt.datetime.fromtimestamp(int(now), tz)
    except (ValueError, KeyError):  # an unknown zone: the reader names it
        moment = dt.datetime.fromtimestamp(int(now), dt.UTC)
    return moment.isoformat(timespec="seconds")


def _span(text: str, length: float | None) -> dict[str, str]:
    start, dash, end = text.partition("-")
    if length is None:
        return {"start": start.strip(), "end": end.strip()}
    if dash:
        raise ValueError(f"give an end ({text}) or --for, not both")
    if length >= 86400 or length % 60:
        raise ValueError("--for of a recurring window must be whole minutes, under a day")
    try:
        begins = dt.datetime.strptime(start.strip(), "%H:%M")
    except ValueError:
        raise ValueError(f"not a time of day: {start.strip()!r} (HH:MM)") from None
    ends = begins + dt.timedelta(seconds=length)
    return {"start": f"{begins:%H:%M}", "end": f"{ends:%H:%M}"}


_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")


def _duration(text: str) -> float:
    """`2h`, `90m`, `1h30m`, `1d 12h`, `45s` to seconds."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or _DURATION.sub("", compact).strip():
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 2h, 90m, 1h30m, 1d)")
    seconds = sum(float(number) * _UNIT[unit] for number, unit in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be more than zero, got {text!r}")
    return seconds


def _remove(args: argparse.Namespace, config: Config | None, ledger: Path) -> int:
    if remove_ledger_window(ledger, args.id):
        print(f"removed {args.id}")
        return 0
    if config is not None and any(w.id == args.id for w in config.maintenance):
        return fail(f"window '{args.id}' is defined in maintenance.yaml: edit the file")
    return fail(f"no window '{args.id}' in {ledger}")


def _list(config: Config | None, ledger: Path) -> int:
    windows: list[Window] = [*(config.maintenance if config else ()), *read_ledger_windows(ledger)]
    now = time.time()
    if not windows:
        print("no maintenance windows")
        return 0
    rows = [("id", "from", "holds", "when", "next")]
    for w in windows:
        targets = f"{w.selector}: {', '.join(w.targets)}"
        rows.append((w.id, w.source, targets, w.describe(), _next(w, now)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _next(window: Window, now: float) -> str:
    zone = ZoneInfo(window.timezone)
    for start, end in window.occurrences(now, now + 400 * 86400):
        if start <= now < end:
            until = dt.datetime.fromtimestamp(end, zone).strftime("%Y-%m-%d %H:%M:%S")
            return f"now, until {until}"
        if start > now:
            return dt.datetime.fromtimestamp(start, zone).strftime("%Y-%m-%d %H:%M:%S")
    return "-"
