"""The maintenance windows of a config directory, read by the tests on their own.

A run on the shipped config plays on the wall clock, and the shipped windows (a nightly
loudspeaker test, Viettel's weekly service) are real ones: a site inside one is in
maintenance, whatever the simulator serves. What a person sees must then be checked against
the windows too, worked out here from the file alone (not by the daemon's code under test).
Only the forms of window this reading knows are accepted: a window of another form fails the
test that reads it, rather than being taken for no window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from oracle import Window

_KNOWN = {"id", "reason", "sites", "owners", "daily", "weekly", "from", "timezone"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def owners_of(config: Path) -> dict[str, str]:
    """Each site's owner, from the inventory files."""
    owners: dict[str, str] = {}
    for path in sorted((config / "inventory").glob("*.yaml")):
        document = yaml.safe_load(path.read_text("utf-8")) or {}
        for site in document.get("sites", []):
            owners[site["id"]] = site["owner"]
    return owners


def shipped_windows(config: Path, start: float, end: float) -> list[Window]:
    """Every occurrence of the config's windows that overlaps [start, end] (wall seconds),
    with the sites each holds."""
    document = yaml.safe_load((config / "maintenance.yaml").read_text("utf-8")) or {}
    default_zone = document.get("timezone", "UTC")
    owners = owners_of(config)
    found: list[Window] = []
    for window in document.get("windows", []):
        unknown = set(window) - _KNOWN
        assert not unknown, f"window {window.get('id')}: this reading does not know {unknown}"
        sites = set(window.get("sites", []))
        sites |= {site for site, owner in owners.items() if owner in window.get("owners", [])}
        assert sites, f"window {window.get('id')}: holds no site this reading can tell"
        zone = ZoneInfo(window.get("timezone", default_zone))
        for opened, closed in _occurrences(window, zone, start, end):
            if opened < end and closed > start:
                found.append(Window(opened, closed, frozenset(sites)))
    return found


def _occurrences(
    window: Mapping[str, Any], zone: ZoneInfo, start: float, end: float
) -> list[tuple[float, float]]:
    if "daily" in window:
        rule, days = window["daily"], set(_DAYS)
    else:
        rule = window["weekly"]
        days = {day.lower()[:3] for day in rule["days"]}
    first = dt.datetime.fromtimestamp(start, zone).date() - dt.timedelta(days=1)
    last = dt.datetime.fromtimestamp(end, zone).date()
    since = window.get("from")
    opened_on = first
    spans = []
    while opened_on <= last:
        if _DAYS[opened_on.weekday()] in days and (since is None or opened_on >= since):
            begin = dt.datetime.combine(opened_on, _time(rule["start"]), zone)
            finish = dt.datetime.combine(opened_on, _time(rule["end"]), zone)
            if finish <= begin:  # past midnight: it closes the next day
                finish += dt.timedelta(days=1)
            spans.append((begin.timestamp(), finish.timestamp()))
        opened_on += dt.timedelta(days=1)
    return spans


def _time(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))
