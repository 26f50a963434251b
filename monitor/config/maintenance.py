"""Planned maintenance windows: what they cover and when they occur.

A window targets sites by id, or every site of some communes, owners or kinds. It is one-off
(`start`..`end`) or recurring (`daily` or `weekly` on some days, `HH:MM`..`HH:MM` local time in
an IANA time zone, optionally bounded by `from`/`until` dates). Local times go through zoneinfo,
so a recurring window keeps its wall-clock hours across DST changes where there are any.

Windows come from two places with one schema: `maintenance.yaml` in the configuration
directory, and the ledger (set with `districtmon maintenance add`, so that the running daemon
picks them up without a reload: monitor/ledger/windows.py). Occurrences are half-open
`[start, end)` in UTC seconds; which sites a window holds at a moment is the daemon's view,
monitor/state/windows.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.config.fields import Fields, Located, Sink, open_document
from monitor.config.located import BROKEN, YamlList, YamlMap
from monitor.config.problems import ConfigProblem
from monitor.config.suggest import did_you_mean
from monitor.core.model import SITE_KINDS

log = logging.getLogger(__name__)

MAINTENANCE_FILE = "maintenance.yaml"
SELECTORS = {"sites": "site", "communes": "commune", "owners": "owner", "kinds": "kind"}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WINDOW_KEYS = (
    "id",
    "reason",
    *SELECTORS,
    "start",
    "end",
    "daily",
    "weekly",
    "timezone",
    "from",
    "until",
)
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


class Target(Protocol):
    """What a window matches on: a Site, or a site as a ledger remembers it."""

    @property
    def id(self) -> str: ...
    @property
    def commune(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def kind(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Window:
    id: str
    selector: str  # site | commune | owner | kind
    targets: tuple[str, ...]
    reason: str = ""
    source: str = "config"  # config | ledger
    start: float | None = None  # one-off, UTC seconds
    end: float | None = None
    days: tuple[int, ...] = ()  # recurring: weekdays (0 = Monday)
    time_from: dt.time | None = None
    time_to: dt.time | None = None
    timezone: str = "UTC"
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    spec: Mapping[str, object] = field(default_factory=dict, compare=False)
    line: int = field(default=0, compare=False)  # where it was declared, for messages

    @property
    def recurring(self) -> bool:
        return self.time_from is not None

    def matches(self, site: Target) -> bool:
        value = {
            "site": site.id,
            "commune": site.commune,
            "owner": site.owner,
            "kind": site.kind,
        }[self.selector]
        return value in self.targets

    def occurrences(self, start: float, end: float) -> list[tuple[float, float]]:
        """Occurrences overlapping `[start, end)` (UTC seconds), in order."""
        if not self.recurring:
            assert self.start is not None and self.end is not None
            return [(self.start, self.end)] if self.start < end and self.end > start else []
        assert self.time_from is not None and self.time_to is not None
        zone = ZoneInfo(self.timezone)
        first = dt.datetime.fromtimestamp(start, zone).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(end, zone).date()
        found: list[tuple[float, float]] = []
        day = first
        while day <= last:
            if self._occurs_on(day):
                begins = dt.datetime.combine(day, self.time_from, zone).timestamp()
                end_day = day if self.time_to > self.time_from else day + dt.timedelta(days=1)
                ends = dt.datetime.combine(end_day, self.time_to, zone).timestamp()
                if begins < end and ends > start:
                    found.append((begins, ends))
            day += dt.timedelta(days=1)
        return found

    def _occurs_on(self, day: dt.date) -> bool:
        if self.first_day is not None and day < self.first_day:
            return False
        if self.last_day is not None and day > self.last_day:
            return False
        return day.weekday() in self.days

    def describe(self) -> str:
        """When it occurs, for people (list output, logs)."""
        if not self.recurring:
            assert self.start is not None and self.end is not None
            zone = ZoneInfo(self.timezone)
            a = dt.datetime.fromtimestamp(self.start, zone).isoformat(timespec="seconds")
            b = dt.datetime.fromtimestamp(self.end, zone).isoformat(timespec="seconds")
            return f"{a} .. {b}"
        assert self.time_from is not None and self.time_to is not None
        days = "daily" if len(self.days) == 7 else ",".join(DAYS[d] for d in self.days)
        text = f"{days} {self.time_from:%H:%M}-{self.time_to:%H:%M} {self.timezone}"
        if self.first_day or self.last_day:
            text += f" ({self.first_day or '…'} .. {self.last_day or '…'})"
        return text


# --- reading windows -----------------------------------------------------------------------


def read_window(fields: Fields, default_timezone: str | None, source: str) -> Window | None:
    """One window from a mapping (a YAML entry, or a spec stored in the ledger). Problems go to
    the fields' sink; None when the window is refused."""
    before = len(fields.sink.problems)
    window_id = fields.slug("id")
    if window_id is not None:
        fields.subject = f" (window '{window_id}')"
    fields.expect(_WINDOW_KEYS, required=("id",))
    reason = (fields.text("reason") or "") if fields.has("reason") else ""
    selector, targets = _read_targets(fields)
    zone_name = _read_zone(fields, default_timezone)
    one_off = fields.has("start") or fields.has("end")
    recurring = [key for key in ("daily", "weekly") if fields.has(key)]
    window: Window | None = None
    if one_off and recurring:
        fields.problem(recurring[0], "a window is either one-off (start, end) or recurring")
    elif one_off:
        window = _read_one_off(fields, zone_name)
    elif len(recurring) > 1:
        fields.problem("weekly", "give daily or weekly, not both")
    elif recurring:
        window = _read_recurring(fields, recurring[0], zone_name)
    else:
        fields.problem_here("needs start and end (one-off), or daily or weekly (recurring)")
    if window is None or window_id is None or selector is None:
        return None
    if len(fields.sink.problems) > before:
        return None
    spec = {key: _plain(value) for key, value in fields.node.items()}
    return dataclasses.replace(
        window,
        id=window_id,
        selector=selector,
        targets=targets,
        reason=reason,
        source=source,
        spec=spec,
        line=fields.node.line,
    )


