"""Availability gauges: per site and per commune, owner and kind, over the last 1 h, 24 h,
7 d and 30 d, rendered from the snapshot monitor/ledger/recent.py keeps.

The groups' figures are on /metrics (AvailabilityCollector); each site's are on their own
path, AVAILABILITY_PATH (SiteAvailabilityCollector): two series a site and window, 158,000
lines and 24 MB at 20,000 sites, that change once a minute, where the live state on /metrics
is scraped every 15 s. Prometheus scrapes that path at the refresh's pace, in its own job
(config/prometheus/prometheus.yml: districtmon_availability), so neither the daemon nor
Prometheus handles them four times a minute for nothing. node_exporter's `collect[]` and
snmp_exporter's modules split a target's series the same way.

Each ratio has beside it the time it was computed from (`..._availability_counted_seconds`,
its denominator): a 30-day ratio a few minutes after a fresh start is a ratio over those few
minutes, and an objective alert should wait until the window holds enough watched time.

A scrape never touches SQLite: figures are as of the last refresh
(`districtmon_availability_computed_timestamp_seconds`).

The figures change only at a refresh (every minute), so their text is made once per snapshot
and served as it is until the next one: a scrape costs nothing here. Making it is fast too:
the `{labels,window="` part of each site is made by prometheus-client once per inventory
(textformat.py) and the window and value are appended (`render()`; `collect()` is the
reference rendering, and tests hold the two byte for byte equal).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from monitor.core.model import Site
from monitor.expose.textformat import (
    KeptText,
    MetricsRegistry,
    header,
    label_parts,
    render,
    sample_name,
    value_text,
)
from monitor.ledger.recent import GROUPS, WINDOWS, AvailabilityGauges, Snapshot
from monitor.state.live import LiveState

log = logging.getLogger(__name__)

SITE_RATIO = "districtmon_site_availability_ratio"
SITE_COUNTED = "districtmon_site_availability_counted_seconds"
#: Where the per-site figures are served (SiteAvailabilityCollector), apart from /metrics.
AVAILABILITY_PATH = "/metrics/availability"
_LABELS = ["site", "kind", "commune", "owner", "window"]
#: Sites whose availability lines make one piece of AVAILABILITY_PATH's text (about 600 KB).
CHUNK_SITES = 1000


class _SnapshotText(KeptText[tuple[Snapshot, dict[str, Site]]]):
    """Families made from the availability snapshot, their text made once per snapshot (and
    per inventory) and served as it is until the next refresh. KEEP_TEXT False: the text is
    not kept (who serves it keeps it compressed, keptbody.py, by `version()`)."""

    def __init__(self, gauges: AvailabilityGauges, live: LiveState) -> None:
        super().__init__()
        self.gauges = gauges
        self.live = live

    def collect(self) -> Iterator[Metric]:
        return iter(self._families(self.gauges.snapshot, self.live.snapshot()[0]))

    def _families(self, snap: Snapshot, sites: dict[str, Site]) -> list[Metric]:
        raise NotImplementedError

    def version(self) -> tuple[Snapshot, dict[str, Site]]:
        return self.gauges.snapshot, self.live.snapshot()[0]

    def make_text(self, version: tuple[Snapshot, dict[str, Site]]) -> bytes:
        return self._render(*version)

    def _render(self, snap: Snapshot, sites: dict[str, Site]) -> bytes:
        return render(self._families(snap, sites))


class AvailabilityCollector(_SnapshotText):
    """The availability of every commune, owner and kind, and when it was computed: on
    /metrics, beside the live state (a few hundred series)."""

    def _families(self, snap: Snapshot, sites: dict[str, Site]) -> list[Metric]:
        families = {
            group: GaugeMetricFamily(
                f"districtmon_{group}_availability_ratio",
                f"Availability of all sites of {'an' if group == 'owner' else 'a'} {group} over "
                "the window, weighted by time "
                "(sums of their up + degraded over sums of their counted time).",
                labels=[group, "window"],
            )
            for group in GROUPS
        }
        counted_families = {
            group: GaugeMetricFamily(
                f"districtmon_{group}_availability_counted_seconds",
                f"The time districtmon_{group}_availability_ratio was computed from: the sum "
                "of its sites' counted seconds in the window.",
                labels=[group, "window"],
            )
            for group in GROUPS
        }
        computed = GaugeMetricFamily(
            "districtmon_availability_computed_timestamp_seconds",
            "When the availability gauges were last computed from the ledger (those of "
            f"each site too, served at {AVAILABILITY_PATH}).",
        )
        for (group, group_id), ratios in snap.groups.items():
            for window, ratio in ratios.items():
                families[group].add_metric([group_id, window], ratio)
        for (group, group_id), counted in snap.group_counted.items():
            for window, seconds in counted.items():
                counted_families[group].add_metric([group_id, window], seconds)
        if snap.at:
            computed.add_metric([], snap.at)
        return [*families.values(), *counted_families.values(), computed]


class SiteAvailabilityCollector(_SnapshotText):
    """The availability of each site over the four windows and the time it was counted from:
    two series a site and window, a third of /metrics at 20,000 sites, that change only at a
    refresh (every minute). So they are served at AVAILABILITY_PATH, which Prometheus scrapes
    at that pace (config/prometheus/prometheus.yml, job districtmon_availability), not with
    the live state every 15 s. Its text (24 MB at 20,000 sites) is not kept: the HTTP server
    keeps it compressed (keptbody.py)."""

    KEEP_TEXT = False

    def __init__(self, gauges: AvailabilityGauges, live: LiveState) -> None:
        super().__init__(gauges, live)
        # per site: its labels up to `window="`; per window: what follows, up to the value
        self._stems: tuple[dict[str, Site], dict[str, bytes]] | None = None
        self._windows: dict[str, bytes] = {}

    def _families(self, snap: Snapshot, sites: dict[str, Site]) -> list[Metric]:
        site_ratio, site_counted = _site_families()
        for site in sites.values():
            labels = [site.id, site.kind, site.commune, site.owner]
            for window, ratio in snap.sites.get(site.id, {}).items():
                site_ratio.add_metric([*labels, window], ratio)
            for window, seconds in snap.counted.get(site.id, {}).items():
                site_counted.add_metric([*labels, window], seconds)
        return [site_ratio, site_counted]

    def _render(self, snap: Snapshot, sites: dict[str, Site]) -> bytes:
        return b"".join(self._chunks(snap, sites))

    def render_chunks(self) -> Iterator[bytes]:
        yield from self._chunks(*self.version())

    def _chunks(self, snap: Snapshot, sites: dict[str, Site]) -> Iterator[bytes]:
        """The text, CHUNK_SITES sites' lines at a time: the whole is 24 MB at 20,000 sites,
        and its lines another 29 MB as they wait to be joined; compressed as it is made
        (keptbody.py), no more than a piece of it is ever held."""
        stems = self._stems_for(sites)
        windows = self._windows
        for family, figures in zip(_site_families(), (snap.sites, snap.counted), strict=True):
            name = sample_name(family.name)
            out = [header(family)]
            for count, site_id in enumerate(sites, start=1):
                found = figures.get(site_id)
                if found:
                    stem = name + stems[site_id]
                    for window, value in found.items():
                        tail = windows.get(window)
                        if tail is None:
                            tail = windows[window] = _window_tail(window)
                        out.append(stem + tail + value_text(value) + b"\n")
                if count % CHUNK_SITES == 0:
                    yield b"".join(out)
                    out = []
            if out:
                yield b"".join(out)

    def _stems_for(self, sites: dict[str, Site]) -> dict[str, bytes]:
        """Each site's `{commune=...,site="...",window="`, made when the inventory changes."""
        if self._stems is None or self._stems[0] is not sites:
            rows = [[s.id, s.kind, s.commune, s.owner, WINDOWS[0][0]] for s in sites.values()]
            cut = len(_window_tail(WINDOWS[0][0]))
            parts = label_parts(_LABELS, rows)
            self._stems = (sites, {s: p[:-cut] for s, p in zip(sites, parts, strict=True)})
        return self._stems[1]


