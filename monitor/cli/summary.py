"""The human summary that `districtmon check-config` prints for a valid configuration.

It answers "is this the district I meant?": totals first, one `key: value` per line (easy to
grep and to compare between two versions of the inventory), then tables by kind, owner and
commune. Nothing here reads credentials beyond their names: a summary is pasted into tickets.
"""

from __future__ import annotations

from collections import Counter

from monitor.cli.table import table
from monitor.config.load import Config
from monitor.config.profiles import AUTO, describe_detection
from monitor.core.model import SITE_KINDS, MqttProbe

# Short column headers for the commune table, so that it fits in a terminal.
_SHORT_KIND = {
    "bts": "bts",
    "radio_station": "radio",
    "loudspeaker": "speaker",
    "gateway": "gateway",
    "video_endpoint": "video",
    "post_point": "post",
    "portal": "portal",
}


def summarize(config: Config) -> str:
    sections = [_totals(config), _by_kind(config), _by_owner(config), _by_commune(config)]
    return "\n\n".join(sections) + "\n"


def _totals(config: Config) -> str:
    areas = sum(len(commune.areas) for commune in config.communes.values())
    covered = {(site.commune, area) for site in config.sites.values() for area in site.covers}
    share = f" ({100 * len(covered) / areas:.0f}%)" if areas else ""
    lines = [
        f"config: {config.directory}",
        f"sites: {len(config.sites)}",
        f"communes: {len(config.communes)}",
        f"owners: {len(config.owners)}",
        f"credentials: {len(config.credentials)} ({', '.join(config.credentials) or 'none'})",
        f"areas: {areas}",
        f"areas covered by loudspeakers: {len(covered)}{share}",
        f"ledger: {config.ledger_path}",
        f"http: {_listen(config)}",
        f"maintenance windows: {len(config.maintenance)}"
        + "".join(f"\n  {w.id}: {w.describe()}" for w in config.maintenance),
        f"probes: {_probes(config)}",
        f"snmp engine: {config.snmp.engine}",
        f"snmp profiles: {_profiles(config)}",
        f"snmp traps: {_traps(config)}",
    ]
    if any(isinstance(site.probe, MqttProbe) for site in config.sites.values()):
        mqtt = config.mqtt
        scheme = "mqtts" if mqtt.tls else "mqtt"
        lines.append(f"mqtt broker: {scheme}://{mqtt.host}:{mqtt.port} as {mqtt.client_id}")
        lines.append(f"mqtt profiles: {', '.join(mqtt.profiles) or 'none'}")
    return "\n".join(lines)


def _probes(config: Config) -> str:
    """Sites by probe type (`snmp`, `mqtt`, `icmp`, `tcp`, `http`, `dns`)."""
    counts = Counter(_probe_name(site.probe) for site in config.sites.values())
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"


def _probe_name(probe: object) -> str:
    return type(probe).__name__.removesuffix("Probe").lower()


def _profiles(config: Config) -> str:
    """Each profile with the number of sites that name it (an unused one is worth a look),
    the sites whose profile is detected (`auto`), and each kind's default. Then, per
    profile, how `auto` recognises it: what to check when a device gets the wrong one."""
    used = Counter(getattr(site.probe, "profile", None) or "-" for site in config.sites.values())
    shown = [f"{name} ({used.get(name, 0)} sites)" for name in config.profiles]
    if used.get(AUTO):
        shown.append(f"auto ({used[AUTO]} sites: detected at the first poll)")
    text = ", ".join(shown) or "none"
    defaults = config.snmp.default_profiles
    if defaults:
        text += "\n  default by kind: " + ", ".join(f"{k} {v}" for k, v in defaults.items())
    if used.get(AUTO) or AUTO in defaults.values():
        for profile in config.profiles.values():
            if profile.detect is not None:
                text += f"\n  auto picks {profile.id}: {describe_detection(profile)}"
    return text


def _traps(config: Config) -> str:
    traps = config.snmp.traps
    if traps is None:
        return "off"
    host = f"[{traps.host}]" if ":" in traps.host else traps.host
    return f"{host}:{traps.port} ({', '.join(traps.credentials)})"


def _listen(config: Config) -> str:
    host = config.http.host
    return f"[{host}]:{config.http.port}" if ":" in host else f"{host}:{config.http.port}"


def _by_kind(config: Config) -> str:
    """Every known kind, zeros included: a kind that vanished is as telling as a new one."""
    counts = Counter(site.kind for site in config.sites.values())
    return "\n".join(["sites by kind:", *(f"{kind}: {counts[kind]}" for kind in SITE_KINDS)])


def _by_owner(config: Config) -> str:
    counts = Counter(site.owner for site in config.sites.values())
    rows = [
        [owner.id, owner.name, owner.kind, str(counts[owner.id])]
        for owner in config.owners.values()
    ]
    return "sites by owner:\n" + table(["owner", "name", "kind", "sites"], rows, numeric=1)


def _by_commune(config: Config) -> str:
    kinds = [kind for kind in SITE_KINDS if any(s.kind == kind for s in config.sites.values())]
    counts = Counter((site.commune, site.kind) for site in config.sites.values())
    rows = []
    for commune in config.communes.values():
        row = [counts[commune.id, kind] for kind in kinds]
        rows.append([commune.id, commune.name, *map(str, row), str(sum(row))])
    header = ["commune", "name", *(_SHORT_KIND.get(kind, kind) for kind in kinds), "total"]
    return "sites by commune:\n" + table(header, rows, numeric=len(kinds) + 1)
