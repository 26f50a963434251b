"""The MQTT listener: one aiomqtt connection to the broker, kept up forever, feeding the pipeline.

Push-based sites are not polled: the scheduler leaves them out, and this task turns what their
devices publish into observations (ingest.py) and their silence into failed ones
(heartbeat.py).

A live last will waits `will_grace_seconds` before it counts (wills.py): mosquitto stopping
sends every device's will just before it drops the connection, and those are not outages.

While the daemon cannot see the broker -- not connected yet, connection lost, subscription
refused or lost -- it cannot see the sites either. Losing the broker makes every MQTT site
`unknown` ("monitor blind: broker lost") at once: their availability is not charged for the
monitor's own blindness, and silence is not counted while blind.

A connection can look fine while nothing arrives: a broker that granted a subscription its ACL
forbids to read (mosquitto does), a cluster node that lost it, a TCP path that died without a
word. So every `self_check_seconds` the listener publishes a fresh token on its own probe topic
(inside its subscription, see monitor/config/mqtt.py) and expects it back. Silence is only
ever counted up to the last echo (a device's message sent before it would have arrived before
it), so a check comes due at its own time but is confirmed only by the next echo, and is dated
at its own time; an echo that does not come makes the sites unknown ("monitor blind: subscription
lost") and the listener reconnect. After each (re)connection what the broker retained comes
first, with the subscription, while the sites are still unknown (the self-check has not yet
confirmed it), so none of it is taken: a broker with persistence keeps the wills it sent while
stopping, and those are no evidence. Fresh messages decide the sites, and silence counts
from the moment of connection, so a device that died meanwhile is down by its silence.
Connections are retried forever, with exponential backoff and jitter between
`reconnect_min_seconds` and `reconnect_max_seconds`.

Messages are handled as they arrive, inside aiomqtt's read callback: the client is given a
queue class whose `put_nowait` hands each message to the ingest at once instead of storing it.
That saves a task and a wait per message (aiomqtt's iterator makes both), about a third of the
CPU per message. The ingest never raises, so a bad message cannot break the connection; the
client's message iterator is still awaited, because that is where aiomqtt reports a lost
connection.

paho reads a packet in three or more system calls and aiomqtt hands it one packet per
readiness of the socket; the client's socket is wrapped to read ahead (readahead.py, put in
place by pahosocket.py, the one module that reaches into paho for it), so that one pass of the
event loop takes every whole packet one read from the kernel brought.

On a reload, the routes and timeouts change at once; if the broker settings or the
subscriptions change, the listener reconnects with the new ones (without going blind).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from monitor.config.mqtt import MqttSettings
from monitor.core.model import MqttProbe, Observation, Site
from monitor.core.ratelimit import RateLimitedLog
from monitor.probes.mqtt.counts import MqttCounts
from monitor.probes.mqtt.heartbeat import HeartbeatWatch
from monitor.probes.mqtt.ingest import Ingest
from monitor.probes.mqtt.pahosocket import read_ahead
from monitor.probes.mqtt.wills import WillGrace

log = logging.getLogger(__name__)
# paho logs two debug lines per message, and an error line for each reset socket, which the
# listener already reports, rate limited, as a broker lost or unreachable: noise, all of it.
_WIRE_LOG = logging.getLogger(__name__ + ".wire")
_WIRE_LOG.setLevel(logging.CRITICAL)

BROKER_LOST = "monitor blind: broker lost"
SUBSCRIPTION_LOST = "monitor blind: subscription lost"
#: The reason code of each way of going blind (monitor/core/reasons.py).
BLIND_CODES = {BROKER_LOST: "broker_lost", SUBSCRIPTION_LOST: "subscription_lost"}
CHECK_AT_LEAST_EVERY_SECONDS = 1.0
SUBSCRIBE_BATCH = 100
CLIENT_TIMEOUT_SECONDS = 5.0


class Sink(Protocol):
    """What the listener feeds: the daemon's Pipeline."""

    def observe(self, obs: Observation) -> None: ...

    def blind(self, site_ids: list[str], at: float, reason: str, code: str) -> None: ...

    def sight_restored(self, site_ids: list[str], at: float) -> None: ...


class SubscriptionLost(Exception):
    """The broker refused our subscription, or it stopped delivering our own echo."""


def mqtt_sites(sites: dict[str, Site]) -> dict[str, Site]:
    return {site_id: site for site_id, site in sites.items() if isinstance(site.probe, MqttProbe)}


