"""Telemetry mapping: which JSON fields of a device's report become which named values.

Devices of one kind (or one model) send the same JSON object; the mapping says, as data in
`config/mqtt/mappings.yaml`, which field is which value, of what type, in which unit, in the
spirit of mqtt2prometheus's metric mappings but in our profiles. Each named value lands in
`Observation.values` and on /metrics as `districtmon_site_<name>`, so names follow
Prometheus conventions (base units in the name: `battery_volts`, `temperature_celsius`).

A profile may carry `health:` rules in the rule language of the SNMP device profiles
(monitor/config/rules.py, read by the same reader and evaluated by the same code,
monitor/probes/health.py): an amplifier that reports a fault makes its site degraded, as a
transmitter read over SNMP would.

Decoding is strict: a field present with the wrong type rejects the whole report (raises
`WrongType`). A report that breaks the agreed schema may come from a misconfigured device on
the wrong topic; believing half of it would be worse than saying why none of it was taken.
Fields the profile does not name are ignored (firmware may send more), and JSON `null` is the
same as an absent field.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from monitor.config.fields import Fields, Located, open_document
from monitor.config.located import BROKEN
from monitor.config.problems import ConfigProblem
from monitor.config.rules import HealthRule, RuleScope, RuleValue, read_rules
from monitor.core.kinds import kind_of
from monitor.core.scaling import ONE, Scale

ValueKind = Literal["bool", "number", "map"]
VALUE_KINDS: dict[str, ValueKind] = {"bool": "bool", "number": "number", "map": "map"}

# Series the site collector renders itself (`districtmon_site_<name>`): a telemetry value may
# not take their names.
RESERVED_NAMES = frozenset(
    {
        "info",
        "up",
        "state",
        "state_since_timestamp_seconds",
        "last_poll_timestamp_seconds",
        "last_poll_success",
        "last_poll_duration_seconds",
        "device_uptime_seconds",
    }
)
_VALUE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
PROFILE_NAME_RULE = (
    "must be [a-z0-9][a-z0-9_-]*, at most 64 characters (a site kind, or e.g. loa-v2)"
)


def is_profile_name(text: str) -> bool:
    return _PROFILE_NAME.fullmatch(text) is not None


_PROFILE_KEYS = ("alive", "values", "health")
_VALUE_KEYS = ("name", "field", "type", "help", "scale", "map")


class WrongType(Exception):
    """A field of the report does not have the type its profile says. The message names the
    field and the kind of value found, never the value (it is untrusted input)."""


@dataclass(frozen=True, slots=True)
class ValueSpec:
    name: str
    field: str
    kind: ValueKind
    help: str
    scale: Scale = ONE  # exact: a volume of 70 at scale 0.01 is 0.7, as on the SNMP path
    table: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def convert(self, raw: object) -> float:
        """The named value of one JSON field; raises WrongType."""
        if self.kind == "bool":
            if raw is True:
                return 1.0
            if raw is False:
                return 0.0
            raise WrongType(f"field {self.field!r} must be true or false, got {kind_of(raw)}")
        if self.kind == "number":
            number = finite(raw)
            if number is None:
                raise WrongType(f"field {self.field!r} must be a finite number, got {kind_of(raw)}")
            scaled = self.scale.apply(number)
            if not math.isfinite(scaled):
                raise WrongType(f"field {self.field!r} is out of range")
            return scaled
        if isinstance(raw, str) and raw in self.table:
            return self.table[raw]
        raise WrongType(f"field {self.field!r} must be one of {', '.join(self.table)}")


@dataclass(frozen=True, slots=True)
class TelemetryProfile:
    """How to read one kind (or model) of device. `alive` names a value that, when 0, means
    the device reports itself out of service (the report then counts as a failure); `health`
    rules on the values make an answering device degraded."""

    name: str
    values: tuple[ValueSpec, ...]
    alive: str | None = None
    health: tuple[HealthRule, ...] = ()

    def decode(self, doc: Mapping[str, object]) -> dict[str, float | str]:
        """Named values of a JSON object; raises WrongType.

        The common cases (a boolean, an unscaled finite number) are decided inline: this runs
        for every report, and a method call per field would cost a third of the decoding."""
        values: dict[str, float | str] = {}
        get = doc.get
        for spec in self.values:
            raw = get(spec.field)
            if raw is None:
                continue
            if raw is True or raw is False:
                if spec.kind == "bool":
                    values[spec.name] = 1.0 if raw else 0.0
                    continue
            elif (
                isinstance(raw, float)
                and spec.kind == "number"
                and spec.scale.is_one
                and raw - raw == 0  # finite: inf - inf and nan - nan are nan
            ):
                values[spec.name] = raw
                continue
            values[spec.name] = spec.convert(raw)  # ints, maps, scales and every wrong type
        return values


def finite(raw: object) -> float | None:
    """A JSON number as a finite float; None for anything else (booleans included, although
    Python counts them as integers, and integers too large for a float)."""
    if type(raw) is float:
        return raw if math.isfinite(raw) else None
    if type(raw) is int:
        try:
            return float(raw)
        except OverflowError:
            return None
    return None


def value_help(profiles: Mapping[str, TelemetryProfile]) -> dict[str, str]:
    """Every named value of every profile with its help text (the first one given wins)."""
    found: dict[str, str] = {}
    for profile in profiles.values():
        for spec in profile.values:
            found.setdefault(spec.name, spec.help)
    return found


# --- mappings.yaml ------------------------------------------------------------------------


def load_profiles(path: Path, problems: list[ConfigProblem]) -> dict[str, TelemetryProfile] | None:
    """The profiles of a mappings file; problems (file:line: key: message) go to `problems`.
    None when the file could not be read at all (then no site's profile can be checked)."""
    top = open_document(path, problems)
    if top is None:
        return None
    top.expect(("profiles",), required=("profiles",))
    section = top.mapping("profiles")
    if section is None:
        return None
    profiles: dict[str, TelemetryProfile] = {}
    for name in section.node:
        if not is_profile_name(name):
            section.problem(name, f"a profile name {PROFILE_NAME_RULE}")
            continue
        fields = section.mapping(name)
        if fields is not None:
            fields.subject = f" (profile '{name}')"
            profiles[name] = _read_profile(name, fields)
    return profiles


def _read_profile(name: str, fields: Fields) -> TelemetryProfile:
    fields.expect(_PROFILE_KEYS, required=("values",))
    specs: list[ValueSpec] = []
    first: dict[str, int] = {}
    for item in fields.items("values") or ():
        spec = _read_value(fields, item)
        if spec is None:
            continue
        if spec.name in first:
            message = f"value {spec.name!r} is named twice (first at line {first[spec.name]})"
            fields.sink.add(item.line, f"{item.key}.name", message + fields.subject)
            continue
        first[spec.name] = item.line
        specs.append(spec)
    alive = fields.text("alive")
    if alive is not None and alive not in first:
        fields.problem("alive", f"must name one of the profile's values, got {alive!r}")
        alive = None
    scope = RuleScope({spec.name: RuleValue() for spec in specs}, {}, declared=set(first))
    health = read_rules(fields, "health", scope)
    return TelemetryProfile(name, tuple(specs), alive, health)


def _read_value(profile: Fields, item: Located[object]) -> ValueSpec | None:
    fields = Fields.of(profile.sink, item.value, item.line, item.key, profile.subject)
    if fields is None:
        return None
    fields.expect(_VALUE_KEYS, required=("name", "type"))
    name = fields.text("name")
    if name is not None and not _VALUE_NAME.fullmatch(name):
        fields.problem(
            "name", f"must be a metric name part ([a-z][a-z0-9_]*, at most 64), got {name!r}"
        )
        name = None
    elif name in RESERVED_NAMES:
        fields.problem("name", f"{name!r} is taken by a series districtmon renders itself")
        name = None
    field_name = fields.text("field") if fields.has("field") else name
    kind = VALUE_KINDS.get(fields.choice("type", VALUE_KINDS) or "")
    help_text = fields.text("help") if fields.has("help") else None
    scale = _read_scale(fields, kind)
    table = _read_table(fields, kind)
    if name is None or field_name is None or kind is None or scale is None or table is None:
        return None
    if kind == "map" and not table:
        fields.problem_here("a value of type map needs a non-empty map: {text: number, ...}")
        return None
    default_help = f"Last reported {name.replace('_', ' ')} (MQTT telemetry field '{field_name}')."
    return ValueSpec(name, field_name, kind, help_text or default_help, scale, table)


def _read_scale(fields: Fields, kind: str | None) -> Scale | None:
    if not fields.has("scale"):
        return ONE
    if kind is not None and kind != "number":
        fields.problem("scale", f"only values of type number have a scale (type is {kind})")
        return None
    scale = fields.number("scale")
    if scale is None:
        return None
    if scale == 0:
        fields.problem("scale", "must not be 0")
        return None
    raw = fields.get("scale")  # as written: 1024 stays an integer, 0.01 the decimal 1/100
    return Scale.of(raw if isinstance(raw, int | float) and not isinstance(raw, bool) else scale)


def _read_table(fields: Fields, kind: str | None) -> dict[str, float] | None:
    if not fields.has("map"):
        return {}
    if kind is not None and kind != "map":
        fields.problem("map", f"only values of type map have a map (type is {kind})")
        return None
    table = fields.mapping("map")
    if table is None:
        return None
    found: dict[str, float] = {}
    for text in table.node:
        if table.get(text) is BROKEN:
            continue
        number = table.number(text)
        if number is not None:
            found[text] = number
    return found if len(found) == len(table.node) else None
