"""Raw SNMP answers to named values, as a device profile says: type checks, maps, scales,
table rows joined by index and labelled.

Agents lie in small ways: a string where a number belongs, an enumeration value no MIB
defines, a column missing for one row. None of that fails the poll: the value is left out and
the problem is recorded (`missing`, `malformed`) so that the site can say what happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from monitor.config.profiles import Derivation, Source, TableSpec, ValueSpec
from monitor.core.kinds import kind_of
from monitor.core.scaling import Scale
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


#: What `read` says of a value it could not give (besides a malformed value's own words).
MISSING = "missing"  # no source answered
UNAVAILABLE = "unavailable"  # the device answered "not available" (a sentinel of the profile)


@dataclass(slots=True)
class Problems:
    missing: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # sentinels: the device's own word
    unwalked: list[str] = field(default_factory=list)  # columns a cut walk never reached
    tables: list[str] = field(default_factory=list)  # walks cut short or failed

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append("not answered: " + ", ".join(self.missing[:8]) + _more(self.missing))
        if self.unavailable:
            shown = ", ".join(self.unavailable[:8]) + _more(self.unavailable)
            parts.append("device says not available: " + shown)
        if self.malformed:
            parts.append("malformed: " + "; ".join(self.malformed[:8]) + _more(self.malformed))
        if self.unwalked:
            shown = ", ".join(self.unwalked[:8]) + _more(self.unwalked)
            parts.append("not walked (time budget spent): " + shown)
        parts.extend(self.tables)
        return "; ".join(parts)

    @property
    def values_missing(self) -> int:
        """Profile values left out for want of an answer: not answered, not available or
        not walked (a malformed value is counted apart)."""
        return len(self.missing) + len(self.unavailable) + len(self.unwalked)


def _more(items: list[str]) -> str:
    return f" (+{len(items) - 8} more)" if len(items) > 8 else ""


def text_of(raw: SnmpValue) -> str:
    """An OCTET STRING as text: UTF-8 where it is, NULs and padding stripped, bounded."""
    if isinstance(raw, bytes):
        text = raw[: _TEXT_LIMIT * 4].decode("utf-8", errors="replace")
    else:
        text = str(raw)
    return text.replace("\x00", "").strip()[:_TEXT_LIMIT]


def read(
    spec: ValueSpec, raws: Sequence[SnmpValue | None]
) -> tuple[float | str | int | None, str | None]:
    """The value of `spec` from the answers for its sources (`raws[i]` for `spec.sources[i]`,
    None where the agent had nothing): the first source that gives a usable value wins.
    Otherwise None and why: a malformed value's reason, else UNAVAILABLE when a source
    answered one of its "not available" values, else MISSING."""
    problem: str | None = None
    unavailable = False
    for source, raw in zip(spec.sources, raws, strict=True):
        if raw is None:
            continue
        if source.absent and is_absent(raw, source.absent):
            unavailable = True
            continue
        value, trouble = decode(spec, raw, source)
        if trouble is None:
            return value, None
        problem = problem or trouble
    return None, problem or (UNAVAILABLE if unavailable else MISSING)


def is_absent(raw: SnmpValue, absent: frozenset[int | str]) -> bool:
    if isinstance(raw, bytes | str):
        text = text_of(raw)
        if text in absent:
            return True
        try:
            return int(text) in absent
        except ValueError:
            return False
    return raw in absent


def derive(derivation: Derivation, values: Mapping[str, float | str]) -> float | None:
    """A derived value from the named values it needs; None while one is missing (or text),
    or for a ratio by zero."""
    inputs: list[float] = []
    for name in derivation.inputs:
        value = values.get(name)
        if value is None or isinstance(value, str):
            return None
        inputs.append(value)
    operation = derivation.operation
    if operation == "sum":
        return float(sum(inputs))
    if operation == "product":
        product = 1.0
        for value in inputs:
            product *= value
        return product
    if operation == "difference":
        return inputs[0] - inputs[1]
    if operation == "sensor":  # RFC 3433: value x 1000^(scale - 9) / 10^precision, exactly
        value, scale, precision = inputs
        if not (scale.is_integer() and precision.is_integer() and 1 <= scale <= 17):
            return None
        shift = Fraction(10) ** (3 * (int(scale) - 9) - int(precision))
        return Scale(shift.numerator, shift.denominator).apply(value)
    return inputs[0] / inputs[1] if inputs[1] else None


def decode(
    spec: ValueSpec, raw: SnmpValue, source: Source | None = None
) -> tuple[float | str | int | None, str | None]:
    """The value of `spec` from the agent's `raw` value read at `source` (default: its
    first): a number (an int for raw counters), text, or None with the reason it is
    unusable."""
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
    scale = spec.scale if source is None else source.scale
    return scale.apply(number), None  # exact: 312 x 0.1 is 31.2, not 31.200000000000003


def _number(raw: SnmpValue) -> float | int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return raw
    if isinstance(raw, bytes | str):  # some agents send numbers as DisplayString ("23.5")
        try:
            value = float(text_of(raw))
        except ValueError:
            return None
        return value if value == value and abs(value) != float("inf") else None
    return None


def decode_table(
    table: TableSpec, walks: dict[str, WalkResult], problems: Problems, cut: bool = False
) -> list[Row]:
    """Join the walked columns by row index; label each row; drop excluded rows; derive.

    A column whose primary OID is not in `walks` was never walked (the poll's time budget ran
    out first), nor one whose fallbacks the `cut` walks did not reach: it is reported as not
    walked, not as a column the device lacks."""
    columns: dict[str, dict[str, SnmpValue]] = {}
    for oid, result in walks.items():
        prefix = len(oid) + 1
        columns[oid] = {row_oid[prefix:]: value for row_oid, value in result.rows}
    indexes: dict[str, None] = {}
    for column in table.columns:
        for source in column.sources:
            for index in columns.get(source.oid, {}):
                if len(indexes) >= table.max_rows:
                    break
                indexes[index] = None
    rows: list[Row] = []
    unavailable: set[str] = set()
    labelled = {index: _labels(table, columns, index) for index in indexes}
    shared = Counter(labelled.values())
    for index in indexes:
        labels = labelled[index]
        if shared[labels] > 1:  # two power supplies both named "Power supply sensor"
            labels = _with_index(table, labels, index)
        label_map = dict(labels)
        if any(pattern.fullmatch(label_map.get(name, "")) for name, pattern in table.exclude):
            continue
        row = Row(labels)
        for column in table.columns:
            if column.derive is not None:
                continue
            raws = [columns.get(source.oid, {}).get(index) for source in column.sources]
            value, problem = read(column, raws)
            if problem == UNAVAILABLE:
                unavailable.add(column.name)
            elif problem is not None and problem != MISSING:
                problems.malformed.append(f"{problem} (row {index})")
            elif isinstance(value, int) and column.is_counter:
                row.counters[column.name] = value
            elif isinstance(value, int | float):
                row.values[column.name] = float(value)
        for column in table.columns:  # derived after every column read, in profile order
            if column.derive is not None:
                derived = derive(column.derive, row.values)
                if derived is not None:
                    row.values[column.name] = derived
        for column in table.columns:  # a sensor's reading only on the rows of its kind
            if column.only_if is not None and any(
                row.values.get(name) not in numbers for name, numbers in column.only_if
            ):
                row.values.pop(column.name, None)
                row.counters.pop(column.name, None)
        rows.append(row)
    for column in table.columns:
        if column.derive is not None or column.only_if is not None:
            continue  # derived: its inputs say; kept on some rows: none is no problem
        if any(column.name in row.values or column.name in row.counters for row in rows):
            continue
        if column.oid not in walks or (cut and any(s.oid not in walks for s in column.fallbacks)):
            problems.unwalked.append(column.name)
        elif column.name in unavailable:
            problems.unavailable.append(column.name)
        elif not table.may_be_empty and not any(columns.get(s.oid) for s in column.sources):
            problems.missing.append(column.name)
    return rows


def _with_index(
    table: TableSpec, labels: tuple[tuple[str, str], ...], index: str
) -> tuple[tuple[str, str], ...]:
    """Rows whose labels are the same get their index in the first label ("Power supply
    sensor (100711101)"): one series per row, never two samples of one series."""
    if not table.labels:
        return labels
    first = table.labels[0].name
    return tuple((k, f"{v} ({index})" if k == first else v) for k, v in labels)


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
