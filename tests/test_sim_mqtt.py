"""The simulated MQTT sites are genuine MQTT clients: mosquitto_sub, on a real mosquitto, sees
their retained status, their telemetry, their last wills and the broker outage; the daemon's
ingest takes every message they publish."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for
from simpeers import Mosquitto, Simulator, mosquitto_sub, wait_until, write_district

from monitor.config.load import load_config

PUBLISHERS = 6  # thanh-nua: 4 clusters; muong-nha: 2 clusters (its station is polled: SNMP)


def statuses(port: int, count: int = PUBLISHERS) -> dict[str, str]:
    """The retained status of every publisher, by site id."""
    lines = mosquitto_sub(port, "dienbien/+/+/+/status", count, timeout=5)
    return {line.split()[0].split("/")[3]: line.split()[1] for line in lines}


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as mosquitto:
        yield mosquitto


def start(tmp_path: Path, broker: Mosquitto, *extra: str) -> Simulator:
    config = write_district(
        tmp_path / "config",
        communes=["thanh-nua", "muong-nha"],
        kinds=["loudspeaker", "radio_station", "gateway"],
        speakers="mqtt",
    )
    sim = Simulator(
        config,
        "--mqtt",
        f"127.0.0.1:{broker.port}",
        "--speed",
        "60",
        "--mqtt-interval",
        "60",
        *extra,
    )
    sim.wait_ready()
    return sim


def test_status_is_retained_online_and_telemetry_follows_the_convention(
    tmp_path: Path, broker: Mosquitto
) -> None:
    with start(tmp_path, broker) as sim:
        wait_until(
            "every publisher online",
            lambda: set(statuses(broker.port).values()) == {"online"},
            15,
            sim.log(),
        )
        found = statuses(broker.port)
        assert len(found) == PUBLISHERS and "radio-muong-nha" not in found
        line = mosquitto_sub(
            broker.port, "dienbien/thanh-nua/loudspeaker/loa-thanh-nua-02/telemetry", 1
        )
        body = json.loads(line[0].split(" ", 1)[1])
        assert set(body) == {
            "ts",
            "online",
            "amplifier_ok",
            "playing",
            "volume",
            "battery_volts",
            "rssi_dbm",
            "temperature_celsius",
            "power",
        }
        assert body["online"] is True and body["amplifier_ok"] is True and body["power"] == "mains"
        assert 12 < body["battery_volts"] < 15 and -100 < body["rssi_dbm"] < -40

        sim.ctl("/sites/loa-thanh-nua-02/amplifier-fault")
        line = mosquitto_sub(
            broker.port, "dienbien/thanh-nua/loudspeaker/loa-thanh-nua-02/telemetry", 1
        )
        assert json.loads(line[0].split(" ", 1)[1])["amplifier_ok"] is False

        sim.ctl("/sites/loa-thanh-nua-03/down")
        wait_until(
            "the will of a dead cluster",
            lambda: statuses(broker.port).get("loa-thanh-nua-03") == "offline",
            10,
        )
        sim.ctl("/communes/muong-nha/fibre-cut")
        wait_until(
            "everything behind the cut fibre offline",
            lambda: statuses(broker.port).get("loa-muong-nha-01") == "offline",
            10,
        )
        assert statuses(broker.port)["loa-muong-nha-02"] == "offline"
        sim.ctl("/restore")
        wait_until(
            "everyone back online", lambda: set(statuses(broker.port).values()) == {"online"}, 15
        )


def test_a_killed_simulator_leaves_every_site_offline_by_its_last_will(
    tmp_path: Path, broker: Mosquitto
) -> None:
    sim = start(tmp_path, broker)
    try:
        wait_until(
            "every publisher connected",
            lambda: sim.get("/stats")[1]["mqtt"]["connected"] == PUBLISHERS,
            15,
            sim.log(),
        )
        assert set(statuses(broker.port).values()) == {"online"}
    finally:
        sim.stop(signal.SIGKILL)
    wait_until(
        "every will published", lambda: set(statuses(broker.port).values()) == {"offline"}, 10
    )


def test_a_broker_outage_cuts_everyone_through_the_relay_until_restored(
    tmp_path: Path, broker: Mosquitto
) -> None:
    relay = free_tcp_port()
    with start(tmp_path, broker, "--broker-relay", f"127.0.0.1:{relay}") as sim:
        wait_until(
            "online through the relay",
            lambda: set(statuses(relay).values()) == {"online"},
            15,
            sim.log(),
        )
        sim.ctl("/broker-outage")
        assert mosquitto_sub(relay, "dienbien/#", 1, timeout=2) == []
        # the broker itself is up: it published the wills of the cut connections
        wait_until(
            "wills at the broker", lambda: set(statuses(broker.port).values()) == {"offline"}, 10
        )
        time.sleep(3.0)  # long enough for the publishers to have tried again meanwhile
        sim.ctl("/broker-restore")
        restored = time.monotonic()
        wait_until(
            "online again through the relay",
            lambda: set(statuses(relay).values()) == {"online"},
            20,
            sim.log(),
        )
        # at once, not after a backoff or a connection attempt left hanging by the outage
        assert time.monotonic() - restored < 3.0
        stats = sim.get("/stats")[1]
        assert stats["mqtt"]["connected"] == PUBLISHERS


def test_the_daemon_takes_every_message_the_simulator_publishes(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The whole shipped broadcast network: the 71 loudspeaker clusters report over MQTT, the
    radio stations are polled. Before the simulator published only for MQTT sites, each
    station's telemetry was rejected as unknown_site."""
    http = free_tcp_port()
    settings = f"""
http: {{listen: "127.0.0.1:{http}"}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: 1, timeout_seconds: 0.3, retries: 0}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, heartbeat_timeout_seconds: 20}}
"""
    config = write_district(
        tmp_path / "config",
        kinds=["loudspeaker", "radio_station", "gateway"],
        speakers="mqtt",
        settings=settings,
    )
    speakers = [
        s.id for s in load_config(config, environ={}).sites.values() if s.kind == "loudspeaker"
    ]
    assert len(speakers) == 71
    with Simulator(config, "--mqtt", f"127.0.0.1:{broker.port}", "--speed", "60") as sim:
        sim.wait_ready()
        daemon = Daemon(config, http)
        try:

            def all_up() -> bool:
                try:
                    _, text = daemon.get("/metrics")
                except OSError:
                    return False
                up = set(re.findall(r'districtmon_site_up\{[^}]*site="(loa-[^"]+)"[^}]*\} 1', text))
                return up >= set(speakers)

            wait_for("every cluster up over MQTT", all_up, daemon, limit=30)
            sent = sim.get("/stats")[1]["mqtt"]["published"]["telemetry"]
            wait_for(
                "three more rounds of telemetry",
                lambda: sim.get("/stats")[1]["mqtt"]["published"]["telemetry"] >= sent + 3 * 71,
                daemon,
            )
            _, text = daemon.get("/metrics")
            rejected = [
                line
                for line in text.splitlines()
                if line.startswith("districtmon_mqtt_messages_rejected_total{")
                and not line.endswith(" 0.0")
            ]
            assert not rejected, rejected
            # the last messages may still be on their way through the broker
            wait_for(
                "the daemon has them all",
                lambda: (
                    (daemon.metric("districtmon_mqtt_messages_received_total") or 0)
                    >= sent + 3 * 71
                ),
                daemon,
            )
            assert "mqtt message rejected" not in daemon.log.read_text()
            assert daemon.stop() == 0
        finally:
            daemon.kill()
