"""Load and validate a configuration directory (see config/README.md, the contract).

A configuration is taken whole or refused whole: a daemon that starts with half a district, or
with a site silently dropped for a typo, lies on every dashboard. So validation never stops at
the first error: each check records a `ConfigProblem` (file, line, key path, message) and goes
on, and `load_config` raises one `ConfigError` holding all of them.

Validation runs in two passes. The first reads each file on its own (types, ranges, unknown
keys); the second checks what spans files (duplicate ids, references, parent cycles). When a
file could not be parsed at all, the reference checks that it could have satisfied are skipped
rather than reported once per site.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.config.credentials import Credentials, SnmpCredential, load_credentials
from monitor.config.located import (
    BROKEN,
    ConfigProblem,
    Fields,
    Located,
    Sink,
    YamlMap,
    YamlReadError,
    load_yaml,
)
from monitor.config.maintenance import (
    MAINTENANCE_FILE,
    Window,
    check_targets,
    load_maintenance_file,
)
from monitor.config.mqtt import MqttSettings, read_mqtt_probe, read_mqtt_settings
from monitor.config.profiles import Profile, load_profiles
from monitor.config.telemetry import load_profiles as load_telemetry_profiles
from monitor.core.model import (
    OWNER_KINDS,
    SITE_KINDS,
    Commune,
    DnsProbe,
    HttpProbe,
    IcmpProbe,
    MqttProbe,
    Owner,
    Probe,
    Site,
    SnmpProbe,
    TcpProbe,
)
from monitor.ledger.writer import Retention
from monitor.probes.snmp.engine import ENGINES

__all__ = [
    "SYSTEM_CONFIG_DIR",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "HttpSettings",
    "MqttSettings",
    "PollSettings",
    "SnmpSettings",
    "StateSettings",
    "TrapSettings",
    "find_config_dir",
    "load_config",
]

SYSTEM_CONFIG_DIR = Path("/etc/districtmon")
SETTINGS_FILE = "districtmon.yaml"
DEFAULT_LISTEN = "127.0.0.1:9877"

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
)
_LEDGER_KEYS = ("path", "retention_days", "rollup_retention_days", "availability_refresh_seconds")
_SNMP_SETTINGS_KEYS = ("engine", "profiles", "traps")
_TRAP_KEYS = ("listen", "credentials")
DEFAULT_ENGINE = "gufo"  # the benchmark's winner: see README.md, "SNMP engines"
_POLL_KEYS = ("interval_seconds", "timeout_seconds", "retries", "max_in_flight")
_STATE_KEYS = ("down_after", "up_after")
_INVENTORY_KEYS = ("communes", "owners", "sites")
_COMMUNE_KEYS = ("id", "name", "lat", "lon", "areas")
_OWNER_KEYS = ("id", "name", "kind")
_SITE_KEYS = ("id", "kind", "name", "commune", "owner", "lat", "lon", "parent", "covers", "probe")
_SITE_REQUIRED = ("id", "kind", "name", "commune", "owner", "lat", "lon", "probe")
_SNMP_KEYS = (
    "address",
    "port",
    "credential",
    "interval_seconds",
    "timeout_seconds",
    "retries",
    "profile",
)
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 9877


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


@dataclass(frozen=True, slots=True)
class Config:
    """A validated configuration. Dicts keep definition order (inventory files in name order,
    then list order)."""

    directory: Path
    http: HttpSettings
    ledger_path: Path
    poll: PollSettings
    state: StateSettings
    communes: dict[str, Commune]
    owners: dict[str, Owner]
    sites: dict[str, Site]
    credentials: dict[str, SnmpCredential]
    # the uptime ledger's settings and planned maintenance (maintenance.yaml)
    retention: Retention = field(default_factory=Retention)
    timezone: str | None = None  # IANA name: reports and recurring windows without their own
    maintenance: tuple[Window, ...] = ()
    availability_refresh_seconds: float = 60.0  # how often the availability gauges follow
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    # Sites of the inventory that other shards watch (see shard.py): known, not ours.
    sites_of_other_shards: dict[str, Site] = field(default_factory=dict)
    snmp: SnmpSettings = field(default_factory=SnmpSettings)
    profiles: dict[str, Profile] = field(default_factory=dict)


class ConfigError(Exception):
    """The configuration is refused; `problems` lists every reason, in file and line order."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = sorted(problems, key=ConfigProblem.sort_key)
        super().__init__(*self.problems)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


