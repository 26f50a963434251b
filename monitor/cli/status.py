"""`districtmon status`: what is down now, since when, and why, from the running daemon.

An engineer on SSH at night asks one question; the answer is the daemon's own view (its JSON
API, the snapshot /metrics is rendered from), not a second opinion computed here. The sites
that need someone are listed longest first, each with when its state began (the daemon's
local time) and for how long, its reason and its owner. The exit code is for scripts: 0
nothing down or degraded, 1 something is, 2 the daemon could not be asked.

The address is `--url`, or `http.listen` of districtmon.yaml. Only that file is read (not the
inventory or the credentials, which an operator may not be allowed to read), and a file that
cannot be read leaves the default address.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from monitor.cli.common import CONFIG_HELP
from monitor.cli.table import table
from monitor.config.load import find_config_dir
from monitor.config.problems import ConfigError, ConfigProblem
from monitor.config.settings import HttpSettings, read_settings

#: States that need someone, in the order a summary names them.
ATTENTION = ("down", "unreachable", "degraded", "unknown")
#: States that make the exit code 1: unknown is the monitor's blindness, not a fault of sites.
FAULTS = frozenset(("down", "unreachable", "degraded"))
SUMMARY_ORDER = ("up", "down", "unreachable", "degraded", "maintenance", "unknown")
DEFAULT_WATCH_SECONDS = 5.0
REQUEST_TIMEOUT = 5.0
CLEAR = "\x1b[H\x1b[2J"

OK, FAULT, UNREACHABLE = 0, 1, 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status",
        help="what is down, unreachable or degraded now, since when and why (from the daemon)",
        description="Asks the running daemon (its JSON API) which sites are down, unreachable, "
        "degraded or unknown, longest first. Exit code: 0 nothing down or degraded, 1 something "
        "is, 2 the daemon cannot be reached.",
    )
    parser.add_argument("-c", "--config", metavar="PATH", help=CONFIG_HELP + "; for http.listen")
    parser.add_argument(
        "--url", metavar="URL", help="the daemon's address (default: http.listen of the config)"
    )
    for name in ("commune", "owner", "kind"):
        parser.add_argument(f"--{name}", action="append", metavar="ID", help=f"only this {name}")
    parser.add_argument(
        "--watch",
        nargs="?",
        const=DEFAULT_WATCH_SECONDS,
        type=_seconds,
        metavar="SECONDS",
        help=f"refresh every SECONDS (default {DEFAULT_WATCH_SECONDS:g}) until Ctrl-C",
    )
    parser.add_argument(
        "--count", type=_count, metavar="N", help="with --watch: stop after N refreshes"
    )
    parser.set_defaults(handler=run_status)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


class Unreachable(Exception):
    """The daemon did not answer, or not as a districtmon answers."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the daemon said, and when (its own clock)."""

    url: str
    time: float
    timezone: str
    sites: Sequence[Mapping[str, object]]
    health: Mapping[str, object] | None


def run_status(args: argparse.Namespace) -> int:
    url, note = base_url(args)
    query = {name: getattr(args, name) for name in ("commune", "owner", "kind")}
    if args.watch is None:
        return show(url, query, sys.stdout, note)
    return watch(url, query, args.watch, args.count, sys.stdout, note)


def base_url(args: argparse.Namespace) -> tuple[str, str]:
    """The daemon's address, and a note on where it came from when that may explain a
    failure (the config could not be read)."""
    if args.url:
        return str(args.url).rstrip("/"), ""
    try:
        directory = find_config_dir(args.config)
    except ConfigError as exc:
        return listen_url(HttpSettings()), f" (default address: {exc.problems[0].message})"
    problems: list[ConfigProblem] = []
    settings = read_settings(directory, problems, Path())
    return listen_url(settings.http), f" (note: {problems[0]})" if problems else ""


