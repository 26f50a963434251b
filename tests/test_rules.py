"""The health rule language on its own: every operator, what holds on which values and rows,
and every mistake refused at its line -- the one reader and the one evaluation that SNMP
profiles and MQTT telemetry mappings share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.config.fields import open_document
from monitor.config.problems import ConfigProblem
from monitor.config.rules import HealthRule, RuleScope, RuleValue, read_rules
from monitor.core.reasons import Finding
from monitor.probes.health import MAX_REASONS_PER_RULE, findings

SCOPE = RuleScope(
    {
        "battery_volts": RuleValue(),
        "status_text": RuleValue(text=True),
        "if_oper_up": RuleValue(table="interfaces"),
        "if_admin_up": RuleValue(table="interfaces"),
        "disk_used_ratio": RuleValue(table="disks"),
    },
    {"interfaces": ("if", "alias"), "disks": ("path",)},
    placeholders=("sys_name",),
    declared={"broken_value"},
)


def rules(tmp_path: Path, text: str) -> tuple[tuple[HealthRule, ...], list[str]]:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    problems: list[ConfigProblem] = []
    top = open_document(path, problems)
    assert top is not None
    found = read_rules(top, "health", SCOPE)
    return found, [f"{p.line}: {p.key}: {p.message}" for p in problems]


@dataclass
class Row:
    labels: tuple[tuple[str, str], ...]
    values: dict[str, float] = field(default_factory=dict)

    def label(self, name: str) -> str:
        return next((value for key, value in self.labels if key == name), "")


def test_every_operator_holds_as_it_says(tmp_path: Path) -> None:
    found, problems = rules(
        tmp_path,
        """\
health:
  - {reason: low, code: low, when: {battery_volts: {below: 47}}}
  - {reason: high, code: high, when: {battery_volts: {above: 56}}}
  - {reason: exact, code: exact, when: {battery_volts: {equals: 50}}}
  - {reason: not 50, code: not_fifty, when: {battery_volts: {not_equals: 50}}}
  - {reason: listed, code: listed, when: {battery_volts: {one_of: [10, 20]}}}
  - {reason: "text {status_text}", code: text, when: {status_text: {one_of: [fault, alarm]}}}
  - reason: between
    code: between
    when: {battery_volts: {above: 40, below: 45}}
""",
    )
    assert problems == []

    def codes(values: dict[str, float | str]) -> list[str]:
        return [f.code for f in findings(found, values)]

    assert codes({"battery_volts": 46.0}) == ["low", "not_fifty"]
    assert codes({"battery_volts": 57.0}) == ["high", "not_fifty"]
    assert codes({"battery_volts": 50.0}) == ["exact"]
    assert codes({"battery_volts": 20.0}) == ["low", "not_fifty", "listed"]
    assert codes({"battery_volts": 42.0}) == ["low", "not_fifty", "between"]
    assert findings(found, {"status_text": "alarm"}) == [Finding("text", "text alarm")]
    assert codes({}) == []  # a missing value never makes a rule hold
    assert codes({"battery_volts": "n/a"}) == ["not_fifty"]  # text never below or above


def test_a_table_rule_is_checked_row_by_row_on_the_rows_it_picks(tmp_path: Path) -> None:
    found, problems = rules(
        tmp_path,
        """\
health:
  - reason: "WAN {if} down on {sys_name}"
    code: wan_down
    when: {if_admin_up: {equals: 1}, if_oper_up: {equals: 0}}
    where: {alias: "(?i).*wan.*"}
