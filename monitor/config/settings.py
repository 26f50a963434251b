"""districtmon.yaml: the daemon's own settings (listener, ledger, polls, states, SNMP, MQTT).

Every section is optional and every key has a default, so a district starts with a short file;
an unknown key is an error all the same (a typo must not silently mean "use the default").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.config.addresses import is_address, is_ipv6
from monitor.config.fields import Fields, Located, Sink, open_document, or_default
from monitor.config.located import YamlMap
from monitor.config.mqtt import MqttSettings, read_mqtt_settings
from monitor.config.problems import ConfigProblem
from monitor.config.suggest import did_you_mean
from monitor.config.webconfig import WebConfig, read_web_config
from monitor.core.model import SITE_KINDS

SNMP_ENGINES = ("gufo", "pysnmp")
DEFAULT_RETENTION_DAYS = 400  # raw intervals: a year's report, with its edges, from raw data
DEFAULT_ROLLUP_RETENTION_DAYS = 5 * 366  # daily rollups: five years of monthly reports


SETTINGS_FILE = "districtmon.yaml"


_SETTINGS_KEYS = (
    "http",
    "ledger",
    "credentials",
    "inventory",
    "poll",
    "state",
    "timezone",
    "mqtt",
    "snmp",
    "objectives",
    "indicators",
)

DEFAULT_IN_SERVICE = 0.99

# 30-day availability objectives per kind of site (`objectives:`): the daemon exports them
# (districtmon_objective_ratio), the alert rules and the SLA dashboard read that series, so
# this is the one place the figures live. Examples: set them to the service agreements.
DEFAULT_OBJECTIVES: Mapping[str, float] = MappingProxyType(
    {
        "bts": 0.995,
        "gateway": 0.99,
        "radio_station": 0.99,
        "loudspeaker": 0.95,
        "video_endpoint": 0.98,
        "post_point": 0.98,
        "portal": 0.99,
    }
)


_LEDGER_KEYS = (
    "path",
    "retention_days",
    "rollup_retention_days",
    "availability_refresh_seconds",
    "max_pending",
    "stop_timeout_seconds",
)


_SNMP_SETTINGS_KEYS = ("engine", "profiles", "default_profiles", "traps")


_TRAP_KEYS = ("listen", "credentials")


DEFAULT_ENGINE = "gufo"  # the benchmark's winner: see README.md, "SNMP engines"


_POLL_KEYS = ("interval_seconds", "timeout_seconds", "retries", "max_in_flight")


_STATE_KEYS = ("down_after", "up_after")


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the ledger keeps each kind of record, in days."""

    intervals_days: float = DEFAULT_RETENTION_DAYS
    rollups_days: float = DEFAULT_ROLLUP_RETENTION_DAYS


