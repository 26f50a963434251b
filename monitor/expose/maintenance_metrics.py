"""The maintenance windows the daemon applies, as series: whether each is open now, how many
sites it holds, and its reason. Dashboards annotate the time a window was open with its name
and reason (the per-site `maintenance` state says which sites it held).

Rendered at scrape time from the daemon's current schedule (the configuration's windows and
those stored with `districtmon maintenance add`), swapped whole when either changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.state.windows import Schedule

_LABELS = ["window", "source"]


class MaintenanceCollector(Collector):
    def __init__(self, schedule: Callable[[], Schedule], clock: Callable[[], float] = time.time):
        self._schedule = schedule
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        schedule, now = self._schedule(), self._clock()
        active = GaugeMetricFamily(
            "districtmon_maintenance_window_active",
            "1 while a maintenance window is open (now inside one of its occurrences), else 0; "
            "source: config (maintenance.yaml) or ledger (districtmon maintenance add).",
            labels=_LABELS,
        )
        held = GaugeMetricFamily(
            "districtmon_maintenance_window_sites",
            "Sites of the inventory the window holds (while open, they are in maintenance).",
            labels=_LABELS,
        )
        info = InfoMetricFamily(
            "districtmon_maintenance_window",
            "Each maintenance window's reason as written, value always 1.",
            labels=_LABELS,
        )
        for window in schedule.windows:
            labels = [window.id, window.source]
            open_now = any(s <= now < e for s, e in window.occurrences(now, now + 1.0))
            active.add_metric(labels, 1.0 if open_now else 0.0)
            held.add_metric(labels, float(len(schedule.held_by(window))))
            info.add_metric(labels, {"reason": window.reason})
        yield active
        yield held
        yield info
