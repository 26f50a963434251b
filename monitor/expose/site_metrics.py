"""Prometheus metrics: per-site series rendered at scrape time, plus the daemon's own metrics.

Site series come from a custom collector that reads the live snapshot; values are those of the
last background poll (see `districtmon_site_last_poll_timestamp_seconds`), a scrape never
polls a device. Self-metrics are ordinary prometheus-client instruments, updated by the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.core.model import Site, State
from monitor.state.live import Inventory, LiveState, SiteView

SITE_LABELS = ("site", "kind", "commune", "owner")


# Appended to the HELP of every value that a poll produced, so that whoever reads /metrics
# knows a scrape does not ask the device.
FROM_POLLS = (
    " From the daemon's background polls (see districtmon_site_last_poll_timestamp_seconds);"
    " a scrape never polls a device."
)


@dataclass(frozen=True, slots=True)
class SiteGauge:
    """One gauge per site, labelled SITE_LABELS, its value read from the site's live view
    (None: no sample for that site). Both the reference collector and the fast renderer
    (monitor/expose/exposition.py) are built from the SITE_GAUGES list, so a new per-site value is
    one entry there."""

    name: str
    help: str
    value: Callable[[SiteView], float | None]


def _up(view: SiteView) -> float | None:
    if view.state in (State.UP, State.DEGRADED):
        return 1.0
    if view.state in (State.DOWN, State.UNREACHABLE):
        return 0.0
    return None


def _last_ok(view: SiteView) -> float | None:
    if view.last_poll is None:
        return None
    return 1.0 if view.last_ok else 0.0


def _value(name: str) -> Callable[[SiteView], float | None]:
    """A named value of the site's last observation; absent when the last poll did not
    measure it (a value is never left stale)."""

    def read(view: SiteView) -> float | None:
        value = view.values.get(name)
        return float(value) if isinstance(value, int | float) else None

    return read


# Named values of the last observation, exported per site: (value name, metric, help).
PROBE_VALUES = (
    (
        "rtt_seconds",
        "districtmon_site_rtt_seconds",
        "Average round-trip time of the answered echo requests of the last ICMP burst.",
    ),
    (
        "loss_ratio",
        "districtmon_site_loss_ratio",
        "Share of the last ICMP burst's echo requests that got no reply (0..1).",
    ),
    (
        "connect_seconds",
        "districtmon_site_connect_seconds",
        "Time the last TCP probe took to connect.",
    ),
    (
        "response_seconds",
        "districtmon_site_response_seconds",
        "Time the last HTTP probe took for the whole response, or the DNS probe for its answer.",
    ),
    (
        "http_status",
        "districtmon_site_http_status",
        "HTTP status code of the last HTTP probe's response.",
    ),
    (
        "cert_expiry_timestamp_seconds",
        "districtmon_site_cert_expiry_timestamp_seconds",
        "When the TLS certificate the site served at the last HTTPS probe expires (notAfter).",
    ),
)


SITE_UP = SiteGauge(
    "districtmon_site_up",
    "1 if the site answers (up or degraded), 0 if down or unreachable; absent while the state "
    "is unknown or in maintenance. Decided by the evaluator over several polls." + FROM_POLLS,
    _up,
)
SITE_STATE_NAME = "districtmon_site_state"
SITE_STATE_HELP = (
    "1 for the site's current state, 0 for the five others (label state)." + FROM_POLLS
)
SITE_REASON_NAME = "districtmon_site_reason"
SITE_REASON_HELP = (
    "1 for each reason code of a site that is not up (degraded, down, unreachable, unknown, "
    "maintenance): a failed poll's reason (timeout, refused...), the monitor's own failure "
    "(auth, permission, internal), behind_parent, maintenance, no_data, broker_lost, "
    "subscription_lost, or the code of each failing health rule (on_battery, wan_down...); "
    "absent for up sites. The text of the reason is in the JSON API." + FROM_POLLS
)
SITE_GAUGES: tuple[SiteGauge, ...] = (
    SiteGauge(
        "districtmon_site_state_since_timestamp_seconds",
        "When the current state began (the first poll of the run that confirmed it), "
        "Unix seconds." + FROM_POLLS,
        lambda view: view.since,
    ),
    SiteGauge(
        "districtmon_site_last_poll_timestamp_seconds",
        "When the daemon's background polls last reached the site, Unix seconds; every "
        "other per-site value is as old as this.",
        lambda view: view.last_poll,
    ),
    SiteGauge(
        "districtmon_site_last_poll_success",
        "1 if the last poll got an answer, else 0." + FROM_POLLS,
        _last_ok,
    ),
    SiteGauge(
        "districtmon_site_last_poll_duration_seconds",
        "How long the last poll took, retries included." + FROM_POLLS,
        lambda view: view.last_duration,
    ),
    SiteGauge(
        "districtmon_site_device_uptime_seconds",
        "The device's own uptime (SNMP sysUpTime) at the last successful poll." + FROM_POLLS,
        lambda view: view.device_uptime,
    ),
)
SITE_GAUGES += tuple(
    SiteGauge(metric, help_text + FROM_POLLS, _value(name))
    for name, metric, help_text in PROBE_VALUES
)
STATES = tuple(State)


def reason_codes(view: SiteView) -> tuple[str, ...]:
    """The codes districtmon_site_reason shows for a site: none while it is up."""
    return () if view.state is State.UP else view.codes


def site_label_values(site: Site) -> list[str]:
    return [site.id, site.kind, site.commune, site.owner]


def inventory_families(sites: Iterable[Site], inventory: Inventory) -> list[Metric]:
    """Families that change only with the configuration: what is watched, where and whose.

    `districtmon_site_info` is the one series with the site's free-text name; the commune and
    owner `_info` series carry theirs, so that dashboards join names in and every other series
    stays free of text. Commune coordinates are labels of `districtmon_commune_info` because a
    Grafana geomap reads them from fields, not values."""
    site_info = InfoMetricFamily(
        "districtmon_site",
        "Inventory of each watched site (from the config), value always 1.",
        labels=[*SITE_LABELS, "name", "parent"],
    )
    covered = GaugeMetricFamily(
        "districtmon_site_covered_areas",
        "Residential areas of its commune that a loudspeaker cluster reaches (its `covers` in "
        "the inventory); with districtmon_commune_areas and districtmon_site_up this gives the "
        "live broadcast coverage of a commune.",
        labels=SITE_LABELS,
    )
    for site in sites:
        labels = site_label_values(site)
        site_info.add_metric(labels, {"name": site.name, "parent": site.parent or ""})
        if site.kind == "loudspeaker":
            covered.add_metric(labels, float(len(site.covers)))
    commune_info = InfoMetricFamily(
        "districtmon_commune",
        "Inventory of each commune: display name and the WGS84 coordinates of its centre "
        "(degrees, for the map), value always 1.",
        labels=["commune", "name", "lat", "lon"],
    )
    areas = GaugeMetricFamily(
        "districtmon_commune_areas",
        "Residential areas (villages) of the commune in the inventory.",
        labels=["commune"],
    )
    for commune in inventory.communes.values():
        commune_info.add_metric(
            [commune.id],
            {"name": commune.name, "lat": repr(commune.lat), "lon": repr(commune.lon)},
        )
        areas.add_metric([commune.id], float(len(commune.areas)))
    owner_info = InfoMetricFamily(
        "districtmon_owner",
        "Inventory of each owner (who answers for a site): display name and owner_kind "
        "(operator, agency, broadcaster), value always 1.",
        labels=["owner", "name", "owner_kind"],
    )
    for owner in inventory.owners.values():
        owner_info.add_metric([owner.id], {"name": owner.name, "owner_kind": owner.kind})
    return [site_info, covered, commune_info, areas, owner_info]


def live_families(table: Iterable[tuple[Site, SiteView]]) -> list[Metric]:
    """Families read from the live views, in the order both renderers emit them."""
    up = GaugeMetricFamily(SITE_UP.name, SITE_UP.help, labels=SITE_LABELS)
    state = GaugeMetricFamily(SITE_STATE_NAME, SITE_STATE_HELP, labels=[*SITE_LABELS, "state"])
    reason = reason_family()
    gauges = [GaugeMetricFamily(g.name, g.help, labels=SITE_LABELS) for g in SITE_GAUGES]
    for site, view in table:
        labels = site_label_values(site)
        value = SITE_UP.value(view)
        if value is not None:
            up.add_metric(labels, value)
        for s in STATES:
            state.add_metric([*labels, s.value], 1.0 if view.state is s else 0.0)
        for code in reason_codes(view):
            reason.add_metric([*labels, code], 1.0)
        for gauge, family in zip(SITE_GAUGES, gauges, strict=True):
            value = gauge.value(view)
            if value is not None:
                family.add_metric(labels, value)
    return [up, state, reason, *gauges]


def reason_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(SITE_REASON_NAME, SITE_REASON_HELP, labels=[*SITE_LABELS, "reason"])


class SiteCollector(Collector):
    """The reference rendering of every per-site and inventory family through
    prometheus-client. The daemon serves the same bytes through monitor/expose/exposition.py, which
    is ten times faster on a province; tests hold the two equal."""

    def __init__(self, live: LiveState) -> None:
        self.live = live

    def collect(self) -> Iterator[Metric]:
        sites, views = self.live.snapshot()
        inventory = self.live.inventory
        yield from inventory_families(sites.values(), inventory)
        yield from live_families((site, views[site_id]) for site_id, site in sites.items())