def listen_url(http: HttpSettings) -> str:
    """Where to reach a listener: a wildcard address is reached on loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(http.host, http.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{http.port}"


def fetch(url: str, query: Mapping[str, Sequence[str] | None]) -> Snapshot:
    pairs = [(key, value) for key, values in query.items() for value in values or ()]
    sites_url = f"{url}/api/v1/sites" + (f"?{urllib.parse.urlencode(pairs)}" if pairs else "")
    body = _get_json(sites_url)
    sites = body.get("sites")
    if not isinstance(sites, list) or not all(isinstance(s, dict) for s in sites):
        raise Unreachable(f"{url} answered, but not with districtmon's site list")
    try:
        health: Mapping[str, object] | None = _get_json(f"{url}/healthz")
    except Unreachable:
        health = None
    now = body.get("time")
    return Snapshot(
        url=url,
        time=float(now) if isinstance(now, int | float) else time.time(),
        timezone=str(body.get("timezone") or "local time"),
        sites=sites,
        health=health,
    )


def _get_json(url: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT) as response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            data = exc.read()
        if exc.code != 503:  # /healthz says 503 with its report when unhealthy
            raise Unreachable(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        text = getattr(reason, "strerror", None) or str(reason)
        raise Unreachable(f"cannot reach the daemon at {url}: {text}") from None
    try:
        body = json.loads(data)
    except ValueError:
        raise Unreachable(f"{url} answered, but not with JSON: is it districtmon?") from None
    if not isinstance(body, dict):
        raise Unreachable(f"{url} answered, but not with districtmon's JSON")
    return body


def show(url: str, query: Mapping[str, Sequence[str] | None], out: TextIO, note: str = "") -> int:
    try:
        snapshot = fetch(url, query)
    except Unreachable as exc:
        print(f"districtmon: {exc}{note}", file=sys.stderr)
        return UNREACHABLE
    text, code = render(snapshot)
    out.write(text)
    out.flush()
    return code


def watch(
    url: str,
    query: Mapping[str, Sequence[str] | None],
    every: float,
    count: int | None,
    out: TextIO,
    note: str = "",
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Refresh in place every `every` seconds (the screen is cleared on a terminal), until
    Ctrl-C or `count` refreshes; the exit code is the last refresh's."""
    clear = CLEAR if out.isatty() else ""
    code = OK
    done = 0
    try:
        while count is None or done < count:
            if done:
                sleep(every)
            try:
                text, code = render(fetch(url, query))
            except Unreachable as exc:
                text, code = f"districtmon: {exc}{note}\n", UNREACHABLE
            stamp = dt.datetime.now().astimezone().strftime("%H:%M:%S")
            out.write(f"{clear}every {every:g} s, last at {stamp} (Ctrl-C to stop)\n{text}")
            if not clear:
                out.write("\n")
            out.flush()
            done += 1
    except KeyboardInterrupt:
        pass
    return code


def render(snapshot: Snapshot) -> tuple[str, int]:
    """The text an engineer reads, and the exit code."""
    states = Counter(str(site.get("state", "unknown")) for site in snapshot.sites)
    listed = sorted((s for s in snapshot.sites if s.get("state") in ATTENTION), key=_age_order)
    shown = ", ".join(f"{states[s]} {s}" for s in SUMMARY_ORDER if states[s])
    lines = [f"{len(snapshot.sites)} sites: {shown or 'none'} ({snapshot.url})"]
    lines.append(_health_line(snapshot))
    if listed:
        rows = [_row(site, snapshot) for site in listed]
        header = ["state", f"since ({snapshot.timezone})", "for", "site", "owner", "reason"]
        lines += ["", table(header, rows, indent="")]
    elif snapshot.sites:
        lines += ["", "nothing down, unreachable, degraded or unknown"]
    code = FAULT if any(states[s] for s in FAULTS) else OK
    return "\n".join(lines) + "\n", code


def _health_line(snapshot: Snapshot) -> str:
    health = snapshot.health
    if health is None:
        return "daemon: no health report"
    started = health.get("started_local") or health.get("started")
    since = f", running since {_clock(started)}" if started else ""
    warnings = health.get("warnings")
    if health.get("status") == "ok":
        if isinstance(warnings, list) and warnings:
            return f"daemon: healthy{since}; warning: " + "; ".join(str(w) for w in warnings)
        return f"daemon: healthy{since}"
    problems = health.get("problems")
    said = "; ".join(str(p) for p in problems) if isinstance(problems, list) else ""
    return f"daemon: UNHEALTHY{since}: {said or 'no reason given'}"


def _age_order(site: Mapping[str, object]) -> tuple[int, float, str]:
    """Longest first: the earliest `since`; sites without one (never seen) last."""
    since = site.get("since")
    if isinstance(since, int | float):
        return (0, float(since), str(site.get("id")))
    return (1, 0.0, str(site.get("id")))


def _row(site: Mapping[str, object], snapshot: Snapshot) -> list[str]:
    since = site.get("since")
    if isinstance(since, int | float):
        when = _clock(site.get("since_local") or since)
        lasted = duration(max(0.0, snapshot.time - float(since)))
    else:
        when, lasted = "-", "-"
    owner = site.get("owner_name") or site.get("owner") or ""
    name = site.get("name") or ""
    who = f"{site.get('id')} ({name})" if name else str(site.get("id"))
    return [str(site.get("state")), when, lasted, who, str(owner), str(site.get("reason") or "")]


def _clock(value: object) -> str:
    """`2026-12-01 14:03:07` from the API's ISO local time (or Unix seconds)."""
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    try:
        return dt.datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(value)


def duration(seconds: float) -> str:
    """How long, to the unit that matters: `45s`, `12m 05s`, `3h 07m`, `2d 04h`."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
