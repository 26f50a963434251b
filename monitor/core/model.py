"""The core model shared by every layer: what is watched, what a probe saw, what state follows.

Plain frozen dataclasses so that a snapshot can be handed from the event loop to the metrics
thread without locks: nothing here is ever mutated after it is built.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class State(enum.StrEnum):
    """A site's state. The evaluator decides up, degraded (an unhealthy answer), down,
    unreachable (its parent is down) and unknown; the maintenance overlay decides maintenance."""

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

# What each kind of site is called where people read a kind as a row of its own (a report by
# kind): the id is for configuration files and labels.
KIND_NAMES = {
    "bts": "Mobile base stations (BTS)",
    "radio_station": "Radio stations",
    "loudspeaker": "Loudspeaker clusters",
    "gateway": "LAN gateways",
    "video_endpoint": "Video meeting endpoints",
    "post_point": "Post points",
    "portal": "Online services",
}
# The same in Vietnamese, for the office's screens (the dashboards' kind drop-down, through
# districtmon_kind_info).
KIND_NAMES_VI = {
    "bts": "Trạm BTS",
    "radio_station": "Đài truyền thanh",
    "loudspeaker": "Cụm loa",
    "gateway": "Cổng mạng LAN",
    "video_endpoint": "Điểm cầu truyền hình",
    "post_point": "Điểm bưu điện văn hóa",
    "portal": "Dịch vụ công trực tuyến",
}


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


# --- reachability probes: for what speaks no SNMP (monitor/probes/reach/: icmp.py, tcp.py,
# http.py, dns.py). `slow_seconds` is the same rule for each: an answer slower than this makes
# the site degraded. `timeout_seconds`/`interval_seconds` of None take the daemon's poll defaults.


@dataclass(frozen=True, slots=True)
class IcmpProbe:
    """A short burst of echo requests: loss and round-trip time over `count` packets spaced
    `packet_interval_seconds` apart, each waited for at most `timeout_seconds`."""

    address: str
    count: int = 3
    packet_interval_seconds: float = 0.2
    max_loss_ratio: float | None = None  # degraded when more of the burst is lost
    slow_seconds: float | None = None  # degraded when the average round trip is longer
    timeout_seconds: float | None = None
    interval_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class TcpProbe:
    """A TCP connect (and close): the service's port accepts connections."""

    address: str
    port: int
    slow_seconds: float | None = None
    timeout_seconds: float | None = None
    interval_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class HttpProbe:
    """One GET of `url`. `expect_status` empty means any 2xx. `header_matches` pairs a header
    name with a regular expression its value must contain. For https, the server certificate's
    expiry is read whether or not it is verified; fewer than `cert_expiry_days` days left makes
    the site degraded (0 turns the rule off). `ca_file` is an absolute path."""

    url: str
    expect_status: tuple[int, ...] = ()
    body_matches: str | None = None
    header_matches: tuple[tuple[str, str], ...] = ()
    follow_redirects: bool = False
    verify_tls: bool = True
    ca_file: str | None = None
    cert_expiry_days: float = 14.0
    slow_seconds: float | None = None
    timeout_seconds: float | None = None
    interval_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class DnsProbe:
    """One query of `name`/`type` to `server`: it must answer NOERROR with at least one record,
    and with every record listed in `expect` (in presentation form, e.g. an address)."""

    server: str
    name: str
    type: str = "A"
    port: int = 53
    expect: tuple[str, ...] = ()
    slow_seconds: float | None = None
    timeout_seconds: float | None = None
    retries: int | None = None
    interval_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class MqttProbe:
    """A site that reports itself over the broker: nothing is polled, its messages are
    awaited. `topic` overrides the base topic the district's pattern gives the site (the
    `/status` and `/telemetry` channels hang below it); `profile` names the telemetry mapping
    (default: the site's kind); `heartbeat_timeout_seconds` overrides the silence allowed
    before the site is down (default: `mqtt.heartbeat_timeout_seconds`)."""

    topic: str | None = None
    profile: str | None = None
    heartbeat_timeout_seconds: float | None = None


Probe = SnmpProbe | IcmpProbe | TcpProbe | HttpProbe | DnsProbe | MqttProbe


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
    # the site's own 30-day availability objective (a share 0..1); None: its kind's
    objective: float | None = None


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
    word (a trap): the evaluator applies it at once instead of waiting for a run of polls.

    `decisive` marks a failure that settles the state on its own: a device's last will says
    it is gone, so there is nothing to confirm by waiting for more failures.

    `codes` are the bounded reason codes (monitor/core/reasons.py) of what was found: one per
    failing health rule or probe threshold of an unhealthy answer, or the code of a down
    trap; empty for a failed poll means its `error_reason`."""

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
    decisive: bool = False
    codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Transition:
    """A confirmed change of state, dated at the first observation of the run that confirmed
    it (an outage starts at the first failed poll, not at the Nth). `reason` is for people;
    `codes` say the same in bounded words (monitor/core/reasons.py), empty when up."""

    site: str
    state: State
    since: float
    previous: State
    reason: str = ""
    codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SiteRetired:
    """A site left the inventory (a reload removed it): its open interval ends here."""

    site: str
    at: float


#: How much later than the kept boot time a device's boot may seem without having rebooted:
#: poll latency, clock jitter, a device clock that runs slow.
BOOT_TOLERANCE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class DeviceBoot:
    """When a device last booted, as its uptime says (`at` minus the uptime it answered at
    `at`, UTC wall-clock seconds): kept so that a reboot while the monitor was stopped is
    still seen at the first poll after the start."""

    site: str
    boot: float
    at: float