def find_config_dir(
    arg: str | None, cwd: Path | None = None, *, system_dir: Path = SYSTEM_CONFIG_DIR
) -> Path:
    """`-c DIR` if given; else ./config when it holds districtmon.yaml; else /etc/districtmon.

    A relative result stays relative when `cwd` is not given, so messages read
    `config/inventory/bts.yaml:12`, as the operator would type the path.
    """
    base = Path() if cwd is None else cwd
    if arg is not None:
        chosen = base / arg
        if not chosen.is_dir():
            raise ConfigError([ConfigProblem(chosen, None, "", "not a directory")])
        return chosen
    local = base / "config"
    if (local / SETTINGS_FILE).is_file():
        return local
    if system_dir.is_dir():
        return system_dir
    message = f"no configuration: neither {local / SETTINGS_FILE} nor {system_dir}; use -c DIR"
    raise ConfigError([ConfigProblem(local, None, "", message)])


def load_config(directory: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate everything under `directory`; raise ConfigError with all problems.

    `environ` (default: os.environ) supplies credential overrides; tests pass their own.
    """
    problems: list[ConfigProblem] = []
    env = os.environ if environ is None else environ
    settings = _read_settings(directory, problems, default_ledger_path(env))
    credentials = load_credentials(settings.credentials_file, env, problems)
    profile_problems: list[ConfigProblem] = []
    profiles = load_profiles(settings.snmp.profiles_dir, profile_problems)
    problems.extend(profile_problems)
    inventory = _read_inventory(settings.inventory_dir, problems)
    known_profiles = None if profile_problems else profiles.keys()
    checked = _check_inventory(
        inventory, credentials, settings.credentials_file, known_profiles, problems
    )
    _check_trap_credentials(settings, credentials, problems)
    maintenance_file = directory / MAINTENANCE_FILE
    windows = load_maintenance_file(maintenance_file, problems, settings.timezone)
    if inventory.complete:
        known: dict[str, Collection[str]] = {
            "site": checked.sites.keys(),
            "commune": checked.communes.keys(),
            "owner": checked.owners.keys(),
        }
        check_targets(windows, known, maintenance_file, problems)
    mqtt = _check_mqtt(settings, credentials, inventory, directory / SETTINGS_FILE, problems)
    if problems:
        raise ConfigError(problems)
    return Config(
        directory=directory.absolute(),
        http=settings.http,
        ledger_path=settings.ledger_path,
        poll=settings.poll,
        state=settings.state,
        communes=checked.communes,
        owners=checked.owners,
        sites=checked.sites,
        credentials=credentials.usable if credentials else {},
        retention=settings.retention,
        timezone=settings.timezone,
        maintenance=tuple(windows),
        availability_refresh_seconds=settings.availability_refresh_seconds,
        mqtt=mqtt,
        snmp=settings.snmp.settings,
        profiles=profiles,
    )


# --- districtmon.yaml ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Settings:
    http: HttpSettings
    ledger_path: Path
    credentials_file: Path
    inventory_dir: Path
    poll: PollSettings
    state: StateSettings
    retention: Retention
    timezone: str | None
    availability_refresh_seconds: float
    snmp: _SnmpRead
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    mqtt_credential: Located[str] | None = None
    mqtt_configured: bool = False


@dataclass(frozen=True, slots=True)
class _SnmpRead:
    settings: SnmpSettings
    profiles_dir: Path
    trap_refs: tuple[_Ref, ...] = ()
    file: Path = Path()


def default_ledger_path(environ: Mapping[str, str]) -> Path:
    """Under systemd, StateDirectory= says where state belongs; elsewhere ./var."""
    state_dirs = environ.get("STATE_DIRECTORY", "")
    if state_dirs:
        return Path(state_dirs.split(":")[0]) / "ledger.sqlite"
    return Path("var/ledger.sqlite")


def _read_settings(
    directory: Path, problems: list[ConfigProblem], ledger_default: Path
) -> _Settings:
    path = directory / SETTINGS_FILE
    root: object = None
    try:
        root = load_yaml(path, problems)
    except YamlReadError as error:
        problems.append(error.problem)
    top = Fields.of(Sink(path, problems), YamlMap(1) if root is None else root, 1, "")
    top = top or Fields(Sink(path, []), YamlMap(1), "")  # reported; carry on with defaults
    top.expect(_SETTINGS_KEYS)
    ledger_path, retention, refresh = _read_ledger(top, directory, ledger_default)
    mqtt, mqtt_credential = read_mqtt_settings(top.mapping("mqtt", null_is_empty=True), directory)
    return _Settings(
        http=_read_http(top.mapping("http", null_is_empty=True)),
        ledger_path=ledger_path.absolute(),
        credentials_file=_read_path(top, "credentials", directory, directory / "credentials.yaml"),
        inventory_dir=_read_path(top, "inventory", directory, directory / "inventory"),
        poll=_read_poll(top.mapping("poll", null_is_empty=True)),
        state=_read_state(top.mapping("state", null_is_empty=True)),
        retention=retention,
        timezone=_read_timezone(top),
        availability_refresh_seconds=refresh,
        mqtt=mqtt,
        mqtt_credential=mqtt_credential,
        mqtt_configured=top.has("mqtt"),
        snmp=_read_snmp_settings(top.mapping("snmp", null_is_empty=True), directory, path),
    )


def _read_ledger(top: Fields, directory: Path, default: Path) -> tuple[Path, Retention, float]:
    """`ledger.path` (relative to the config directory), how long records are kept, and how
    often the availability gauges are recomputed from it."""
    fields = top.mapping("ledger", null_is_empty=True)
    if fields is None:
        return default, Retention(), 60.0
    fields.expect(_LEDGER_KEYS)
    text = fields.text("path")
    # a year's report needs a year of raw intervals for its partial hours: at least 1 day
    intervals = fields.number("retention_days", 1)
    rollups = fields.number("rollup_retention_days", 1)
    retention = Retention(
        intervals_days=_or(intervals, Retention().intervals_days),
        rollups_days=_or(rollups, Retention().rollups_days),
    )
    refresh = _or(fields.number("availability_refresh_seconds", positive=True), 60.0)
    return (default if text is None else directory / text), retention, refresh


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


def _read_snmp_settings(fields: Fields | None, directory: Path, path: Path) -> _SnmpRead:
    """`snmp:` engine, profiles directory, trap receiver (see config/README.md)."""
    default_dir = directory / "profiles"
    if fields is None:
        return _SnmpRead(SnmpSettings(profiles_dir=default_dir), default_dir, (), path)
    fields.expect(_SNMP_SETTINGS_KEYS)
    engine = fields.choice("engine", ENGINES) if fields.has("engine") else None
    profiles_text = fields.text("profiles") if fields.has("profiles") else None
    profiles_dir = directory / profiles_text if profiles_text else default_dir
    traps: TrapSettings | None = None
    refs: list[_Ref] = []
    trap_fields = fields.mapping("traps") if fields.has("traps") else None
    if trap_fields is not None:
        trap_fields.expect(_TRAP_KEYS, required=("listen", "credentials"))
        listen_text = trap_fields.text("listen")
        listen = parse_listen(listen_text) if listen_text is not None else None
        if listen_text is not None and listen is None:
            trap_fields.problem("listen", f"must be host:port (port 1..65535), got {listen_text!r}")
        names = trap_fields.texts("credentials") or []
        refs = [_Ref(name.value, name.line, name.key) for name in names]
        if listen is not None:
            traps = TrapSettings(listen.host, listen.port, tuple(n.value for n in names))
    settings = SnmpSettings(engine or DEFAULT_ENGINE, profiles_dir.absolute(), traps)
    return _SnmpRead(settings, profiles_dir, tuple(refs), path)


def _check_trap_credentials(
    settings: _Settings, credentials: Credentials | None, problems: list[ConfigProblem]
) -> None:
    if credentials is None:
        return
    for ref in settings.snmp.trap_refs:
        if ref.target not in credentials.declared:
            message = f"unknown credential '{ref.target}' (not in {settings.credentials_file.name})"
            problems.append(ConfigProblem(settings.snmp.file, ref.line, ref.key, message))


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


def _read_http(fields: Fields | None) -> HttpSettings:
    if fields is None:
        return HttpSettings()
    fields.expect(("listen",))
    text = fields.text("listen")
    if text is None:
        return HttpSettings()
    parsed = parse_listen(text)
    if parsed is None:
        message = f"must be host:port (IPv6 as [::1]:9877, port 1..65535), got {text!r}"
        fields.problem("listen", message)
        return HttpSettings()
    return parsed


def parse_listen(text: str) -> HttpSettings | None:
    """`127.0.0.1:9877`, `[::1]:9877`, `localhost:9877`; None if malformed."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep or not _is_ipv6(host):
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
        interval_seconds=_or(
            fields.number("interval_seconds", positive=True), default.interval_seconds
        ),
        timeout_seconds=_or(
            fields.number("timeout_seconds", positive=True), default.timeout_seconds
        ),
        retries=_or(fields.integer("retries", 0), default.retries),
        max_in_flight=_or(fields.integer("max_in_flight", 1), default.max_in_flight),
    )


