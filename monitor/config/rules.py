"""The health rule language: conditions on a device's named values that make a site degraded.

One language for every device that reports values, whether they are polled over SNMP (device
profiles, config/profiles/*.yaml) or pushed over MQTT (telemetry mappings,
config/mqtt/mappings.yaml): the same schema, read by the same reader, evaluated by the same
code (monitor/probes/health.py). Each file says which values a rule may test through a
`RuleScope`; everything else is here.

```yaml
health:
  - reason: "battery at {battery_volts} V, below 47 V"   # for people; {value} placeholders
    code: battery_low                                     # bounded word for metric labels
    when: {battery_volts: {below: 47}}                    # every condition must hold
    where: {alias: "(?i).*wan.*"}                         # rows of a table, by label
```

`code` is a slug (monitor/core/reasons.py) that reaches `districtmon_site_reason{reason=...}`;
a rule without one gets `derive_code(reason)`. The fixed words of the vocabulary (timeout,
maintenance...) are refused as codes: a profile may not make its rules look like a failed poll.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from monitor.config.fields import Fields, Located, Sink
from monitor.config.located import BROKEN, YamlList
from monitor.core.reasons import CODE_RULE, FIXED_CODES, derive_code, is_code

OPERATORS = ("equals", "not_equals", "below", "above", "one_of")
RULE_KEYS = ("reason", "code", "when", "where")


@dataclass(frozen=True, slots=True)
class Condition:
    value: str
    operator: str
    operand: float | str | tuple[float | str, ...]

    def holds(self, actual: float | str) -> bool:
        op, operand = self.operator, self.operand
        if op == "equals":
            return actual == operand
        if op == "not_equals":
            return actual != operand
        if op == "one_of":
            return isinstance(operand, tuple) and actual in operand
        if isinstance(actual, str) or isinstance(operand, str | tuple):
            return False
        return actual < operand if op == "below" else actual > operand


@dataclass(frozen=True, slots=True)
class HealthRule:
    """`reason` holds when every condition holds. A rule on table columns is checked row by
    row (`where` picks rows by label); a missing value never makes a rule hold. `code` is the
    reason's bounded word (given, or derived by the loader from the reason)."""

    reason: str
    conditions: tuple[Condition, ...]
    table: str | None = None
    where: tuple[tuple[str, re.Pattern[str]], ...] = ()
    code: str = "unhealthy"


@dataclass(frozen=True, slots=True)
class RuleValue:
    """A value rules may test: whether it is text, and the table it is a column of."""

    text: bool = False
    table: str | None = None


@dataclass(frozen=True, slots=True)
class RuleScope:
    """What the rules of one file may name: `values` by name; `labels` per table (for `where`
    and placeholders); `placeholders` also allowed in a reason (values every device has);
    `declared` every value name defined, broken ones included, so that a rule on a value
    already reported is dropped quietly (one mistake, one message); `defined_by` says where
    the values come from, in the message about a value that is not there."""

    values: Mapping[str, RuleValue]
    labels: Mapping[str, tuple[str, ...]]
    placeholders: Collection[str] = ()
    declared: Collection[str] = ()
    defined_by: str = "this profile's values"


def read_rules(top: Fields, key: str, scope: RuleScope) -> tuple[HealthRule, ...]:
    """The rules listed under `key` of `top` (absent: none); problems go to its sink."""
    return tuple(
        rule
        for item in top.items(key) or ()
        if (rule := read_rule(top.sink, item, scope, top.subject)) is not None
    )


def read_rule(
    sink: Sink, item: Located[object], scope: RuleScope, subject: str = ""
) -> HealthRule | None:
    fields = Fields.of(sink, item.value, item.line, item.key, subject)
    if fields is None:
        return None
    fields.expect(RULE_KEYS, required=("reason", "when"))
    reason = fields.text("reason")
    code = read_code(fields, reason)
    when = fields.mapping("when")
    if when is None:
        return None
    conditions: list[Condition] = []
    tables: set[str] = set()
    ok = True
    for value in when.node:
        spec = scope.values.get(value)
        if spec is None:
            if value not in scope.declared:
                when.problem(value, f"unknown value (not in {scope.defined_by})")
            ok = False
            continue
        if spec.table is not None:
            tables.add(spec.table)
        condition = _read_condition(when, value, spec)
        if condition is None:
            ok = False
            continue
        conditions.extend(condition)
    if len(tables) > 1:
        fields.problem(
            "when", f"a rule may use the columns of one table only, got {sorted(tables)}"
        )
        ok = False
    table = next(iter(tables)) if len(tables) == 1 else None
    where: tuple[tuple[str, re.Pattern[str]], ...] = ()
    if fields.has("where"):
        if table is None:
            fields.problem("where", "only a rule on table columns can pick rows by label")
            ok = False
        else:
            where = read_patterns(fields, "where", scope.labels.get(table, ()))
    if reason is not None and not _check_reason(fields, reason, scope, table):
        ok = False
    if not ok or reason is None or code is None or not conditions:
        return None
    return HealthRule(reason, tuple(conditions), table, where, code)


