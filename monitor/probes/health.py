"""Health rules at work: a device's values against its rules (monitor/config/rules.py), turned
into findings (a code and a reason each) that make the site degraded.

The same evaluation for polled values (SNMP profiles, with their tables) and pushed ones (MQTT
telemetry, scalars only). A rule holds when every one of its conditions holds; a value the
device did not give never makes a condition hold (not knowing is not a fault: the poll
reports the missing value instead). A rule on table columns is checked row by row, on the rows
its `where` picks, and gives one finding per row, e.g. "WAN interface ge-0/0/1 down", all
with the rule's one code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from monitor.config.rules import HealthRule
from monitor.core.reasons import Finding

MAX_REASONS_PER_RULE = 5


class Row(Protocol):
    """One row of a table: its labels and its numeric values."""

    @property
    def labels(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def values(self) -> dict[str, float]: ...

    def label(self, name: str) -> str: ...


def findings(
    rules: Sequence[HealthRule],
    values: Mapping[str, float | str],
    tables: Mapping[str, Sequence[Row]] | None = None,
) -> list[Finding]:
    found: list[Finding] = []
    for rule in rules:
        if rule.table is None:
            if _holds(rule, values):
                found.append(Finding(rule.code, _format(rule.reason, values)))
            continue
        matched = [
            row
            for row in (tables or {}).get(rule.table, ())
            if _picked(rule, row) and _holds(rule, {**values, **row.values})
        ]
        for row in matched[:MAX_REASONS_PER_RULE]:
            shown = {**values, **row.values, **dict(row.labels)}
            found.append(Finding(rule.code, _format(rule.reason, shown)))
        if len(matched) > MAX_REASONS_PER_RULE:
            more = f"and {len(matched) - MAX_REASONS_PER_RULE} more like it"
            found.append(Finding(rule.code, more))
    return found


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
