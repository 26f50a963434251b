"""Load and validate a configuration directory (see config/README.md, the contract).

A configuration is taken whole or refused whole: a daemon that starts with half a district, or
with a site silently dropped for a typo, lies on every dashboard. So validation never stops at
the first error: each reader records a `ConfigProblem` (file, line, key path, message) and goes
on, and `load_config` raises one `ConfigError` holding all of them. Each file has its reader
(settings.py, credentials.py, inventory.py, profiles.py, telemetry.py, maintenance.py); what
spans files is checked here, once every file has been read.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from monitor.config.checked_inventory import Share, checked_inventory, parents_elsewhere
from monitor.config.credentials import (
    Credentials,
    SnmpCredential,
    file_warnings,
    load_credentials,
    secret_values,
)
from monitor.config.inventory import Entry
from monitor.config.maintenance import (
    MAINTENANCE_FILE,
    Window,
    check_targets,
    load_maintenance_file,
)
from monitor.config.mqtt import MqttSettings
from monitor.config.problems import ConfigError, ConfigProblem
from monitor.config.profile_reader import load_profiles
from monitor.config.profiles import AUTO, Profile
from monitor.config.reading_cache import DIRECTORY_NAME as CACHE_DIRECTORY
from monitor.config.settings import (
    DEFAULT_IN_SERVICE,
    DEFAULT_OBJECTIVES,
    SETTINGS_FILE,
    HttpSettings,
    LedgerLimits,
    PollSettings,
    Retention,
    Settings,
    SnmpSettings,
    StateSettings,
    default_ledger_path,
    read_settings,
)
from monitor.config.suggest import did_you_mean
from monitor.config.telemetry import load_profiles as load_telemetry_profiles
from monitor.core.model import Commune, MqttProbe, Owner, Site

SYSTEM_CONFIG_DIR = Path("/etc/districtmon")


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
    ledger_limits: LedgerLimits = field(default_factory=LedgerLimits)
    timezone: str | None = None  # IANA name: reports and recurring windows without their own
    maintenance: tuple[Window, ...] = ()
    availability_refresh_seconds: float = 60.0  # how often the availability gauges follow
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    # Of the sites that other shards watch (see shards.py), those this daemon meets once
    # loaded: their MQTT sites, whose messages are known, not a stranger's (a shard's load
    # keeps of each only its id, kind, commune, parent and probe), and the foreign parents,
    # whole. The others served only the checks across sites at the load, and are not kept.
    sites_of_other_shards: dict[str, Site] = field(default_factory=dict)
    # Of those, the parents of this shard's own sites, read in full: this shard polls them
    # too, for its own sites' states depend on theirs (see `parents_elsewhere`), and never
    # reports them (their shard does). Each is also in sites_of_other_shards.
    foreign_parents: dict[str, Site] = field(default_factory=dict)
    snmp: SnmpSettings = field(default_factory=SnmpSettings)
    profiles: dict[str, Profile] = field(default_factory=dict)
    # what is accepted but unsafe (a credentials file others can read): said at every start,
    # reload and check-config, never a refusal
    warnings: tuple[str, ...] = ()
    # 30-day availability objective per kind (districtmon.yaml `objectives:`); a site's own
    # `objective:` in the inventory overrides its kind's
    objectives: Mapping[str, float] = field(default_factory=lambda: DEFAULT_OBJECTIVES)
    in_service: float = DEFAULT_IN_SERVICE  # the indicators' threshold (`indicators:`)


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
        try:
            found = chosen.is_dir()
        except OSError as exc:  # a name too long, a parent that may not be searched
            message = f"cannot read: {exc.strerror or exc}"
            raise ConfigError([ConfigProblem(chosen, None, "", message)]) from None
        if not found:
            raise ConfigError([ConfigProblem(chosen, None, "", "not a directory")])
        return chosen
    local = base / "config"
    if (local / SETTINGS_FILE).is_file():
        return local
    if system_dir.is_dir():
        return system_dir
    message = f"no configuration: neither {local / SETTINGS_FILE} nor {system_dir}; use -c DIR"
    raise ConfigError([ConfigProblem(local, None, "", message)])


def load_config(
    directory: Path,
    environ: Mapping[str, str] | None = None,
    *,
    share: Share | None = None,
    cache: bool = False,
) -> Config:
    """Read and validate everything under `directory`; raise ConfigError with all problems.

    `environ` (default: os.environ) supplies credential overrides; tests pass their own.
    `share` (a shard, see shards.py) keeps only the sites it owns: the others serve the
    checks across sites, and of them only those it meets once loaded are kept, as
    `sites_of_other_shards`; the parents of its own sites are kept and checked in full
    (`foreign_parents`), since the shard polls them too.
    `cache` keeps what each inventory file read to beside the ledger, and the outcome of the
    inventory's checks, and takes them from there while what they depend on is unchanged
    (see reading_cache.py and checked_inventory.py): what the daemon's own loads do.
    A path the system refuses (a name too long, a directory the service user may not read)
    is a problem like any other, naming the path: never a traceback, never a dead daemon.
    """
    problems: list[ConfigProblem] = []
    try:
        with without_cyclic_gc():
            env = os.environ if environ is None else environ
            return _load(directory, env, problems, share, cache)
    except OSError as exc:
        where = Path(exc.filename) if isinstance(exc.filename, str | Path) else directory
        message = f"cannot read: {exc.strerror or exc}"
        raise ConfigError([*problems, ConfigProblem(where, None, "", message)]) from None


@contextlib.contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection while a configuration is read. Reading makes millions of
    small objects that live until the file is done, and every few thousand of them Python
    walks all that live, again and again: 3.7 s of the 5.8 that reading 20,000 sites took
    through PyYAML's node tree. The values read hold no cycles; refcounting frees what is
    dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(
    directory: Path,
    env: Mapping[str, str],
    problems: list[ConfigProblem],
    share: Share | None,
    cache: bool,
) -> Config:
    settings = read_settings(directory, problems, default_ledger_path(env))
    credentials = load_credentials(settings.credentials_file, env, problems)
    profile_problems: list[ConfigProblem] = []
    profiles = load_profiles(settings.snmp.profiles_dir, profile_problems)
    problems.extend(profile_problems)
    known_profiles = None if profile_problems else {*profiles, AUTO}
    _check_default_profiles(settings, known_profiles, problems)
    cache_dir = settings.ledger_path.parent / CACHE_DIRECTORY if cache else None
    inventory = checked_inventory(
        settings.inventory_dir,
        credentials,
        settings.credentials_file,
        known_profiles,
        settings.snmp.settings.default_profiles,
        problems,
        share,
        cache_dir,
    )
    _check_trap_credentials(settings, credentials, problems)
    maintenance_file = directory / MAINTENANCE_FILE
    windows = load_maintenance_file(maintenance_file, problems, settings.timezone)
    if inventory.complete:
        known: dict[str, Collection[str]] = {
            "site": inventory.site_ids,
            "commune": inventory.communes.keys(),
            "owner": inventory.owners.keys(),
        }
        check_targets(windows, known, maintenance_file, problems)
    mqtt = _check_mqtt(settings, credentials, inventory.mqtt, directory / SETTINGS_FILE, problems)
    if problems:
        raise ConfigError(_redacted(problems, secret_values(credentials, env)))
    own, met = inventory.sites, inventory.met
    return Config(
        directory=directory.absolute(),
        http=settings.http,
        ledger_path=settings.ledger_path,
        poll=settings.poll,
        state=settings.state,
        communes=inventory.communes,
        owners=inventory.owners,
        sites=own,
        sites_of_other_shards=met,
        foreign_parents=parents_elsewhere(own, met),
        credentials=credentials.usable if credentials else {},
        retention=settings.retention,
        ledger_limits=settings.ledger_limits,
        timezone=settings.timezone,
        maintenance=tuple(windows),
        availability_refresh_seconds=settings.availability_refresh_seconds,
        mqtt=mqtt,
        snmp=settings.snmp.settings,
        profiles=profiles,
        warnings=tuple(file_warnings(settings.credentials_file)),
        objectives=settings.objectives,
        in_service=settings.in_service,
    )


def _redacted(problems: list[ConfigProblem], secrets: set[str]) -> list[ConfigProblem]:
    """No error shows a secret the configuration knows, wherever it was typed (a community
    pasted as a key of the inventory, a password as a topic): each is replaced by ***."""
    ordered = sorted(secrets, key=len, reverse=True)  # a secret inside another: the longer
    cleaned = []
    for problem in problems:
        key, message = problem.key, problem.message
        for secret in ordered:
            if len(secret) >= _MASKED_ANYWHERE:
                key, message = key.replace(secret, "***"), message.replace(secret, "***")
            else:  # too short to mask inside words: as a whole key or a quoted value
                key = ".".join("***" if part == secret else part for part in key.split("."))
                message = message.replace(f"'{secret}'", "'***'")
        cleaned.append(replace(problem, key=key, message=message))
    return cleaned


_MASKED_ANYWHERE = 4  # a secret this long is masked wherever it appears in an error


# --- districtmon.yaml ----------------------------------------------------------------------


def _check_default_profiles(
    settings: Settings, known: Collection[str] | None, problems: list[ConfigProblem]
) -> None:
    """`snmp.default_profiles` names profiles that exist (or `auto`)."""
    if known is None:  # the profiles are broken: their own problems say so
        return
    for ref in settings.snmp.default_refs:
        if ref.value not in known:
            hint = did_you_mean(ref.value, known)
            message = f"unknown profile '{ref.value}' (no {ref.value}.yaml among the profiles)"
            problems.append(ConfigProblem(settings.snmp.file, ref.line, ref.key, message + hint))


def _check_trap_credentials(
    settings: Settings, credentials: Credentials | None, problems: list[ConfigProblem]
) -> None:
    if credentials is None:
        return
    for ref in settings.snmp.trap_refs:
        if ref.value not in credentials.declared:
            message = (
                f"unknown credential '{ref.value}' (not in {settings.credentials_file.name})"
                f"{did_you_mean(ref.value, credentials.declared)}"
            )
            problems.append(ConfigProblem(settings.snmp.file, ref.line, ref.key, message))


# --- inventory/*.yaml: pass 1, each entry on its own ----------------------------------------


# --- reachability probes: icmp, tcp, http, dns (no credentials) ---------------------------


# --- pass 2: what spans entries and files --------------------------------------------------


# --- MQTT: the broker account, telemetry profiles, one base topic per site ------------------


def _check_mqtt(
    settings: Settings,
    credentials: Credentials | None,
    sites: list[Entry[Site]],
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
            hint = did_you_mean(ref.value, credentials.mqtt_declared)
            message = (
                f"unknown credential '{ref.value}' (not in the mqtt section of "
                f"{settings.credentials_file.name}){hint}"
            )
            problems.append(ConfigProblem(settings_file, ref.line, ref.key, message))
    entries = [e for e in sites if isinstance(e.value.probe, MqttProbe)]
    if not entries and not settings.mqtt_configured:
        return mqtt
    profiles = load_telemetry_profiles(mqtt.mappings_file, problems)
    if profiles is not None:
        mqtt = replace(mqtt, profiles=profiles)
    topics: dict[str, Entry[Site]] = {}
    for entry in entries:
        site = entry.value
        where = f"{entry.probe_key}.mqtt"
        name = mqtt.profile_name(site)
        if entry.whole and profiles is not None and site.kind and name not in profiles:
            hint = did_you_mean(name, profiles)
            message = (
                f"no telemetry profile '{name}' in {mqtt.mappings_file.name}{hint}{entry.subject}"
            )
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