def read_code(fields: Fields, reason: str | None) -> str | None:
    """The `code` of a rule or trap, or the one derived from its reason; None if wrong."""
    if not fields.has("code"):
        return derive_code(reason) if reason is not None else None
    code = fields.text("code")
    if code is None:
        return None
    if not is_code(code):
        fields.problem("code", f"{CODE_RULE}, got {fields.sink.show(code)}")
        return None
    if code in FIXED_CODES:
        fields.problem(
            "code",
            f"{code!r} is a fixed reason code of districtmon (see monitor/core/reasons.py); "
            "name what this rule finds",
        )
        return None
    return code


def read_patterns(
    fields: Fields, key: str, labels: Collection[str]
) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """`{label: regex}`: the whole label value must match."""
    section = fields.mapping(key) if fields.has(key) else None
    if section is None:
        return ()
    known = list(labels)
    found: list[tuple[str, re.Pattern[str]]] = []
    for label in section.node:
        if label not in known:
            section.problem(label, f"unknown label (this table has: {', '.join(known)})")
            continue
        text = section.text(label)
        if text is None:
            continue
        try:
            found.append((label, re.compile(text)))
        except re.error as error:
            section.problem(label, f"not a valid regular expression: {error}")
    return tuple(found)


def _read_condition(when: Fields, value: str, spec: RuleValue) -> list[Condition] | None:
    tests = when.mapping(value)
    if tests is None:
        return None
    if not tests.node:
        tests.problem_here(f"needs one of: {', '.join(OPERATORS)}")
        return None
    tests.expect(OPERATORS)
    text = spec.text
    found: list[Condition] = []
    for operator in tests.node:
        if operator not in OPERATORS:
            return None
        raw = tests.get(operator)
        if operator == "one_of":
            if not isinstance(raw, YamlList) or not raw:
                tests.problem(operator, "must be a non-empty list")
                return None
            items = tuple(_operand(tests, operator, each, text) for each in raw)
            if any(each is None for each in items):
                return None
            found.append(Condition(value, operator, tuple(i for i in items if i is not None)))
            continue
        if operator in ("below", "above") and text:
            tests.problem(operator, f"'{value}' is text: use equals, not_equals or one_of")
            return None
        operand = _operand(tests, operator, raw, text)
        if operand is None:
            return None
        found.append(Condition(value, operator, operand))
    return found


def _operand(tests: Fields, operator: str, raw: object, text: bool) -> float | str | None:
    if raw is BROKEN:
        return None
    if text:
        if isinstance(raw, str):
            return raw
        tests.problem(operator, "must be text (the value is text)")
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        tests.problem(operator, f"must be a number, got {tests.sink.show(raw)}")
        return None
    return float(raw)


def _check_reason(fields: Fields, reason: str, scope: RuleScope, table: str | None) -> bool:
    """Placeholders are plain names of values or labels: `{battery_volts}`, `{if}`. No
    attribute access, indexing or conversions: a reason is a sentence, not a template engine."""
    allowed = {name for name, spec in scope.values.items() if spec.table is None}
    allowed |= set(scope.placeholders)
    if table is not None:
        allowed |= set(scope.labels.get(table, ()))
        allowed |= {name for name, spec in scope.values.items() if spec.table == table}
    try:
        parsed = list(string.Formatter().parse(reason))
    except ValueError as error:
        fields.problem("reason", f"unbalanced braces: {error}")
        return False
    for _text, name, format_spec, conversion in parsed:
        if name is None:
            continue
        if format_spec or conversion or name not in allowed:
            fields.problem(
                "reason",
                f"placeholder {{{name}}} must be a value or label of this rule "
                f"({', '.join(sorted(allowed))}), without format or conversion",
            )
            return False
    return True
