"""The daemon: wires probes -> evaluator -> ledger/live state, and serves them over HTTP.

Data flows one way. The scheduler hands each observation to `Pipeline.observe`, which asks the
evaluator for a confirmed transition, queues it for the ledger and updates the live snapshot
the HTTP thread reads. SIGHUP re-reads the configuration and swaps it in whole, or keeps the
old one if the new one is refused. On SIGTERM/SIGINT the polls are cancelled, the ledger writer
drains its queue, every open interval is closed and the run is marked clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from monitor.config.load import Config
from monitor.config.maintenance import Window, spec_json
from monitor.config.problems import ConfigError
from monitor.config.telemetry import value_help
from monitor.core.memory import release_freed_memory
from monitor.core.model import Site
from monitor.core.ratelimit import RateLimitedLog
from monitor.expose.api import local_time
from monitor.expose.availability_metrics import AvailabilityCollector, availability_registry
from monitor.expose.device_metrics import DeviceValueCollector, profile_helps
from monitor.expose.http import HttpServer
from monitor.expose.maintenance_metrics import MaintenanceCollector
from monitor.expose.mqtt_metrics import registered_counts
from monitor.expose.objective_metrics import ObjectiveCollector
from monitor.expose.self_metrics import LedgerLossCollector, SelfMetrics, build_registry
from monitor.expose.trap_metrics import TrapCollector
from monitor.ledger.recent import AvailabilityGauges
from monitor.ledger.records import InventorySync, read_boots, read_final_states, read_runs
from monitor.ledger.schema import LedgerError
from monitor.ledger.windows import read_ledger_windows
from monitor.ledger.writer import Ledger
from monitor.probes.mqtt.counts import MqttCounts
from monitor.probes.mqtt.listener import MqttListener, mqtt_sites
from monitor.probes.reach.pollers import reach_pollers
from monitor.probes.router import ProbeRouter, interval_of
from monitor.probes.snmp.engine import SnmpEngine
from monitor.probes.snmp.engines import create_engine
from monitor.probes.snmp.poller import SnmpPoller
from monitor.probes.snmp.trap_receiver import TrapReceiver
from monitor.probes.snmp.trap_router import TrapRouter
from monitor.report.monthly import served_month
from monitor.runtime.notify import Notifier
from monitor.state.evaluator import Evaluator
from monitor.state.live import LiveState
from monitor.state.pipeline import Pipeline
from monitor.state.scheduler import Scheduler, SchedulerHooks
from monitor.state.windows import Schedule

log = logging.getLogger(__name__)

LOOP_TICK_SECONDS = 1.0
MAINTENANCE_TICK_SECONDS = 1.0
# How often the /metrics text is made for the sites polled meanwhile (device_text.py).
METRICS_TEXT_SECONDS = 1.0
MEMORY_RETURN_SECONDS = 5.0  # freed memory given back to the system (monitor/core/memory.py)
LEDGER_WINDOWS_SECONDS = 15.0

ConfigLoader = Callable[[], Config]


class Daemon:
    """Holds the running parts so that a reload can reach each of them."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        live: LiveState,
        metrics: SelfMetrics,
        engine: SnmpEngine,
        mqtt_counts: MqttCounts,
        ledger_windows: Sequence[Window] = (),
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.live = live
        self.metrics = metrics
        self.http: HttpServer | None = None  # set once it listens; a reload hands it the web config
        self.ledger_windows = tuple(ledger_windows)
        evaluator = Evaluator(
            config.state.down_after, config.state.up_after, parents=_parents(config)
        )
        self.pipeline = Pipeline(evaluator, ledger, live, metrics, self._schedule(config))
        self.poller = SnmpPoller(engine, config.poll, config.credentials, config.profiles)
        self.probes = ProbeRouter([self.poller, *reach_pollers(config.poll)])
        self.scheduler = Scheduler(
            self._polled(config),
            self._interval_of,
            self.probes.poll,
            config.poll.max_in_flight,
            SchedulerHooks(
                on_observation=self.pipeline.observe,
                on_lag=metrics.schedule_lag.observe,
                on_skip=lambda _site: metrics.polls_skipped.inc(),
                is_suspect=self.pipeline.is_suspect,
            ),
        )
        # MQTT sites are pushed, not polled: the listener feeds the same pipeline.
        self.listener = MqttListener(
            config.mqtt,
            mqtt_sites(config.sites),
            mqtt_sites(config.sites_of_other_shards),
            self.pipeline,
            lambda: self.pipeline.evaluator.down_after,
            mqtt_counts,
        )
        live.value_help = value_help(config.mqtt.profiles)
        self.traps = TrapRouter(self.pipeline.event, self._poll_now, self.poller.profile_of)
        self.traps.update_sites(config.sites.values())
        self.device_values = DeviceValueCollector(live, _device_helps(config))
        self.objectives = ObjectiveCollector(lambda: live.sites, config.objectives)

    def _poll_now(self, site_id: str, confirm: bool) -> None:
        if confirm:
            self.pipeline.confirm_next.add(site_id)
        self.scheduler.request_poll(site_id)

    def _polled(self, config: Config) -> list[Site]:
        return [site for site in _watched(config) if self.probes.polled(site)]

    def follow_foreign_parents(self, config: Config, at: float) -> None:
        """The pipeline follows the foreign parents that are polled (an MQTT one's messages
        stay its shard's: its children here are judged without it, as before)."""
        foreign = [s.id for s in config.foreign_parents.values() if self.probes.polled(s)]
        self.pipeline.follow_foreign(foreign, at)
        self.metrics.foreign_parents.set(len(foreign))

    def _schedule(self, config: Config) -> Schedule:
        # kept for the maintenance series too (the HTTP thread reads the one in place)
        self.schedule = Schedule([*config.maintenance, *self.ledger_windows], config.sites.values())
        return self.schedule

    def set_ledger_windows(self, windows: Sequence[Window], now: float) -> None:
        """Windows stored in the ledger (`districtmon maintenance add|remove`) changed."""
        if _specs(windows) == _specs(self.ledger_windows):
            return
        self.ledger_windows = tuple(windows)
        self.pipeline.set_schedule(self._schedule(self.config), now)
        log.info("maintenance windows from the ledger: %d", len(windows))

    def _interval_of(self, site: Site) -> float:
        return interval_of(site, self.config.poll.interval_seconds)

    def status(self) -> str:
        counts = self.live.counts()
        shown = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        return f"watching {len(self.live.sites)} sites: {shown or 'none'}"

    def apply(self, new: Config) -> None:
        """Swap in a validated configuration. Sites that stay keep their state and history;
        removed ones stop and their open interval closes; added ones start unknown."""
        old = self.config
        for what, before, after in (
            ("http (listen, limits)", replace(old.http, web=None), replace(new.http, web=None)),
            ("ledger.path", old.ledger_path, new.ledger_path),
            ("poll.max_in_flight", old.poll.max_in_flight, new.poll.max_in_flight),
            ("snmp.engine", old.snmp.engine, new.snmp.engine),
            ("snmp.traps", old.snmp.traps, new.snmp.traps),
        ):
            if before != after:
                log.warning("%s changed: it takes effect at the next restart", what)
        now = time.time()
        added = [s for s in new.sites if s not in old.sites]
        removed = [s for s in old.sites if s not in new.sites]
        changed = [s for s in new.sites if s in old.sites and new.sites[s] != old.sites[s]]
        self.config = new
        self.ledger.record(_inventory(new, now))
        self.pipeline.retire(removed, now)
        self.live.replace_sites(new.sites, new.communes, new.owners)
        self.pipeline.set_schedule(self._schedule(new), now)
        self.follow_foreign_parents(new, now)  # after retire, before start: see follow_foreign
        self.pipeline.start(added, now)
        evaluator = self.pipeline.evaluator
        evaluator.down_after, evaluator.up_after = new.state.down_after, new.state.up_after
        evaluator.set_parents(_parents(new))
        self.poller.use(new.credentials, new.profiles)
        self.poller.retain([*new.sites, *new.foreign_parents])
        self.traps.update_sites(new.sites.values())
        self.device_values.helps = _device_helps(new)
        self.objectives.objectives = new.objectives
        self.probes.configure(new.poll)
        self.scheduler.update_sites(self._polled(new))
        self.live.value_help = value_help(new.mqtt.profiles)
        self.live.timezone = new.timezone
        self.listener.update(new.mqtt, mqtt_sites(new.sites), mqtt_sites(new.sites_of_other_shards))
        if self.http is not None:
            self.http.use_web(new.http.web)
            self.http.use_status_page(new.http.status_page)
        log.info(
            "configuration reloaded: %d sites (%d added, %d removed, %d changed)",
            len(new.sites),
            len(added),
            len(removed),
            len(changed),
        )


