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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from monitor.config.rules import HealthRule

ValueKind = Literal["gauge", "counter32", "counter64", "timeticks", "text"]
VALUE_KINDS: tuple[ValueKind, ...] = ("gauge", "counter32", "counter64", "timeticks", "text")
COUNTER_KINDS = ("counter32", "counter64")
TRAP_ACTIONS = ("degraded", "down", "poll")

#: Always asked of every SNMP site (reboot detection, the device's own name).
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
#: Labels every device metric already has, or that Prometheus reserves.
RESERVED_LABELS = frozenset(
    {"site", "kind", "commune", "owner", "name", "parent", "state", "probe", "job", "instance"}
)
DEFAULT_MAX_ROWS = 512
MAX_ROWS_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class ValueSpec:
    """One named value: where it is (a scalar's full OID, or a table column's OID), what type
    the agent sends, and how it becomes a number: `map` first (enumerations), then `scale`."""

    name: str
    oid: str
    kind: ValueKind = "gauge"
    scale: float = 1.0
    mapping: dict[int | str, float] | None = None
    default: float | None = None  # the mapped value of anything not listed in `mapping`
    help: str = ""

    @property
    def is_counter(self) -> bool:
        return self.kind in COUNTER_KINDS

    @property
    def divisor(self) -> float | None:
        """1/scale when that is a whole number (0.1 -> 10): dividing keeps decimal readings
        exact where multiplying by 0.1 would not."""
        if 0 < abs(self.scale) < 1:
            inverse = 1 / self.scale
            if abs(inverse - round(inverse)) < 1e-9:
                return float(round(inverse))
        return None

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

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels) or (self.index,)

    @property
    def walked(self) -> tuple[str, ...]:
        """Every column OID to walk, values first, then labels, each once."""
        seen: dict[str, None] = {}
        for column in self.columns:
            seen[column.oid] = None
        for label in self.labels:
            for oid in label.oids:
                seen[oid] = None
        return tuple(seen)


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
class Profile:
    id: str
    description: str = ""
    scalars: tuple[ValueSpec, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    health: tuple[HealthRule, ...] = ()
    traps: dict[str, TrapAction] = field(default_factory=dict)
    file: Path | None = None

    @property
    def get_oids(self) -> tuple[str, ...]:
        """The OIDs of the one GET of every poll: sysUpTime, sysName, then the scalars."""
        return (SYS_UPTIME, SYS_NAME, *(spec.oid for spec in self.scalars))


#: The profile of an SNMP site that names none: is the agent alive, and since when.
SYSTEM_PROFILE = Profile("system", "sysUpTime and sysName only")
