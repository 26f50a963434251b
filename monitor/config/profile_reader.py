"""Reading device profiles: `config/profiles/*.yaml`, one profile per file (named by it).

Loading follows the configuration's contract: every problem is reported at once, each with
file, line and key, and a broken profile refuses the whole configuration. The schema is in
config/profiles/README.md; what a profile is, monitor/config/profiles.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from monitor.config.fields import Fields, Located, Sink, is_slug, open_document
from monitor.config.located import BROKEN, YamlList, YamlMap
from monitor.config.problems import ConfigProblem
from monitor.config.profiles import (
    AUTO,
    BUILTIN_VALUES,
    COUNTER_KINDS,
    DEFAULT_MAX_ROWS,
    DERIVATIONS,
    MAX_ROWS_LIMIT,
    PROFILE_VALUES,
    RESERVED_LABELS,
    TRAP_ACTIONS,
    VALUE_KINDS,
    Derivation,
    Detection,
    LabelSpec,
    Profile,
    Source,
    TableSpec,
    TrapAction,
    ValueSpec,
)
from monitor.config.rules import RuleScope, RuleValue, read_code, read_patterns, read_rules
from monitor.config.suggest import did_you_mean
from monitor.core.scaling import ONE, Scale

_NAME = re.compile(r"[a-z][a-z0-9_]*")


_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


_PROFILE_KEYS = (
    "description",
    "vendor",
    "extends",
    "detect",
    "drop",
    "values",
    "tables",
    "health",
    "traps",
)


_VALUE_KEYS = (
    "name",
    "oid",
    "type",
    "scale",
    "map",
    "absent",
    "fallback",
    *DERIVATIONS,
    "export",
    "only_if",
    "help",
)


_SOURCE_KEYS = ("oid", "scale", "absent")


_DETECT_KEYS = ("sys_object_id", "sys_descr", "has", "catch_all")
_DETECT_PARTS = _DETECT_KEYS[:3]


_TABLE_KEYS = ("name", "index", "labels", "exclude", "columns", "max_rows", "may_be_empty")


_TRAP_KEYS = ("oid", "degraded", "down", "poll", "code", "help")


@dataclass(frozen=True, slots=True)
class _Seen:
    """Where a value name was first defined, to keep one meaning per name across profiles."""

    metric_type: str
    labels: tuple[str, ...]
    file: Path
    line: int


def load_profiles(directory: Path, problems: list[ConfigProblem]) -> dict[str, Profile]:
    """Every `*.yaml` under `directory`, by file stem; problems appended to `problems`.

    A profile that `extends` another is read after its base, starting from the base's values,
    tables, rules and traps; a base that is missing, broken or part of a cycle refuses the
    profile that names it (one message, at its `extends`)."""
    profiles: dict[str, Profile] = {}
    seen: dict[str, _Seen] = {}
    if not directory.is_dir():
        return profiles
    tops: dict[str, Fields] = {}
    for path in sorted(p for p in directory.glob("*.yaml") if not p.name.startswith(".")):
        if not is_slug(path.stem) or path.stem == AUTO:
            problems.append(
                ConfigProblem(
                    path, None, "", "a profile file name must be a slug other than auto, e.g. ups"
                )
            )
            continue
        top = open_document(path, problems)
        if top is not None:
            tops[path.stem] = top
    failed: set[str] = set()

    def resolve(name: str, chain: tuple[str, ...]) -> Profile | None:
        if name in profiles:
            return profiles[name]
        if name in failed:
            return None
        top = tops[name]
        base: Profile | None = None
        if top.has("extends"):
            parent = top.slug("extends")
            if parent is None:
                failed.add(name)
                return None
            if parent in chain or parent == name:
                cycle = " -> ".join((*chain[chain.index(parent) :], name, parent))
                top.problem("extends", f"profiles extend each other in a circle: {cycle}")
                failed.add(name)
                return None
            if parent not in tops:
                hint = did_you_mean(parent, tops)
                top.problem("extends", f"no profile '{parent}' to extend{hint}")
                failed.add(name)
                return None
            base = resolve(parent, (*chain, name))
            if base is None:  # the base's own problems are reported at the base
                failed.add(name)
                return None
        profile = _read_profile(top.sink.file, top, seen, base)
        if profile is None:
            failed.add(name)
            return None
        profiles[name] = profile
        return profile

    for name in tops:
        resolve(name, ())
    return dict(sorted(profiles.items()))


def _read_profile(
    path: Path, top: Fields, seen: dict[str, _Seen], base: Profile | None
) -> Profile | None:
    top.expect(_PROFILE_KEYS)
    before = len(top.sink.problems)
    dropped = _read_drop(top, base)
    base_scalars = [] if base is None else [s for s in base.scalars if s.name not in dropped]
    base_tables = [] if base is None else [_without(t, dropped) for t in base.tables]
    inherited = {spec.name for spec in base_scalars} | {
        column.name for table in base_tables if table is not None for column in table.columns
    }
    names: dict[str, int] = {}  # value name -> line, within this file
    scope = set(inherited) - {c.name for t in base_tables if t is not None for c in t.columns}
    scalars_read: list[ValueSpec] = []
    for item in top.items("values") or ():
        spec = _read_value(top.sink, item, None, names, seen, scope)
        if spec is not None:
            scalars_read.append(spec)
            scope.add(spec.name)
    scalars = _merge_values(base_scalars, scalars_read)
    tables_by_name = {t.name: t for t in base_tables if t is not None}
    for item in top.items("tables") or ():
        table = _read_table(top.sink, item, names, seen, tables_by_name)
        if table is not None:
            tables_by_name[table.name] = table
    tables = tuple(tables_by_name.values())
    table_of = {col.name: table for table in tables for col in table.columns}
    for item in top.items("values") or ():
        fields = Fields.of(top.sink, item.value, item.line, item.key)
        name = fields.get("name") if fields is not None else None
        if isinstance(name, str) and name in table_of and fields is not None:
            fields.problem("name", f"'{name}' is a column of table {table_of[name].name}")
    declared = {**dict.fromkeys(inherited, 0), **names}
    inherited_rules = [] if base is None else list(base.health)
    rule_scope = _scope(scalars, tables, declared)
    rules_read = read_rules(top, "health", rule_scope)
    # a rule of this profile with a base rule's reason takes its place (not one with its code:
    # two rules that mean the same may share a code); a base rule on a value this profile
    # dropped goes with it
    reasons = {rule.reason for rule in rules_read}
    health = tuple(
        [
            rule
            for rule in inherited_rules
            if rule.reason not in reasons
            and all(_same_table(c.value, rule.table, rule_scope) for c in rule.conditions)
        ]
        + list(rules_read)
    )
    traps: dict[str, TrapAction] = {} if base is None else dict(base.traps)
    own: set[str] = set()
    for item in top.items("traps") or ():
        trap = _read_trap(top.sink, item)
        if trap is None:
            continue
        if trap.oid in own:
            top.sink.add(item.line, item.key, f"trap {trap.oid} is listed twice")
            continue
        own.add(trap.oid)
        traps[trap.oid] = trap
    description = top.text("description") if top.has("description") else None
    vendor = top.text("vendor") if top.has("vendor") else None
    detect = _read_detect(top) if top.has("detect") else None
    if len(top.sink.problems) > before:
        return None
    return Profile(
        path.stem,
        description or (base.description if base else ""),
        scalars,
        tables,
        health,
        traps,
        path,
        vendor or (base.vendor if base else ""),
        detect,
        base.id if base else None,
    )


def _read_drop(top: Fields, base: Profile | None) -> set[str]:
    """`drop: [names]`: values or columns of the base this profile does without (a device
    that lacks them would only report them missing forever)."""
    if not top.has("drop"):
        return set()
    if base is None:
        top.problem("drop", "only a profile that extends another can drop its values")
        return set()
    known = {spec.name for spec in base.scalars} | {
        column.name for table in base.tables for column in table.columns
    }
    dropped: set[str] = set()
    for item in top.texts("drop") or ():
        if item.value not in known:
            hint = did_you_mean(item.value, known)
            top.sink.add(item.line, item.key, f"'{item.value}' is not a value of {base.id}{hint}")
            continue
        dropped.add(item.value)
    return dropped


def _without(table: TableSpec, dropped: set[str]) -> TableSpec | None:
    columns = tuple(column for column in table.columns if column.name not in dropped)
    if not columns:
        return None
    return TableSpec(
        table.name,
        columns,
        table.labels,
        table.exclude,
        table.max_rows,
        table.index,
        table.may_be_empty,
    )


def _merge_values(base: Iterable[ValueSpec], own: Iterable[ValueSpec]) -> tuple[ValueSpec, ...]:
    """The base's values with this profile's of the same name in their place, then the new
    ones: an override keeps the series where dashboards know it."""
    mine = {spec.name: spec for spec in own}
    merged = [mine.pop(spec.name, spec) for spec in base]
    return (*merged, *mine.values())


def _read_detect(top: Fields) -> Detection | None:
    fields = top.mapping("detect")
    if fields is None:
        return None
    fields.expect(_DETECT_KEYS)
    if not any(fields.has(key) for key in _DETECT_PARTS):
        fields.problem_here(f"needs at least one of: {', '.join(_DETECT_PARTS)}")
        return None
    catch_all = fields.get("catch_all") if fields.has("catch_all") else False
    if not isinstance(catch_all, bool):
        fields.problem("catch_all", f"must be true or false, got {fields.sink.show(catch_all)}")
        return None
    prefixes = _read_oid_list(fields, "sys_object_id") if fields.has("sys_object_id") else ()
    has = _read_oid_list(fields, "has") if fields.has("has") else ()
    pattern: re.Pattern[str] | None = None
    if fields.has("sys_descr"):
        text = fields.text("sys_descr")
        if text is not None:
            try:
                pattern = re.compile(text)
            except re.error as error:
                fields.problem("sys_descr", f"not a valid regular expression: {error}")
    if prefixes is None or has is None:
        return None
    return Detection(prefixes, pattern, has, catch_all)


def _read_oid_list(fields: Fields, key: str) -> tuple[str, ...] | None:
    """One OID or a list of them."""
    raw = fields.get(key)
    items = list(raw) if isinstance(raw, YamlList) else [raw]
    found: list[str] = []
    for each in items:
        text = each.removeprefix(".") if isinstance(each, str) else None
        if text is None or not _OID.fullmatch(text):
            fields.problem(key, f"must be a numeric OID or a list of them, got {each!r}")
            return None
        found.append(text)
    if not found:
        fields.problem(key, "must not be empty")
        return None
    return tuple(found)


def _same_table(value: str, table: str | None, scope: RuleScope) -> bool:
    """A value an inherited rule tests is still there, where the rule found it (not dropped,
    not turned from a scalar into a column)."""
    spec = scope.values.get(value)
    return spec is not None and spec.table == table


def _scope(
    scalars: Iterable[ValueSpec], tables: Iterable[TableSpec], names: Mapping[str, int]
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
    scope: set[str],
) -> ValueSpec | None:
    """One value; `table` holds the table's label names for a column, None for a scalar.
    `scope` holds the values a derived one may be computed from (the scalars, or the
    columns of the same table)."""
    fields = Fields.of(sink, item.value, item.line, item.key)
    if fields is None:
        return None
    operations = [op for op in DERIVATIONS if fields.has(op)]
    fields.expect(_VALUE_KEYS, required=("name",) if operations else ("name", "oid"))
    name = _read_name(fields, "name")
    if operations:
        return _read_derived(fields, name, operations, table, names, seen, scope)
    oid = _read_oid(fields, "oid")
    kind = fields.choice("type", VALUE_KINDS) if fields.has("type") else "gauge"
    scale = _read_scale(fields, "scale")
    mapping, default = _read_map(fields)
    absent = _read_absent(fields)
    fallbacks = _read_fallbacks(fields)
    export = _read_export(fields)
    help_text = fields.text("help") if fields.has("help") else ""
    if (
        name is None
        or oid is None
        or kind is None
        or scale is None
        or absent is None
        or fallbacks is None
        or export is None
    ):
        if name is not None:  # reported already: rules on it stay quiet
            names.setdefault(name, fields.line("name"))
        return None
    if not _check_name(fields, name, names):
        return None
    if kind in COUNTER_KINDS and not name.endswith("_total"):
        fields.problem("name", f"a {kind} is a counter: its name must end in _total")
        return None
    if kind not in COUNTER_KINDS and name.endswith("_total"):
        fields.problem("name", "only counters (counter32, counter64) end in _total")
        return None
    scaled = fields.has("scale") or any(not f.scale.is_one for f in fallbacks)
    if kind in COUNTER_KINDS and (mapping is not None or scaled):
        fields.problem("type", "a counter is exported as the device counts it: no map, no scale")
        return None
    if kind == "text" and table is not None:
        fields.problem("type", "a table column must be a number; use text columns as labels")
        return None
    if kind == "text" and (mapping is not None or scaled):
        fields.problem("type", "a text value has no map or scale")
        return None
    read_well, only_if = _read_only_if(fields, table, scope)
    if not read_well:
        return None
    value_kind = next(k for k in VALUE_KINDS if k == kind)  # the Literal, for the type checker
    spec = ValueSpec(
        name,
        oid,
        value_kind,
        scale,
        mapping,
        default,
        help_text or "",
        absent,
        fallbacks,
        None,
        export,
        only_if,
    )
    return spec if _check_meaning(fields, spec, table, seen) else None


def _read_derived(
    fields: Fields,
    name: str | None,
    operations: list[str],
    table: list[str] | None,
    names: dict[str, int],
    seen: dict[str, _Seen],
    scope: set[str],
) -> ValueSpec | None:
    """`sum: [a, b, c]`, `product: [...]`, `difference: [a, b]`, `ratio: [a, b]`."""
    for key in ("oid", "type", "scale", "map", "absent", "fallback"):
        if fields.has(key):
            fields.problem(key, f"a derived value ({operations[0]}) has no {key}")
            return None
    if len(operations) > 1:
        fields.problem(operations[1], f"a value is derived one way only, not {operations}")
        return None
    operation = operations[0]
    inputs = fields.texts(operation)
    export = _read_export(fields)
    help_text = fields.text("help") if fields.has("help") else ""
    if name is None or inputs is None or export is None:
        if name is not None:
            names.setdefault(name, fields.line("name"))
        return None
    wanted = {"sum": (2, None), "product": (2, None), "sensor": (3, 3)}.get(operation, (2, 2))
    if len(inputs) < wanted[0] or (wanted[1] is not None and len(inputs) > wanted[1]):
        count = "two or more" if wanted[1] is None else f"exactly {wanted[1]}"
        fields.problem(operation, f"{operation} takes {count} values")
        return None
    where = "values of this profile" if table is None else "columns of this table"
    for each in inputs:
        if each.value not in scope:
            hint = did_you_mean(each.value, scope)
            fields.sink.add(
                each.line, each.key, f"'{each.value}' is not among the {where} above{hint}"
            )
            return None
        if each.value.endswith("_total"):
            fields.sink.add(each.line, each.key, "a counter cannot be an input: derive totals")
            return None
    if not _check_name(fields, name, names):
        return None
    if name.endswith("_total"):
        fields.problem("name", "a derived value is a gauge: its name must not end in _total")
        return None
    read_well, only_if = _read_only_if(fields, table, scope)
    if not read_well:
        return None
    derivation = Derivation(operation, tuple(each.value for each in inputs))
    spec = ValueSpec(
        name,
        "",
        "gauge",
        ONE,
        help=help_text or "",
        derive=derivation,
        export=export,
        only_if=only_if,
    )
    return spec if _check_meaning(fields, spec, table, seen) else None


def _read_only_if(
    fields: Fields, table: list[str] | None, scope: set[str]
) -> tuple[bool, tuple[tuple[str, frozenset[float]], ...] | None]:
    """`only_if: {column: [numbers], ...}`: (read well, the conditions or None when absent)."""
    if not fields.has("only_if"):
        return True, None
    if table is None:
        fields.problem("only_if", "only a table column can be kept on some rows")
        return False, None
    section = fields.mapping("only_if")
    if section is None:
        return False, None
    if not section.node:
        section.problem_here("names columns of this table, each with the numbers it must read")
        return False, None
    found: list[tuple[str, frozenset[float]]] = []
    for column in section.node:
        if column not in scope:
            hint = did_you_mean(column, scope)
            section.problem(
                column, f"'{column}' is not among the columns of this table above{hint}"
            )
            return False, None
        raw = section.get(column)
        items = list(raw) if isinstance(raw, YamlList) else [raw]
        numbers = [i for i in items if not isinstance(i, bool) and isinstance(i, int | float)]
        if not items or len(numbers) != len(items):
            section.problem(column, "must be a number or a list of numbers")
            return False, None
        found.append((column, frozenset(float(i) for i in numbers)))
    return True, tuple(found)


def _check_name(fields: Fields, name: str, names: dict[str, int]) -> bool:
    if name in BUILTIN_VALUES or name in PROFILE_VALUES:
        fields.problem("name", f"'{name}' is a value every SNMP site has already")
        return False
    if name in names:
        fields.problem("name", f"value '{name}' is defined twice (first at line {names[name]})")
        return False
    names[name] = fields.line("name")
    return True


def _check_meaning(
    fields: Fields, spec: ValueSpec, table: list[str] | None, seen: dict[str, _Seen]
) -> bool:
    """One value name means one kind of series across all profiles."""
    labels = tuple(table) if table is not None else ()
    first = seen.get(spec.name)
    if first is not None and (first.metric_type, first.labels) != (spec.metric_type, labels):
        fields.problem(
            "name",
            f"'{spec.name}' is a {first.metric_type} with labels ({', '.join(first.labels)}) "
            f"in {first.file.name}:{first.line}; one name must mean one kind of series",
        )
        return False
    if first is None:
        seen[spec.name] = _Seen(spec.metric_type, labels, fields.sink.file, fields.line("name"))
    return True


def _read_scale(fields: Fields, key: str) -> Scale | None:
    if not fields.has(key):
        return ONE
    number = fields.number(key)
    if number is None:
        return None
    if number == 0:
        fields.problem(key, "must not be 0")
        return None
    raw = fields.get(key)
    return Scale.of(raw if isinstance(raw, int | float) and not isinstance(raw, bool) else number)


def _read_absent(fields: Fields) -> frozenset[int | str] | None:
    """`absent: [-1, 2147483647]`: raw values that mean the device does not know."""
    if not fields.has("absent"):
        return frozenset()
    raw = fields.get("absent")
    items = list(raw) if isinstance(raw, YamlList) else [raw]
    found: set[int | str] = set()
    for each in items:
        if isinstance(each, bool) or not isinstance(each, int | str) or each == "":
            fields.problem("absent", f"must be raw values (integers or text), got {each!r}")
            return None
        found.add(each)
    if not found:
        fields.problem("absent", "must not be empty")
        return None
    return frozenset(found)


def _read_fallbacks(fields: Fields) -> tuple[Source, ...] | None:
    """`fallback: [{oid, scale, absent}, ...]`: read in order when the OID before gave
    nothing usable. A fallback takes nothing from the value's own scale or absent values:
    another OID is another unit (ifSpeed counts bit/s where ifHighSpeed counts Mbit/s)."""
    if not fields.has("fallback"):
        return ()
    found: list[Source] = []
    for item in fields.items("fallback") or ():
        each = Fields.of(fields.sink, item.value, item.line, item.key)
        if each is None:
            return None
        each.expect(_SOURCE_KEYS, required=("oid",))
        oid = _read_oid(each, "oid")
        scale = _read_scale(each, "scale")
        absent = _read_absent(each)
        if oid is None or scale is None or absent is None:
            return None
        found.append(Source(oid, scale, absent))
    return tuple(found) if found or fields.items("fallback") is not None else None


def _read_export(fields: Fields) -> bool | None:
    if not fields.has("export"):
        return True
    value = fields.get("export")
    if not isinstance(value, bool):
        fields.problem("export", f"must be true or false, got {fields.sink.show(value)}")
        return None
    return value


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
    sink: Sink,
    item: Located[object],
    names: dict[str, int],
    seen: dict[str, _Seen],
    inherited: dict[str, TableSpec],
) -> TableSpec | None:
    """One table. A table named like one of the base profile's is an override: the keys it
    gives replace the base's, its columns replace the base's of the same name or are added,
    and it needs no columns of its own (`exclude` alone is an override too)."""
    fields = Fields.of(sink, item.value, item.line, item.key)
    if fields is None:
        return None
    raw_name = fields.get("name")
    base = inherited.get(raw_name) if isinstance(raw_name, str) else None
    fields.expect(_TABLE_KEYS, required=("name",) if base else ("name", "columns"))
    name = _read_name(fields, "name")
    labels = _read_labels(fields) if fields.has("labels") or base is None else base.labels
    index = _read_name(fields, "index") if fields.has("index") else "index"
    if base is not None and not fields.has("index"):
        index = base.index
    if index is not None and index in RESERVED_LABELS:
        fields.problem("index", f"'{index}' is a label every device metric has already")
        index = None
    if labels and fields.has("index"):
        fields.problem("index", "a table with label columns has no index label")
    label_names = [label.name for label in labels] or [index or "index"]
    if fields.has("exclude") or base is None:
        exclude = read_patterns(fields, "exclude", label_names)
    else:
        exclude = base.exclude
    if fields.has("max_rows"):
        max_rows = fields.integer("max_rows", 1, MAX_ROWS_LIMIT)
    else:
        max_rows = base.max_rows if base is not None else DEFAULT_MAX_ROWS
    scope = {column.name for column in base.columns} if base is not None else set()
    own: list[ValueSpec] = []
    for column in fields.items("columns") or ():
        spec = _read_value(sink, column, label_names, names, seen, scope)
        if spec is not None:
            own.append(spec)
            scope.add(spec.name)
    columns = _merge_values(base.columns if base is not None else (), own)
    if name is None or max_rows is None or index is None or not columns:
        if fields.has("columns") and not columns and isinstance(fields.get("columns"), YamlList):
            fields.problem("columns", "a table needs at least one column")
        return None
    if base is not None and tuple(label_names) != base.label_names:
        broken = [c.name for c in base.columns if c.name not in {o.name for o in own}]
        if broken:
            fields.problem(
                "labels",
                f"labels differ from the base table's ({', '.join(base.label_names)}): "
                f"override its columns too ({', '.join(broken)})",
            )
            return None
    may_be_empty = fields.get("may_be_empty") if fields.has("may_be_empty") else None
    if may_be_empty is None:
        may_be_empty = base.may_be_empty if base is not None else False
    if not isinstance(may_be_empty, bool):
        fields.problem("may_be_empty", f"must be true or false, got {sink.show(may_be_empty)}")
        return None
    return TableSpec(name, columns, labels, exclude, max_rows, index, may_be_empty)


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
