"""The `mqtt:` section of districtmon.yaml, the `mqtt` probe of a site, and the topic scheme.

Topic scheme (the district's convention, shared with the devices and the simulator):

    <prefix>/<commune-id>/<kind>/<site-id>/status      payload `online` | `offline` (retained;
                                                       the device's last will is `offline`)
    <prefix>/<commune-id>/<kind>/<site-id>/telemetry   a JSON object (see telemetry.py)

The part before `/status` is the site's *base topic*, made from `mqtt.topic_pattern`
(default `{prefix}/{commune}/{kind}/{site}`) unless the site's probe names its own. The
daemon subscribes to the pattern with `+` for every placeholder but the prefix, plus the
exact topics of sites whose own base topic the pattern does not cover.

The daemon checks its own subscription end to end by publishing to a topic of the pattern
that no site can have (`_districtmon` in every placeholder; site ids are slugs, without `_`),
e.g. `dienbien/_districtmon/_districtmon/_districtmon.<client-id>/status`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paho.mqtt.client import topic_matches_sub

from monitor.config.addresses import is_address
from monitor.config.credentials import Secret
from monitor.config.fields import Fields, Located, or_default
from monitor.config.located import BROKEN
from monitor.config.telemetry import PROFILE_NAME_RULE, TelemetryProfile, is_profile_name
from monitor.core.model import MqttProbe, Site

DEFAULT_PATTERN = "{prefix}/{commune}/{kind}/{site}"
PLACEHOLDERS = ("prefix", "commune", "kind", "site")
CHANNELS = ("status", "telemetry")
PROBE_MARK = "_districtmon"  # no site id, commune or kind can start with "_" (slugs)
DEFAULT_MAPPINGS = Path("mqtt/mappings.yaml")

_SETTINGS_KEYS = (
    "host",
    "port",
    "tls",
    "credential",
    "client_id",
    "qos",
    "keepalive_seconds",
    "topic_prefix",
    "topic_pattern",
    "heartbeat_timeout_seconds",
    "max_payload_bytes",
    "reconnect_min_seconds",
    "reconnect_max_seconds",
    "self_check_seconds",
    "will_grace_seconds",
    "mappings",
)
_TLS_KEYS = ("ca_file", "cert_file", "key_file", "verify_hostname")
_PROBE_KEYS = ("topic", "profile", "heartbeat_timeout_seconds")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS to the broker. No `ca_file`: the system's trusted authorities."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify_hostname: bool = True


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: TlsSettings | None = None
    credential: str | None = None
    username: str | None = None
    password: Secret | None = None
    client_id: str = "districtmon"
    qos: int = 0  # of the subscription: see the README (MQTT telemetry)
    keepalive_seconds: int = 30
    topic_prefix: str = "dienbien"
    topic_pattern: str = DEFAULT_PATTERN
    heartbeat_timeout_seconds: float = 180.0
    max_payload_bytes: int = 4096
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    self_check_seconds: float = 5.0  # 0: off
    will_grace_seconds: float = 2.0  # a live will counts if the broker stays this long; 0: off
    mappings_file: Path = DEFAULT_MAPPINGS
    profiles: Mapping[str, TelemetryProfile] = field(default_factory=dict)

    def base_topic(self, site: Site) -> str:
        """Where a site publishes: its probe's own topic, or the district's pattern."""
        probe = site.probe
        if isinstance(probe, MqttProbe) and probe.topic is not None:
            return probe.topic
        return self.topic_pattern.format(
            prefix=self.topic_prefix, commune=site.commune, kind=site.kind, site=site.id
        )

    def timeout_of(self, site: Site) -> float:
        probe = site.probe
        if isinstance(probe, MqttProbe) and probe.heartbeat_timeout_seconds is not None:
            return probe.heartbeat_timeout_seconds
        return self.heartbeat_timeout_seconds

    def profile_name(self, site: Site) -> str:
        probe = site.probe
        if isinstance(probe, MqttProbe) and probe.profile is not None:
            return probe.profile
        return site.kind

    @property
    def probe_topic(self) -> str:
        """Where this daemon checks that its subscription still delivers (see module doc)."""
        base = self.topic_pattern.format(
            prefix=self.topic_prefix,
            commune=PROBE_MARK,
            kind=PROBE_MARK,
            site=f"{PROBE_MARK}.{self.client_id}",
        )
        return f"{base}/status"

    def filters(self, sites: Iterable[Site]) -> list[str]:
        """Subscriptions that carry every channel of every given site, fewest first."""
        generic_base = self.topic_pattern.format(
            prefix=self.topic_prefix, commune="+", kind="+", site="+"
        )
        generic = [f"{generic_base}/{channel}" for channel in CHANNELS]
        exact: list[str] = []
        for site in sites:
            for channel in CHANNELS:
                topic = f"{self.base_topic(site)}/{channel}"
                if not any(topic_matches_sub(sub, topic) for sub in generic) and topic not in exact:
                    exact.append(topic)
        return generic + exact


def read_mqtt_settings(
    fields: Fields | None, directory: Path
) -> tuple[MqttSettings, Located[str] | None]:
    """The settings (credential not yet resolved) and the credential name, where written."""
    if fields is None:
        return MqttSettings(mappings_file=directory / DEFAULT_MAPPINGS), None
    fields.expect(_SETTINGS_KEYS)
    default = MqttSettings()
    host = fields.text("host")
    if host is not None and not is_address(host):
        fields.problem("host", f"must be an IP address or a host name, got {host!r}")
        host = None
    tls = _read_tls(fields, directory)
    credential: Located[str] | None = None
    name = fields.slug("credential")
    if name is not None:
        credential = Located(name, fields.line("credential"), fields.key("credential"))
    client_id = fields.text("client_id")
    if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
        message = f"must be 1..64 characters of A-Z a-z 0-9 . _ -, got {client_id!r}"
        fields.problem("client_id", message)
        client_id = None
    prefix = fields.text("topic_prefix")
    if prefix is not None and (problem := topic_problem(prefix)) is not None:
        fields.problem("topic_prefix", problem)
        prefix = None
    pattern = fields.text("topic_pattern")
    if pattern is not None and (problem := _pattern_problem(pattern)) is not None:
        fields.problem("topic_pattern", problem)
        pattern = None
    low = or_default(fields.number("reconnect_min_seconds", positive=True), 1.0)
    high = or_default(fields.number("reconnect_max_seconds", positive=True), 60.0)
    if high < low:
        fields.problem("reconnect_max_seconds", "must not be below reconnect_min_seconds")
    mappings = fields.text("mappings")
    settings = MqttSettings(
        host=or_default(host, default.host),
        port=or_default(fields.integer("port", 1, 65535), 8883 if tls else 1883),
        tls=tls,
        client_id=or_default(client_id, default.client_id),
        qos=or_default(fields.integer("qos", 0, 1), default.qos),
        keepalive_seconds=or_default(fields.integer("keepalive_seconds", 5, 3600), 30),
        topic_prefix=or_default(prefix, default.topic_prefix),
        topic_pattern=or_default(pattern, default.topic_pattern),
        heartbeat_timeout_seconds=or_default(
            fields.number("heartbeat_timeout_seconds", positive=True),
            default.heartbeat_timeout_seconds,
        ),
        max_payload_bytes=or_default(fields.integer("max_payload_bytes", 64, 1 << 20), 4096),
        reconnect_min_seconds=low,
        reconnect_max_seconds=max(low, high),
        self_check_seconds=or_default(fields.number("self_check_seconds", 0), 5.0),
        will_grace_seconds=or_default(fields.number("will_grace_seconds", 0, 60), 2.0),
        mappings_file=directory / (mappings if mappings is not None else DEFAULT_MAPPINGS),
    )
    return settings, credential


def _read_tls(fields: Fields, directory: Path) -> TlsSettings | None:
    value = fields.get("tls")
    if value is BROKEN or value is None or value is False:
        return None
    if value is True:
        return TlsSettings()
    tls = fields.mapping("tls")
    if tls is None:
        return None
    tls.expect(_TLS_KEYS)
    files: dict[str, Path | None] = {}
    for key in ("ca_file", "cert_file", "key_file"):
        text = tls.text(key)
        files[key] = None if text is None else directory / text
        path = files[key]
        if path is not None and not path.is_file():
            tls.problem(key, f"file not found: {path}")
    if tls.has("cert_file") != tls.has("key_file"):
        tls.problem_here("a client certificate needs both cert_file and key_file")
    verify = tls.get("verify_hostname")
    if verify is not BROKEN and not isinstance(verify, bool):
        tls.problem("verify_hostname", "must be true or false")
        verify = True
    return TlsSettings(
        ca_file=files["ca_file"],
        cert_file=files["cert_file"],
        key_file=files["key_file"],
        verify_hostname=verify if isinstance(verify, bool) else True,
    )


def read_mqtt_probe(fields: Fields) -> MqttProbe:
    fields.expect(_PROBE_KEYS)
    topic = fields.text("topic")
    if topic is not None and (problem := topic_problem(topic)) is not None:
        fields.problem("topic", problem)
        topic = None
    profile = fields.text("profile")
    if profile is not None and not is_profile_name(profile):
        fields.problem("profile", f"{PROFILE_NAME_RULE}, got {profile!r}")
        profile = None
    return MqttProbe(
        topic=topic,
        profile=profile,
        heartbeat_timeout_seconds=fields.number("heartbeat_timeout_seconds", positive=True),
    )


def topic_problem(topic: str) -> str | None:
    """Why `topic` cannot be a base topic we publish-match against, or None."""
    if "+" in topic or "#" in topic:
        return f"must not hold MQTT wildcards (+ #), got {topic!r}"
    if topic.startswith("$"):
        return f"must not start with '$' (reserved by brokers), got {topic!r}"
    if "" in topic.split("/"):
        return f"must not have empty levels (a leading, trailing or double '/'), got {topic!r}"
    if "\0" in topic or len(topic.encode()) > 1024:
        return "must be at most 1024 bytes of text"
    return None


def _pattern_problem(pattern: str) -> str | None:
    names = _PLACEHOLDER.findall(pattern)
    unknown = [name for name in names if name not in PLACEHOLDERS]
    if unknown:
        return f"unknown placeholder {{{unknown[0]}}} (use {', '.join(PLACEHOLDERS)})"
    if names.count("site") != 1:
        return "must hold {site} exactly once (the site's id tells the topics apart)"
    for level in pattern.split("/"):
        if _PLACEHOLDER.search(level) and not _PLACEHOLDER.fullmatch(level):
            return f"a placeholder must fill a whole topic level, got {level!r}"
    if "{" in _PLACEHOLDER.sub("", pattern) or "}" in _PLACEHOLDER.sub("", pattern):
        return "unbalanced { or }"
    literal = _PLACEHOLDER.sub("x", pattern)
    return topic_problem(literal)
