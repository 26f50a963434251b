"""The MQTT listener in the daemon's pipeline against a real mosquitto on loopback: heartbeats,
silence, last wills, retained messages, broker loss and return, TLS and broker accounts."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import aiomqtt
import pytest
from broker import Device, Mosquitto, make_tls_files, telemetry
from cutrelay import CutRelay, cut_relay
from prometheus_client import CollectorRegistry

from monitor.config.credentials import Secret
from monitor.config.load import load_config
from monitor.config.mqtt import MqttSettings, TlsSettings
from monitor.core.model import MqttProbe, Site, State
from monitor.expose.mqtt_metrics import registered_counts
from monitor.expose.self_metrics import build_registry
from monitor.ledger.records import read_intervals
from monitor.ledger.writer import Ledger
from monitor.probes.mqtt.counts import REJECT_REASONS
from monitor.probes.mqtt.listener import BROKER_LOST, SUBSCRIPTION_LOST, MqttListener
from monitor.simulator.relay import BrokerRelay
from monitor.state.evaluator import Evaluator
from monitor.state.live import LiveState
from monitor.state.pipeline import Pipeline

PROFILES = load_config(Path(__file__).parents[1] / "config", {}).mqtt.profiles
TIMEOUT = 1.5  # heartbeat timeout: 3 checks 0.5 s apart
DOWN_AFTER = 3


def speaker(site_id: str, timeout: float = TIMEOUT) -> Site:
    return Site(
        site_id,
        "loudspeaker",
        site_id,
        "thanh-nua",
        "rtv",
        21.0,
        103.0,
        MqttProbe(heartbeat_timeout_seconds=timeout),
    )


def base(site_id: str) -> str:
    return f"dienbien/thanh-nua/loudspeaker/{site_id}"


@dataclass
class Rig:
    """Listener + pipeline + ledger + metrics, running as the daemon runs them."""

    broker: Mosquitto
    listener: MqttListener
    pipeline: Pipeline
    live: LiveState
    registry: CollectorRegistry
    ledger: Ledger
    ledger_path: Path

    def state(self, site: str) -> State:
        return self.live.views[site].state

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    async def until(self, what: str, check: Callable[[], bool], limit: float = 10.0) -> float:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if check():
                return time.time()
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; states: {self.states()}")

    def states(self) -> dict[str, str]:
        return {site: view.state.value for site, view in self.live.views.items()}


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as running:
        running.start()
        yield running


class RigFactory(Protocol):
    """What `rig_factory` gives: start a rig for `sites` against `broker`, with these of the
    MQTT settings set (the rest are the test's fast timings)."""

    async def __call__(
        self,
        broker: Mosquitto,
        sites: list[Site],
        *,
        tls: TlsSettings | None = None,
        username: str | None = None,
        password: Secret | None = None,
        port: int | None = None,
        self_check_seconds: float = 0.3,
    ) -> Rig: ...


@pytest.fixture
async def rig_factory(tmp_path: Path) -> AsyncIterator[RigFactory]:
    """Start a rig for some sites against a broker; everything is stopped afterwards."""
    stops: list[Callable[[], Awaitable[None]]] = []

    async def start(
        broker: Mosquitto,
        sites: list[Site],
        *,
        tls: TlsSettings | None = None,
        username: str | None = None,
        password: Secret | None = None,
        port: int | None = None,
        self_check_seconds: float = 0.3,
    ) -> Rig:
        mqtt = MqttSettings(
            host=broker.host,
            port=broker.port if port is None else port,
            tls=tls,
            username=username,
            password=password,
            heartbeat_timeout_seconds=TIMEOUT,
            reconnect_min_seconds=0.1,
            reconnect_max_seconds=0.4,
            keepalive_seconds=5,
            self_check_seconds=self_check_seconds,
            will_grace_seconds=0.5,
            profiles=PROFILES,
            client_id=f"districtmon-test-{len(stops)}",
        )
        by_id = {site.id: site for site in sites}
        live = LiveState(by_id)
        registry, metrics = build_registry()
        path = tmp_path / f"ledger-{len(stops)}.sqlite"
        ledger = await Ledger.open(path)
        await ledger.sync_sites(sites)
        pipeline = Pipeline(Evaluator(DOWN_AFTER, 2), ledger, live, metrics)
        pipeline.start(list(by_id), time.time())
        listener = MqttListener(
            mqtt, by_id, {}, pipeline, lambda: DOWN_AFTER, registered_counts(registry)
        )
        writer = asyncio.create_task(ledger.run())
        task = asyncio.create_task(listener.run())

        async def stop() -> None:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            ledger.stop()
            await writer
            await ledger.close()

        stops.append(stop)
        return Rig(broker, listener, pipeline, live, registry, ledger, path)

    yield start
    for stop in reversed(stops):
        await stop()


async def publish(broker: Mosquitto, topic: str, payload: str, retain: bool = False) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(topic, payload, qos=1, retain=retain)


async def test_heartbeats_keep_a_site_up_and_silence_takes_it_down_after_the_timeout(
    broker: Mosquitto, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(broker, [speaker("loa-a"), speaker("loa-b")])
    await rig.until("connected", lambda: rig.listener.seeing)
    async with aiomqtt.Client(broker.host, broker.port) as device:
        for _ in range(12):  # 2.4 s of reports every 0.2 s: longer than the timeout
            await device.publish(f"{base('loa-a')}/telemetry", telemetry(battery_volts=13.5), qos=1)
            last_report = time.time()
            await asyncio.sleep(0.2)
    assert rig.state("loa-a") is State.UP
    assert rig.live.views["loa-a"].values["battery_volts"] == 13.5
    assert rig.state("loa-b") is State.DOWN  # never heard of: down after the timeout
    down_at = await rig.until("loa-a down", lambda: rig.state("loa-a") is State.DOWN)
    # down when the timeout has passed, not before; dated at the first overdue check
    assert TIMEOUT - 0.3 <= down_at - last_report <= TIMEOUT + 1.0
    since = rig.live.views["loa-a"].since
    assert since is not None and 0 < since - last_report <= TIMEOUT / DOWN_AFTER + 0.6
    assert "no message for" in rig.live.views["loa-a"].reason


async def test_a_killed_devices_last_will_takes_it_down_at_once(
    broker: Mosquitto, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(broker, [speaker("loa-a", timeout=60.0)])
    await rig.until("connected", lambda: rig.listener.seeing)
    device = Device(broker, base("loa-a"), period=0.2)
    await asyncio.to_thread(device.start)
    try:
        await rig.until("up", lambda: rig.state("loa-a") is State.UP)
        killed = time.time()
        await asyncio.to_thread(device.kill)
        down = await rig.until("down by will", lambda: rig.state("loa-a") is State.DOWN, 5.0)
    finally:
        device.kill()
    # the will, not the 60 s heartbeat timeout; counted once the broker outlived its grace
    assert 0.5 <= down - killed < 3.0
    view = rig.live.views["loa-a"]
    assert view.since is not None and killed <= view.since <= killed + 0.5 <= down
    assert "last will" in view.reason
    assert rig.metric("districtmon_mqtt_messages_ignored_total", reason="broker_shutdown") == 0


async def test_a_stale_retained_report_and_a_retained_online_do_not_revive_a_site(
    broker: Mosquitto, rig_factory: RigFactory
) -> None:
    await publish(broker, f"{base('loa-a')}/status", "online", retain=True)
    old = json.dumps({"ts": time.time() - 30, "online": True})
    await publish(broker, f"{base('loa-a')}/telemetry", old, retain=True)
    await publish(broker, f"{base('loa-b')}/telemetry", '{"online": true}', retain=True)
    rig = await rig_factory(broker, [speaker("loa-a"), speaker("loa-b")])
    await rig.until("connected", lambda: rig.listener.seeing)
    await rig.until(
        "retained messages seen",
        lambda: (rig.metric("districtmon_mqtt_messages_rejected_total", reason="stale") or 0) >= 2,
    )
    assert rig.metric("districtmon_mqtt_messages_ignored_total", reason="retained_status") == 1
    assert rig.states() == {"loa-a": "unknown", "loa-b": "unknown"}
    await rig.until("both down", lambda: set(rig.states().values()) == {"down"})
    # a fresh retained report counts: a restart of the daemon sees it
    fresh = json.dumps({"ts": time.time(), "online": True})
    await publish(broker, f"{base('loa-a')}/telemetry", fresh, retain=True)
    await publish(broker, f"{base('loa-a')}/telemetry", fresh)
    await rig.until("loa-a up", lambda: rig.state("loa-a") is State.UP)


async def test_losing_the_broker_makes_sites_unknown_and_back_without_downtime(
    broker: Mosquitto, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(broker, [speaker("loa-a"), speaker("loa-b")])
    alive = Device(broker, base("loa-a"), period=0.2)
    dead = Device(broker, base("loa-b"), period=0.2)
    await asyncio.to_thread(alive.start)
    await asyncio.to_thread(dead.start)
    try:
        await rig.until("both up", lambda: set(rig.states().values()) == {"up"})
        await asyncio.to_thread(dead.kill)
        await rig.until("loa-b down", lambda: rig.state("loa-b") is State.DOWN)
        assert rig.metric("districtmon_mqtt_broker_connected") == 1

        lost_at = time.time()
        await asyncio.to_thread(broker.stop)
        await rig.until("blind", lambda: set(rig.states().values()) == {"unknown"}, 5.0)
        assert {view.reason for view in rig.live.views.values()} == {BROKER_LOST}
        assert rig.metric("districtmon_mqtt_broker_connected") == 0
        await asyncio.sleep(TIMEOUT + 0.5)  # longer than a timeout: blindness charges nothing
        assert set(rig.states().values()) == {"unknown"}
        assert (rig.metric("districtmon_mqtt_broker_connect_failures_total") or 0) >= 1

        await asyncio.to_thread(broker.start)
        back = await rig.until("loa-a up again", lambda: rig.state("loa-a") is State.UP)
        assert rig.metric("districtmon_mqtt_broker_connected") == 1
        assert rig.metric("districtmon_mqtt_broker_reconnects_total") == 1
        # the dead one's retained will died with the broker: its silence takes it down again
        await rig.until("loa-b down again", lambda: rig.state("loa-b") is State.DOWN)
        assert rig.live.views["loa-b"].since is not None
        assert rig.live.views["loa-b"].since > back - 1.0
        await asyncio.wait_for(rig.ledger.flushed(), 10)  # every transition so far committed
        a = read_intervals(rig.ledger_path, "loa-a")
        b = read_intervals(rig.ledger_path, "loa-b")
    finally:
        alive.kill()
        dead.kill()
    assert [i.state for i in a] == [State.UNKNOWN, State.UP, State.UNKNOWN, State.UP]
    assert a[2].reason == BROKER_LOST and lost_at <= a[2].start <= lost_at + 5
    for earlier, later in itertools.pairwise(a):
        assert earlier.end == later.start
    assert [i.state for i in b] == [State.UNKNOWN, State.UP, State.DOWN, State.UNKNOWN, State.DOWN]
    # the down time before the loss ends when the monitor went blind
    assert b[2].end == b[3].start and b[3].reason == BROKER_LOST


async def test_a_connection_lost_during_a_self_check_leaves_no_error_unread(
    broker: Mosquitto, rig_factory: RigFactory
) -> None:
    """A self-check publishing when the broker dies fails in the same instant as the session:
    the listener reads both failures, so the event loop logs no "exception was never
    retrieved" traceback (the soak counts them), and it reconnects each time."""
    unread: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unread.append(str(context["message"])))
    try:
        rig = await rig_factory(broker, [speaker("loa-a")], self_check_seconds=0.001)
        for _ in range(6):
            await rig.until("connected", lambda: rig.listener.seeing)
            await asyncio.sleep(0.05)  # self-checks publishing back to back
            await asyncio.to_thread(broker.stop)
            await rig.until("blind", lambda: not rig.listener.seeing)
            await asyncio.to_thread(broker.start)
        await rig.until("connected", lambda: rig.listener.seeing)
        gc.collect()  # a task's unread exception is reported when the task is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert unread == []


async def test_a_path_that_drops_connections_is_retried_at_the_backoff_and_seen_back_at_once(
    broker: Mosquitto, rig_factory: RigFactory
) -> None:
    """A relay with no broker behind it accepts and drops: each attempt fails at once, so the
    listener keeps its backoff (0.1..0.4 s here) and sees the broker as soon as it is back,
    not at the end of a 5 s wait for a CONNACK that cannot come."""
    relay = BrokerRelay(("127.0.0.1", 0), (broker.host, broker.port))
    await relay.start()
    try:
        relay.set_up(False)
        rig = await rig_factory(broker, [speaker("loa-a")], port=relay.port)
        await asyncio.sleep(2.0)
        assert relay.refused >= 4, f"{relay.refused} attempts in 2 s"
        assert not rig.listener.seeing
        relay.set_up(True)
        restored = time.monotonic()
        await rig.until("seeing", lambda: rig.listener.seeing, 5.0)
        # a backoff at most (0.4 s, jitter 1.2), a connection and one self-check echo
        assert time.monotonic() - restored < 1.5
    finally:
        await relay.close()


async def test_tls_with_a_private_authority(tmp_path: Path, rig_factory: RigFactory) -> None:
    ca, cert, key = make_tls_files(tmp_path / "tls")
    with Mosquitto(tls=(ca, cert, key)) as broker:
        broker.start()
        rig = await rig_factory(broker, [speaker("loa-a")], tls=TlsSettings(ca_file=ca))
        await rig.until("connected over TLS", lambda: rig.listener.seeing)
        tls = aiomqtt.Client(broker.host, broker.port, tls_params=aiomqtt.TLSParameters(str(ca)))
        async with tls as device:
            await device.publish(f"{base('loa-a')}/status", "online", qos=1)
        await rig.until("up", lambda: rig.state("loa-a") is State.UP)

        other_ca, _, _ = make_tls_files(tmp_path / "other")
        wrong = await rig_factory(broker, [speaker("loa-a")], tls=TlsSettings(ca_file=other_ca))
        await wrong.until(
            "refused certificate",
            lambda: (wrong.metric("districtmon_mqtt_broker_connect_failures_total") or 0) >= 2,
        )
        assert not wrong.listener.seeing and wrong.state("loa-a") is State.UNKNOWN


async def test_a_broker_account_is_used_and_its_password_never_logged(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    password = "Qz4-very-secret-broker-pw"
    with Mosquitto(users={"districtmon": password}) as broker, caplog.at_level(logging.DEBUG):
        broker.start()
        good = await rig_factory(
            broker, [speaker("loa-a")], username="districtmon", password=Secret(password)
        )
        bad = await rig_factory(
            broker, [speaker("loa-a")], username="districtmon", password=Secret("wrong")
        )
        await good.until("connected", lambda: good.listener.seeing)
        await bad.until(
            "refused",
            lambda: (bad.metric("districtmon_mqtt_broker_connect_failures_total") or 0) >= 2,
        )
        assert not bad.listener.seeing
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "cannot reach the broker" in text and "authori" in text.lower()
    assert password not in text and "wrong" not in text.replace("wrong_", "")


async def test_a_reload_moves_routes_at_once_and_reconnects_for_new_subscriptions(
    broker: Mosquitto, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(broker, [speaker("loa-a", timeout=30)])
    await rig.until("connected", lambda: rig.listener.seeing)
    moved = replace(speaker("loa-a", timeout=30), probe=MqttProbe(topic="vendor/loa-a"))
    settings = replace(rig.listener._settings)
    rig.listener.update(settings, {"loa-a": moved}, {})
    await rig.until(
        "reconnected",
        lambda: rig.metric("districtmon_mqtt_broker_reconnects_total") == 1 and rig.listener.seeing,
    )
    assert rig.metric("districtmon_mqtt_subscriptions") == 4
    await publish(broker, "vendor/loa-a/status", "online")
    await rig.until("up on its new topic", lambda: rig.state("loa-a") is State.UP)


READ_WRITE = "user districtmon\ntopic readwrite #\n"
WRITE_ONLY = "user districtmon\ntopic write #\n"


async def test_a_subscription_that_stops_delivering_makes_sites_unknown_not_down(
    rig_factory: RigFactory,
) -> None:
    password = "acl-test-password"
    with Mosquitto(users={"districtmon": password}, acl=READ_WRITE) as broker:
        broker.start()
        rig = await rig_factory(
            broker, [speaker("loa-a")], username="districtmon", password=Secret(password)
        )
        device = Device(broker, base("loa-a"), period=0.2)
        await asyncio.to_thread(device.start)
        try:
            await rig.until("up", lambda: rig.state("loa-a") is State.UP)
            # the broker keeps the subscription but no longer delivers anything on it
            await asyncio.to_thread(broker.change_acl, WRITE_ONLY)
            await rig.until("blind", lambda: rig.state("loa-a") is State.UNKNOWN, 5.0)
            assert rig.live.views["loa-a"].reason == SUBSCRIPTION_LOST
            assert rig.metric("districtmon_mqtt_broker_connected") == 0
            await asyncio.sleep(TIMEOUT + 0.5)  # silence while blind is charged to nobody
            assert rig.state("loa-a") is State.UNKNOWN
            await asyncio.to_thread(broker.change_acl, READ_WRITE)
            await rig.until("back", lambda: rig.state("loa-a") is State.UP, 10.0)
            await asyncio.wait_for(rig.ledger.flushed(), 10)
            states = [i.state for i in read_intervals(rig.ledger_path, "loa-a")]
        finally:
            device.kill()
    assert states == [State.UNKNOWN, State.UP, State.UNKNOWN, State.UP]


async def test_a_broker_that_stops_charges_no_site_with_an_outage(
    broker: Mosquitto, rig_factory: RigFactory
) -> None:
    """mosquitto stopped with SIGTERM publishes every device's last will about a millisecond
    before it closes our connection: those wills are the broker's end, not the devices'. A
    SIGKILL publishes nothing. Either way, the sites are unknown while the broker is away and
    no down interval is charged to them."""
    ids = [f"loa-{n}" for n in range(6)]
    rig = await rig_factory(broker, [speaker(site, timeout=30.0) for site in ids])
    devices = [Device(broker, base(site), period=0.2) for site in ids]
    for device in devices:
        await asyncio.to_thread(device.start)
    stops = [True, False, True, False, True]  # SIGTERM, SIGKILL, ...
    try:
        await rig.until("all up", lambda: set(rig.states().values()) == {"up"})
        for graceful in stops:
            await asyncio.to_thread(broker.stop, graceful=graceful)
            await rig.until("blind", lambda: set(rig.states().values()) == {"unknown"}, 5.0)
            await asyncio.to_thread(broker.start)
            await rig.until("all up again", lambda: set(rig.states().values()) == {"up"}, 15.0)
        await asyncio.wait_for(rig.ledger.flushed(), 10)
        intervals = {site: read_intervals(rig.ledger_path, site) for site in ids}
    finally:
        for device in devices:
            device.kill()
    for site, recorded in intervals.items():
        states = [i.state for i in recorded]
        assert State.DOWN not in states, f"{site}: {states}"
        assert states == [State.UNKNOWN] + [State.UP, State.UNKNOWN] * len(stops) + [State.UP]
    # wills did arrive (so the case was played) and were set aside, counted; how many of the
    # 18 reach us before the broker closes our own connection varies (5 to 18 seen)
    set_aside = rig.metric("districtmon_mqtt_messages_ignored_total", reason="broker_shutdown")
    assert set_aside is not None and set_aside >= 1


async def test_a_will_then_a_quick_return_are_both_recorded_in_order(
    broker: Mosquitto, rig_factory: RigFactory
) -> None:
    """A device that comes back within the will's grace: its `online` lets the held will
    through first, so the short outage is recorded, not lost or reordered."""
    rig = await rig_factory(broker, [speaker("loa-a", timeout=30.0)])
    await rig.until("connected", lambda: rig.listener.seeing)
    async with aiomqtt.Client(broker.host, broker.port) as device:
        await device.publish(f"{base('loa-a')}/status", "online", qos=1)
        await rig.until("up", lambda: rig.state("loa-a") is State.UP)
        await device.publish(f"{base('loa-a')}/status", "offline", qos=1)
        await rig.until("will held", lambda: rig.listener.wills.held == 1, 2.0)
        for _ in range(2):  # up_after is 2
            await device.publish(f"{base('loa-a')}/status", "online", qos=1)
    await rig.until("up again", lambda: len(read_intervals(rig.ledger_path, "loa-a")) == 4)
    states = [i.state for i in read_intervals(rig.ledger_path, "loa-a")]
    assert states == [State.UNKNOWN, State.UP, State.DOWN, State.UP]


async def test_wills_a_persistent_broker_kept_over_its_restart_are_not_outages(
    rig_factory: RigFactory,
) -> None:
    """With persistence on (Debian's default), the wills mosquitto sent while stopping are
    retained over its restart: every site's status says `offline` when the daemon is back.
    They arrive with the subscription, before the self-check has shown the daemon can see
    again, and are not taken: the sites whose devices come back are up, and one that stays
    dead is down by its silence, as any silent site."""
    ids = [f"loa-{n}" for n in range(4)]
    with Mosquitto(persistence=True) as broker:
        broker.start()
        rig = await rig_factory(broker, [speaker(site) for site in ids])
        devices = [Device(broker, base(site), period=0.2) for site in ids]
        for device in devices:
            await asyncio.to_thread(device.start)
        try:
            await rig.until("all up", lambda: set(rig.states().values()) == {"up"})
            await asyncio.to_thread(broker.stop, graceful=True)  # the wills, kept on disk
            for device in devices:
                await asyncio.to_thread(device.kill)  # so that the daemon is back first
            await rig.until("blind", lambda: set(rig.states().values()) == {"unknown"}, 5.0)
            await asyncio.to_thread(broker.start)
            await rig.until("reconnected", lambda: rig.listener.seeing)
            for device in devices[:3]:  # loa-3 stays dead
                await asyncio.to_thread(device.start)
            want = {"loa-0": "up", "loa-1": "up", "loa-2": "up", "loa-3": "down"}
            await rig.until("three up, one down", lambda: rig.states() == want, 15.0)
            await asyncio.wait_for(rig.ledger.flushed(), 10)
            intervals = {site: read_intervals(rig.ledger_path, site) for site in ids}
        finally:
            for device in devices:
                device.kill()
    for site in ids[:3]:
        states = [i.state for i in intervals[site]]
        assert states == [State.UNKNOWN, State.UP, State.UNKNOWN, State.UP], site
    dead = intervals["loa-3"]
    assert [i.state for i in dead] == [State.UNKNOWN, State.UP, State.UNKNOWN, State.DOWN]
    assert "no message for" in dead[3].reason  # its silence, not the broker's memory


async def test_a_scaled_field_reads_the_decimal_the_device_sent(
    broker: Mosquitto, rig_factory: RigFactory
) -> None:
    # volume 70 percent at scale 0.01: 0.7, not 70 * 0.01 = 0.7000000000000001
    rig = await rig_factory(broker, [speaker("loa-a", timeout=60.0)])
    await rig.until("connected", lambda: rig.listener.seeing)
    await publish(broker, f"{base('loa-a')}/telemetry", telemetry(volume=70, battery_volts=13.6))
    await rig.until("report", lambda: "volume_ratio" in rig.live.views["loa-a"].values)
    assert rig.live.views["loa-a"].values["volume_ratio"] == 0.7


# --- how the bytes arrive: the client's socket reads ahead (monitor/probes/mqtt/readahead.py) ---

BIG_NOTE = "x" * 200  # a report over 127 bytes: its remaining length takes two bytes


def rejections(rig: Rig) -> dict[str, float]:
    found = {
        reason: rig.metric("districtmon_mqtt_messages_rejected_total", reason=reason) or 0.0
        for reason in REJECT_REASONS
    }
    return {reason: count for reason, count in found.items() if count}


@pytest.fixture
async def relay(broker: Mosquitto) -> AsyncIterator[CutRelay]:
    async with cut_relay((broker.host, broker.port)) as relay:
        yield relay


async def test_reports_cut_at_every_byte_even_inside_their_length_reach_state_in_order(
    broker: Mosquitto, relay: CutRelay, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(broker, [speaker("loa-a", timeout=60.0)], port=relay.port)
    await rig.until("connected", lambda: rig.listener.seeing)
    relay.bytewise = True
    writes = relay.writes
    sent = 0
    for n in range(3):
        report = telemetry(temperature_celsius=float(n), note=BIG_NOTE)
        await publish(broker, f"{base('loa-a')}/telemetry", report)
        sent += len(report)
    await rig.until(
        "the third report",
        lambda: rig.live.views["loa-a"].values.get("temperature_celsius") == 2.0,
        15.0,
    )
    assert relay.writes - writes >= sent  # one byte a write: every cut there is, was made
    assert rig.state("loa-a") is State.UP
    assert rejections(rig) == {}
    assert rig.metric("districtmon_mqtt_broker_reconnects_total") == 0


async def test_a_burst_in_one_read_is_taken_whole_and_a_malformed_report_in_it_is_counted(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Hundreds of reports reach the client in one write, two of them malformed: each of the
    others reaches state, the two are counted by reason and logged, and the connection stays."""
    ids = [f"loa-{n}" for n in range(5)]
    rounds = 60
    burst: list[tuple[str, str | bytes]] = []
    for n in range(rounds):
        for site in ids:
            burst.append((f"{base(site)}/telemetry", telemetry(temperature_celsius=float(n))))
        if n == rounds // 2:
            burst.append((f"{base('loa-1')}/telemetry", b"{not json"))
            burst.append((f"{base('loa-2')}/telemetry", '{"ts": "yesterday"}'))
    # the broker sends QoS 1 messages only so many at a time before their acknowledgements
    # (20 by default): no limit here, so that all of them are in the one write
    with Mosquitto(extra="max_inflight_messages 0") as broker:
        broker.start()
        async with cut_relay((broker.host, broker.port)) as relay:
            sites = [speaker(s, timeout=60.0) for s in ids]
            rig = await rig_factory(broker, sites, port=relay.port)
            await rig.until("connected", lambda: rig.listener.seeing)
            received = rig.metric("districtmon_mqtt_messages_received_total") or 0.0
            relay.hold()
            await asyncio.to_thread(broker.publish_many, burst)
            await asyncio.sleep(0.1)
            written = relay.release()
            last = float(rounds - 1)
            await rig.until(
                "every site's last report",
                lambda: all(
                    rig.live.views[s].values.get("temperature_celsius") == last for s in ids
                ),
                5.0,
            )
            assert written > sum(len(payload) for _, payload in burst)
            taken = (rig.metric("districtmon_mqtt_messages_received_total") or 0.0) - received
            assert taken >= len(burst)  # and the self-check echoes
            assert rejections(rig) == {"not_json": 1, "wrong_type": 1}
            assert {s: rig.state(s) for s in ids} == dict.fromkeys(ids, State.UP)
            assert rig.metric("districtmon_mqtt_broker_reconnects_total") == 0
    logged = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert any("not_json" in line and "loa-1" in line for line in logged), logged
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


async def test_a_connection_cut_inside_a_packet_is_a_broker_loss_and_the_next_starts_clean(
    broker: Mosquitto, relay: CutRelay, rig_factory: RigFactory
) -> None:
    """The connection drops after the command byte and the first length byte of a report: the
    half-read packet goes with its connection (the sites turn unknown, the broker lost), and
    the next connection reads its own packets from their first byte."""
    rig = await rig_factory(broker, [speaker("loa-a", timeout=60.0)], port=relay.port)
    topic = f"{base('loa-a')}/telemetry"
    await rig.until("connected", lambda: rig.listener.seeing)
    for n in range(2):
        await publish(broker, topic, telemetry(temperature_celsius=float(n)))
    await rig.until("up", lambda: rig.state("loa-a") is State.UP)
    relay.cut_within_next(at_least=200, keep=2)
    await publish(broker, topic, telemetry(temperature_celsius=2.0, note=BIG_NOTE))
    await rig.until("blind", lambda: rig.state("loa-a") is State.UNKNOWN, 5.0)
    assert relay.cuts == 1
    assert rig.live.views["loa-a"].reason == BROKER_LOST
    assert rejections(rig) == {}  # the half packet was not read as a broken one
    await rig.until("seeing again", lambda: rig.listener.seeing, 5.0)
    for n in (3, 4):
        await publish(broker, topic, telemetry(temperature_celsius=float(n), note=BIG_NOTE))
    await rig.until(
        "up with the fresh reports",
        lambda: (
            rig.state("loa-a") is State.UP
            and rig.live.views["loa-a"].values.get("temperature_celsius") == 4.0
        ),
    )
    assert rig.metric("districtmon_mqtt_broker_reconnects_total") == 1
    assert rejections(rig) == {}
