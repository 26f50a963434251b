"""Reading device profiles: `config/profiles/*.yaml`, one profile per file (named by it).

Loading follows the configuration's contract: every problem is reported at once, each with
file, line and key, and a broken profile refuses the whole configuration. The schema is in
config/profiles/README.md; what a profile is, monitor/config/profiles.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from monitor.config.fields import Fields, Located, Sink, is_slug, open_document
from monitor.config.located import BROKEN, YamlList, YamlMap
from monitor.config.problems import ConfigProblem
from monitor.config.profiles import (
    BUILTIN_VALUES,
    COUNTER_KINDS,
    DEFAULT_MAX_ROWS,
    MAX_ROWS_LIMIT,
    RESERVED_LABELS,
    TRAP_ACTIONS,
    VALUE_KINDS,
    LabelSpec,
    Profile,
    TableSpec,
    TrapAction,
    ValueSpec,
)
from monitor.config.rules import RuleScope, RuleValue, read_code, read_patterns, read_rules

_NAME = re.compile(r"[a-z][a-z0-9_]*")


_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


_PROFILE_KEYS = ("description", "values", "tables", "health", "traps")


_VALUE_KEYS = ("name", "oid", "type", "scale", "map", "help")


_TABLE_KEYS = ("name", "index", "labels", "exclude", "columns", "max_rows")


_TRAP_KEYS = ("oid", "degraded", "down", "poll", "code", "help")


@dataclass(frozen=True, slots=True)
class _Seen:
    """Where a value name was first defined, to keep one meaning per name across profiles."""

    metric_type: str
    labels: tuple[str, ...]
    file: Path
    line: int


def load_profiles(directory: Path, problems: list[ConfigProblem]) -> dict[str, Profile]:
    """Every `*.yaml` under `directory`, by file stem; problems appended to `problems`."""
    profiles: dict[str, Profile] = {}
    seen: dict[str, _Seen] = {}
    if not directory.is_dir():
        return profiles
    for path in sorted(p for p in directory.glob("*.yaml") if not p.name.startswith(".")):
        if not is_slug(path.stem):
            problems.append(
                ConfigProblem(path, None, "", "a profile file name must be a slug, e.g. bts-power")
            )
            continue
        profile = _read_profile(path, problems, seen)
        if profile is not None:
            profiles[path.stem] = profile
    return profiles


def _read_profile(
    path: Path, problems: list[ConfigProblem], seen: dict[str, _Seen]
) -> Profile | None:
    top = open_document(path, problems)
    if top is None:
        return None
    top.expect(_PROFILE_KEYS)
    names: dict[str, int] = {}  # value name -> line, within this profile
    scalars = tuple(
        spec
        for item in top.items("values") or ()
        if (spec := _read_value(top.sink, item, None, names, seen)) is not None
    )
    tables = tuple(
        table
        for item in top.items("tables") or ()
        if (table := _read_table(top.sink, item, names, seen)) is not None
    )
    health = read_rules(top, "health", _scope(scalars, tables, names))
    traps: dict[str, TrapAction] = {}
    for item in top.items("traps") or ():
        trap = _read_trap(top.sink, item)
        if trap is None:
            continue
        if trap.oid in traps:
            top.sink.add(item.line, item.key, f"trap {trap.oid} is listed twice")
            continue
        traps[trap.oid] = trap
    description = top.text("description") if top.has("description") else ""
    return Profile(path.stem, description or "", scalars, tables, health, traps, path)


def _scope(
    scalars: tuple[ValueSpec, ...], tables: tuple[TableSpec, ...], names: dict[str, int]
) -> RuleScope:
    """What this profile's health rules may name: its scalars, its columns (by table), the
    tables' labels, and the values every SNMP site has (in reasons only)."""
    values = {spec.name: RuleValue(text=spec.kind == "text") for spec in scalars}
    for table in tables:
        for column in table.columns:
            values[column.name] = RuleValue(table=table.name)
    return RuleScope(
        values,
        {table.name: table.label_names for table in tables},
        BUILTIN_VALUES,
        set(names),
        "this profile's values or columns",
    )