def _read_state(fields: Fields | None) -> StateSettings:
    if fields is None:
        return StateSettings()
    fields.expect(_STATE_KEYS)
    default = StateSettings()
    return StateSettings(
        down_after=_or(fields.integer("down_after", 1), default.down_after),
        up_after=_or(fields.integer("up_after", 1), default.up_after),
    )


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


# --- inventory/*.yaml: pass 1, each entry on its own ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Ref:
    """A name that must exist elsewhere (a commune, an owner, a parent site, a credential)."""

    target: str
    line: int
    key: str


@dataclass(slots=True)
class _Entry(Generic[T]):
    """An inventory entry and where it was read. `id` is None when the id itself was bad: the
    entry is still checked, but cannot be referred to."""

    value: T
    id: str | None
    file: Path
    line: int
    key: str
    subject: str = ""
    refs: dict[str, _Ref] = field(default_factory=dict)
    covers: list[Located[str]] = field(default_factory=list)
    probe_line: int = 0
    probe_key: str = ""

    def where(self) -> str:
        return f"{self.file.name}:{self.line}"


@dataclass(slots=True)
class _Inventory:
    communes: list[_Entry[Commune]] = field(default_factory=list)
    owners: list[_Entry[Owner]] = field(default_factory=list)
    sites: list[_Entry[Site]] = field(default_factory=list)
    complete: bool = True  # every file parsed: absent references are really absent


