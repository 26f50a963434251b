"""The core model shared by every layer: what is watched, what a probe saw, what state follows.

Plain frozen dataclasses so that a snapshot can be handed from the event loop to the metrics
thread without locks: nothing here is ever mutated after it is built.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class State(enum.StrEnum):
    """A site's state. Up, degraded, down and unknown are decided today; the others are part
    of the model so that the ledger, metrics and reports already speak of them."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNREACHABLE = "unreachable"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"


SITE_KINDS = (
    "bts",
    "radio_station",
    "loudspeaker",
    "gateway",
    "video_endpoint",
    "post_point",
    "portal",
)

OWNER_KINDS = ("operator", "agency", "broadcaster")


@dataclass(frozen=True, slots=True)
class Commune:
    id: str
    name: str
    lat: float
    lon: float
    areas: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class SnmpProbe:
    """Where and how to ask a device. `credential` names an entry of the credential store; the
    secret itself never sits in the inventory."""

    address: str
    port: int = 161
    credential: str = "default"
    timeout_seconds: float | None = None
    retries: int | None = None
    interval_seconds: float | None = None
    profile: str | None = None  # a device profile (config/profiles/<name>.yaml); None: system


# One probe kind today; ICMP/TCP/HTTP and MQTT probes join this union.
Probe = SnmpProbe


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    kind: str
    name: str
    commune: str
    owner: str
    lat: float
    lon: float
    probe: Probe
    parent: str | None = None
    covers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled value, e.g. a row of a table: `if_oper_up{if="wan"}` is
    `Sample("if_oper_up", (("if", "wan"),), 1.0)`. Labels are sorted by name; the value is a
    number in base units (a counter's name ends in `_total`)."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True)
class Observation:
    """What one probe saw at one time.

    `time` is UTC wall-clock seconds (what the ledger stores); `duration` is measured on the
    monotonic clock. `values` are named, never raw OIDs. `error` is for people (logs, the
    ledger's reason); `error_reason` is a short fixed word (`timeout`, `resolve`...) fit for a
    metric label; `probe` names the probe type (a metric label too).

    `values` holds unlabelled values by name (numbers in base units, or text); `samples` holds
    labelled ones (table rows). An ok observation with a `degraded_reason` says the device
    answers but a health rule fails (on battery, WAN down). `confirmed` marks the device's own
    word (a trap): the evaluator applies it at once instead of waiting for a run of polls."""

    site: str
    time: float
    ok: bool
    duration: float = 0.0
    values: dict[str, float | str] = field(default_factory=dict)
    error: str | None = None
    error_reason: str | None = None
    probe: str = "snmp"
    samples: tuple[Sample, ...] = ()
    degraded_reason: str | None = None
    confirmed: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """A confirmed change of state, dated at the first observation of the run that confirmed
    it (an outage starts at the first failed poll, not at the Nth)."""

    site: str
    state: State
    since: float
    previous: State
    reason: str = ""