class MqttListener:
    def __init__(
        self,
        settings: MqttSettings,
        sites: dict[str, Site],
        other_sites: dict[str, Site],
        sink: Sink,
        checks: Callable[[], int],
        counts: MqttCounts,
    ) -> None:
        """`sites` are this daemon's MQTT sites, `other_sites` those of other shards;
        `checks` gives the evaluator's current `down_after` (heartbeat checks per timeout)."""
        self._settings = settings
        self._sites = sites
        self._sink = sink
        self._checks = checks
        self._counts = counts
        self.watch = HeartbeatWatch()
        self.watch.watch(self._timeouts(), time.monotonic())
        self.wills = WillGrace(sink.observe, counts, settings.will_grace_seconds)
        self.ingest = Ingest(
            settings,
            sites.values(),
            other_sites.values(),
            self.wills.observe,
            self.watch.heard,
            counts,
            echo=self._on_echo,
            will=self.wills.hold,
        )
        self._filters = settings.filters(sites.values())
        self._seeing = asyncio.Event()
        self._reconnect = asyncio.Event()
        self._connections = 0
        self._warn = RateLimitedLog(log, period=60.0, burst=1)
        self._tokens = itertools.count(1)
        self._token = b""
        self._echoed = asyncio.Event()
        self._verified_until = 0.0  # monotonic, the last echo: silence is counted up to here
        self._taking = True
        counts.sites = len(sites)

    def _timeouts(self) -> dict[str, float]:
        return {site_id: self._settings.timeout_of(site) for site_id, site in self._sites.items()}

    @property
    def seeing(self) -> bool:
        """Connected and subscribed: the sites' messages can reach us."""
        return self._seeing.is_set()

    def update(
        self, settings: MqttSettings, sites: dict[str, Site], other: dict[str, Site]
    ) -> None:
        """A reload: new routes and timeouts now; a reconnection if the broker settings or
        the subscriptions changed."""
        old, old_sites = self._settings, self._sites
        self._settings, self._sites = settings, sites
        self._counts.sites = len(sites)
        self.wills.grace = settings.will_grace_seconds
        self.ingest.update(settings, sites.values(), other.values())
        self.watch.watch(self._timeouts(), time.monotonic())
        filters = settings.filters(sites.values())
        wanted_changed = bool(old_sites) != bool(sites)
        if _connection_changed(old, settings) or filters != self._filters or wanted_changed:
            self._filters = filters
            log.info("mqtt settings or subscriptions changed: reconnecting to the broker")
            self._reconnect.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._stay_connected(), name="mqtt-connection")
            tasks.create_task(self._check_heartbeats(), name="mqtt-heartbeats")

    # --- the connection ----------------------------------------------------------------

    async def _stay_connected(self) -> None:
        delay = self._settings.reconnect_min_seconds
        while True:
            if not self._sites:  # no MQTT site to watch: no connection until a reload adds one
                self._reconnect.clear()
                await self._reconnect.wait()
                continue
            reason = ""
            blind = BROKER_LOST
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                reason = str(exc) or type(exc).__name__
            except SubscriptionLost as exc:
                reason = str(exc)
                blind = SUBSCRIPTION_LOST
            except OSError as exc:  # e.g. a TLS file that became unreadable
                reason = f"{type(exc).__name__}: {exc}"
            was_seeing = self.seeing
            self._seeing.clear()
            self._counts.connected = False
            if not reason:  # a reload asked for a new connection
                delay = self._settings.reconnect_min_seconds
                continue
            set_aside = self.wills.set_aside()
            if set_aside:
                log.info(
                    "mqtt: %d last wills came with the loss of the broker: set aside, not outages",
                    set_aside,
                )
            if was_seeing:
                self._go_blind(reason, blind)
                delay = self._settings.reconnect_min_seconds
            else:
                self._counts.connect_failures += 1
                self._warn.warning(
                    "connect",
                    "mqtt: cannot reach the broker at %s:%d (%s); retrying in %.1f s",
                    self._settings.host,
                    self._settings.port,
                    reason,
                    delay,
                )
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._settings.reconnect_max_seconds)

    async def _session(self) -> None:
        """One connection: subscribe, then wait until it is lost or a reload wants a new one.
        Returns normally only for the latter."""
        settings = self._settings
        self._reconnect.clear()
        client = aiomqtt.Client(
            settings.host,
            settings.port,
            username=settings.username,
            password=settings.password.reveal() if settings.password is not None else None,
            identifier=settings.client_id,
            keepalive=settings.keepalive_seconds,
            clean_session=True,  # messages missed while away are stale by design: start afresh
            tls_context=_tls_context(settings),
            timeout=CLIENT_TIMEOUT_SECONDS,
            logger=_WIRE_LOG,
            queue_type=self._handing_queue(),
        )
        _fail_fast_when_closed(client)
        read_ahead(client)
        self._taking = True
        try:
            async with client:
                try:
                    await self._subscribed(client)
                except asyncio.CancelledError:
                    # the daemon is stopping: what still arrives while we say goodbye is
                    # dropped, the pipeline and ledger behind us are closing
                    self._taking = False
                    raise
        finally:
            _settle_disconnection(client)

    async def _subscribed(self, client: aiomqtt.Client) -> None:
        """Subscribe, check, then wait until the session ends (see `_session`)."""
        settings = self._settings
        filters = self._filters
        for start in range(0, len(filters), SUBSCRIBE_BATCH):
            batch = [(topic, settings.qos) for topic in filters[start : start + SUBSCRIBE_BATCH]]
            granted = await client.subscribe(batch)
            if any(_refused(code) for code in granted):
                raise SubscriptionLost(f"the broker refused a subscription among {batch}")
        if settings.self_check_seconds > 0:
            await self._self_check(client)
        else:
            self._verified_until = math.inf
        self.watch.restart(time.monotonic())
        self._sink.sight_restored(list(self._sites), time.time())
        self._seeing.set()
        self._counts.connected = True
        self._counts.subscriptions = len(filters)
        if self._connections:
            self._counts.reconnects += 1
        self._connections += 1
        log.info(
            "mqtt: connected to %s:%d as %s, %d subscriptions, watching %d sites",
            settings.host,
            settings.port,
            settings.client_id,
            len(filters),
            len(self._sites),
        )
        lost = asyncio.ensure_future(_until_lost(client))
        asked = asyncio.ensure_future(self._reconnect.wait())
        checks = asyncio.ensure_future(self._keep_checking(client))
        waiting = [lost, checks, asked]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel_all(waiting)
        # every outcome is read: when the connection drops, the loss and a self-check
        # publishing on it fail together, and an error left unread is logged as a traceback
        for task in (lost, checks):
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error

    async def _keep_checking(self, client: aiomqtt.Client) -> None:
        if self._settings.self_check_seconds <= 0:
            await asyncio.Event().wait()  # checks are off: wait for the end of the session
        while True:
            await asyncio.sleep(self._settings.self_check_seconds)
            await self._self_check(client)

    async def _self_check(self, client: aiomqtt.Client) -> None:
        """Publish a fresh token on our probe topic and wait for it to come back through our
        own subscription; raise SubscriptionLost if it does not."""
        settings = self._settings
        wait = min(5.0, max(1.0, settings.self_check_seconds))
        self._token = f"self-check {next(self._tokens)} {random.getrandbits(32):08x}".encode()
        self._echoed.clear()
        await client.publish(settings.probe_topic, self._token, qos=1)
        try:
            async with asyncio.timeout(wait):  # not wait_for: see scheduler._sleep
                await self._echoed.wait()
        except TimeoutError:
            raise SubscriptionLost(
                f"no echo of the self-check on {settings.probe_topic} within {wait:g} s: the "
                "subscription was lost, or the account may not publish there "
                "(mqtt.self_check_seconds: 0 turns the check off)"
            ) from None

    def _on_echo(self, payload: bytes) -> None:
        if payload == self._token:
            self._verified_until = time.monotonic()
            self._echoed.set()

    def _handing_queue(self) -> type[asyncio.Queue[aiomqtt.Message]]:
        handle = self.ingest.handle
        listener = self

        class HandingQueue(asyncio.Queue[aiomqtt.Message]):
            """Hands each message to the ingest instead of storing it (see the module doc)."""

            def put_nowait(self, item: aiomqtt.Message) -> None:
                if listener._taking:
                    handle(item.topic.value, item.payload, item.retain)

        return HandingQueue

    def _go_blind(self, reason: str, blind: str) -> None:
        at = time.time()
        self._verified_until = 0.0
        self._sink.blind(list(self._sites), at, blind, BLIND_CODES[blind])
        log.warning(
            "mqtt: lost the broker at %s:%d (%s): %d MQTT sites are unknown until it is back",
            self._settings.host,
            self._settings.port,
            reason,
            len(self._sites),
        )

    # --- silence -----------------------------------------------------------------------

    async def _check_heartbeats(self) -> None:
        while True:
            await self._seeing.wait()
            now = time.monotonic()
            wall = time.time()
            # only up to the last moment our own echo proved that messages could reach us
            for overdue in self.watch.due(min(now, self._verified_until), self._checks()):
                self.wills.observe(
                    Observation(
                        overdue.site,
                        wall - (now - overdue.at),
                        False,
                        error=f"no message for {overdue.silence:.0f} s "
                        f"(heartbeat timeout {overdue.timeout:g} s)",
                        error_reason="silent",
                        probe="mqtt",
                    )
                )
            due = self.watch.next_due()
            now = time.monotonic()
            if due is None:
                wait = CHECK_AT_LEAST_EVERY_SECONDS
            elif due <= now:  # due, but after the last echo: wait for the next one
                wait = 0.25
            else:
                wait = due - now
            await asyncio.sleep(min(wait, CHECK_AT_LEAST_EVERY_SECONDS))


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until each has ended, cancelling again those that go on.

    aiomqtt waits for a PUBACK with Python 3.11's `asyncio.wait_for`, which loses a
    cancellation that comes in the instant the PUBACK does: the self-check would then carry
    on, and a single cancel-and-wait would wait for it forever."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for task in tasks:  # read here, so that none is reported as never retrieved
        if not task.cancelled():
            task.exception()


