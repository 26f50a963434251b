"""The daemon's own instruments: polls, errors, durations, schedule lag, transitions, ledger.

Ordinary prometheus-client instruments in the registry the daemon serves, updated by the
event loop. They are also what the pipeline measures itself through (`PipelineMeter` in
monitor/state/pipeline.py): the pipeline calls `polled`, `transition` and `queued`, and only
this module knows they end up as Prometheus series.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.core.model import Observation, State
from monitor.expose.textformat import MetricsRegistry

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


#: probes whose observations arrive rather than answer a request: a pushed MQTT message or a
#: trap has no round trip, and its zero duration in the histogram would draw a p99 of "under
#: a millisecond" for MQTT on the monitor dashboard (and cost a histogram update a message)
UNTIMED_PROBES = frozenset({"mqtt", "snmp_trap"})


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
            "Duration of each poll, retries included (polled probes: pushed MQTT messages and "
            "traps answer no request and are only counted in districtmon_polls_total).",
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
        self.foreign_parents = Gauge(
            "districtmon_shard_foreign_parents",
            "Sites of other shards this shard polls too, since its own sites depend on them "
            "(their parents): their states are its own sites' concern, and their shard "
            "reports them. 0 when not sharded.",
            registry=registry,
        )
        # Prometheus' own names for the same thing (prometheus_config_last_reload_*), so that
        # the alert people already have for Prometheus reads the same way here
        self.config_reload_ok = Gauge(
            "districtmon_config_last_reload_successful",
            "1 if the last configuration reload succeeded (or none was asked since the start), "
            "0 if it was refused: the daemon runs on its previous configuration.",
            registry=registry,
        )
        self.config_reload_time = Gauge(
            "districtmon_config_last_reload_success_timestamp_seconds",
            "When the running configuration was loaded: the start, or the last good reload.",
            registry=registry,
        )
        self.start_time = Gauge(
            "districtmon_start_time_seconds",
            "When this daemon process started.",
            registry=registry,
        )
        # with the start time, what a dashboard annotates as "the monitor was away": the
        # previous run's end is known only to the ledger, so the new run says it
        self.previous_run_end = Gauge(
            "districtmon_previous_run_end_timestamp_seconds",
            "When the previous run of the daemon on this ledger ended: its stop (clean=true), "
            "or its last heartbeat when it did not stop cleanly (clean=false: a crash, a "
            "power loss). Absent on a ledger's first run. Every site is unknown from then to "
            "this run's start.",
            ["clean"],
            registry=registry,
        )
        build = Gauge(
            "districtmon_build_info",
            "districtmon version, value always 1.",
            ["version"],
            registry=registry,
        )
        build.labels(__version__).set(1)
        # per (probe, ok): the poll counter and duration histogram children, bound once (a
        # label lookup costs more than the rest of a pushed message's bookkeeping)
        self._bound: dict[tuple[str, bool], tuple[Counter, Histogram | None]] = {}

    def polled(self, obs: Observation) -> None:
        bound = self._bound.get((obs.probe, obs.ok))
        if bound is None:
            timed = obs.probe not in UNTIMED_PROBES
            bound = self._bound[obs.probe, obs.ok] = (
                self.polls.labels(obs.probe, "ok" if obs.ok else "error"),
                self.poll_duration.labels(obs.probe) if timed else None,
            )
        bound[0].inc()
        if bound[1] is not None:
            bound[1].observe(obs.duration)
        if not obs.ok:
            self.poll_errors.labels(obs.probe, obs.error_reason or "unknown").inc()

    def transition(self, state: State) -> None:
        self.transitions.labels(state.value).inc()

    def queued(self, pending: int) -> None:
        self.ledger_queue.set(pending)


def utc_offset_seconds(timezone: str | None, at: float | None = None) -> float:
    """The zone's offset from UTC at `at` (now by default), in seconds: UTC when unset."""
    if timezone is None:
        return 0.0
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    offset = moment.astimezone(ZoneInfo(timezone)).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


class LedgerLossCollector(Collector):
    """`districtmon_ledger_lost_changes_total`, read from the ledger at scrape time."""

    def __init__(self, lost: Callable[[], int]) -> None:
        self._lost = lost

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "districtmon_ledger_lost_changes",
            "State changes the ledger did not keep: past ledger.max_pending while its disk "
            "refused writes (recorded as unknown instead), or not written within "
            "ledger.stop_timeout_seconds at a stop.",
            value=float(self._lost()),
        )


def build_registry(timezone: str | None = None) -> tuple[CollectorRegistry, SelfMetrics]:
    """The daemon's own instruments and process metrics. The per-site families are not in
    it: HttpServer appends them from monitor/expose/exposition.py (the fast rendering of
    SiteCollector); what devices report (SNMP profile values, pushed MQTT telemetry) is
    rendered as districtmon_device_* by monitor/expose/device_metrics.py. It is a
    MetricsRegistry: collectors that render themselves (device values, availability) are
    served through their own render(), the others through prometheus-client.

    `timezone` (the configuration's, an IANA name) is exported as its current UTC offset:
    Prometheus and Alertmanager templates know no timezone, so the alert texts add this
    offset to give local times. Read at each scrape, so it follows daylight saving."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    # `_created` series double the output and no dashboard reads them
    registry = MetricsRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    offset = Gauge(
        "districtmon_timezone_offset_seconds",
        "UTC offset of the configured timezone now (0 when none is set): alert texts add it "
        "to give local times.",
        registry=registry,
    )
    offset.set_function(lambda: utc_offset_seconds(timezone))
    return registry, SelfMetrics(registry)