def _read_inventory(directory: Path, problems: list[ConfigProblem]) -> _Inventory:
    inventory = _Inventory()
    if not directory.is_dir():
        problems.append(ConfigProblem(directory, None, "", "inventory directory not found"))
        inventory.complete = False
        return inventory
    files = sorted(p for p in directory.glob("*.yaml") if not p.name.startswith("."))
    for path in files:
        _read_inventory_file(path, inventory, problems)
    return inventory


def _read_inventory_file(path: Path, inventory: _Inventory, problems: list[ConfigProblem]) -> None:
    try:
        root = load_yaml(path, problems)
    except YamlReadError as error:
        problems.append(error.problem)
        inventory.complete = False
        return
    top = Fields.of(Sink(path, problems), YamlMap(1) if root is None else root, 1, "")
    if top is None:
        inventory.complete = False
        return
    top.expect(_INVENTORY_KEYS)
    for item in top.items("communes") or ():
        inventory.communes.append(_read_commune(top.sink, item))
    for item in top.items("owners") or ():
        inventory.owners.append(_read_owner(top.sink, item))
    for item in top.items("sites") or ():
        inventory.sites.append(_read_site(top.sink, item))


def _open_entry(sink: Sink, item: Located[object], noun: str) -> tuple[Fields, str | None]:
    """The entry's fields, with its id read first so that every later message can name it."""
    fields = Fields.of(sink, item.value, item.line, item.key)
    if fields is None:  # reported; go on with an empty entry whose own problems are moot
        return Fields(Sink(sink.file, []), YamlMap(item.line), item.key), None
    entry_id = fields.slug("id")
    if entry_id is not None:
        fields.subject = f" ({noun} '{entry_id}')"
    return fields, entry_id


def _id_line(fields: Fields, item: Located[object]) -> int:
    return fields.line("id") if fields.has("id") else item.line


def _read_commune(sink: Sink, item: Located[object]) -> _Entry[Commune]:
    fields, commune_id = _open_entry(sink, item, "commune")
    fields.expect(_COMMUNE_KEYS, required=("id", "name", "lat", "lon"))
    commune = Commune(
        id=commune_id or "",
        name=fields.text("name") or "",
        lat=_or(fields.number("lat", -90, 90), 0.0),
        lon=_or(fields.number("lon", -180, 180), 0.0),
        areas=tuple(area.value for area in fields.texts("areas") or ()),
    )
    return _Entry(commune, commune_id, sink.file, _id_line(fields, item), item.key, fields.subject)


def _read_owner(sink: Sink, item: Located[object]) -> _Entry[Owner]:
    fields, owner_id = _open_entry(sink, item, "owner")
    fields.expect(_OWNER_KEYS, required=_OWNER_KEYS)
    owner = Owner(
        id=owner_id or "",
        name=fields.text("name") or "",
        kind=fields.choice("kind", OWNER_KINDS) or "",
    )
    return _Entry(owner, owner_id, sink.file, _id_line(fields, item), item.key, fields.subject)


