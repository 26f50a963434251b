"""The daemon: wires probes -> evaluator -> ledger/live state, and serves them over HTTP.

Data flows one way. The scheduler hands each observation to `Pipeline.observe`, which asks the
evaluator for a confirmed transition, queues it for the ledger and updates the live snapshot
the HTTP thread reads. On SIGTERM/SIGINT the polls are cancelled, the ledger writer drains its
queue, every open interval is closed and the run is marked clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from monitor.config import Config
from monitor.evaluator import Evaluator
from monitor.httpserver import HttpServer
from monitor.ledger import Ledger
from monitor.livestate import LiveState
from monitor.metrics import SelfMetrics, build_registry
from monitor.model import Observation, Site, Transition
from monitor.scheduler import Scheduler, SchedulerHooks
from monitor.snmp import SnmpClient, SnmpPoller

log = logging.getLogger(__name__)

LOOP_TICK_SECONDS = 1.0


class Pipeline:
    """Observation -> state -> ledger + live snapshot + self-metrics."""

    def __init__(
        self, evaluator: Evaluator, ledger: Ledger, live: LiveState, metrics: SelfMetrics
    ) -> None:
        self.evaluator = evaluator
        self.ledger = ledger
        self.live = live
        self.metrics = metrics

    def start(self, sites: dict[str, Site], at: float) -> None:
        for site_id in sites:
            self._publish(self.evaluator.start(site_id, at))

    def observe(self, obs: Observation) -> None:
        probe = "snmp"
        self.metrics.polls.labels(probe, "ok" if obs.ok else "error").inc()
        self.metrics.poll_duration.labels(probe).observe(obs.duration)
        if not obs.ok:
            self.metrics.poll_errors.labels(probe, obs.error_reason or "unknown").inc()
        self.live.apply_observation(obs)
        transition = self.evaluator.observe(obs)
        if transition is not None:
            self.metrics.transitions.labels(transition.state.value).inc()
            log.info(
                "site=%s state=%s previous=%s since=%.3f reason=%s",
                transition.site,
                transition.state.value,
                transition.previous.value,
                transition.since,
                transition.reason or "-",
            )
            self._publish(transition)

    def _publish(self, transition: Transition) -> None:
        self.ledger.record(transition)
        self.live.apply_transition(transition)
        self.metrics.ledger_queue.set(self.ledger.pending)


async def run_daemon(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[HttpServer], Awaitable[None] | None] | None = None,
) -> None:
    """Run until `stop` is set or SIGTERM/SIGINT arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)

    live = LiveState(config.sites)
    registry, metrics = build_registry(live)
    metrics.start_time.set(live.health.started)

    def committed(seconds: float, _rows: int) -> None:
        metrics.ledger_write.observe(seconds)
        live.health.ledger_commit = time.monotonic()

    ledger = await Ledger.open(
        config.ledger_path, on_commit=committed, on_error=metrics.ledger_errors.inc
    )
    client = SnmpClient()
    http: HttpServer | None = None
    try:
        await ledger.sync_sites(config.sites.values())
        pipeline = Pipeline(
            Evaluator(config.state.down_after, config.state.up_after), ledger, live, metrics
        )
        pipeline.start(config.sites, time.time())
        poller = SnmpPoller(
            client, config.credentials, config.poll.timeout_seconds, config.poll.retries
        )
        scheduler = Scheduler(
            config.sites.values(),
            lambda site: site.probe.interval_seconds or config.poll.interval_seconds,
            poller.poll,
            config.poll.max_in_flight,
            SchedulerHooks(
                on_observation=pipeline.observe,
                on_lag=metrics.schedule_lag.observe,
                on_skip=lambda _site: metrics.polls_skipped.inc(),
            ),
        )
        http = HttpServer(config.http.host, config.http.port, registry, live)
        http.start()
        log.info(
            "districtmon watching %d sites; metrics on http://%s:%d/metrics",
            len(config.sites),
            config.http.host,
            http.port,
        )
        async with asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(ledger.run(), name="ledger-writer")
            polling = tasks.create_task(scheduler.run(), name="scheduler")
            ticking = tasks.create_task(_tick(live), name="loop-tick")
            if on_ready is not None:
                result = on_ready(http)
                if result is not None:
                    await result
            await _first_of(stop.wait(), writer)
            log.info("stopping: cancelling polls, flushing the ledger")
            polling.cancel()
            ticking.cancel()
            ledger.stop()
    finally:
        if http is not None:
            http.stop()
        client.close()
        await ledger.close(time.time())
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    log.info("districtmon stopped cleanly")


async def _tick(live: LiveState) -> None:
    """Proves to /healthz (and later the systemd watchdog) that the loop is not stuck."""
    while True:
        live.health.loop_tick = time.monotonic()
        await asyncio.sleep(LOOP_TICK_SECONDS)


async def _first_of(waiter: Awaitable[object], task: asyncio.Task[None]) -> None:
    """Wait for the stop signal, or return early if the ledger writer ended."""
    stopper = asyncio.ensure_future(waiter)
    try:
        await asyncio.wait({stopper, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