@dataclass(frozen=True, slots=True)
class LedgerLimits:
    """What the ledger holds in memory while its disk refuses writes (full, read-only), and
    how long a stop waits for the disk before it gives up on them."""

    max_pending: int = 100_000  # changes waiting in memory; about 200 bytes each
    stop_timeout_seconds: float = 10.0  # below the unit's TimeoutStopSec (30 s)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Where /metrics listens, how many connections it serves at once (beyond that a new
    one is closed at once), how long it waits for a client's request or for it to take the
    answer, and TLS and basic authentication (webconfig.py), if any."""

    host: str = "127.0.0.1"
    port: int = 9877
    max_connections: int = 32
    timeout_seconds: float = 10.0
    web: WebConfig | None = None
    status_page: bool = True  # the page at / and /status, and the API only it reads


@dataclass(frozen=True, slots=True)
class PollSettings:
    interval_seconds: float = 60
    timeout_seconds: float = 2
    retries: int = 1
    max_in_flight: int = 256


@dataclass(frozen=True, slots=True)
class StateSettings:
    down_after: int = 3
    up_after: int = 2


@dataclass(frozen=True, slots=True)
class TrapSettings:
    """The trap/inform receiver: where it listens, and which credentials (communities, v3
    users) it accepts. Absent from the config: no receiver."""

    host: str
    port: int
    credentials: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SnmpSettings:
    engine: str = DEFAULT_ENGINE
    profiles_dir: Path = Path("profiles")
    traps: TrapSettings | None = None
    #: The profile of an SNMP site of a kind that names none (a profile, or `auto`).
    default_profiles: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settings:
    http: HttpSettings
    ledger_path: Path
    credentials_file: Path
    inventory_dir: Path
    poll: PollSettings
    state: StateSettings
    retention: Retention
    timezone: str | None
    availability_refresh_seconds: float
    snmp: SnmpRead
    ledger_limits: LedgerLimits = field(default_factory=LedgerLimits)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    mqtt_credential: Located[str] | None = None
    mqtt_configured: bool = False
    objectives: Mapping[str, float] = field(default_factory=lambda: DEFAULT_OBJECTIVES)
    # the share of a period a site must be available to count as in service in the
    # infrastructure indicators (`indicators.in_service`, monitor/report/indicators.py)
    in_service: float = DEFAULT_IN_SERVICE


@dataclass(frozen=True, slots=True)
class SnmpRead:
    settings: SnmpSettings
    profiles_dir: Path
    trap_refs: tuple[Located[str], ...] = ()
    file: Path = Path()
    default_refs: tuple[Located[str], ...] = ()  # the profiles default_profiles names


def default_ledger_path(environ: Mapping[str, str]) -> Path:
    """Under systemd, StateDirectory= says where state belongs; elsewhere ./var."""
    state_dirs = environ.get("STATE_DIRECTORY", "")
    if state_dirs:
        return Path(state_dirs.split(":")[0]) / "ledger.sqlite"
    return Path("var/ledger.sqlite")


def read_settings(directory: Path, problems: list[ConfigProblem], ledger_default: Path) -> Settings:
    path = directory / SETTINGS_FILE
    opened = open_document(
        path, problems, if_empty="write {} in it to take every default (see config/README.md)"
    )
    top = opened or Fields(Sink(path, []), YamlMap(1), "")  # reported; carry on with defaults
    top.expect(_SETTINGS_KEYS)
    ledger_path, retention, refresh, limits = _read_ledger(top, directory, ledger_default)
    mqtt, mqtt_credential = read_mqtt_settings(top.mapping("mqtt", null_is_empty=True), directory)
    return Settings(
        http=_read_http(top.mapping("http", null_is_empty=True), directory),
        ledger_path=ledger_path.absolute(),
        credentials_file=_read_path(top, "credentials", directory, directory / "credentials.yaml"),
        inventory_dir=_read_path(top, "inventory", directory, directory / "inventory"),
        poll=_read_poll(top.mapping("poll", null_is_empty=True)),
        state=_read_state(top.mapping("state", null_is_empty=True)),
        retention=retention,
        ledger_limits=limits,
        timezone=_read_timezone(top),
        availability_refresh_seconds=refresh,
        mqtt=mqtt,
        mqtt_credential=mqtt_credential,
        mqtt_configured=top.has("mqtt"),
        snmp=_read_snmp_settings(top.mapping("snmp", null_is_empty=True), directory, path),
        objectives=_read_objectives(top.mapping("objectives", null_is_empty=True)),
        in_service=_read_indicators(top.mapping("indicators", null_is_empty=True)),
    )


def _read_indicators(fields: Fields | None) -> float:
    """`indicators.in_service`: a share 0..1 (0.99, not 99)."""
    if fields is None:
        return DEFAULT_IN_SERVICE
    fields.expect(("in_service",))
    value = fields.number("in_service", 0, 1)
    return DEFAULT_IN_SERVICE if value is None else value


def _read_objectives(fields: Fields | None) -> Mapping[str, float]:
    """Objectives per kind, each a share 0..1 (0.995, not 99.5); a kind left out keeps its
    default."""
    if fields is None:
        return DEFAULT_OBJECTIVES
    fields.expect(SITE_KINDS)
    found = dict(DEFAULT_OBJECTIVES)
    for kind in SITE_KINDS:
        value = fields.number(kind, 0, 1)
        if value is not None:
            found[kind] = value
    return MappingProxyType(found)


def _read_ledger(
    top: Fields, directory: Path, default: Path
) -> tuple[Path, Retention, float, LedgerLimits]:
    """`ledger.path` (relative to the config directory), how long records are kept, how
    often the availability gauges are recomputed from it, and its limits on a bad disk."""
    fields = top.mapping("ledger", null_is_empty=True)
    if fields is None:
        return default, Retention(), 60.0, LedgerLimits()
    fields.expect(_LEDGER_KEYS)
    text = fields.text("path")
    # a year's report needs a year of raw intervals for its partial hours: at least 1 day
    intervals = fields.number("retention_days", 1)
    rollups = fields.number("rollup_retention_days", 1)
    retention = Retention(
        intervals_days=or_default(intervals, Retention().intervals_days),
        rollups_days=or_default(rollups, Retention().rollups_days),
    )
    refresh = or_default(fields.number("availability_refresh_seconds", positive=True), 60.0)
    limits = LedgerLimits(
        max_pending=or_default(
            fields.integer("max_pending", 10, 10_000_000), LedgerLimits().max_pending
        ),
        stop_timeout_seconds=or_default(
            fields.number("stop_timeout_seconds", 0.1, 3600), LedgerLimits().stop_timeout_seconds
        ),
    )
    return (default if text is None else directory / text), retention, refresh, limits


def _read_timezone(top: Fields) -> str | None:
    name = top.text("timezone")
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        top.problem("timezone", f"unknown time zone {name!r} (an IANA name: Asia/Ho_Chi_Minh)")
        return None
    return name


def _read_snmp_settings(fields: Fields | None, directory: Path, path: Path) -> SnmpRead:
    """`snmp:` engine, profiles directory, trap receiver (see config/README.md)."""
    default_dir = directory / "profiles"
    if fields is None:
        return SnmpRead(SnmpSettings(profiles_dir=default_dir), default_dir, (), path)
    fields.expect(_SNMP_SETTINGS_KEYS)
    engine = fields.choice("engine", SNMP_ENGINES) if fields.has("engine") else None
    profiles_text = fields.text("profiles") if fields.has("profiles") else None
    profiles_dir = directory / profiles_text if profiles_text else default_dir
    traps: TrapSettings | None = None
    refs: list[Located[str]] = []
    trap_fields = fields.mapping("traps") if fields.has("traps") else None
    if trap_fields is not None:
        trap_fields.expect(_TRAP_KEYS, required=("listen", "credentials"))
        listen_text = trap_fields.text("listen")
        listen = parse_listen(listen_text) if listen_text is not None else None
        if listen_text is not None and listen is None:
            trap_fields.problem("listen", f"must be host:port (port 1..65535), got {listen_text!r}")
        names = trap_fields.texts("credentials") or []
        refs = [Located(name.value, name.line, name.key) for name in names]
        if listen is not None:
            traps = TrapSettings(listen.host, listen.port, tuple(n.value for n in names))
    defaults: dict[str, str] = {}
    default_refs: list[Located[str]] = []
    section = fields.mapping("default_profiles") if fields.has("default_profiles") else None
    for kind in section.node if section is not None else ():
        assert section is not None
        if kind not in SITE_KINDS:
            hint = did_you_mean(kind, SITE_KINDS)
            section.problem(kind, f"not a kind of site ({', '.join(SITE_KINDS)}){hint}")
            continue
        name = section.slug(kind)
        if name is not None:
            defaults[kind] = name
            default_refs.append(Located(name, section.line(kind), section.key(kind)))
    settings = SnmpSettings(
        engine or DEFAULT_ENGINE, profiles_dir.absolute(), traps, MappingProxyType(defaults)
    )
    return SnmpRead(settings, profiles_dir, tuple(refs), path, tuple(default_refs))


def _read_path(top: Fields, section: str, directory: Path, default: Path) -> Path:
    """`credentials.file`, `inventory.dir`: relative to the config directory.

    Not made absolute here: file names in messages stay as the operator typed the directory.
    """
    key = {"credentials": "file", "inventory": "dir"}[section]
    fields = top.mapping(section, null_is_empty=True)
    if fields is None:
        return default
    fields.expect((key,))
    text = fields.text(key)
    return default if text is None else directory / text


def _read_http(fields: Fields | None, directory: Path) -> HttpSettings:
    if fields is None:
        return HttpSettings()
    fields.expect(
        ("listen", "max_connections", "timeout_seconds", "web_config_file", "status_page")
    )
    text = fields.text("listen")
    parsed = HttpSettings()
    if text is not None:
        listen = parse_listen(text)
        if listen is None:
            message = f"must be host:port (IPv6 as [::1]:9877, port 1..65535), got {text!r}"
            fields.problem("listen", message)
        else:
            parsed = listen
    web: WebConfig | None = None
    web_file = fields.text("web_config_file")
    if web_file is not None:
        web = read_web_config(directory / web_file, fields.sink.problems)
    return replace(
        parsed,
        max_connections=or_default(fields.integer("max_connections", 1, 10_000), 32),
        timeout_seconds=or_default(fields.number("timeout_seconds", 0.1, 3600), 10.0),
        web=web,
        status_page=or_default(fields.boolean("status_page"), True),
    )


def parse_listen(text: str) -> HttpSettings | None:
    """`127.0.0.1:9877`, `[::1]:9877`, `localhost:9877`; None if malformed."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep or not is_ipv6(host):
            return None
    else:
        host, sep, port = text.rpartition(":")
        if not sep or ":" in host or not is_address(host):
            return None
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    return HttpSettings(host, int(port))


def _read_poll(fields: Fields | None) -> PollSettings:
    if fields is None:
        return PollSettings()
    fields.expect(_POLL_KEYS)
    default = PollSettings()
    return PollSettings(
        interval_seconds=or_default(
            fields.number("interval_seconds", positive=True), default.interval_seconds
        ),
        timeout_seconds=or_default(
            fields.number("timeout_seconds", positive=True), default.timeout_seconds
        ),
        retries=or_default(fields.integer("retries", 0), default.retries),
        max_in_flight=or_default(fields.integer("max_in_flight", 1), default.max_in_flight),
    )


def _read_state(fields: Fields | None) -> StateSettings:
    if fields is None:
        return StateSettings()
    fields.expect(_STATE_KEYS)
    default = StateSettings()
    return StateSettings(
        down_after=or_default(fields.integer("down_after", 1), default.down_after),
        up_after=or_default(fields.integer("up_after", 1), default.up_after),
    )