def _read_targets(fields: Fields) -> tuple[str | None, tuple[str, ...]]:
    given = [key for key in SELECTORS if fields.has(key)]
    if len(given) != 1:
        fields.problem_here(
            f"needs exactly one of {', '.join(SELECTORS)} (got {len(given) or 'none'})"
        )
        return None, ()
    key = given[0]
    if isinstance(fields.get(key), str):  # one id, written without a list
        one = fields.text(key)
        items = [] if one is None else [Located(one, fields.line(key), fields.key(key))]
    else:
        items = fields.texts(key) or []
        if fields.get(key) is not BROKEN and isinstance(fields.get(key), list) and not items:
            fields.problem(key, "must name at least one")
    if key == "kinds":
        for item in items:
            if item.value not in SITE_KINDS:
                hint = did_you_mean(item.value, SITE_KINDS)
                message = f"unknown kind '{item.value}'{hint} ({', '.join(SITE_KINDS)})"
                fields.sink.add(item.line, item.key, message + fields.subject)
    if not items:
        return None, ()
    return SELECTORS[key], tuple(item.value for item in items)


def _read_zone(fields: Fields, default: str | None) -> str | None:
    name = fields.text("timezone") if fields.has("timezone") else default
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        where = "timezone" if fields.has("timezone") else "id"
        fields.problem(where, f"unknown time zone {name!r} (an IANA name: Asia/Ho_Chi_Minh)")
        return None
    return name


def _read_one_off(fields: Fields, zone_name: str | None) -> Window | None:
    start = _read_instant(fields, "start", zone_name)
    end = _read_instant(fields, "end", zone_name)
    for key in ("from", "until"):
        if fields.has(key):
            fields.problem(key, f"'{key}' bounds recurring windows only")
    if start is None or end is None:
        return None
    if end <= start:
        fields.problem("end", "must be after start")
        return None
    return Window("", "", (), start=start, end=end, timezone=zone_name or "UTC")


def _read_instant(fields: Fields, key: str, zone_name: str | None) -> float | None:
    if not fields.has(key):
        fields.problem_here(f"{key} is required with a one-off window")
        return None
    value = fields.get(key)
    moment: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        fields.problem(
            key, "must be a date and time, e.g. 2025-03-04 01:30 or 2025-03-04T01:30+07:00"
        )
        return None
    if moment.tzinfo is None:
        if zone_name is None:
            if not fields.has("timezone"):
                fields.problem(key, "has no UTC offset and no timezone is set (add +07:00)")
            return None
        moment = moment.replace(tzinfo=ZoneInfo(zone_name))
    return moment.timestamp()


def _read_recurring(fields: Fields, key: str, zone_name: str | None) -> Window | None:
    rule = fields.mapping(key)
    if rule is None:
        return None
    if key == "weekly":
        rule.expect(("days", "start", "end"), required=("days", "start", "end"))
        days = _read_days(rule)
    else:
        rule.expect(("start", "end"), required=("start", "end"))
        days = tuple(range(7))
    time_from = _read_time(rule, "start")
    time_to = _read_time(rule, "end")
    if time_from is not None and time_from == time_to:
        rule.problem("end", "must differ from start (an end at or before start means next day)")
        return None
    first_day = _read_date(fields, "from")
    last_day = _read_date(fields, "until")
    if first_day and last_day and last_day < first_day:
        fields.problem("until", "must not be before 'from'")
    if zone_name is None:
        if not fields.has("timezone"):  # else: already reported as unknown
            fields.problem_here("a recurring window needs a timezone (on it, or at the top)")
        return None
    if not days or time_from is None or time_to is None:
        return None
    return Window(
        "",
        "",
        (),
        days=days,
        time_from=time_from,
        time_to=time_to,
        timezone=zone_name,
        first_day=first_day,
        last_day=last_day,
    )


