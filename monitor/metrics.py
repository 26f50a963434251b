"""Prometheus metrics: per-site series rendered at scrape time, plus the daemon's own metrics.

Site series come from a custom collector that reads the live snapshot; values are those of the
last background poll (see `districtmon_site_last_poll_timestamp_seconds`), a scrape never
polls a device. Self-metrics are ordinary prometheus-client instruments, updated by the loop.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.livestate import LiveState
from monitor.model import State

SITE_LABELS = ("site", "kind", "commune", "owner")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class SiteCollector(Collector):
    def __init__(self, live: LiveState) -> None:
        self.live = live

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily(
            "districtmon_site",
            "Inventory of each watched site (from the config), value always 1.",
            labels=[*SITE_LABELS, "name", "parent"],
        )
        up = GaugeMetricFamily(
            "districtmon_site_up",
            "1 if the site answers (up or degraded), 0 if down or unreachable; absent while "
            "the state is unknown or in maintenance. Decided from background polls.",
            labels=SITE_LABELS,
        )
        state = GaugeMetricFamily(
            "districtmon_site_state",
            "1 for the site's current state, 0 for the others.",
            labels=[*SITE_LABELS, "state"],
        )
        since = GaugeMetricFamily(
            "districtmon_site_state_since_timestamp_seconds",
            "When the current state began (the first observation of the run that confirmed it).",
            labels=SITE_LABELS,
        )
        last_poll = GaugeMetricFamily(
            "districtmon_site_last_poll_timestamp_seconds",
            "When the site was last polled by the daemon's background scheduler.",
            labels=SITE_LABELS,
        )
        last_ok = GaugeMetricFamily(
            "districtmon_site_last_poll_success",
            "1 if the last background poll got an answer, else 0.",
            labels=SITE_LABELS,
        )
        duration = GaugeMetricFamily(
            "districtmon_site_last_poll_duration_seconds",
            "How long the last background poll took, retries included.",
            labels=SITE_LABELS,
        )
        uptime = GaugeMetricFamily(
            "districtmon_site_device_uptime_seconds",
            "The device's own uptime (SNMP sysUpTime) at the last successful poll.",
            labels=SITE_LABELS,
        )
        telemetry = {
            name: GaugeMetricFamily(f"districtmon_site_{name}", help_text, labels=SITE_LABELS)
            for name, help_text in self.live.value_help.items()
        }
        states = tuple(State)
        for site, view in self.live.items():
            labels = [site.id, site.kind, site.commune, site.owner]
            info.add_metric(labels, {"name": site.name, "parent": site.parent or ""})
            if view.state in (State.UP, State.DEGRADED):
                up.add_metric(labels, 1.0)
            elif view.state in (State.DOWN, State.UNREACHABLE):
                up.add_metric(labels, 0.0)
            for s in states:
                state.add_metric([*labels, s.value], 1.0 if view.state is s else 0.0)
            if view.since is not None:
                since.add_metric(labels, view.since)
            if view.last_poll is not None:
                last_poll.add_metric(labels, view.last_poll)
                last_ok.add_metric(labels, 1.0 if view.last_ok else 0.0)
            if view.last_duration is not None:
                duration.add_metric(labels, view.last_duration)
            if view.device_uptime is not None:
                uptime.add_metric(labels, view.device_uptime)
            for name, value in view.values.items():
                family = telemetry.get(name)
                if family is not None and isinstance(value, float):
                    family.add_metric(labels, value)
        yield from (info, up, state, since, last_poll, last_ok, duration, uptime)
        yield from telemetry.values()


class SelfMetrics:
    """The daemon's own instruments, in the registry it serves."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.polls = Counter(
            "districtmon_polls",
            "Polls completed, by probe and result.",
            ["probe", "result"],
            registry=registry,
        )
        self.poll_errors = Counter(
            "districtmon_poll_errors",
            "Failed polls by probe and reason (timeout, request, error_status, resolve, ...).",
            ["probe", "reason"],
            registry=registry,
        )
        self.poll_duration = Histogram(
            "districtmon_poll_duration_seconds",
            "Duration of each poll, retries included.",
            ["probe"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.schedule_lag = Histogram(
            "districtmon_schedule_lag_seconds",
            "How late each poll started against its schedule.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.polls_skipped = Counter(
            "districtmon_polls_skipped",
            "Scheduled polls skipped because the previous poll of the site was still running "
            "or the scheduler fell a whole interval behind.",
            registry=registry,
        )
        self.transitions = Counter(
            "districtmon_state_transitions",
            "Confirmed state changes, by new state.",
            ["state"],
            registry=registry,
        )
        self.ledger_write = Histogram(
            "districtmon_ledger_write_seconds",
            "Duration of each ledger transaction (one batch of transitions plus heartbeat).",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.ledger_errors = Counter(
            "districtmon_ledger_write_errors",
            "Ledger transactions that failed (and were retried).",
            registry=registry,
        )
        self.ledger_queue = Gauge(
            "districtmon_ledger_queue_length",
            "Transitions waiting to be written to the ledger.",
            registry=registry,
        )
        self.start_time = Gauge(
            "districtmon_start_time_seconds",
            "When this daemon process started.",
            registry=registry,
        )
        build = Gauge(
            "districtmon_build_info",
            "districtmon version, value always 1.",
            ["version"],
            registry=registry,
        )
        build.labels(__version__).set(1)


def build_registry(live: LiveState) -> tuple[CollectorRegistry, SelfMetrics]:
    disable_created_metrics()  # type: ignore[no-untyped-call]
    # `_created` series double the output and no dashboard reads them
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SiteCollector(live))
    ProcessCollector(registry=registry)
    return registry, SelfMetrics(registry)
