"""Health rules: a profile's conditions on a device's values, turned into degraded reasons.

A rule holds when every one of its conditions holds; a value the device did not give never
makes a condition hold (not knowing is not a fault: the poll reports the missing value
instead). A rule on table columns is checked row by row, on the rows its `where` picks, and
gives one reason per row, e.g. "WAN interface ge-0/0/1 down".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.config.profiles import HealthRule, Profile
from monitor.probes.snmp.decode import Row

MAX_REASONS_PER_RULE = 5


def degraded_reasons(
    profile: Profile, values: Mapping[str, float | str], tables: Mapping[str, Sequence[Row]]
) -> list[str]:
    reasons: list[str] = []
    for rule in profile.health:
        if rule.table is None:
            if _holds(rule, values):
                reasons.append(_format(rule.reason, values))
            continue
        matched = [
            row
            for row in tables.get(rule.table, ())
            if _picked(rule, row) and _holds(rule, {**values, **row.values})
        ]
        for row in matched[:MAX_REASONS_PER_RULE]:
            reasons.append(_format(rule.reason, {**values, **row.values, **dict(row.labels)}))
        if len(matched) > MAX_REASONS_PER_RULE:
            reasons.append(f"and {len(matched) - MAX_REASONS_PER_RULE} more like it")
    return reasons


def _picked(rule: HealthRule, row: Row) -> bool:
    return all(pattern.fullmatch(row.label(name)) for name, pattern in rule.where)


def _holds(rule: HealthRule, values: Mapping[str, float | str]) -> bool:
    for condition in rule.conditions:
        actual = values.get(condition.value)
        if actual is None or not condition.holds(actual):
            return False
    return True


def _format(reason: str, values: Mapping[str, float | str]) -> str:
    shown = {
        key: f"{value:g}" if isinstance(value, float) else value for key, value in values.items()
    }
    try:
        return reason.format_map(_Missing(shown))
    except (ValueError, KeyError, IndexError):  # checked at load; never fail a poll over words
        return reason


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"