def _watched(config: Config) -> list[Site]:
    """Every site the evaluator follows: this daemon's own and its foreign parents."""
    return [*config.sites.values(), *config.foreign_parents.values()]


def _parents(config: Config) -> dict[str, str | None]:
    return {site.id: site.parent for site in _watched(config)}


def _inventory(config: Config, at: float) -> InventorySync:
    return InventorySync(
        tuple(config.sites.values()),
        at,
        tuple(config.communes.values()),
        tuple(config.owners.values()),
    )


def _specs(windows: Sequence[Window]) -> list[str]:
    return [spec_json(w) for w in windows]


async def run_daemon(
    config: Config,
    *,
    reload_config: ConfigLoader | None = None,
    stop: asyncio.Event | None = None,
    notifier: Notifier | None = None,
) -> None:
    """Run until `stop` is set or SIGTERM/SIGINT arrives; SIGHUP calls `reload_config`."""
    stop = stop or asyncio.Event()
    reload_requested = asyncio.Event()
    notifier = notifier or Notifier()
    loop = asyncio.get_running_loop()
    handled = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set}
    if reload_config is not None:
        handled[signal.SIGHUP] = reload_requested.set
    for signum, handler in handled.items():
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, handler)
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(loop_error_handler())

    for warning in config.warnings:
        log.warning("%s", warning)
    live = LiveState(config.sites, config.communes, config.owners)
    live.timezone = config.timezone
    registry, metrics = build_registry(config.timezone)
    metrics.start_time.set(live.health.started)
    metrics.config_reload_ok.set(1)
    metrics.config_reload_time.set(live.health.config_loaded)

    def committed(seconds: float, _rows: int) -> None:
        metrics.ledger_write.observe(seconds)
        live.health.ledger_commit = time.monotonic()
        live.health.ledger_trouble = None

    def failed() -> None:
        metrics.ledger_errors.inc()
        live.health.ledger_trouble = (
            f"ledger cannot write ({ledger.trouble or 'an internal error, see the log'}): "
            f"{ledger.held} changes held in memory "
            f"(at most {ledger.limits.max_pending})"
        )

    ledger = await Ledger.open(
        config.ledger_path,
        on_commit=committed,
        on_error=failed,
        retention=config.retention,
        limits=config.ledger_limits,
    )
    registry.register(LedgerLossCollector(lambda: ledger.lost))
    engine = create_engine(config.snmp.engine)
    http: HttpServer | None = None
    gauges = AvailabilityGauges(config.ledger_path, config.availability_refresh_seconds)
    registry.register(AvailabilityCollector(gauges, live))
    receiver: TrapReceiver | None = None
    try:
        synced = asyncio.ensure_future(
            ledger.sync_sites(
                config.sites.values(), config.communes.values(), config.owners.values()
            )
        )
        if not await _before_stop(synced, stop):  # a full disk at start: a stop still stops
            log.error(
                "stopping before the ledger took the inventory (%s); nothing was recorded",
                ledger.trouble or "no reason given",
            )
            return
        windows = await asyncio.to_thread(read_ledger_windows, config.ledger_path)
        boots = await asyncio.to_thread(read_boots, config.ledger_path)
        runs = await asyncio.to_thread(read_runs, config.ledger_path)
        if len(runs) >= 2:  # the last one is this run
            previous = runs[-2]
            ended = previous.stopped if previous.stopped is not None else previous.heartbeat
            metrics.previous_run_end.labels(str(previous.clean).lower()).set(ended)
        # read before this run records anything: how the previous run left each site
        carried = await asyncio.to_thread(read_final_states, config.ledger_path)
        mqtt_counts = registered_counts(registry)
        daemon = Daemon(config, ledger, live, metrics, engine, mqtt_counts, windows)
        started = time.time()
        daemon.poller.known_boots(boots)  # a device that rebooted while we were stopped
        daemon.pipeline.boots.seed(boots, started)
        daemon.pipeline.start(list(config.sites), started, carried)
        daemon.follow_foreign_parents(config, started)
        registry.register(daemon.device_values)
        registry.register(daemon.objectives)
        registry.register(MaintenanceCollector(lambda: daemon.schedule))
        if config.snmp.traps is not None:
            receiver = _start_traps(config, daemon)
            registry.register(_trap_collector(daemon, receiver))
        http = HttpServer(
            config.http.host,
            config.http.port,
            registry,
            live,
            settings=config.http,
            ledger=config.ledger_path,
            mqtt=mqtt_counts,
            report=lambda month: served_month(daemon.config, month),
            availability=availability_registry(gauges, live),
        )
        http.start()
        daemon.http = http
        log.info(
            "districtmon watching %d sites; metrics on http://%s:%d/metrics",
            len(config.sites),
            config.http.host,
            http.port,
        )
        async with asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(ledger.run(), name="ledger-writer")
            background = [
                tasks.create_task(daemon.scheduler.run(), name="scheduler"),
                tasks.create_task(daemon.listener.run(), name="mqtt-listener"),
                tasks.create_task(_tick(live), name="loop-tick"),
                tasks.create_task(notifier.keep_alive(daemon.status), name="watchdog"),
                tasks.create_task(_maintenance_clock(daemon), name="maintenance"),
                tasks.create_task(_metrics_text(http), name="metrics-text"),
                tasks.create_task(_give_back_memory(), name="memory-return"),
                tasks.create_task(gauges.run(lambda: daemon.config.sites), name="gauges"),
            ]
            notifier.ready(daemon.status())
            while await _next_request(stop, reload_requested, writer) == "reload":
                assert reload_config is not None
                await _reload(daemon, reload_config, notifier)
            notifier.stopping()
            log.info("stopping: cancelling polls, flushing the ledger")
            for task in background:
                task.cancel()
            # a poll finishing while it is cancelled still records its transition: let them
            # all end before the ledger stops taking entries
            await asyncio.gather(*background, return_exceptions=True)
            ledger.stop()
    finally:
        if http is not None:
            http.stop()
        if receiver is not None:
            receiver.close()
        await engine.close()
        await ledger.close(time.time())
        notifier.close()
        for signum in handled:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        loop.set_exception_handler(previous_handler)
    log.info("districtmon stopped cleanly")


