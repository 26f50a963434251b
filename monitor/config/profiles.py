"""Device profiles: what to ask a kind of device over SNMP and what its answers mean, as data.

A profile (one YAML file under `config/profiles/`, named by its file) lists the scalars to GET
and the tables to bulk-walk, how each value is named, typed and scaled, the health rules that
turn values into a `degraded` reason (the rule language of monitor/config/rules.py, shared with
the MQTT telemetry mappings), and the traps that say something at once. It is the same
idea as snmp_exporter's modules: a new device model is a new file, not new code. The schema is
in config/profiles/README.md.

What the poller needs on its hot path (the OIDs of one GET, the columns of each walk) is
computed here, once; reading and checking the files is monitor/config/profile_reader.py.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from monitor.config.rules import HealthRule
from monitor.core.scaling import ONE, Scale

ValueKind = Literal["gauge", "counter32", "counter64", "timeticks", "text"]
VALUE_KINDS: tuple[ValueKind, ...] = ("gauge", "counter32", "counter64", "timeticks", "text")
COUNTER_KINDS = ("counter32", "counter64")
#: How a derived value is computed from other values of its profile (or of its table row).
#: `sensor` is ENTITY-SENSOR-MIB's (RFC 3433) reading: [value, scale, precision], the value
#: times 1000^(scale - 9) / 10^precision (scale 9 is units, 8 milli, 10 kilo...).
DERIVATIONS = ("sum", "difference", "product", "ratio", "sensor")
TRAP_ACTIONS = ("degraded", "down", "poll")

#: Always asked of every SNMP site (reboot detection, the device's own name).
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
#: Values every SNMP observation may carry besides the profile's: a profile cannot reuse them.
BUILTIN_VALUES = (
    "uptime_seconds",
    "reboots_total",
    "sys_name",
    "snmp_values_missing",
    "snmp_values_malformed",
)
#: Names the poller gives the profile it used (`districtmon_device_profile_info`, and the
#: text the JSON API shows): a profile cannot reuse them either.
PROFILE_VALUES = ("profile_info", "device_profile", "device_vendor")
#: Labels every device metric already has, or that Prometheus reserves.
RESERVED_LABELS = frozenset(
    {"site", "kind", "commune", "owner", "name", "parent", "state", "probe", "job", "instance"}
)
DEFAULT_MAX_ROWS = 512
MAX_ROWS_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Source:
    """One place a value may be read: an OID (a scalar's full OID or a column's), the scale
    its raw number is multiplied by, and the raw values that mean "not available" (-1 for
    an estimate a UPS cannot make, 2147483647 for a sensor that is not fitted)."""

    oid: str
    scale: Scale = ONE
    absent: frozenset[int | str] = frozenset()


@dataclass(frozen=True, slots=True)
class Derivation:
    """A value computed from other named values: `sum` and `product` of all inputs,
    `difference` and `ratio` of the first by the second. Missing when an input is."""

    operation: str
    inputs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ValueSpec:
    """One named value: where it is read (its sources, the first usable one wins: ifHighSpeed,
    else ifSpeed), what type the agent sends, and how it becomes a number: `map` first
    (enumerations), then the source's scale. A derived value has no source and is computed
    from others; a value with `export` false is read only to derive or test others."""

    name: str
    oid: str
    kind: ValueKind = "gauge"
    scale: Scale = ONE
    mapping: dict[int | str, float] | None = None
    default: float | None = None  # the mapped value of anything not listed in `mapping`
    help: str = ""
    absent: frozenset[int | str] = frozenset()
    fallbacks: tuple[Source, ...] = ()
    derive: Derivation | None = None
    export: bool = True
    #: In a table: the value is kept only on rows where other columns (by name) each read one
    #: of their numbers (entPhySensorType 8: a temperature sensor). No such row is no problem.
    only_if: tuple[tuple[str, frozenset[float]], ...] | None = None

    @property
    def is_counter(self) -> bool:
        return self.kind in COUNTER_KINDS

    @property
    def sources(self) -> tuple[Source, ...]:
        """Where to read the value, in order; none for a derived value."""
        if self.derive is not None:
            return ()
        return (Source(self.oid, self.scale, self.absent), *self.fallbacks)

    @property
    def metric_type(self) -> str:
        return "counter" if self.is_counter else "gauge" if self.kind != "text" else "text"


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """A table label read from the first of `oids` that has a non-empty value for the row.
    When none has, a table's first label is the row index (it names the row), others are
    empty."""

    name: str
    oids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    columns: tuple[ValueSpec, ...]
    labels: tuple[LabelSpec, ...]
    exclude: tuple[tuple[str, re.Pattern[str]], ...] = ()
    max_rows: int = DEFAULT_MAX_ROWS
    index: str = "index"  # the label of a row's index, for a table without label columns
    may_be_empty: bool = False  # no rows is news, not a problem (UPS alarms: rows while active)

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels) or (self.index,)

    @property
    def walked(self) -> tuple[str, ...]:
        """Every column OID to walk on every poll, values first, then labels, each once.
        Fallback columns are walked only for rows their primary column left without a value
        (`fallback_columns`)."""
        seen: dict[str, None] = {}
        for column in self.columns:
            if column.derive is None:
                seen[column.oid] = None
        for label in self.labels:
            for oid in label.oids:
                seen[oid] = None
        return tuple(seen)

    @property
    def fallback_columns(self) -> tuple[str, ...]:
        """Column OIDs that stand in for another column, each once, in order."""
        seen: dict[str, None] = {}
        for column in self.columns:
            for source in column.fallbacks:
                seen.setdefault(source.oid, None)
        return tuple(oid for oid in seen if oid not in self.walked)


@dataclass(frozen=True, slots=True)
class TrapAction:
    """What a notification means: `degraded` or `down` with a reason, at once; `poll` only
    asks for a poll now. Every known trap also triggers a poll, to read the values behind it.
    `code` is the reason's bounded word (given, or derived by the loader)."""

    oid: str
    action: str
    reason: str = ""
    code: str = ""


