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
from collections.abc import Callable
from dataclasses import replace

from monitor.config import Config, ConfigError
from monitor.evaluator import Evaluator
from monitor.httpserver import HttpServer
from monitor.ledger import InventorySync, Ledger, SiteRetired
from monitor.livestate import LiveState
from monitor.metrics import SelfMetrics, build_registry
from monitor.model import Observation, Site, SnmpProbe, Transition
from monitor.notify import Notifier
from monitor.probes import ProbeRouter
from monitor.scheduler import Scheduler, SchedulerHooks
from monitor.snmp import SnmpPoller
from monitor.snmpclient import SnmpEngine, create_engine
from monitor.snmpmetrics import DeviceValueCollector, TrapCollector, profile_helps
from monitor.traprouter import TrapRouter
from monitor.traps import TrapReceiver

log = logging.getLogger(__name__)

LOOP_TICK_SECONDS = 1.0

ConfigLoader = Callable[[], Config]


class Pipeline:
    """Observation -> state -> ledger + live snapshot + self-metrics."""

    def __init__(
        self, evaluator: Evaluator, ledger: Ledger, live: LiveState, metrics: SelfMetrics
    ) -> None:
        self.evaluator = evaluator
        self.ledger = ledger
        self.live = live
        self.metrics = metrics
        self.confirm_next: set[str] = set()  # sites whose next answered poll a trap asked for

    def start(self, site_ids: list[str], at: float) -> None:
        for site_id in site_ids:
            self._publish(self.evaluator.start(site_id, at))

    def retire(self, site_ids: list[str], at: float) -> None:
        for site_id in site_ids:
            self.evaluator.forget(site_id)
            self.ledger.record(SiteRetired(site_id, at))

    def observe(self, obs: Observation) -> None:
        if self.confirm_next and obs.site in self.confirm_next:
            self.confirm_next.discard(obs.site)
            if obs.ok:
                obs = replace(obs, confirmed=True)
        probe = obs.probe
        self.metrics.polls.labels(probe, "ok" if obs.ok else "error").inc()
        self.metrics.poll_duration.labels(probe).observe(obs.duration)
        if not obs.ok:
            self.metrics.poll_errors.labels(probe, obs.error_reason or "unknown").inc()
        self.live.apply_observation(obs)
        transition = self.evaluator.observe(obs)
        if transition is not None:
            self.metrics.transitions.labels(transition.state.value).inc()
            log.info(
                "site=%s state=%s previous=%s reason=%s",
                transition.site,
                transition.state.value,
                transition.previous.value,
                transition.reason or "-",
                extra={
                    "site": transition.site,
                    "state": transition.state.value,
                    "previous": transition.previous.value,
                    "since": transition.since,
                },
            )
            self._publish(transition)

    def event(self, obs: Observation) -> None:
        """An observation that is not a poll (a trap): state only, no poll metrics."""
        transition = self.evaluator.observe(obs)
        if transition is not None:
            self.metrics.transitions.labels(transition.state.value).inc()
            log.info(
                "site=%s state=%s previous=%s reason=%s (%s)",
                transition.site,
                transition.state.value,
                transition.previous.value,
                transition.reason or "-",
                obs.probe,
                extra={"site": transition.site, "state": transition.state.value},
            )
            self._publish(transition)

    def is_suspect(self, site_id: str) -> bool:
        """The site's last poll failed: it is polled from the scheduler's pool for the dead."""
        health = self.evaluator.sites.get(site_id)
        return health is not None and health.run_ok is False

    def _publish(self, transition: Transition) -> None:
        self.ledger.record(transition)
        self.live.apply_transition(transition)
        self.metrics.ledger_queue.set(self.ledger.pending)