def loop_error_handler(
    period: float = 60.0, burst: int = 3
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """What escapes a callback of the event loop (a library's transport, a stray future) is
    logged `burst` times a minute per kind of error, with its traceback, then counted: a
    flood of the same fault must not fill the disk the ledger lives on."""
    limited = RateLimitedLog(logging.getLogger("monitor.runtime.loop"), period, burst)

    def handle(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = str(context.get("message") or "unhandled error in the event loop")
        key = f"{type(exc).__name__}:{message}" if exc is not None else message
        limited.log(logging.ERROR, key, "event loop: %s", message, exc_info=exc)

    return handle


def _trap_collector(daemon: Daemon, receiver: TrapReceiver | None) -> TrapCollector:
    if receiver is None:
        return TrapCollector(lambda: daemon.traps.counts, dict, listening=False)
    return TrapCollector(
        lambda: daemon.traps.counts, receiver.rejected, datagrams=lambda: receiver.datagrams
    )


def _start_traps(config: Config, daemon: Daemon) -> TrapReceiver | None:
    """The trap receiver, or None when its port cannot be bound: polling goes on (a taken
    trap port must not blind the whole district), the error is logged and
    districtmon_snmp_trap_receiver_up says 0."""
    settings = config.snmp.traps
    assert settings is not None
    receiver = TrapReceiver(settings, config.credentials, daemon.traps.handle)
    try:
        receiver.start()
    except OSError as exc:
        receiver.close()
        log.error(
            "trap receiver disabled: cannot listen on %s:%d: %s",
            settings.host,
            settings.port,
            exc.strerror or exc,
        )
        return None
    return receiver


async def _reload(daemon: Daemon, reload_config: ConfigLoader, notifier: Notifier) -> None:
    """Whatever goes wrong, the daemon runs on with the configuration it has: a reload that
    fails is logged, shown on /healthz and in districtmon_config_last_reload_successful."""
    notifier.reloading()
    log.info("reloading configuration")
    try:
        new = await asyncio.to_thread(reload_config)
    except ConfigError as exc:
        log.error(
            "new configuration refused (%d problems); keeping the running one", len(exc.problems)
        )
        for problem in exc.problems:
            log.error("  %s", problem)
        _reload_failed(daemon, notifier, f"reload refused ({len(exc.problems)} problems)")
        return
    except Exception:  # a fault of ours in the loader: never worth the daemon's life
        log.exception("new configuration not read (internal error); keeping the running one")
        _reload_failed(daemon, notifier, "reload failed (internal error, see the log)")
        return
    try:
        daemon.apply(new)
    except Exception:
        # parts may already run on the new configuration: say so rather than pretend
        log.exception("new configuration only partly applied (internal error)")
        _reload_failed(daemon, notifier, "reload partly applied (internal error, see the log)")
        return
    for warning in new.warnings:
        log.warning("%s", warning)
    daemon.live.health.reload_refused = None
    daemon.live.health.config_loaded = time.time()
    daemon.metrics.config_reload_ok.set(1)
    daemon.metrics.config_reload_time.set(daemon.live.health.config_loaded)
    await _read_ledger_windows(daemon)
    notifier.ready(daemon.status())


def _reload_failed(daemon: Daemon, notifier: Notifier, why: str) -> None:
    daemon.live.health.reload_refused = f"{why} at {local_time(time.time(), daemon.live.timezone)}"
    daemon.metrics.config_reload_ok.set(0)
    notifier.ready(f"{why}; " + daemon.status())


async def _read_ledger_windows(daemon: Daemon) -> None:
    try:
        windows = await asyncio.to_thread(read_ledger_windows, daemon.config.ledger_path)
    except LedgerError as exc:
        log.error("maintenance windows in the ledger not read: %s", exc)
        return
    daemon.set_ledger_windows(windows, time.time())


async def _before_stop(work: asyncio.Future[None], stop: asyncio.Event) -> bool:
    """Await `work` unless a stop comes first (then cancel it): whether it finished."""
    stopper = asyncio.ensure_future(stop.wait())
    waiting: set[asyncio.Future[Any]] = {work, stopper}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if work.done():
        work.result()  # its own error, if it had one
        return True
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    return False


async def _maintenance_clock(daemon: Daemon) -> None:
    """Window starts and ends take effect within a second, each dated exactly; windows added
    from the command line (stored in the ledger) are read every LEDGER_WINDOWS_SECONDS and
    on SIGHUP."""
    next_read = time.monotonic() + LEDGER_WINDOWS_SECONDS
    while True:
        await asyncio.sleep(MAINTENANCE_TICK_SECONDS)
        daemon.pipeline.advance(time.time())
        if time.monotonic() >= next_read:
            await _read_ledger_windows(daemon)
            next_read = time.monotonic() + LEDGER_WINDOWS_SECONDS


async def _metrics_text(http: HttpServer) -> None:
    """Makes the /metrics text of the sites polled in the last second (their gauges and
    device values), in a thread, so that a scrape finds it made instead of making it for a
    quarter of the sites at once while it holds the GIL. A failure is logged and tried
    again: it is the text's, never a site's."""
    failures = RateLimitedLog(log)
    while True:
        await asyncio.sleep(METRICS_TEXT_SECONDS)
        try:
            await asyncio.to_thread(http.update_text)
        except Exception:
            failures.log(logging.ERROR, "metrics-text", "metrics text not made", exc_info=True)


async def _give_back_memory() -> None:
    """Every few seconds, what the last scrapes and refreshes freed goes back to the system
    (in a thread: the call walks the heaps, about 0.1 ms at 20,000 sites)."""
    while True:
        await asyncio.sleep(MEMORY_RETURN_SECONDS)
        await asyncio.to_thread(release_freed_memory)


async def _next_request(
    stop: asyncio.Event, reload_requested: asyncio.Event, writer: asyncio.Task[None]
) -> str:
    """Wait for a stop or a reload request; a writer that ended also means stop."""
    stopper = asyncio.ensure_future(stop.wait())
    reloader = asyncio.ensure_future(reload_requested.wait())
    try:
        await asyncio.wait({stopper, reloader, writer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        reloader.cancel()
    if stop.is_set() or writer.done():
        return "stop"
    reload_requested.clear()
    return "reload"


async def _tick(live: LiveState) -> None:
    """Proves to /healthz that the loop is not stuck."""
    while True:
        live.health.loop_tick = time.monotonic()
        await asyncio.sleep(LOOP_TICK_SECONDS)


def _device_helps(config: Config) -> dict[str, str]:
    """HELP texts of what devices report: pushed telemetry's mapping, then SNMP profiles."""
    return {**value_help(config.mqtt.profiles), **profile_helps(config.profiles)}
