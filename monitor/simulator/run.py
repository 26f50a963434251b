"""`districtmon simulate`: the simulated district's parts, started together and stopped cleanly.

Everything runs in one event loop under one TaskGroup (the world's timers, the MQTT publishers,
the trap sender, the broker relay, the TCP/HTTP listeners, the name servers, the ICMP cut); the
control server runs in a thread and hands its requests to the loop. The truth's start record is
written once everything is bound, before the control or a scenario can change anything.
SIGTERM/SIGINT stop it: sockets closed, the nftables table deleted, MQTT connections closed
(cleanly: a stopped simulator's devices publish no will; `kill -9` shows what a crash looks
like).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from monitor.config.load import Config
from monitor.config.mqtt import MqttSettings
from monitor.simulator.agent import (
    AgentServer,
    BindMode,
    Responder,
    SimulatorError,
    raise_fd_limit,
)
from monitor.simulator.clock import SimClock
from monitor.simulator.control import ControlServer
from monitor.simulator.icmpcut import IcmpCut
from monitor.simulator.mqtt import MqttPublishers
from monitor.simulator.nameserver import NameServers
from monitor.simulator.relay import BrokerRelay
from monitor.simulator.scenario import Scenario, schedule
from monitor.simulator.services import Services
from monitor.simulator.stalls import StallWatch
from monitor.simulator.traps import TrapSender, trap_community
from monitor.simulator.truth import Truth
from monitor.simulator.world import World

log = logging.getLogger(__name__)

HostPort = tuple[str, int]
MAX_TIMER_SLEEP = 5.0


@dataclass(frozen=True, slots=True)
class SimOptions:
    speed: float = 1.0
    scenario: Scenario | None = None
    control: HostPort | None = ("127.0.0.1", 9878)
    mqtt: HostPort | None = None
    mqtt_prefix: str | None = None  # None: the configuration's mqtt.topic_prefix
    mqtt_interval: float = 60.0
    mqtt_keepalive: int = 60
    broker_relay: HostPort | None = None
    traps: HostPort | None = None
    bind: BindMode = "auto"
    truth: Path | None = None  # append the ground truth's records here (JSON lines)


async def run_simulator(
    config: Config,
    options: SimOptions,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    community = trap_community(config) if options.traps is not None else ""  # before binding
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = (signal.SIGTERM, signal.SIGINT)
    for signum in handled:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    raise_fd_limit()
    clock = SimClock(options.speed)
    sink = _open_truth(options.truth) if options.truth is not None else None
    world = World(config, clock, Truth(sink))
    wake = asyncio.Event()
    world.timer_added = wake.set
    agents = AgentServer(world, Responder(clock), options.bind)
    control: ControlServer | None = None
    relay: BrokerRelay | None = None
    services: Services | None = None
    icmp: IcmpCut | None = None
    names: NameServers | None = None
    try:
        services = Services(world)
        icmp = IcmpCut(world)
        names = NameServers(world)
        agents.start()
        services.start()
        names.start()
        icmp_cut = icmp.start()
        publishers = traps = None
        if options.broker_relay is not None and options.mqtt is not None:
            relay = BrokerRelay(options.broker_relay, options.mqtt)
            try:
                await relay.start()
            except OSError as exc:
                where = "{}:{}".format(*options.broker_relay)
                raise SimulatorError([f"cannot listen on {where}: {exc.strerror or exc}"]) from None
            world.broker_listeners.append(relay.set_up)
        if options.mqtt is not None:
            host, port = options.broker_relay or options.mqtt
            publishers = MqttPublishers(
                world,
                clock,
                host,
                port,
                topics=_topics(config, options.mqtt_prefix),
                interval=options.mqtt_interval,
                keepalive=options.mqtt_keepalive,
            )
        if options.traps is not None:
            traps = TrapSender(world, *options.traps, community)
        scenario = options.scenario.path.name if options.scenario is not None else None
        world.begin(icmp_cut=icmp_cut, scenario=scenario)
        served = services
        stalls = StallWatch()

        def stats() -> dict[str, object]:
            body: dict[str, object] = {
                "sites": len(world.sites),
                "reachable": sum(1 for s in world.sites.values() if s.reachable),
                "snmp": agents.stats.snapshot(),
                "sockets": len(agents.sockets),
                "bind": agents.mode,
                "speed": clock.speed,
                "broker_up": world.broker_up,
                "listening": served.listening(),
                "icmp_cut": icmp_cut,
                "truth_records": len(world.truth),
                "loop": stalls.stats(),
            }
            if publishers is not None:
                body["mqtt"] = publishers.stats()
            if traps is not None:
                body["traps"] = {"sent": dict(traps.sent), "failed": traps.failed}
            return body

        if options.control is not None:
            try:
                control = ControlServer(*options.control, world, loop, stats)
            except OSError as exc:
                where = "{}:{}".format(*options.control)
                message = f"cannot serve the control on {where}: {exc.strerror or exc}"
                raise SimulatorError([message + " (--control HOST:PORT or --no-control)"]) from None
            control.start()
        if options.scenario is not None:
            schedule(options.scenario, world, clock.now())
        message = _ready_message(world, agents, options, control, relay, services, icmp)
        log.info("%s", message)
        if on_ready is not None:
            on_ready(message)
        async with asyncio.TaskGroup() as tasks:
            background = [
                tasks.create_task(_timers(world, clock, wake), name="timers"),
                tasks.create_task(icmp.run(), name="icmp-cut"),
                tasks.create_task(stalls.run(), name="stall-watch"),
            ]
            if publishers is not None:
                background.append(tasks.create_task(publishers.run(), name="mqtt"))
            if traps is not None:
                background.append(tasks.create_task(traps.run(), name="traps"))
            await stop.wait()
            log.info("stopping the simulated district")
            for task in background:
                task.cancel()
    finally:
        if control is not None:
            control.stop()
        if relay is not None:
            await relay.close()
        if services is not None:
            await services.aclose()
        if names is not None:
            names.close()
        if icmp is not None:
            icmp.close()
        agents.close()
        if sink is not None:
            sink.close()
        for signum in handled:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    log.info("simulator stopped")


def _open_truth(path: Path) -> TextIO:
    try:
        return path.open("a", encoding="utf-8")
    except OSError as exc:
        raise SimulatorError([f"cannot write the truth to {path}: {exc.strerror or exc}"]) from None


def _topics(config: Config, prefix: str | None) -> MqttSettings:
    """The daemon's MQTT settings, with the topic prefix of --mqtt-prefix if given."""
    if prefix is None:
        return config.mqtt
    return dataclasses.replace(config.mqtt, topic_prefix=prefix)