def availability_registry(gauges: AvailabilityGauges, live: LiveState) -> MetricsRegistry:
    """What AVAILABILITY_PATH serves: each site's availability, nothing else."""
    registry = MetricsRegistry()
    registry.register(SiteAvailabilityCollector(gauges, live))
    return registry


def _site_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    ratio = GaugeMetricFamily(
        SITE_RATIO,
        "Time-weighted availability over the window: (up + degraded) / (window - unknown "
        "- maintenance - unreachable). Absent when nothing could be counted. Served at "
        f"{AVAILABILITY_PATH}, as of districtmon_availability_computed_timestamp_seconds.",
        labels=_LABELS,
    )
    counted = GaugeMetricFamily(
        SITE_COUNTED,
        "The time districtmon_site_availability_ratio was computed from, its denominator: "
        "up + degraded + down seconds in the window (unknown, maintenance and unreachable "
        f"time left out). Absent when nothing was counted. Served at {AVAILABILITY_PATH}.",
        labels=_LABELS,
    )
    return ratio, counted


def _window_tail(window: str) -> bytes:
    """What prometheus-client writes from the window's value to the value of the sample:
    `1h"} ` (window sorts last of the labels, so it ends the label part; checked)."""
    stem = label_parts(_LABELS, [["s", "k", "c", "o", ""]])[0]
    part = label_parts(_LABELS, [["s", "k", "c", "o", window]])[0]
    if not (stem.endswith(b'window=""} ') and part.startswith(stem[: -len(b'"} ')])):
        raise RuntimeError(f"window is not the last label in {part!r}")
    return part[len(stem) - len(b'"} ') :]