def _read_days(rule: Fields) -> tuple[int, ...]:
    items = rule.texts("days")
    if items is None:
        return ()
    days: list[int] = []
    for item in items:
        name = item.value.strip().lower()
        if name in DAYS:
            days.append(DAYS.index(name))
        elif name in DAY_NAMES:
            days.append(DAY_NAMES.index(name))
        else:
            message = f"unknown day {item.value!r} (mon, tue, ... sun){rule.subject}"
            rule.sink.add(item.line, item.key, message)
    if not items:
        rule.problem("days", "must name at least one day")
    return tuple(sorted(set(days)))


def _read_time(rule: Fields, key: str) -> dt.time | None:
    if not rule.has(key):
        return None
    value = rule.get(key)
    if isinstance(value, str) and (match := _TIME.fullmatch(value.strip())):
        return dt.time(int(match[1]), int(match[2]))
    hint = " (quote it: YAML reads 02:00 unquoted as a number)" if isinstance(value, int) else ""
    rule.problem(key, f'must be a time "HH:MM"{hint}')
    return None


def _read_date(fields: Fields, key: str) -> dt.date | None:
    if not fields.has(key):
        return None
    value = fields.get(key)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    fields.problem(key, "must be a date, e.g. 2025-01-31")
    return None


def _plain(value: object) -> object:
    """A YAML value as JSON can store it (dates and times as ISO text)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_maintenance_file(
    path: Path, problems: list[ConfigProblem], default_timezone: str | None = None
) -> list[Window]:
    """`maintenance.yaml`: optional `timezone`, then `windows`, a list. A missing file is no
    windows; every problem is reported with its line."""
    if not path.exists():
        return []
    top = open_document(path, problems)
    if top is None:
        return []
    top.expect(("timezone", "windows"))
    zone = _read_zone(top, default_timezone) if top.has("timezone") else default_timezone
    windows: list[Window] = []
    seen: dict[str, int] = {}
    for item in top.items("windows") or ():
        fields = Fields.of(top.sink, item.value, item.line, item.key)
        if fields is None:
            continue
        window_id = fields.get("id")
        if isinstance(window_id, str) and window_id in seen:
            first = seen[window_id]
            fields.problem("id", f"duplicate window id '{window_id}' (first at line {first})")
        elif isinstance(window_id, str):
            seen[window_id] = fields.line("id")
        window = read_window(fields, zone, "config")
        if window is not None:
            windows.append(window)
    return windows


def check_targets(
    windows: Iterable[Window],
    known: Mapping[str, Iterable[str]],
    path: Path,
    problems: list[ConfigProblem],
) -> None:
    """Every named site, commune and owner must exist: a typo must not silently cover nothing."""
    sets = {selector: set(ids) for selector, ids in known.items()}
    for window in windows:
        if window.selector == "kind":
            continue
        for target in window.targets:
            ids = sets.get(window.selector, set())
            if target not in ids:
                hint = did_you_mean(target, ids)
                message = f"unknown {window.selector} '{target}'{hint} (window '{window.id}')"
                key = f"windows[{window.id}].{window.selector}s"
                problems.append(ConfigProblem(path, window.line, key, message))


def window_from_spec(
    spec: Mapping[str, object], source: str = "ledger", default_timezone: str | None = None
) -> Window:
    """A window from a mapping with the keys of maintenance.yaml (as stored in the ledger, or
    built by the command line); raises ValueError naming every problem if refused. What is
    stored carries its own timezone, so it reads the same whatever the config says later."""
    problems: list[ConfigProblem] = []
    node = _yaml_map(spec)
    window = read_window(Fields(Sink(Path("-"), problems), node, ""), default_timezone, source)
    if window is None:
        raise ValueError("; ".join(_say(problem) for problem in problems))
    return window


def _say(problem: ConfigProblem) -> str:
    """A problem of a spec that has no file: its key and message only."""
    return f"{problem.key}: {problem.message}" if problem.key else problem.message


def _yaml_map(value: Mapping[str, object]) -> YamlMap:
    node = YamlMap(0)
    for key, item in value.items():
        if isinstance(item, Mapping):
            node[key] = _yaml_map(item)
        elif isinstance(item, list | tuple):
            seq = YamlList(0)
            seq.extend(item)
            node[key] = seq
        else:
            node[key] = item
        node.key_lines[key] = 0
    return node


def spec_json(window: Window) -> str:
    return json.dumps(dict(window.spec), ensure_ascii=False, sort_keys=True)