""",
    )
    assert problems == []
    rows = [
        Row((("alias", "WAN VNPT"), ("if", "ge-0/0/0")), {"if_admin_up": 1.0, "if_oper_up": 0.0}),
        Row((("alias", "LAN"), ("if", "ge-0/0/1")), {"if_admin_up": 1.0, "if_oper_up": 0.0}),
        Row((("alias", "wan 2"), ("if", "ge-0/0/2")), {"if_admin_up": 0.0, "if_oper_up": 0.0}),
    ]
    assert findings(found, {"sys_name": "gw-01"}, {"interfaces": rows}) == [
        Finding("wan_down", "WAN ge-0/0/0 down on gw-01")
    ]
    many = [
        Row((("alias", "wan"), ("if", f"ge-{n}")), {"if_admin_up": 1.0, "if_oper_up": 0.0})
        for n in range(MAX_REASONS_PER_RULE + 3)
    ]
    out = findings(found, {}, {"interfaces": many})
    assert len(out) == MAX_REASONS_PER_RULE + 1 and {f.code for f in out} == {"wan_down"}
    assert out[-1].text == "and 3 more like it"
    assert findings(found, {}) == []  # no table read: nothing holds


def test_every_mistake_is_refused_at_its_line(tmp_path: Path) -> None:
    found, problems = rules(
        tmp_path,
        """\
health:
  - {reason: a, when: {battery_volts: {}}}
  - {reason: b, when: {battery_volts: {most: 1}}}
  - {reason: c, when: {battery_volts: {one_of: 3}}}
  - {reason: d, when: {status_text: {below: 3}}}
  - {reason: e, when: {status_text: {equals: 3}}}
  - {reason: f, when: {battery_volts: {one_of: [1, x]}}}
  - {reason: g, when: {if_oper_up: {equals: 0}, disk_used_ratio: {above: 0.9}}}
  - {reason: h, when: {battery_volts: {below: 47}}, where: {if: wan}}
  - {reason: "i {if}", when: {battery_volts: {below: 47}}}
  - {reason: "j {", when: {battery_volts: {below: 47}}}
  - {reason: k, when: {if_oper_up: {equals: 0}}, where: {port: wan}}
  - {reason: l, when: {broken_value: {below: 1}}}
  - {reason: m, when: {nowhere: {below: 1}}, colour: red}
  - just text
  - {reason: n, code: "", when: {battery_volts: {below: 47}}}
""",
    )
    assert [rule.reason for rule in found] == ["k"]  # refused with the rest: the file has problems
    assert problems == [
        "2: health[0].when.battery_volts: needs one of: equals, not_equals, below, above, one_of",
        "3: health[1].when.battery_volts.most: unknown key (expected one of: equals, "
        "not_equals, below, above, one_of)",
        "4: health[2].when.battery_volts.one_of: must be a non-empty list",
        "5: health[3].when.status_text.below: 'status_text' is text: use equals, not_equals or "
        "one_of",
        "6: health[4].when.status_text.equals: must be text (the value is text)",
        "7: health[5].when.battery_volts.one_of: must be a number, got 'x'",
        "8: health[6].when: a rule may use the columns of one table only, got ['disks', "
        "'interfaces']",
        "9: health[7].where: only a rule on table columns can pick rows by label",
        "10: health[8].reason: placeholder {if} must be a value or label of this rule "
        "(battery_volts, status_text, sys_name), without format or conversion",
        "11: health[9].reason: unbalanced braces: Single '{' encountered in format string",
        "12: health[10].where.port: unknown label (this table has: if, alias)",
        "14: health[12].colour: unknown key (expected one of: reason, code, when, where)",
        "14: health[12].when.nowhere: unknown value (not in this profile's values)",
        "15: health[13]: must be a mapping, got 'just text'",
        "16: health[14].code: must not be empty",
    ]


@pytest.mark.parametrize(
    ("code", "ok"), [("battery_low", True), ("b" * 49, False), ("2hot", False), ("silent", False)]
)
def test_a_code_is_a_slug_of_its_own(tmp_path: Path, code: str, ok: bool) -> None:
    found, problems = rules(
        tmp_path,
        f"health:\n  - {{reason: x, code: '{code}', when: {{battery_volts: {{below: 1}}}}}}\n",
    )
    assert (found != ()) is ok and (problems == []) is ok
    if ok:
        assert found[0].code == code
