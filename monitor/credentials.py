"""SNMP and MQTT credentials: kept out of the inventory, and impossible to print by accident.

The inventory is shared, reviewed and diffed; communities are not. Sites name a credential, this
module resolves the name from `credentials.yaml`, with `DISTRICTMON_SNMP_<NAME>_COMMUNITY` in
the environment winning over the file (so that a systemd credential or a vault can supply it and
the file can hold only the version). A community is wrapped in `Secret` from the moment it is
read, so a log line, a repr of the config or an error message cannot show it.

The broker's account lives in an `mqtt:` section the same way: a username and a password, the
password from `DISTRICTMON_MQTT_<NAME>_PASSWORD` when that is set.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from monitor.yamlsource import (
    BROKEN,
    SLUG_RULE,
    ConfigProblem,
    Fields,
    Sink,
    YamlMap,
    YamlReadError,
    is_slug,
    load_yaml,
)

SnmpVersion = Literal["1", "2c"]


class Secret:
    """A secret string. Printing it in any way gives '***'; only `reveal()` gives the value,
    so that each place that needs the real thing is explicit and easy to audit."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class SnmpCredential:
    name: str
    version: SnmpVersion
    community: Secret


@dataclass(frozen=True, slots=True)
class MqttCredential:
    name: str
    username: str
    password: Secret


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a credentials file gave: the usable credentials, and every name it declared. A
    site naming a declared but broken credential is not told the name is unknown: the broken
    credential is reported once, where it is."""

    usable: dict[str, SnmpCredential]
    declared: frozenset[str]
    mqtt: dict[str, MqttCredential] = field(default_factory=dict)
    mqtt_declared: frozenset[str] = frozenset()


def env_var(name: str) -> str:
    """The environment variable that overrides a credential's community (README contract)."""
    return f"DISTRICTMON_SNMP_{name.upper().replace('-', '_')}_COMMUNITY"


def mqtt_env_var(name: str) -> str:
    """The environment variable that overrides a broker account's password."""
    return f"DISTRICTMON_MQTT_{name.upper().replace('-', '_')}_PASSWORD"


def load_credentials(
    path: Path, environ: Mapping[str, str], problems: list[ConfigProblem]
) -> Credentials | None:
    """The credentials of `path`, by name; problems are appended to `problems`.

    Returns None when the file could not be read or parsed at all: the caller then cannot tell
    which names exist and must not report every site's credential as unknown.
    """
    try:
        root = load_yaml(path, problems, sensitive=True)
    except YamlReadError as error:
        problems.append(error.problem)
        return None
    sink = Sink(path, problems, sensitive=True)
    top = Fields.of(sink, YamlMap(1) if root is None else root, 1, "")
    if top is None:
        return None
    top.expect(("snmp", "mqtt"))
    mqtt, mqtt_declared = _read_mqtt_credentials(top, environ)
    snmp = top.mapping("snmp", null_is_empty=True)
    if snmp is None:
        if top.has("snmp"):
            return None
        return Credentials({}, frozenset(), mqtt, mqtt_declared)
    usable: dict[str, SnmpCredential] = {}
    for name in snmp.node:
        credential = _read_credential(snmp, name, environ)
        if credential is not None:
            usable[name] = credential
    return Credentials(usable, frozenset(snmp.node), mqtt, mqtt_declared)


def _read_mqtt_credentials(
    top: Fields, environ: Mapping[str, str]
) -> tuple[dict[str, MqttCredential], frozenset[str]]:
    section = top.mapping("mqtt", null_is_empty=True)
    if section is None:
        return {}, frozenset()
    usable: dict[str, MqttCredential] = {}
    for name in section.node:
        entry = section.mapping(name, null_is_empty=True)
        if entry is None:
            continue
        if not is_slug(name):
            section.problem(name, f"a credential name {SLUG_RULE}")
            continue
        entry.expect(("username", "password"), required=("username",))
        username = entry.text("username")
        variable = mqtt_env_var(name)
        password = _read_secret(entry, "password", section.line(name), variable, environ)
        if username is not None and password is not None:
            usable[name] = MqttCredential(name, username, password)
    return usable, frozenset(section.node)


def _read_credential(snmp: Fields, name: str, environ: Mapping[str, str]) -> SnmpCredential | None:
    entry = snmp.mapping(name, null_is_empty=True)
    if entry is None:
        return None
    entry.expect(("version", "community"), required=("version",))
    version = _read_version(entry)
    if not is_slug(name):  # no environment variable could be named after it
        snmp.problem(name, f"a credential name {SLUG_RULE}")
        return None
    community = _read_secret(entry, "community", snmp.line(name), env_var(name), environ)
    if version is None or community is None:
        return None
    return SnmpCredential(name, version, community)


def _read_version(entry: Fields) -> SnmpVersion | None:
    value = entry.get("version")
    if value is BROKEN:
        return None
    if value == "1" or (value == 1 and not isinstance(value, bool)):
        return "1"
    if value == "2c":
        return "2c"
    entry.problem("version", "must be 1 or 2c (SNMPv3 is not supported yet)")
    return None


def _read_secret(
    entry: Fields, key: str, line: int, variable: str, environ: Mapping[str, str]
) -> Secret | None:
    """The environment wins; an empty variable counts as unset (a blank line in a systemd
    EnvironmentFile must not silently become an empty community)."""
    in_file = _file_secret(entry, key, variable)
    from_env = environ.get(variable, "")
    if from_env:
        return Secret(from_env)
    if in_file is not None:
        return Secret(in_file)
    if key not in entry.node:
        message = f"no {key}: set it here or in the environment variable {variable}"
        entry.sink.add(line, entry.key(key), message)
    return None


def _file_secret(entry: Fields, key: str, variable: str) -> str | None:
    value = entry.get(key)
    if value is BROKEN:
        return None
    if not isinstance(value, str):
        entry.problem(key, f"must be text, got {entry.sink.show(value)} (quote it)")
        return None
    if not value:
        entry.problem(key, f"must not be empty (leave it out to use {variable})")
        return None
    return value
