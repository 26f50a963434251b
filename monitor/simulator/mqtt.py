"""MQTT publishers for the sites that report over the broker: those whose probe is `mqtt` in the
inventory (the daemon's view), on the topics the daemon subscribes to.

Each site's base topic is the daemon's own (`mqtt.topic_pattern` of the configuration, default
`<prefix>/<commune>/<kind>/<site>`, or the probe's own `topic`): `<base>/status` carries
`online` (retained, QoS 1) and is the connection's last will `offline`; `<base>/telemetry`
carries a JSON object every interval (simulated time) and at once when something changes (an
amplifier fault). A site the daemon polls over SNMP publishes nothing, whatever its kind: the
daemon would reject its messages as an unknown site.

One MQTT connection per site, as a real device has, so that each site has its own last will.
A site that dies or loses its link drops its connection without a DISCONNECT, and the broker
publishes its will; a real broker would notice only after 1.5 x keepalive, so the simulator
is quicker than life there. The cost of one connection per site is measured in
bench/simulator_bench.py (CPU per site per second, memory); each connection also takes one file
descriptor in this process and one in the broker. After a broker outage every publisher
reconnects as soon as the broker path is back, not after its backoff.

A publisher binds its connection to its site's loopback address where the site has one (an
MQTT site of the inventory has none: it connects from 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import socket
import time
from collections import Counter

import aiomqtt

from monitor.config.mqtt import MqttSettings
from monitor.core.model import MqttProbe
from monitor.simulator import readings as r
from monitor.simulator.clock import Clock
from monitor.simulator.world import SiteSim, World

log = logging.getLogger(__name__)

RETRY_FIRST = 0.5
RETRY_MAX = 5.0
_QUIET = logging.getLogger("monitor.simulator.mqtt.client")  # paho's own chatter
_QUIET.setLevel(logging.CRITICAL)


def publishes(sim: SiteSim) -> bool:
    """The daemon listens for this site on the broker (its probe is mqtt)."""
    return isinstance(sim.site.probe, MqttProbe)


def telemetry(sim: SiteSim, now: float) -> dict[str, object]:
    """The telemetry object of the shared convention; `ts` is the wall clock of publication
    (a device's NTP time), the values are those of simulated time `now`."""
    kind = sim.site.kind
    body: dict[str, object] = {
        "ts": round(time.time(), 3),
        "online": True,
        "power": "mains" if sim.mains else "battery",
    }
    if kind == "loudspeaker":
        body.update(
            amplifier_ok=sim.amplifier_ok,
            playing=r.speaker_playing(sim, now),
            volume=r.speaker_volume(sim),
            battery_volts=round(r.speaker_battery_volts(sim, now), 2),
            rssi_dbm=r.rssi_dbm(sim, now),
            temperature_celsius=round(r.speaker_celsius(sim, now), 1),
        )
    elif kind == "radio_station":  # amplifier_ok: the transmitter's power amplifier
        body.update(
            amplifier_ok=sim.transmitter_ok,
            playing=sim.transmitter_ok,
            temperature_celsius=round(r.transmitter_celsius(sim, now), 1),
        )
    return body


class MqttPublishers:
    def __init__(
        self,
        world: World,
        clock: Clock,
        host: str,
        port: int,
        *,
        topics: MqttSettings | None = None,
        interval: float = 60.0,
        keepalive: int = 60,
    ) -> None:
        """`topics`: the daemon's MQTT settings, which give each site its base topic."""
        self.world = world
        self.clock = clock
        self.host, self.port = host, port
        self.interval = interval
        self.keepalive = keepalive
        self.sites = [sim for sim in world.sites.values() if publishes(sim)]
        settings = topics or MqttSettings()
        self.base = {sim.id: settings.base_topic(sim.site) for sim in self.sites}
        self.connected: set[str] = set()
        self.published: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._wake = {sim.id: asyncio.Event() for sim in self.sites}
        self._bind = _ipv4_literal(host)
        world.change_listeners.append(self._on_change)
        world.broker_listeners.append(self._on_broker)

    def topic(self, sim: SiteSim, leaf: str) -> str:
        return f"{self.base[sim.id]}/{leaf}"

    def _on_change(self, sim: SiteSim) -> None:
        wake = self._wake.get(sim.id)
        if wake is not None:
            wake.set()

    def _on_broker(self, up: bool) -> None:
        """The broker path is back: everyone reconnects now, not at the end of a backoff."""
        if up:
            for wake in self._wake.values():
                wake.set()

    def _source(self, sim: SiteSim) -> str:
        address = sim.probe.address if sim.probe is not None else ""
        return address if self._bind and _ipv4_literal(address) else ""

    def stats(self) -> dict[str, object]:
        return {
            "sites": len(self.sites),
            "connected": len(self.connected),
            "published": dict(self.published),
            "errors": dict(self.errors),
        }

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            for sim in self.sites:
                tasks.create_task(self._site(sim), name=f"mqtt:{sim.id}")

    async def _site(self, sim: SiteSim) -> None:
        """Connect while the site is reachable; publish; reconnect with backoff on loss."""
        rng = random.Random(sim.seed)
        wake = self._wake[sim.id]
        await asyncio.sleep(rng.uniform(0, min(2.0, len(self.sites) / 500)))  # spread connects
        retry = RETRY_FIRST
        while True:
            if not sim.reachable or not self.world.broker_up:
                # no attempt while the path is cut: aiomqtt would wait out its timeout on a
                # relay that drops the connection, and the device return late when it is back
                wake.clear()
                await wake.wait()
                continue
            try:
                await self._session(sim, wake, rng)
                retry = RETRY_FIRST
            except aiomqtt.MqttError as exc:
                self.errors[type(exc).__name__] += 1
                log.debug("site=%s: MQTT connection lost: %s", sim.id, exc)
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(retry * rng.uniform(0.5, 1.5)):
                        await wake.wait()
                retry = min(retry * 2, RETRY_MAX)

    async def _session(self, sim: SiteSim, wake: asyncio.Event, rng: random.Random) -> None:
        status = self.topic(sim, "status")
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=f"districtmon-sim-{sim.id}",
            will=aiomqtt.Will(status, b"offline", qos=1, retain=True),
            keepalive=self.keepalive,
            bind_address=self._source(sim),
            logger=_QUIET,
            timeout=10,
        )
        async with client:
            self.connected.add(sim.id)
            try:
                await client.publish(status, b"online", qos=1, retain=True)
                self.published["status"] += 1
                period = self.interval / self.clock.speed
                delay = rng.uniform(0, period)  # phase: telemetry of all sites is spread out
                while True:
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):  # not wait_for: it may lose a cancel
                            await wake.wait()
                    if not sim.reachable:
                        _drop(client)  # no DISCONNECT: the broker publishes the will
                        return
                    body = telemetry(sim, self.clock.now())
                    await client.publish(self.topic(sim, "telemetry"), json.dumps(body))
                    self.published["telemetry"] += 1
                    delay = period
            finally:
                self.connected.discard(sim.id)


def _drop(client: aiomqtt.Client) -> None:
    """Cut the TCP connection as a dying device would: no DISCONNECT packet.

    aiomqtt offers no public way to close without DISCONNECT; the paho client under it does
    (`socket()` is public paho API)."""
    sock = client._client.socket()
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _ipv4_literal(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False