@dataclass(frozen=True, slots=True)
class Detection:
    """How `profile: auto` recognises a device, as LibreNMS recognises an OS: its
    sysObjectID starts with one of `sys_object_ids`, its sysDescr matches `sys_descr`
    (searched, not anchored), and every OID of `has` answers. Each part that is given must
    hold; a profile with no part is never detected."""

    sys_object_ids: tuple[str, ...] = ()
    sys_descr: re.Pattern[str] | None = None
    has: tuple[str, ...] = ()
    catch_all: bool = False  # tried only when no other profile matches (generic IF-MIB)

    def matches(self, object_id: str, descr: str, answered: Collection[str]) -> bool:
        if not (self.sys_object_ids or self.sys_descr or self.has):
            return False
        if self.sys_object_ids and not any(
            object_id == prefix or object_id.startswith(prefix + ".")
            for prefix in self.sys_object_ids
        ):
            return False
        if self.sys_descr is not None and self.sys_descr.search(descr) is None:
            return False
        return all(oid in answered for oid in self.has)

    def prefix_length(self, object_id: str) -> int:
        """Arcs of the longest of `sys_object_ids` that `object_id` starts with (0: none)."""
        return max(
            (
                len(p.split("."))
                for p in self.sys_object_ids
                if object_id == p or object_id.startswith(p + ".")
            ),
            default=0,
        )


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    description: str = ""
    scalars: tuple[ValueSpec, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    health: tuple[HealthRule, ...] = ()
    traps: dict[str, TrapAction] = field(default_factory=dict)
    file: Path | None = None
    vendor: str = ""
    detect: Detection | None = None
    extends: str | None = None

    @property
    def hidden(self) -> frozenset[str]:
        """Values read only to derive or test others: kept out of observations and series."""
        specs = [*self.scalars, *(column for table in self.tables for column in table.columns)]
        return frozenset(spec.name for spec in specs if not spec.export)

    @property
    def get_oids(self) -> tuple[str, ...]:
        """The OIDs of the one GET of every poll: sysUpTime, sysName, then every source of
        the scalars (fallbacks too: one GET is cheaper than a second round trip)."""
        seen: dict[str, None] = {SYS_UPTIME: None, SYS_NAME: None}
        for spec in self.scalars:
            for source in spec.sources:
                seen[source.oid] = None
        return tuple(seen)


#: The profile of an SNMP site that names none: is the agent alive, and since when.
SYSTEM_PROFILE = Profile("system", "sysUpTime and sysName only")
#: What a site names to have its profile chosen from what the device says it is.
AUTO = "auto"


def describe_detection(profile: Profile) -> str:
    """How `profile: auto` recognises a device as `profile`, in words."""
    detect = profile.detect
    if detect is None:
        return "never (no detect)"
    parts = []
    if detect.sys_object_ids:
        parts.append("sysObjectID under " + " or ".join(detect.sys_object_ids))
    if detect.sys_descr is not None:
        parts.append(f"sysDescr matching {detect.sys_descr.pattern!r}")
    if detect.has:
        parts.append(" and ".join(detect.has) + " answering")
    suffix = " (only when no other profile matches)" if detect.catch_all else ""
    extends = f", extends {profile.extends}" if profile.extends else ""
    return "; ".join(parts) + suffix + extends