def _read_value(
    sink: Sink,
    item: Located[object],
    table: list[str] | None,
    names: dict[str, int],
    seen: dict[str, _Seen],
) -> ValueSpec | None:
    """One value; `table` holds the table's label names for a column, None for a scalar."""
    fields = Fields.of(sink, item.value, item.line, item.key)
    if fields is None:
        return None
    fields.expect(_VALUE_KEYS, required=("name", "oid"))
    name = _read_name(fields, "name")
    oid = _read_oid(fields, "oid")
    kind = fields.choice("type", VALUE_KINDS) if fields.has("type") else "gauge"
    scale = fields.number("scale") if fields.has("scale") else 1.0
    mapping, default = _read_map(fields)
    help_text = fields.text("help") if fields.has("help") else ""
    if name is None or oid is None or kind is None or scale is None:
        if name is not None:  # reported already: rules on it stay quiet
            names.setdefault(name, fields.line("name"))
        return None
    if name in BUILTIN_VALUES:
        fields.problem("name", f"'{name}' is a value every SNMP site has already")
        return None
    if name in names:
        fields.problem("name", f"value '{name}' is defined twice (first at line {names[name]})")
        return None
    names[name] = fields.line("name")
    if kind in COUNTER_KINDS and not name.endswith("_total"):
        fields.problem("name", f"a {kind} is a counter: its name must end in _total")
        return None
    if kind not in COUNTER_KINDS and name.endswith("_total"):
        fields.problem("name", "only counters (counter32, counter64) end in _total")
        return None
    if kind in COUNTER_KINDS and (mapping is not None or fields.has("scale")):
        fields.problem("type", "a counter is exported as the device counts it: no map, no scale")
        return None
    if kind == "text" and table is not None:
        fields.problem("type", "a table column must be a number; use text columns as labels")
        return None
    if kind == "text" and (mapping is not None or fields.has("scale")):
        fields.problem("type", "a text value has no map or scale")
        return None
    value_kind = next(k for k in VALUE_KINDS if k == kind)  # the Literal, for the type checker
    spec = ValueSpec(name, oid, value_kind, scale, mapping, default, help_text or "")
    labels = tuple(table) if table is not None else ()
    first = seen.get(name)
    if first is not None and (first.metric_type, first.labels) != (spec.metric_type, labels):
        fields.problem(
            "name",
            f"'{name}' is a {first.metric_type} with labels ({', '.join(first.labels)}) in "
            f"{first.file.name}:{first.line}; one name must mean one kind of series",
        )
        return None
    if first is None:
        seen[name] = _Seen(spec.metric_type, labels, sink.file, fields.line("name"))
    return spec


def _read_name(fields: Fields, key: str) -> str | None:
    name = fields.text(key)
    if name is not None and not _NAME.fullmatch(name):
        fields.problem(key, f"must be a metric name ([a-z][a-z0-9_]*), got {name!r}")
        return None
    return name


def _read_oid(fields: Fields, key: str) -> str | None:
    value = fields.get(key)
    if value is BROKEN:
        return None
    text = str(value).removeprefix(".") if isinstance(value, str) else None
    if text is None or not _OID.fullmatch(text):
        fields.problem(key, f"must be a numeric OID like 1.3.6.1.2.1.33.1.2.5.0, got {value!r}")
        return None
    return text