def _read_site(sink: Sink, item: Located[object]) -> _Entry[Site]:
    fields, site_id = _open_entry(sink, item, "site")
    fields.expect(_SITE_KEYS, required=_SITE_REQUIRED)
    kind = fields.choice("kind", SITE_KINDS)
    refs = {name: ref for name in ("commune", "owner", "parent") if (ref := _ref(fields, name))}
    probe, credential = _read_probe(fields)
    if credential is not None:
        refs["credential"] = credential
    profile = _profile_ref(fields, probe)
    if profile is not None:
        refs["profile"] = profile
    covers = _read_covers(fields, kind)
    site = Site(
        id=site_id or "",
        kind=kind or "",
        name=fields.text("name") or "",
        commune=refs["commune"].target if "commune" in refs else "",
        owner=refs["owner"].target if "owner" in refs else "",
        lat=_or(fields.number("lat", -90, 90), 0.0),
        lon=_or(fields.number("lon", -180, 180), 0.0),
        probe=probe,
        parent=refs["parent"].target if "parent" in refs else None,
        covers=tuple(area.value for area in covers),
    )
    line = _id_line(fields, item)
    entry = _Entry(site, site_id, sink.file, line, item.key, fields.subject, refs, covers)
    entry.probe_line, entry.probe_key = fields.line("probe"), fields.key("probe")
    return entry


def _profile_ref(site: Fields, probe: Probe) -> _Ref | None:
    """The device profile an SNMP probe names, placed for the check against profiles/."""
    if not isinstance(probe, SnmpProbe) or probe.profile is None:
        return None
    snmp = site.node.get("probe")
    snmp = snmp.get("snmp") if isinstance(snmp, YamlMap) else None
    if not isinstance(snmp, YamlMap):
        return None
    key = f"{site.key('probe')}.snmp.profile"
    return _Ref(probe.profile, snmp.line_of("profile"), key)


def _ref(fields: Fields, key: str) -> _Ref | None:
    target = fields.text(key)
    return None if target is None else _Ref(target, fields.line(key), fields.key(key))


def _read_covers(fields: Fields, kind: str | None) -> list[Located[str]]:
    """Areas a loudspeaker reaches; checked against its commune in pass 2."""
    if not fields.has("covers"):
        return []
    if kind is not None and kind != "loudspeaker":
        fields.problem("covers", f"only loudspeaker sites may list covers (kind is '{kind}')")
        return []
    return fields.texts("covers") or []


def _read_probe(site: Fields) -> tuple[Probe, _Ref | None]:
    """Exactly one probe type, read by its own reader (see PROBE_READERS)."""
    placeholder = SnmpProbe(address="")
    probe = site.mapping("probe")
    if probe is None:
        return placeholder, None
    types = list(probe.node)
    supported = ", ".join(PROBE_READERS)
    if len(types) != 1:
        probe.problem_here(f"must name exactly one probe type ({supported}), got {len(types)}")
    for name in types:
        if name not in PROBE_READERS:
            probe.problem(name, f"unknown probe type '{name}' (supported: {supported})")
    for name, reader in PROBE_READERS.items():
        fields = probe.mapping(name) if name in types else None
        if fields is not None:
            return reader(fields)
    return placeholder, None


def _read_snmp(snmp: Fields) -> tuple[Probe, _Ref | None]:
    snmp.expect(_SNMP_KEYS, required=("address", "credential"))
    address = snmp.text("address")
    if address is not None and not is_address(address):
        snmp.problem("address", f"must be an IP address or a host name, got {address!r}")
    credential = _ref(snmp, "credential")
    profile = snmp.slug("profile") if snmp.has("profile") else None
    probe = SnmpProbe(
        address=address or "",
        port=_or(snmp.integer("port", 1, 65535), 161),
        credential=credential.target if credential else "",
        timeout_seconds=snmp.number("timeout_seconds", positive=True),
        retries=snmp.integer("retries", 0),
        interval_seconds=snmp.number("interval_seconds", positive=True),
        profile=profile,
    )
    return probe, credential


# --- reachability probes: icmp, tcp, http, dns (no credentials) ---------------------------