class Daemon:
    """Holds the running parts so that a reload can reach each of them."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        live: LiveState,
        metrics: SelfMetrics,
        engine: SnmpEngine,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.live = live
        self.pipeline = Pipeline(
            Evaluator(config.state.down_after, config.state.up_after), ledger, live, metrics
        )
        self.poller = SnmpPoller(
            engine,
            config.credentials,
            config.poll.timeout_seconds,
            config.poll.retries,
            config.profiles,
        )
        self.probes = ProbeRouter()
        self.probes.register(SnmpProbe, self.poller)
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
        self.traps = TrapRouter(self.pipeline.event, self._poll_now, self.poller.profile_of)
        self.traps.update_sites(config.sites.values())
        self.device_values = DeviceValueCollector(live, profile_helps(config.profiles))

    def _poll_now(self, site_id: str, confirm: bool) -> None:
        if confirm:
            self.pipeline.confirm_next.add(site_id)
        self.scheduler.request_poll(site_id)

    def _polled(self, config: Config) -> list[Site]:
        return [site for site in config.sites.values() if self.probes.polled(site)]

    def _interval_of(self, site: Site) -> float:
        return site.probe.interval_seconds or self.config.poll.interval_seconds

    def status(self) -> str:
        counts = self.live.counts()
        shown = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        return f"watching {len(self.live.sites)} sites: {shown or 'none'}"

    def apply(self, new: Config) -> None:
        """Swap in a validated configuration. Sites that stay keep their state and history;
        removed ones stop and their open interval closes; added ones start unknown."""
        old = self.config
        for what, before, after in (
            ("http.listen", old.http, new.http),
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
        self.ledger.record(InventorySync(tuple(new.sites.values()), now))
        self.pipeline.retire(removed, now)
        self.live.replace_sites(new.sites)
        self.pipeline.start(added, now)
        evaluator = self.pipeline.evaluator
        evaluator.down_after, evaluator.up_after = new.state.down_after, new.state.up_after
        self.poller.configure(
            new.credentials, new.poll.timeout_seconds, new.poll.retries, new.profiles
        )
        self.poller.retain(new.sites)
        self.traps.update_sites(new.sites.values())
        self.device_values.helps = profile_helps(new.profiles)
        self.scheduler.update_sites(self._polled(new))
        log.info(
            "configuration reloaded: %d sites (%d added, %d removed, %d changed)",
            len(new.sites),
            len(added),
            len(removed),
            len(changed),
        )


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

    live = LiveState(config.sites)
    registry, metrics = build_registry(live)
    metrics.start_time.set(live.health.started)

    def committed(seconds: float, _rows: int) -> None:
        metrics.ledger_write.observe(seconds)
        live.health.ledger_commit = time.monotonic()

    ledger = await Ledger.open(
        config.ledger_path, on_commit=committed, on_error=metrics.ledger_errors.inc
    )
    engine = create_engine(config.snmp.engine)
    http: HttpServer | None = None
    receiver: TrapReceiver | None = None
    try:
        await ledger.sync_sites(config.sites.values())
        daemon = Daemon(config, ledger, live, metrics, engine)
        daemon.pipeline.start(list(config.sites), time.time())
        registry.register(daemon.device_values)
        if config.snmp.traps is not None:
            receiver = _start_traps(config, daemon)
            registry.register(
                TrapCollector(
                    lambda: daemon.traps.counts,
                    receiver.rejected if receiver else dict,
                    receiver is not None,
                )
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
            background = [
                tasks.create_task(daemon.scheduler.run(), name="scheduler"),
                tasks.create_task(_tick(live), name="loop-tick"),
                tasks.create_task(notifier.keep_alive(daemon.status), name="watchdog"),
            ]
            if receiver is not None:
                background.append(tasks.create_task(receiver.watch(), name="trap-watch"))
            notifier.ready(daemon.status())
            while await _next_request(stop, reload_requested, writer) == "reload":
                assert reload_config is not None
                await _reload(daemon, reload_config, notifier)
            notifier.stopping()
            log.info("stopping: cancelling polls, flushing the ledger")
            for task in background:
                task.cancel()
            ledger.stop()
    finally:
        if http is not None:
            http.stop()
        if receiver is not None:
            receiver.close()
        engine.close()
        await ledger.close(time.time())
        notifier.close()
        for signum in handled:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    log.info("districtmon stopped cleanly")


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
        notifier.ready(f"reload refused ({len(exc.problems)} problems); " + daemon.status())
        return
    daemon.apply(new)
    notifier.ready(daemon.status())


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
