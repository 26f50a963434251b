"""SNMP and MQTT credentials: kept out of the inventory, and impossible to print by accident.

The inventory is shared, reviewed and diffed; communities and keys are not. Sites name a
credential, this module resolves the name from `credentials.yaml`, with
`DISTRICTMON_SNMP_<NAME>_COMMUNITY` (v1/v2c) or `..._AUTH_KEY` / `..._PRIV_KEY` (v3) in the
environment winning over the file (so that a systemd credential or a vault can supply them and
the file can hold only the version, user and protocols). Every secret is wrapped in `Secret`
from the moment it is read, so a log line, a repr of the config or an error message cannot
show it.

The broker's account lives in an `mqtt:` section the same way: a username and a password, the
password from `DISTRICTMON_MQTT_<NAME>_PASSWORD` when that is set.
"""

from __future__ import annotations

import hmac
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from monitor.config.fields import SLUG_RULE, Fields, is_slug, open_document
from monitor.config.located import BROKEN
from monitor.config.problems import ConfigProblem

SnmpVersion = Literal["1", "2c", "3"]

#: SNMPv3 authentication protocols (RFC 3414, RFC 7860), as net-snmp names them.
AUTH_PROTOCOLS = ("MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512")
#: SNMPv3 privacy protocols (RFC 3414, RFC 3826, and the AES-192/256 extension).
PRIV_PROTOCOLS = ("DES", "AES", "AES-192", "AES-256")
#: RFC 3414 11.2: pass phrases shorter than this are refused by agents.
MIN_KEY_LENGTH = 8

_COMMON_KEYS = ("version",)
_COMMUNITY_KEYS = ("community",)
_V3_KEYS = ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key", "engine_id")
_MQTT_KEYS = ("username", "password")
# Every key of the file's schema: a key in the wrong place may be named, anything else typed
# as a key may be a secret on the wrong line and is not shown.
_PUBLIC_WORDS = frozenset(("snmp", "mqtt", *_COMMON_KEYS, *_COMMUNITY_KEYS, *_V3_KEYS, *_MQTT_KEYS))


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
    """How to speak to an agent. v1/v2c carry a community; v3 a user and, by security level,
    an authentication and a privacy protocol with their keys (pass phrases). `engine_id` is
    only for SNMPv3 traps, whose sender is the authoritative engine: the receiver must know
    the sender's engine id to check them (informs need none)."""

    name: str
    version: SnmpVersion
    community: Secret | None = None
    user: str = ""
    auth_protocol: str | None = None
    auth_key: Secret | None = None
    priv_protocol: str | None = None
    priv_key: Secret | None = None
    engine_id: bytes | None = None

    @property
    def security_level(self) -> str:
        """noAuthNoPriv, authNoPriv or authPriv (v1/v2c: noAuthNoPriv)."""
        if self.version != "3" or self.auth_protocol is None:
            return "noAuthNoPriv"
        return "authNoPriv" if self.priv_protocol is None else "authPriv"


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


def file_warnings(path: Path, user: int | None = None) -> list[str]:
    """What is unsafe about the credentials file: readable by every user of the machine,
    writable by others than its owner, or owned by someone who is neither root nor the user
    the daemon runs as (`user`, default: this process's). 0640 root:districtmon, what `make
    install` and the Debian package set, draws nothing."""
    try:
        info = path.stat()
    except OSError:
        return []  # a missing or unreadable file is a problem of its own, reported as such
    uid = os.geteuid() if user is None else user
    mode = stat.S_IMODE(info.st_mode)
    found = []
    if mode & stat.S_IROTH:
        found.append(
            f"{path}: readable by every user of this machine (mode {mode:04o}) and it holds "
            "secrets: chmod o-r (0640 root:districtmon, or 0600 owned by districtmon's user)"
        )
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        found.append(
            f"{path}: writable by others than its owner (mode {mode:04o}): anyone who can "
            "write it chooses the credentials districtmon sends; chmod go-w"
        )
    if info.st_uid not in (0, uid):
        found.append(
            f"{path}: owned by uid {info.st_uid}, neither root nor the user districtmon runs "
            f"as (uid {uid}): that user can change it; chown root (or the service user)"
        )
    return found


def secret_values(credentials: Credentials | None, environ: Mapping[str, str]) -> set[str]:
    """Every secret the configuration knows: communities, keys and passwords read from the
    file, and the environment's overrides (even of credentials that were refused)."""
    found: set[str] = set()
    if credentials is not None:
        for snmp in credentials.usable.values():
            for secret in (snmp.community, snmp.auth_key, snmp.priv_key):
                if secret is not None:
                    found.add(secret.reveal())
        found.update(account.password.reveal() for account in credentials.mqtt.values())
    for variable, value in environ.items():
        if variable.startswith(("DISTRICTMON_SNMP_", "DISTRICTMON_MQTT_")) and variable.endswith(
            ("_COMMUNITY", "_AUTH_KEY", "_PRIV_KEY", "_PASSWORD")
        ):
            found.add(value)
    return {value for value in found if value}