async def _timers(world: World, clock: SimClock, wake: asyncio.Event) -> None:
    """Run the world's timers on time; a new earlier timer wakes the wait."""
    while True:
        due = world.next_due()
        delay = MAX_TIMER_SLEEP if due is None else (due - clock.now()) / clock.speed
        if delay > 0:
            wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(delay, MAX_TIMER_SLEEP)):  # not wait_for (3.11)
                    await wake.wait()
            continue
        world.run_due(clock.now())


def _ready_message(
    world: World,
    agents: AgentServer,
    options: SimOptions,
    control: ControlServer | None,
    relay: BrokerRelay | None,
    services: Services,
    icmp: IcmpCut,
) -> str:
    kinds: dict[str, int] = {}
    for sim in world.sites.values():
        kinds[sim.site.kind] = kinds.get(sim.site.kind, 0) + 1
    parts = [
        f"simulating {len(world.sites)} sites ("
        + ", ".join(f"{n} {k}" for k, n in kinds.items())
        + f") on {len(agents.sockets)} UDP sockets ({agents.mode} binding)",
        f"speed x{options.speed:g}",
    ]
    if services.endpoints:
        parts.append(f"{services.listening()} TCP/HTTP listeners")
    if icmp.by_address:
        cut = "cut by nftables table " + icmp.table if icmp.enabled else "NOT cut (no nft)"
        parts.append(f"pings to {len(icmp.by_address)} ICMP addresses {cut}")
    if options.truth is not None:
        parts.append(f"truth to {options.truth}")
    if control is not None:
        parts.append(f"control on http://{options.control[0]}:{control.port}")  # type: ignore[index]
    if options.mqtt is not None:
        parts.append(f"MQTT to {options.mqtt[0]}:{options.mqtt[1]}")
    if relay is not None:
        parts.append(f"broker relay on {relay.listen[0]}:{relay.port}")
    if options.traps is not None:
        parts.append(f"traps to {options.traps[0]}:{options.traps[1]}")
    if options.scenario is not None:
        parts.append(f"scenario {options.scenario.name!r}")
    return "; ".join(parts)
