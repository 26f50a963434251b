"""Availability gauges on /metrics: per site and per commune, owner and kind, over the last
1 h, 24 h, 7 d and 30 d, rendered from the snapshot monitor/ledger/recent.py keeps.

Each ratio has beside it the time it was computed from (`..._availability_counted_seconds`,
its denominator): a 30-day ratio a few minutes after a fresh start is a ratio over those few
minutes, and an objective alert should wait until the window holds enough watched time.

A scrape never touches SQLite: figures are as of the last refresh
(`districtmon_availability_computed_timestamp_seconds`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.ledger.recent import GROUPS, AvailabilityGauges
from monitor.state.live import LiveState

log = logging.getLogger(__name__)


class AvailabilityCollector(Collector):
    def __init__(self, gauges: AvailabilityGauges, live: LiveState) -> None:
        self.gauges = gauges
        self.live = live

    def collect(self) -> Iterator[Metric]:
        snap = self.gauges.snapshot
        site_ratio = GaugeMetricFamily(
            "districtmon_site_availability_ratio",
            "Time-weighted availability over the window: (up + degraded) / (window - unknown "
            "- maintenance - unreachable). Absent when nothing could be counted.",
            labels=["site", "kind", "commune", "owner", "window"],
        )
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
        site_counted = GaugeMetricFamily(
            "districtmon_site_availability_counted_seconds",
            "The time districtmon_site_availability_ratio was computed from, its denominator: "
            "up + degraded + down seconds in the window (unknown, maintenance and unreachable "
            "time left out). Absent when nothing was counted.",
            labels=["site", "kind", "commune", "owner", "window"],
        )
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
            "When the availability gauges were last computed from the ledger.",
        )
        for site, _view in self.live.items():
            labels = [site.id, site.kind, site.commune, site.owner]
            for window, ratio in snap.sites.get(site.id, {}).items():
                site_ratio.add_metric([*labels, window], ratio)
            for window, seconds in snap.counted.get(site.id, {}).items():
                site_counted.add_metric([*labels, window], seconds)
        for (group, group_id), ratios in snap.groups.items():
            for window, ratio in ratios.items():
                families[group].add_metric([group_id, window], ratio)
        for (group, group_id), counted in snap.group_counted.items():
            for window, seconds in counted.items():
                counted_families[group].add_metric([group_id, window], seconds)
        if snap.at:
            computed.add_metric([], snap.at)
        yield site_ratio
        yield site_counted
        yield from families.values()
        yield from counted_families.values()
        yield computed