_ICMP_KEYS = (
    "address",
    "count",
    "packet_interval_seconds",
    "max_loss_ratio",
    "slow_seconds",
    "timeout_seconds",
    "interval_seconds",
)
_TCP_KEYS = ("address", "port", "slow_seconds", "timeout_seconds", "interval_seconds")
_HTTP_KEYS = (
    "url",
    "expect_status",
    "body_matches",
    "header_matches",
    "follow_redirects",
    "verify_tls",
    "ca_file",
    "cert_expiry_days",
    "slow_seconds",
    "timeout_seconds",
    "interval_seconds",
)
_DNS_KEYS = (
    "server",
    "port",
    "name",
    "type",
    "expect",
    "slow_seconds",
    "timeout_seconds",
    "retries",
    "interval_seconds",
)
DNS_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT")
_HTTP_ONLY_TLS = ("verify_tls", "ca_file", "cert_expiry_days")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DNS_LABEL = re.compile(r"[A-Za-z0-9_*](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _address(fields: Fields, key: str = "address") -> str:
    address = fields.text(key)
    if address is not None and not is_address(address):
        fields.problem(key, f"must be an IP address or a host name, got {address!r}")
    return address or ""


def _timing(fields: Fields) -> dict[str, float | None]:
    """The keys every reachability probe shares."""
    return {
        "slow_seconds": fields.number("slow_seconds", positive=True),
        "timeout_seconds": fields.number("timeout_seconds", positive=True),
        "interval_seconds": fields.number("interval_seconds", positive=True),
    }


def _boolean(fields: Fields, key: str) -> bool | None:
    value = fields.get(key)
    if isinstance(value, bool):
        return value
    if fields.has(key) and value is not BROKEN:
        fields.problem(key, f"must be true or false, got {fields.sink.show(value)}")
    return None


def _regex(fields: Fields, key: str, text: str | None, line_key: str | None = None) -> str | None:
    """A Python regular expression, compiled once here so that a typo is a config error."""
    if text is None:
        return None
    try:
        re.compile(text)
    except re.error as exc:
        fields.problem(line_key or key, f"not a valid regular expression ({exc})")
        return None
    return text


def _read_icmp(icmp: Fields) -> tuple[Probe, None]:
    icmp.expect(_ICMP_KEYS, required=("address",))
    probe = IcmpProbe(
        address=_address(icmp),
        count=_or(icmp.integer("count", 1, 100), 3),
        packet_interval_seconds=_or(icmp.number("packet_interval_seconds", positive=True), 0.2),
        max_loss_ratio=icmp.number("max_loss_ratio", 0, 1),
        **_timing(icmp),
    )
    return probe, None


def _read_tcp(tcp: Fields) -> tuple[Probe, None]:
    tcp.expect(_TCP_KEYS, required=("address", "port"))
    probe = TcpProbe(
        address=_address(tcp), port=_or(tcp.integer("port", 1, 65535), 1), **_timing(tcp)
    )
    return probe, None


def _read_http_probe(http: Fields) -> tuple[Probe, None]:
    http.expect(_HTTP_KEYS, required=("url",))
    url = _http_url(http)
    if url is not None and url.startswith("http:"):
        for key in _HTTP_ONLY_TLS:
            if http.has(key):
                http.problem(key, "applies to https:// URLs only")
    ca_file = http.text("ca_file")
    if ca_file is not None:
        path = (http.sink.file.parent / ca_file).absolute()  # relative to the file it is in
        if not path.is_file():
            http.problem("ca_file", f"file not found: {path}")
        ca_file = str(path)
    probe = HttpProbe(
        url=url or "",
        expect_status=_http_statuses(http),
        body_matches=_regex(http, "body_matches", http.text("body_matches")),
        header_matches=_http_headers(http),
        follow_redirects=_or(_boolean(http, "follow_redirects"), False),
        verify_tls=_or(_boolean(http, "verify_tls"), True),
        ca_file=ca_file,
        cert_expiry_days=_or(http.number("cert_expiry_days", 0, 3650), 14.0),
        **_timing(http),
    )
    return probe, None


def _http_url(http: Fields) -> str | None:
    url = http.text("url")
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        http.problem("url", f"not a valid URL: {url!r}")
        return None
    if parts.scheme not in ("http", "https"):
        http.problem("url", f"must be an http:// or https:// URL, got {url!r}")
        return None
    if parts.username is not None or parts.password is not None:
        # the inventory is shared and URLs appear in logs: credentials have no place there
        http.problem("url", "must not carry a user name or password")
        return None
    if not parts.hostname or not is_address(parts.hostname):
        http.problem("url", f"must name a host (IP address or host name), got {url!r}")
        return None
    return url


def _http_statuses(http: Fields) -> tuple[int, ...]:
    """One status or a list; none given means any 2xx."""
    if not http.has("expect_status"):
        return ()
    if not isinstance(http.get("expect_status"), list):
        single = http.integer("expect_status", 100, 599)
        return () if single is None else (single,)
    statuses: list[int] = []
    for item in http.items("expect_status") or ():
        value = item.value
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            message = f"must be an HTTP status 100..599, got {http.sink.show(value)}"
            http.sink.add(item.line, item.key, message + http.subject)
            continue
        statuses.append(value)
    return tuple(statuses)


def _http_headers(http: Fields) -> tuple[tuple[str, str], ...]:
    headers = http.mapping("header_matches")
    if headers is None:
        return ()
    found: list[tuple[str, str]] = []
    for name in headers.node:
        if not _HEADER_NAME.fullmatch(name):
            headers.problem(name, f"not a valid HTTP header name: {name!r}")
            continue
        pattern = _regex(headers, name, headers.text(name))
        if pattern is not None:
            found.append((name, pattern))
    return tuple(found)


def _read_dns(dns: Fields) -> tuple[Probe, None]:
    dns.expect(_DNS_KEYS, required=("server", "name"))
    server = dns.text("server")
    if server is not None and not _is_ip(server):
        dns.problem(
            "server", f"must be an IP address (a resolver is asked by address), got {server!r}"
        )
    name = dns.text("name")
    if name is not None and not _is_dns_name(name):
        dns.problem("name", f"not a valid DNS name: {name!r}")
    chosen = dns.choice("type", DNS_TYPES)
    rdtype = _or(chosen, "A")
    expect = dns.texts("expect") or []
    if rdtype in ("A", "AAAA") and (chosen is not None or not dns.has("type")):
        family = ipaddress.IPv4Address if rdtype == "A" else ipaddress.IPv6Address
        for item in expect:
            if not _is_ip(item.value) or not isinstance(ipaddress.ip_address(item.value), family):
                message = f"must be an IPv{4 if rdtype == 'A' else 6} address for type {rdtype}"
                dns.sink.add(item.line, item.key, f"{message}, got {item.value!r}{dns.subject}")
    probe = DnsProbe(
        server=server or "",
        name=name or "",
        type=rdtype,
        port=_or(dns.integer("port", 1, 65535), 53),
        expect=tuple(item.value for item in expect),
        retries=dns.integer("retries", 0),
        **_timing(dns),
    )
    return probe, None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_dns_name(text: str) -> bool:
    """Looser than a host name: service labels (`_sip._tcp`) and wildcards are names too."""
    name = text.removesuffix(".")
    return 0 < len(name) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in name.split("."))