def _read_map(fields: Fields) -> tuple[dict[int | str, float] | None, float | None]:
    """`map: {1: 1, 2: 0, default: 0}`: raw value (integer or text) -> number."""
    if not fields.has("map"):
        return None, None
    value = fields.get("map")
    if not isinstance(value, YamlMap) or not value:
        fields.problem("map", "must be a non-empty mapping of raw value -> number")
        return None, None
    mapping: dict[int | str, float] = {}
    default: float | None = None
    for raw, mapped in value.items():
        line = value.line_of(raw)
        if isinstance(mapped, bool) or not isinstance(mapped, int | float):
            fields.sink.add(line, fields.key(f"map.{raw}"), "must map to a number")
            continue
        if raw == "default":
            default = float(mapped)
        else:
            mapping[int(raw) if raw.lstrip("-").isdigit() else raw] = float(mapped)
    return mapping, default


def _read_table(
    sink: Sink, item: Located[object], names: dict[str, int], seen: dict[str, _Seen]
) -> TableSpec | None:
    fields = Fields.of(sink, item.value, item.line, item.key)
    if fields is None:
        return None
    fields.expect(_TABLE_KEYS, required=("name", "columns"))
    name = _read_name(fields, "name")
    labels = _read_labels(fields)
    index = _read_name(fields, "index") if fields.has("index") else "index"
    if index is not None and index in RESERVED_LABELS:
        fields.problem("index", f"'{index}' is a label every device metric has already")
        index = None
    if labels and fields.has("index"):
        fields.problem("index", "a table with label columns has no index label")
    label_names = [label.name for label in labels] or [index or "index"]
    exclude = read_patterns(fields, "exclude", label_names)
    max_rows = (
        fields.integer("max_rows", 1, MAX_ROWS_LIMIT)
        if fields.has("max_rows")
        else DEFAULT_MAX_ROWS
    )
    columns = tuple(
        spec
        for column in fields.items("columns") or ()
        if (spec := _read_value(sink, column, label_names, names, seen)) is not None
    )
    if name is None or max_rows is None or index is None or not columns:
        if fields.has("columns") and not columns and isinstance(fields.get("columns"), YamlList):
            fields.problem("columns", "a table needs at least one column")
        return None
    return TableSpec(name, columns, labels, exclude, max_rows, index)


def _read_labels(fields: Fields) -> tuple[LabelSpec, ...]:
    section = fields.mapping("labels") if fields.has("labels") else None
    if section is None:
        return ()
    found: list[LabelSpec] = []
    for label in section.node:
        if not _NAME.fullmatch(label) or label in RESERVED_LABELS or label == "index":
            reserved = ", ".join(sorted(RESERVED_LABELS))
            section.problem(label, f"a label name is [a-z][a-z0-9_]*, not index or: {reserved}")
            continue
        raw = section.get(label)
        sources = list(raw) if isinstance(raw, YamlList) else [raw]
        oids: list[str] = []
        for source in sources:
            text = source.removeprefix(".") if isinstance(source, str) else None
            if text is None or not _OID.fullmatch(text):
                section.problem(label, "must be a column OID, or a list of them (first wins)")
                break
            oids.append(text)
        else:
            if oids:
                found.append(LabelSpec(label, tuple(oids)))
    return tuple(found)


def _read_trap(sink: Sink, item: Located[object]) -> TrapAction | None:
    fields = Fields.of(sink, item.value, item.line, item.key)
    if fields is None:
        return None
    fields.expect(_TRAP_KEYS, required=("oid",))
    oid = _read_oid(fields, "oid")
    actions = [key for key in TRAP_ACTIONS if fields.has(key)]
    if len(actions) != 1:
        fields.problem_here(f"needs exactly one of: {', '.join(TRAP_ACTIONS)}")
        return None
    action = actions[0]
    if action == "poll":
        if fields.get("poll") is not True:
            fields.problem("poll", "must be true")
            return None
        if fields.has("code"):
            fields.problem("code", "a poll trap has no reason of its own: the poll decides")
            return None
        return None if oid is None else TrapAction(oid, "poll")
    reason = fields.text(action)
    code = read_code(fields, reason)
    if oid is None or reason is None or code is None:
        return None
    return TrapAction(oid, action, reason, code)
