"""One broker message in, at most one observation out, for the one site its topic names.

Everything from the broker is untrusted: any topic the broker lets through, any payload. A
message is looked up by its exact topic in a table built from the inventory, so it can only
ever touch the site that owns that topic. Anything else -- a topic of no site, a payload that
is too big, not JSON, of the wrong types, too old -- is counted by reason, logged at most once
per reason every few seconds, and dropped. Nothing here raises: a fault of ours while handling
one message is counted as `internal` and logged, and the next message is handled as usual.

What counts as a sign of life (see also heartbeat.py):
- telemetry with a `ts` no older than the site's heartbeat timeout, or without `ts` when it
  arrives live; a retained report without `ts` has no age and does not count;
- a live `online` status; a *retained* `online` is only the broker's memory of a device that
  may have died since, so it counts for nothing.
An `offline` status (the device's last will, retained or live) takes the site down, dated when
it arrived: a retained one at once, a live one through `will` (see wills.py: a broker that
stops sends every device's will just before it goes).
Telemetry whose profile's `alive` value is false is a failed observation.

Health: a profile's `health` rules (the rule language of the SNMP profiles) are checked on the
device's values as last reported, field by field: a report may carry only some fields, and a
live `online` says nothing of the amplifier, so a value stands until the device reports it
again. A sign of life whose known values break a rule is an unhealthy answer (degraded, once
the evaluator has confirmed it).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from monitor.config.mqtt import CHANNELS, PROBE_MARK, MqttSettings
from monitor.config.telemetry import TelemetryProfile, WrongType, finite
from monitor.core.model import Observation, Site
from monitor.core.ratelimit import RateLimitedLog
from monitor.core.reasons import joined
from monitor.probes.health import findings
from monitor.probes.mqtt.counts import MqttCounts

log = logging.getLogger(__name__)

STATUS = "status"
TELEMETRY = "telemetry"
LOG_EVERY_SECONDS = 10.0
_SHOWN_TOPIC_CHARS = 160


@dataclass(frozen=True, slots=True)
class Route:
    """Where one topic leads. `mine` is False for a site another shard watches."""

    site: str
    channel: str
    timeout: float
    profile: TelemetryProfile | None
    mine: bool = True


class Ingest:
    """Routes messages to observations. `observe` takes each observation (the pipeline),
    `heard` is the heartbeat watch's table (site -> monotonic time of the last sign of life)."""

    def __init__(
        self,
        settings: MqttSettings,
        sites: Iterable[Site],
        other_sites: Iterable[Site],
        observe: Callable[[Observation], None],
        heard: dict[str, float],
        counts: MqttCounts,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        warn: RateLimitedLog | None = None,
        echo: Callable[[bytes], None] = lambda _payload: None,
        will: Callable[[Observation], None] | None = None,
    ) -> None:
        """`echo` receives the payloads of this daemon's own subscription check; `will`, when
        given, takes live `offline` observations instead of `observe`."""
        self._observe = observe
        self._will = will or observe
        self._echo = echo
        self._heard = heard
        self._wall = wall
        self._monotonic = monotonic
        self._warn = warn or RateLimitedLog(log, period=LOG_EVERY_SECONDS, burst=1)
        self._counts = counts
        # the values each site last reported, field by field, for its health rules (only
        # sites whose profile has rules)
        self._known: dict[str, dict[str, float | str]] = {}
        self.update(settings, sites, other_sites)

    def update(
        self, settings: MqttSettings, sites: Iterable[Site], other_sites: Iterable[Site]
    ) -> None:
        """Take a new inventory or settings (a reload): one table swap."""
        routes: dict[str, Route] = {}
        for site in other_sites:
            for channel in CHANNELS:
                routes[f"{settings.base_topic(site)}/{channel}"] = Route(
                    site.id, channel, 0.0, None, mine=False
                )
        mine: set[str] = set()
        for site in sites:
            mine.add(site.id)
            profile = settings.profiles.get(settings.profile_name(site))
            timeout = settings.timeout_of(site)
            for channel in CHANNELS:
                routes[f"{settings.base_topic(site)}/{channel}"] = Route(
                    site.id, channel, timeout, profile
                )
        levels = settings.topic_pattern.format(
            prefix=settings.topic_prefix, commune="{}", kind="{}", site="{site}"
        ).split("/")
        self._routes = routes
        self._known = {site: known for site, known in self._known.items() if site in mine}
        self._probe_topic = settings.probe_topic
        self._mine = frozenset(mine)
        self._max_payload = settings.max_payload_bytes
        self._pattern = levels
        self._site_level = levels.index("{site}")

    def handle(self, topic: str, payload: bytes, retain: bool) -> Observation | str:
        """Handle one message: the observation made, or the reason it was dropped."""
        self._counts.received += 1
        try:
            route = self._routes.get(topic)
            if route is None:
                if topic == self._probe_topic:
                    self._echo(payload)
                reason = self._classify(topic)
                if reason == "self_check":
                    self._counts.ignored[reason] += 1
                    return reason
                return self._reject(reason, topic, None, "no site has this topic")
            if not route.mine:
                self._counts.ignored["other_shard"] += 1
                return "other_shard"
            if len(payload) > self._max_payload:
                detail = f"{len(payload)} bytes, more than {self._max_payload}"
                return self._reject("oversized", topic, route.site, detail)
            if route.channel == TELEMETRY:
                return self._telemetry(route, topic, payload, retain)
            return self._status(route, topic, payload, retain)
        except Exception:  # a fault of ours must cost one message, never the listener
            self._counts.rejected["internal"] += 1
            self._warn.warning(
                "internal",
                "mqtt message dropped: internal error handling topic=%s",
                _show(topic),
                exc_info=True,
            )
            return "internal"

    def _telemetry(
        self, route: Route, topic: str, payload: bytes, retain: bool
    ) -> Observation | str:
        now = self._wall()
        try:
            doc = json.loads(payload.decode())
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return self._reject("not_json", topic, route.site, "payload is not UTF-8 JSON")
        if type(doc) is not dict:
            return self._reject("not_object", topic, route.site, "JSON is not an object")
        ts = doc.get("ts")
        if ts is None:
            if retain:
                detail = "retained report without 'ts': its age is unknown"
                return self._reject("stale", topic, route.site, detail)
        else:
            when = finite(ts)
            if when is None:
                detail = "field 'ts' must be a number (unix seconds)"
                return self._reject("wrong_type", topic, route.site, detail)
            age = now - when
            if age > route.timeout:
                detail = f"report is {age:.0f} s old (heartbeat timeout {route.timeout:g} s)"
                return self._reject("stale", topic, route.site, detail)
            if -age > route.timeout:
                detail = f"report is dated {-age:.0f} s ahead: is the device's clock right?"
                return self._reject("future", topic, route.site, detail)
        profile = route.profile
        try:
            values = profile.decode(doc) if profile is not None else {}
        except WrongType as exc:
            return self._reject("wrong_type", topic, route.site, str(exc))
        self._heard[route.site] = self._monotonic()
        if profile is not None and profile.alive is not None and values.get(profile.alive) == 0:
            obs = Observation(
                route.site,
                now,
                False,
                values=values,
                error=f"device reports itself out of service ({profile.alive} is false)",
                error_reason="reported_offline",
                probe="mqtt",
            )
        else:
            obs = self._answer(route, now, values)
        self._observe(obs)
        return obs

    def _answer(self, route: Route, now: float, values: dict[str, float | str]) -> Observation:
        """A sign of life, healthy or not by the profile's rules on what the site last said."""
        profile = route.profile
        if profile is None or not profile.health:
            return Observation(route.site, now, True, values=values, probe="mqtt")
        known = self._known.setdefault(route.site, {})
        known.update(values)
        reason, codes = joined(findings(profile.health, known))
        return Observation(
            route.site, now, True, values=values, probe="mqtt", degraded_reason=reason, codes=codes
        )

    def _status(self, route: Route, topic: str, payload: bytes, retain: bool) -> Observation | str:
        text = payload.strip()
        if text == b"online":
            if retain:
                self._counts.ignored["retained_status"] += 1
                return "retained_status"
            self._heard[route.site] = self._monotonic()
            obs = self._answer(route, self._wall(), {})
            self._observe(obs)
            return obs
        if text != b"offline":
            return self._reject("bad_status", topic, route.site, "status must be online or offline")
        obs = Observation(
            route.site,
            self._wall(),
            False,
            error="device offline (its status says so: last will or goodbye)",
            error_reason="offline",
            probe="mqtt",
            decisive=True,
        )
        (self._observe if retain else self._will)(obs)
        return obs

    def _classify(self, topic: str) -> str:
        """Why no route: a topic of the scheme naming no site of ours, a site of ours on a
        topic not its own, or a topic outside the scheme."""
        parts = topic.split("/")
        pattern = self._pattern
        if len(parts) != len(pattern) + 1 or parts[-1] not in CHANNELS:
            return "unknown_topic"
        for part, level in zip(parts, pattern, strict=False):
            if level not in ("{}", "{site}") and part != level:
                return "unknown_topic"
        site = parts[self._site_level]
        if site.startswith(PROBE_MARK):
            return "self_check"  # ours or another daemon's: not a site
        return "wrong_topic" if site in self._mine else "unknown_site"

    def _reject(self, reason: str, topic: str, site: str | None, detail: str) -> str:
        self._counts.rejected[reason] += 1
        self._warn.warning(
            reason,
            "mqtt message rejected (%s): topic=%s site=%s: %s",
            reason,
            _show(topic),
            site or "-",
            detail,
        )
        return reason


def _show(topic: str) -> str:
    """A topic fit for one log line: quoted, escapes for control characters, cut short."""
    shown = repr(topic[:_SHOWN_TOPIC_CHARS])
    return shown + "..." if len(topic) > _SHOWN_TOPIC_CHARS else shown