async def _until_lost(client: aiomqtt.Client) -> None:
    """Returns never: messages go straight to the ingest; raises MqttError when the
    connection is lost."""
    async for _message in client.messages:
        pass


def _fail_fast_when_closed(client: aiomqtt.Client) -> None:
    """End a connection attempt as soon as the other side closes it before its CONNACK.

    aiomqtt ignores a disconnection that comes before the CONNACK and waits out its whole
    timeout (5 s). A path that accepts and drops -- a relay or load balancer with no broker
    behind it, a broker at its connection limit -- would then space the attempts by the
    timeout instead of the backoff, and a broker that came back would be seen up to 5 s late:
    its sites unknown that much longer. paho reports the closure; this turns it into the
    failure of the attempt, which aiomqtt handles as a refused CONNACK."""
    paho = client._client
    inner = paho.on_disconnect

    def on_disconnect(*args: Any) -> None:
        connected = getattr(client, "_connected", None)
        if isinstance(connected, asyncio.Future) and not connected.done():
            connected.set_exception(
                aiomqtt.MqttError("the broker closed the connection before accepting it")
            )
        if inner is not None:
            inner(*args)

    paho.on_disconnect = on_disconnect


def _settle_disconnection(client: aiomqtt.Client) -> None:
    """aiomqtt keeps the reason a connection dropped in a future that only its message
    iterator reads; when the session ends on our side first (a self-check that failed, a
    reload), nothing reads it and asyncio logs "Future exception was never retrieved" at
    exit. The reason is already ours (it ended the session, or does not matter): read it."""
    disconnected = getattr(client, "_disconnected", None)
    if not isinstance(disconnected, asyncio.Future) or not disconnected.done():
        return
    if not disconnected.cancelled():
        disconnected.exception()


def _refused(code: int | ReasonCode) -> bool:
    if isinstance(code, ReasonCode):
        return bool(code.is_failure)
    return code >= 0x80


class _ClosingSSLSocket(ssl.SSLSocket):
    """paho drops the socket of a failed TLS handshake (a wrong authority, an expired
    certificate) without closing it; every retry would leak one until the collector runs."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def _tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    tls = settings.tls
    if tls is None:
        return None
    context = ssl.create_default_context(
        cafile=str(tls.ca_file) if tls.ca_file is not None else None
    )
    context.sslsocket_class = _ClosingSSLSocket
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    context.check_hostname = tls.verify_hostname
    return context


def _connection_changed(old: MqttSettings, new: MqttSettings) -> bool:
    fields = (
        "host",
        "port",
        "tls",
        "username",
        "password",
        "client_id",
        "qos",
        "keepalive_seconds",
    )
    return any(getattr(old, name) != getattr(new, name) for name in fields)