def env_var(name: str, secret: str = "community") -> str:
    """The environment variable that overrides one secret of a credential (README contract):
    `community`, `auth_key` or `priv_key`."""
    return f"DISTRICTMON_SNMP_{name.upper().replace('-', '_')}_{secret.upper()}"


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
    top = open_document(path, problems, sensitive=True)
    if top is None:
        return None
    top.sink.public = _PUBLIC_WORDS
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
        if not is_slug(name):
            _bad_name(section, name)
            continue
        entry = section.mapping(name, null_is_empty=True)
        if entry is None:
            continue
        entry.expect(_MQTT_KEYS, required=("username",))
        username = entry.text("username")
        variable = mqtt_env_var(name)
        password = _read_secret(entry, "password", section.line(name), variable, environ)
        if username is not None and password is not None:
            usable[name] = MqttCredential(name, username, password)
    return usable, frozenset(section.node)


def _bad_name(section: Fields, name: str) -> None:
    """A name that is no slug is not shown: in this file it may be a secret pasted where a
    name goes."""
    message = f"a credential name {SLUG_RULE}; not shown (this file holds secrets)"
    section.sink.add(section.line(name), section.key("***"), message)


def _read_credential(snmp: Fields, name: str, environ: Mapping[str, str]) -> SnmpCredential | None:
    if not is_slug(name):  # no environment variable could be named after it, either
        _bad_name(snmp, name)
        return None
    entry = snmp.mapping(name, null_is_empty=True)
    if entry is None:
        return None
    version = _read_version(entry)
    known = _COMMON_KEYS + (_V3_KEYS if version == "3" else _COMMUNITY_KEYS)
    entry.expect(known, required=("version",))
    if version is not None:
        for key in _V3_KEYS if version != "3" else _COMMUNITY_KEYS:
            if entry.has(key):
                usable = "version 3" if version != "3" else "versions 1 and 2c"
                entry.problem(key, f"only for {usable}")
    if version == "3":
        return _read_v3(entry, name, snmp.line(name), environ)
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
    if value == "3" or (value == 3 and not isinstance(value, bool)):
        return "3"
    entry.problem("version", "must be 1, 2c or 3")
    return None


def _read_v3(
    entry: Fields, name: str, line: int, environ: Mapping[str, str]
) -> SnmpCredential | None:
    """User, then the protocols, then each key that its protocol needs (file or environment).
    A key without its protocol, or privacy without authentication, is refused: the security
    level must say what the operator meant, not what a default guessed."""
    user = entry.text("user")
    if user is None and not entry.has("user"):
        entry.sink.add(line, entry.key("user"), "is required for version 3")
    ok = user is not None
    auth_protocol = entry.choice("auth_protocol", AUTH_PROTOCOLS)
    priv_protocol = entry.choice("priv_protocol", PRIV_PROTOCOLS)
    ok = ok and (auth_protocol is not None or not entry.has("auth_protocol"))
    ok = ok and (priv_protocol is not None or not entry.has("priv_protocol"))
    if priv_protocol is not None and auth_protocol is None and not entry.has("auth_protocol"):
        entry.problem("priv_protocol", "privacy needs authentication: set auth_protocol too")
        ok = False
    keys: dict[str, Secret | None] = {}
    for secret, protocol in (("auth_key", auth_protocol), ("priv_key", priv_protocol)):
        protocol_key = secret.replace("key", "protocol")
        variable = env_var(name, secret)
        if protocol is None and not entry.has(protocol_key):
            if entry.has(secret) or environ.get(variable, ""):
                where = secret if entry.has(secret) else protocol_key
                entry.problem(where, f"a {secret} needs {protocol_key} (set both, or neither)")
                ok = False
            keys[secret] = None
            continue
        keys[secret] = _read_secret(entry, secret, line, variable, environ)
        ok = ok and keys[secret] is not None
    engine_id = _read_engine_id(entry)
    ok = ok and (engine_id is not None or not entry.has("engine_id"))
    if not ok or user is None:
        return None
    return SnmpCredential(
        name,
        "3",
        user=user,
        auth_protocol=auth_protocol,
        auth_key=keys["auth_key"],
        priv_protocol=priv_protocol,
        priv_key=keys["priv_key"],
        engine_id=engine_id,
    )


def _read_engine_id(entry: Fields) -> bytes | None:
    raw = entry.get("engine_id")
    if isinstance(raw, int) and not isinstance(raw, bool):  # YAML reads 0x80... as a number
        text: str | None = format(raw, "x").rjust(len(format(raw, "x")) + 1 & ~1, "0")
    else:
        text = entry.text("engine_id")
    if text is None:
        return None
    digits = text.lower().removeprefix("0x").replace(":", "")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        value = b""
    if not 5 <= len(value) <= 32:
        entry.problem("engine_id", "must be 5 to 32 bytes in hex, e.g. 0x80001f8880aabbccdd")
        return None
    return value


def _read_secret(
    entry: Fields, key: str, line: int, variable: str, environ: Mapping[str, str]
) -> Secret | None:
    """The environment wins; an empty variable counts as unset (a blank line in a systemd
    EnvironmentFile must not silently become an empty secret)."""
    in_file = _file_secret(entry, key, variable)
    from_env = environ.get(variable, "")
    value = from_env or in_file
    if value is None:
        if key not in entry.node and key not in entry.misspelt:
            message = f"no {key}: set it here or in the environment variable {variable}"
            entry.sink.add(line, entry.key(key), message)
        return None
    if key != "community" and len(value) < MIN_KEY_LENGTH:
        where = f"the environment variable {variable}" if from_env else "it"
        message = f"must be at least {MIN_KEY_LENGTH} characters (RFC 3414); {where} is shorter"
        entry.sink.add(entry.line(key) if key in entry.node else line, entry.key(key), message)
        return None
    return Secret(value)


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