def _read_mqtt(mqtt: Fields) -> tuple[Probe, _Ref | None]:
    return read_mqtt_probe(mqtt), None


# One reader per probe type: it validates the probe's mapping and returns the probe and the
# credential it refers to (checked against credentials.yaml in pass 2), if any.
PROBE_READERS: dict[str, Callable[[Fields], tuple[Probe, _Ref | None]]] = {
    "snmp": _read_snmp,
    "icmp": _read_icmp,
    "tcp": _read_tcp,
    "http": _read_http_probe,
    "dns": _read_dns,
    "mqtt": _read_mqtt,
}


def is_address(text: str) -> bool:
    """An IPv4/IPv6 literal, or a syntactically valid DNS host name (RFC 1123; an all-numeric
    last label is refused, so that a mistyped IPv4 like 10.0.0.300 is not taken for a name)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        return True
    name = text.removesuffix(".")
    labels = name.split(".")
    return (
        0 < len(name) <= 253
        and all(_HOST_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False


# --- pass 2: what spans entries and files --------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Checked:
    communes: dict[str, Commune]
    owners: dict[str, Owner]
    sites: dict[str, Site]


def _check_inventory(
    inventory: _Inventory,
    credentials: Credentials | None,
    credentials_file: Path,
    profiles: Collection[str] | None,
    problems: list[ConfigProblem],
) -> _Checked:
    communes = _unique(inventory.communes, "commune", problems)
    owners = _unique(inventory.owners, "owner", problems)
    sites = _unique(inventory.sites, "site", problems)
    checks: list[tuple[str, Collection[str] | None]] = [
        ("commune", communes.keys() if inventory.complete else None),
        ("owner", owners.keys() if inventory.complete else None),
        ("parent", sites.keys() if inventory.complete else None),
        ("credential", credentials.declared if credentials else None),
        ("profile", profiles),
    ]
    for entry in inventory.sites:
        for kind, known in checks:
            _check_ref(entry, kind, known, credentials_file, problems)
        _check_covers(entry, communes, problems)
    _check_cycles(inventory.sites, sites, problems)
    return _Checked(
        communes={key: entry.value for key, entry in communes.items()},
        owners={key: entry.value for key, entry in owners.items()},
        sites={key: entry.value for key, entry in sites.items()},
    )


def _unique(
    entries: list[_Entry[T]], noun: str, problems: list[ConfigProblem]
) -> dict[str, _Entry[T]]:
    """The first definition of each id wins; later ones are reported, naming the first."""
    first: dict[str, _Entry[T]] = {}
    for entry in entries:
        if entry.id is None:
            continue
        if entry.id in first:
            message = (
                f"duplicate {noun} id '{entry.id}' (first defined at {first[entry.id].where()})"
            )
            problems.append(ConfigProblem(entry.file, entry.line, f"{entry.key}.id", message))
            continue
        first[entry.id] = entry
    return first


def _check_ref(
    entry: _Entry[Site],
    kind: str,
    known: Collection[str] | None,
    credentials_file: Path,
    problems: list[ConfigProblem],
) -> None:
    ref = entry.refs.get(kind)
    if ref is None or known is None or ref.target in known:
        return
    where = f" (not in {credentials_file.name})" if kind == "credential" else ""
    if kind == "profile":
        where = f" (no {ref.target}.yaml among the profiles)"
    message = f"unknown {kind} '{ref.target}'{where}{entry.subject}"
    problems.append(ConfigProblem(entry.file, ref.line, ref.key, message))


def _check_covers(
    entry: _Entry[Site], communes: dict[str, _Entry[Commune]], problems: list[ConfigProblem]
) -> None:
    commune = communes.get(entry.value.commune)
    if commune is None:
        return  # unknown commune already reported
    for area in entry.covers:
        if area.value not in commune.value.areas:
            message = f"{area.value!r} is not an area of commune '{commune.id}'{entry.subject}"
            problems.append(ConfigProblem(entry.file, area.line, area.key, message))


def _check_cycles(
    order: list[_Entry[Site]], sites: dict[str, _Entry[Site]], problems: list[ConfigProblem]
) -> None:
    """Each cycle once, at its first member in definition order, as `a -> b -> a`."""
    parents = {
        entry.id: entry.value.parent
        for entry in order
        if entry.id is not None and entry.value.parent in sites
    }
    rank = {site_id: index for index, site_id in enumerate(sites)}
    done: set[str] = set()
    for entry in order:
        path: dict[str, int] = {}  # site id -> position on the walk up from `entry`
        current = entry.id
        while current is not None and current not in done and current not in path:
            path[current] = len(path)
            current = parents.get(current)
        if current is not None and current in path:
            cycle = list(path)[path[current] :]
            _report_cycle(cycle, rank, sites, problems)
        done.update(path)


def _report_cycle(
    cycle: list[str],
    rank: dict[str, int],
    sites: dict[str, _Entry[Site]],
    problems: list[ConfigProblem],
) -> None:
    start = min(range(len(cycle)), key=lambda index: rank[cycle[index]])
    ordered = cycle[start:] + cycle[:start]
    first = sites[ordered[0]]
    ref = first.refs["parent"]
    message = "parent cycle: " + " -> ".join([*ordered, ordered[0]])
    problems.append(ConfigProblem(first.file, ref.line, ref.key, message))


# --- MQTT: the broker account, telemetry profiles, one base topic per site ------------------


def _check_mqtt(
    settings: _Settings,
    credentials: Credentials | None,
    inventory: _Inventory,
    settings_file: Path,
    problems: list[ConfigProblem],
) -> MqttSettings:
    mqtt = settings.mqtt
    ref = settings.mqtt_credential
    if ref is not None and credentials is not None:
        account = credentials.mqtt.get(ref.value)
        if account is not None:
            mqtt = replace(
                mqtt, credential=account.name, username=account.username, password=account.password
            )
        elif ref.value not in credentials.mqtt_declared:
            message = (
                f"unknown credential '{ref.value}' (not in the mqtt section of "
                f"{settings.credentials_file.name})"
            )
            problems.append(ConfigProblem(settings_file, ref.line, ref.key, message))
    entries = [e for e in inventory.sites if isinstance(e.value.probe, MqttProbe)]
    if not entries and not settings.mqtt_configured:
        return mqtt
    profiles = load_telemetry_profiles(mqtt.mappings_file, problems)
    if profiles is not None:
        mqtt = replace(mqtt, profiles=profiles)
    topics: dict[str, _Entry[Site]] = {}
    for entry in entries:
        site = entry.value
        where = f"{entry.probe_key}.mqtt"
        name = mqtt.profile_name(site)
        if profiles is not None and site.kind and name not in profiles:
            message = f"no telemetry profile '{name}' in {mqtt.mappings_file.name}{entry.subject}"
            problems.append(ConfigProblem(entry.file, entry.probe_line, where, message))
        if entry.id is None or not site.commune:
            continue
        base = mqtt.base_topic(site)
        first = topics.setdefault(base, entry)
        if first is not entry:
            message = (
                f"topic '{base}' is also the topic of site '{first.id}' ({first.where()})"
                f"{entry.subject}"
            )
            problems.append(ConfigProblem(entry.file, entry.probe_line, where, message))
    return mqtt
