"""Raw SNMP answers to named values, as a device profile says: type checks, maps, scales,
table rows joined by index and labelled.

Agents lie in small ways: a string where a number belongs, an enumeration value no MIB
defines, a column missing for one row. None of that fails the poll: the value is left out and
the problem is recorded (`missing`, `malformed`) so that the site can say what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.config.profiles import TableSpec, ValueSpec
from monitor.core.kinds import kind_of
from monitor.probes.snmp.engine import SnmpValue, WalkResult

_TEXT_LIMIT = 256  # a label or text value longer than this is cut (a hostile agent's 64 KB)


@dataclass(slots=True)
class Row:
    """One table row: its labels (sorted, as in a Sample) and its numeric values, raw counters
    included (the device state turns those into totals)."""

    labels: tuple[tuple[str, str], ...]
    values: dict[str, float] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def label(self, name: str) -> str:
        return next((value for key, value in self.labels if key == name), "")


@dataclass(slots=True)
class Problems:
    missing: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # walks cut short or failed

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append("not answered: " + ", ".join(self.missing[:8]) + _more(self.missing))
        if self.malformed:
            parts.append("malformed: " + "; ".join(self.malformed[:8]) + _more(self.malformed))
        parts.extend(self.tables)
        return "; ".join(parts)


def _more(items: list[str]) -> str:
    return f" (+{len(items) - 8} more)" if len(items) > 8 else ""


def text_of(raw: SnmpValue) -> str:
    """An OCTET STRING as text: UTF-8 where it is, NULs and padding stripped, bounded."""
    if isinstance(raw, bytes):
        text = raw[: _TEXT_LIMIT * 4].decode("utf-8", errors="replace")
    else:
        text = str(raw)
    return text.replace("\x00", "").strip()[:_TEXT_LIMIT]


def decode(spec: ValueSpec, raw: SnmpValue) -> tuple[float | str | int | None, str | None]:
    """The value of `spec` from the agent's `raw` value: a number (an int for raw counters),
    text, or None with the reason it is unusable."""
    if spec.kind == "text":
        return text_of(raw), None
    if spec.mapping is not None:
        key: int | str
        if isinstance(raw, int):
            key = raw
        elif isinstance(raw, bytes):  # an enumeration sent as text ("2", or "on")
            key = text_of(raw)
            if key.lstrip("-").isdigit():
                key = int(key)
        else:
            return None, f"{spec.name}: not an enumeration ({kind_of(raw)})"
        mapped = spec.mapping.get(key, spec.default)
        if mapped is None:
            return None, f"{spec.name}: unexpected value {text_of(raw)[:32]!r}"
        return mapped, None
    if spec.kind in ("counter32", "counter64"):
        limit = 1 << (32 if spec.kind == "counter32" else 64)
        if isinstance(raw, int) and 0 <= raw < limit:
            return raw, None
        return None, f"{spec.name}: not a {spec.kind} ({kind_of(raw)})"
    number = _number(raw)
    if number is None:
        return None, f"{spec.name}: not a number ({kind_of(raw)})"
    if spec.kind == "timeticks":
        number /= 100.0
    if spec.divisor is not None:  # 312 / 10 is 31.2; 312 * 0.1 is 31.200000000000003
        return number / spec.divisor, None
    return number * spec.scale, None


def _number(raw: SnmpValue) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, bytes | str):  # some agents send numbers as DisplayString ("23.5")
        try:
            value = float(text_of(raw))
        except ValueError:
            return None
        return value if value == value and abs(value) != float("inf") else None
    return None


def decode_table(table: TableSpec, walks: dict[str, WalkResult], problems: Problems) -> list[Row]:
    """Join the walked columns by row index; label each row; drop excluded rows."""
    columns: dict[str, dict[str, SnmpValue]] = {}
    for oid in table.walked:
        result = walks.get(oid)
        if result is None:
            continue
        prefix = len(oid) + 1
        columns[oid] = {row_oid[prefix:]: value for row_oid, value in result.rows}
    indexes: dict[str, None] = {}
    for column in table.columns:
        for index in columns.get(column.oid, {}):
            if len(indexes) >= table.max_rows:
                break
            indexes[index] = None
    rows: list[Row] = []
    for index in indexes:
        labels = _labels(table, columns, index)
        label_map = dict(labels)
        if any(pattern.fullmatch(label_map.get(name, "")) for name, pattern in table.exclude):
            continue
        row = Row(labels)
        for column in table.columns:
            raw = columns.get(column.oid, {}).get(index)
            if raw is None:
                continue
            value, problem = decode(column, raw)
            if problem is not None:
                problems.malformed.append(f"{problem} (row {index})")
            elif isinstance(value, int) and column.is_counter:
                row.counters[column.name] = value
            elif isinstance(value, int | float):
                row.values[column.name] = float(value)
        rows.append(row)
    for column in table.columns:
        if column.oid not in columns or not columns[column.oid]:
            problems.missing.append(column.name)
    return rows


def _labels(
    table: TableSpec, columns: dict[str, dict[str, SnmpValue]], index: str
) -> tuple[tuple[str, str], ...]:
    if not table.labels:
        return ((table.index, index),)
    found: list[tuple[str, str]] = []
    for position, label in enumerate(table.labels):
        text = ""
        for oid in label.oids:
            raw = columns.get(oid, {}).get(index)
            text = text_of(raw) if raw is not None else ""
            if text:
                break
        # The first label names the row: without a value it falls back to the index, so that
        # two rows never share a label set. The others may be empty (an unset ifAlias).
        found.append((label.name, text or (index if position == 0 else "")))
    return tuple(sorted(found))
