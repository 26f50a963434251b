"""The JSON API and the health report: the same in-memory snapshot as /metrics, for scripts.

Names and reasons as people read them (UTF-8, Vietnamese intact). Times are Unix seconds, for
programs; beside each `x` is `x_local`, the same moment in ISO 8601 in the configuration's
timezone (`2026-12-01T14:03:07.123+07:00`), for the engineer reading it over SSH.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from monitor.core.model import Site
from monitor.expose.coverage import coverage
from monitor.expose.site_metrics import reason_codes
from monitor.probes.mqtt.counts import MqttCounts
from monitor.state.live import Inventory, LiveState, SiteView


def local_time(seconds: float | None, timezone: str | None) -> str | None:
    """ISO 8601 to the millisecond with the offset, in `timezone` (None: the machine's)."""
    if seconds is None:
        return None
    zone = ZoneInfo(timezone) if timezone else None
    moment = (
        dt.datetime.fromtimestamp(seconds, zone)
        if zone
        else dt.datetime.fromtimestamp(seconds).astimezone()
    )
    return moment.isoformat(timespec="milliseconds")


def health_report(live: LiveState, stall_seconds: float) -> tuple[bool, dict[str, object]]:
    """The daemon is healthy while its event loop ticks and its ledger commits. A refused
    reload is a warning, not a problem: the daemon runs on, and restarting it would not help."""
    now = time.monotonic()
    health = live.health
    loop_age = now - health.loop_tick
    ledger_age = now - health.ledger_commit
    problems = []
    warnings = []
    if health.reload_refused is not None:
        loaded = local_time(health.config_loaded, live.timezone)
        warnings.append(f"{health.reload_refused}; running the configuration loaded {loaded}")
    if loop_age > stall_seconds:
        problems.append(f"event loop has not ticked for {loop_age:.1f} s")
    if health.ledger_trouble is not None:
        problems.append(health.ledger_trouble)
    elif ledger_age > stall_seconds * 4:
        problems.append(f"ledger has not committed for {ledger_age:.1f} s")
    body: dict[str, object] = {
        "status": "ok" if not problems else "unhealthy",
        "problems": problems,
        "warnings": warnings,
        "config_loaded": health.config_loaded,
        "config_loaded_local": local_time(health.config_loaded, live.timezone),
        "sites": len(live.sites),
        "started": health.started,
        "started_local": local_time(health.started, live.timezone),
    }
    return not problems, body


FILTERS = ("commune", "owner", "kind", "state")


def site_record(
    site: Site, view: SiteView, inventory: Inventory, timezone: str | None = None
) -> dict[str, object]:
    commune = inventory.communes.get(site.commune)
    owner = inventory.owners.get(site.owner)
    return {
        "id": site.id,
        "name": site.name,
        "kind": site.kind,
        "commune": site.commune,
        "commune_name": commune.name if commune else None,
        "owner": site.owner,
        "owner_name": owner.name if owner else None,
        "parent": site.parent,
        "lat": site.lat,
        "lon": site.lon,
        "covers": list(site.covers),
        "state": view.state.value,
        "reason": view.reason,
        "reason_codes": list(reason_codes(view)),
        "since": view.since,
        "since_local": local_time(view.since, timezone),
        "last_poll": view.last_poll,
        "last_poll_local": local_time(view.last_poll, timezone),
        "last_poll_ok": view.last_ok,
        "last_poll_duration_seconds": view.last_duration,
        "device_uptime_seconds": view.device_uptime,
        # the SNMP profile its last poll used (`profile: auto`: the one detected) and vendor
        "profile": _text(view.values.get("device_profile")),
        "vendor": _text(view.values.get("device_vendor")),
    }


def _text(value: float | str | None) -> str | None:
    return value if isinstance(value, str) and value else None


def sites_report(live: LiveState, query: dict[str, list[str]]) -> dict[str, object]:
    """Every site, or those matching `?commune=&owner=&kind=&state=` (repeat a key for any
    of several values)."""
    wanted = {key: set(query[key]) for key in FILTERS if key in query}
    inventory = live.inventory
    records = []
    zone = live.timezone
    for site, view in live.items():
        record = site_record(site, view, inventory, zone)
        if all(record[key] in values for key, values in wanted.items()):
            records.append(record)
    now = time.time()
    return {
        "time": now,
        "time_local": local_time(now, zone),
        "timezone": _zone_name(zone),
        "count": len(records),
        "sites": records,
    }


def _zone_name(timezone: str | None) -> str:
    """The IANA name the local times are in; the machine's own when none is configured."""
    if timezone:
        return timezone
    return dt.datetime.now().astimezone().tzname() or "local"


def site_report(live: LiveState, site_id: str) -> dict[str, object] | None:
    sites, views = live.snapshot()
    site = sites.get(site_id)
    if site is None:
        return None
    now = time.time()
    zone = live.timezone
    view = views[site_id]
    return {
        "time": now,
        "time_local": local_time(now, zone),
        "site": site_record(site, view, live.inventory, zone),
        # what the device said at its last poll (battery_volts, mains_ok, amplifier_ok...):
        # the names of the profile's values, in base units; a value it could not read is absent
        "values": {k: v for k, v in sorted(view.values.items()) if k not in _RECORDED},
        "samples": [
            {"name": s.name, "labels": dict(s.labels), "value": s.value}
            for s in view.samples[:SAMPLES_SHOWN]
        ],
        "samples_total": len(view.samples),
    }


# values the record already carries under its own key
_RECORDED = frozenset({"device_profile", "device_vendor", "device_uptime_seconds"})
SAMPLES_SHOWN = 200  # the rows of a switch's tables: a 48-port switch has ~400


#: The states the status page lists as wrong now, and the order "worst" follows.
WRONG = ("down", "unreachable", "degraded")
WORST_FIRST = ("down", "unreachable", "degraded", "unknown", "maintenance", "up")
WRONG_SHOWN = 200


def longest_first(pairs: Iterable[tuple[Site, SiteView]]) -> list[tuple[Site, SiteView]]:
    """Sites in the order the page lists what is wrong: the longest in its state first, those
    whose start is unknown last, then by id."""
    return sorted(pairs, key=lambda pair: (pair[1].since is None, pair[1].since or 0.0, pair[0].id))


def state_counts(
    pairs: Iterable[tuple[Site, SiteView]], key: Callable[[Site], str]
) -> dict[str, dict[str, int]]:
    """Sites per state, by `key` of the site (its kind, its commune): the page's counts."""
    counts: dict[str, dict[str, int]] = {}
    for site, view in pairs:
        per_key = counts.setdefault(key(site), {})
        per_key[view.state.value] = per_key.get(view.state.value, 0) + 1
    return counts


def summary_report(
    live: LiveState,
    shown: int = WRONG_SHOWN,
    *,
    stall_seconds: float = 10.0,
    mqtt: MqttCounts | None = None,
) -> dict[str, object]:
    """What the status page draws, sized by what is wrong rather than by the district: counts
    per kind and state, each commune's counts and worst state (with its coordinates), and
    the sites down, unreachable or degraded, longest first, at most `shown` of them (with how
    many there are); and the monitor's own health, so that a page of green is not read as
    good news while the monitor itself is blind. At 20,000 sites the page loads this, not
    every site's record."""
    inventory = live.inventory
    zone = live.timezone
    pairs = live.items()
    kinds = state_counts(pairs, lambda site: site.kind)
    communes = state_counts(pairs, lambda site: site.commune)
    wrong = longest_first((site, view) for site, view in pairs if view.state.value in WRONG)
    clusters: dict[str, list[tuple[Site, SiteView]]] = {}
    for site, view in pairs:
        if site.kind == "loudspeaker":
            clusters.setdefault(site.commune, []).append((site, view))
    now = time.time()
    places = []
    for commune_id, counts in communes.items():
        commune = inventory.communes.get(commune_id)
        worst = next(state for state in WORST_FIRST if counts.get(state))
        places.append(
            {
                "id": commune_id,
                "name": commune.name if commune else commune_id,
                "lat": commune.lat if commune else None,
                "lon": commune.lon if commune else None,
                "worst": worst,
                "counts": counts,
                # live loudspeaker coverage; None for a commune that lists no area
                "coverage": (
                    coverage(commune.areas, clusters.get(commune_id, []))
                    if commune is not None and commune.areas
                    else None
                ),
            }
        )
    return {
        "time": now,
        "time_local": local_time(now, zone),
        "timezone": _zone_name(zone),
        "sites": sum(sum(c.values()) for c in kinds.values()),
        "kinds": kinds,
        "communes": places,
        "wrong_total": len(wrong),
        "wrong": [site_record(site, view, inventory, zone) for site, view in wrong[:shown]],
        "monitor": monitor_report(live, stall_seconds, mqtt),
    }


def monitor_report(
    live: LiveState, stall_seconds: float, mqtt: MqttCounts | None
) -> dict[str, object]:
    """The monitor's own parts as the status page shows them: /healthz's verdict, the polls
    (the newest says the poller runs; a share failing at once says the monitor's network may
    be the trouble, not the sites'), the broker (MQTT sites are unknown while it is lost),
    the ledger and the configuration's last load."""
    ok, health = health_report(live, stall_seconds)
    now = time.time()
    polled = [view for view in live.views.values() if view.last_poll is not None]
    newest = max((view.last_poll or 0.0 for view in polled), default=None)
    broker: dict[str, object] | None = None
    if mqtt is not None and mqtt.sites:
        broker = {"connected": mqtt.connected, "sites": mqtt.sites, "reconnects": mqtt.reconnects}
    own = live.health
    return {
        "ok": ok,
        "problems": health["problems"],
        "warnings": health["warnings"],
        "started_local": health["started_local"],
        "config_loaded_local": health["config_loaded_local"],
        "reload_refused": own.reload_refused,
        "polls": {
            "sites": len(live.views),
            "polled": len(polled),
            "answered": sum(1 for view in polled if view.last_ok),
            "newest_age_seconds": None if newest is None else max(0.0, now - newest),
        },
        "broker": broker,
        "ledger": {
            "last_commit_age_seconds": max(0.0, time.monotonic() - own.ledger_commit),
            "trouble": own.ledger_trouble,
        },
    }
