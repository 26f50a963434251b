"""The daemon process with MQTT sites against a real mosquitto: heartbeats, silence, a last
will, a stale retained report, losing and regaining the broker -- seen on /metrics and in the
ledger -- and three shards splitting one inventory."""

from __future__ import annotations

import functools
import itertools
import json
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from broker import Device, Mosquitto, telemetry
from conftest import SNMPD_COMMUNITY
from harness import Daemon, free_tcp_port, wait_for
from peers import Snmpd

from monitor.config.shards import Shard
from monitor.core.model import State
from monitor.ledger.records import read_intervals, read_runs
from monitor.probes.mqtt.listener import BROKER_LOST

SHIPPED_MAPPINGS = Path(__file__).parents[1] / "config" / "mqtt" / "mappings.yaml"
PASSWORD = "Wv2-broker-password-for-tests"
TIMEOUT = 1.5


def base(site_id: str, commune: str = "thanh-nua") -> str:
    return f"dienbien/{commune}/loudspeaker/{site_id}"


def write_config(
    root: Path,
    http_port: int,
    broker: Mosquitto,
    speakers: dict[str, str],
    snmp_sites: Iterable[str] = (),
    snmpd: Snmpd | None = None,
) -> Path:
    """A district of loudspeakers (site id -> probe YAML) and optional SNMP BTS."""
    (root / "inventory").mkdir(parents=True)
    (root / "mqtt").mkdir()
    shutil.copy(SHIPPED_MAPPINGS, root / "mqtt" / "mappings.yaml")
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{http_port}"}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: 0.5, timeout_seconds: 0.2, retries: 0}}
state: {{down_after: 3, up_after: 2}}
mqtt:
  host: 127.0.0.1
  port: {broker.port}
  credential: broker
  heartbeat_timeout_seconds: {TIMEOUT}
  reconnect_min_seconds: 0.1
  reconnect_max_seconds: 0.5
  keepalive_seconds: 5
  self_check_seconds: 0.3
""",
        encoding="utf-8",
    )
    (root / "credentials.yaml").write_text(
        f"""
snmp:
  agent-ro: {{version: 2c, community: {SNMPD_COMMUNITY}}}
mqtt:
  broker: {{username: districtmon}}
""",
        encoding="utf-8",
    )
    sites = []
    for site_id, probe in speakers.items():
        sites.append(
            f"  - {{id: {site_id}, kind: loudspeaker, name: Cụm loa {site_id}, "
            f"commune: thanh-nua, owner: rtv, lat: 21.45, lon: 103.0, probe: {{mqtt: {probe}}}}}"
        )
    for site_id in snmp_sites:
        assert snmpd is not None
        sites.append(
            f"  - {{id: {site_id}, kind: bts, name: BTS {site_id}, commune: thanh-nua, "
            f"owner: rtv, lat: 21.45, lon: 103.0, probe: {{snmp: {{address: 127.0.0.1, "
            f"port: {snmpd.port}, credential: agent-ro}}}}}}"
        )
    (root / "inventory" / "district.yaml").write_text(
        "communes:\n  - {id: thanh-nua, name: Thanh Nưa, lat: 21.45, lon: 103.0}\n"
        "owners:\n  - {id: rtv, name: Đài Truyền thanh, kind: broadcaster}\n"
        "sites:\n" + "\n".join(sites) + "\n",
        encoding="utf-8",
    )
    return root


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto(users={"districtmon": PASSWORD, "device": "device-pw"}) as running:
        running.start()
        yield running


def test_mqtt_sites_live_die_and_survive_a_broker_outage_in_metrics_and_ledger(
    tmp_path: Path, broker: Mosquitto
) -> None:
    port = free_tcp_port()
    config = write_config(
        tmp_path / "config",
        port,
        broker,
        {"loa-alive": "{}", "loa-will": "{heartbeat_timeout_seconds: 30}", "loa-silent": "{}"},
    )
    # a report from long ago, retained by the broker, must not make loa-silent look alive
    old = json.dumps({"ts": time.time() - 60, "online": True})
    broker.publish(f"{base('loa-silent')}/telemetry", old, retain=True)
    broker.publish(f"{base('loa-silent')}/status", "online", retain=True)
    env = {"DISTRICTMON_MQTT_BROKER_PASSWORD": PASSWORD}
    daemon = Daemon(config, port, env=env)
    devices = [Device(broker, base("loa-alive"), 0.2), Device(broker, base("loa-will"), 0.2)]
    try:
        wait_for(
            "connected", lambda: daemon.metric("districtmon_mqtt_broker_connected") == 1, daemon
        )
        for device in devices:
            device.start()
        up = {"site": "loa-alive", "kind": "loudspeaker", "commune": "thanh-nua", "owner": "rtv"}
        wait_for("alive up", lambda: daemon.metric("districtmon_site_up", **up) == 1, daemon)
        wait_for(
            "will up", lambda: daemon.metric("districtmon_site_up", site="loa-will") == 1, daemon
        )
        assert daemon.metric("districtmon_device_battery_volts", site="loa-alive") == 13.6
        volume = daemon.metric("districtmon_device_volume_ratio", site="loa-alive")
        assert volume == pytest.approx(0.7)
        assert daemon.metric("districtmon_device_amplifier_ok", site="loa-alive") == 1
        # silence: down after the timeout, the stale retained report notwithstanding
        wait_for(
            "silent down",
            lambda: daemon.metric("districtmon_site_up", site="loa-silent") == 0,
            daemon,
        )
        assert (daemon.metric("districtmon_mqtt_messages_rejected_total", reason="stale") or 0) >= 1
        assert daemon.metric("districtmon_site_up", site="loa-alive") == 1

        killed = time.time()
        devices[1].kill()
        down = wait_for(
            "will down", lambda: daemon.metric("districtmon_site_up", site="loa-will") == 0, daemon
        )
        assert down - killed < 5  # its heartbeat timeout is 30 s: this was the will

        broker.stop()
        wait_for(
            "blind",
            lambda: (
                daemon.metric("districtmon_site_state", site="loa-alive", state="unknown") == 1
                and daemon.metric("districtmon_site_state", site="loa-will", state="unknown") == 1
            ),
            daemon,
        )
        assert daemon.metric("districtmon_site_up", site="loa-alive") is None  # unknown
        assert daemon.metric("districtmon_mqtt_broker_connected") == 0
        time.sleep(TIMEOUT + 0.5)
        broker.start()
        wait_for(
            "alive back",
            lambda: daemon.metric("districtmon_site_up", site="loa-alive") == 1,
            daemon,
        )
        assert daemon.metric("districtmon_mqtt_broker_reconnects_total") == 1
        _, text = daemon.get("/metrics")
    finally:
        for device in devices:
            device.kill()
        stopped = daemon.stop() if daemon.proc.poll() is None else daemon.proc.returncode
    assert stopped == 0
    log = daemon.log.read_text()
    assert PASSWORD not in log and PASSWORD not in text
    assert "lost the broker" in log
    ledger = config / "ledger.sqlite"
    alive = read_intervals(ledger, "loa-alive")
    assert [i.state for i in alive][:4] == [State.UNKNOWN, State.UP, State.UNKNOWN, State.UP]
    assert State.DOWN not in [i.state for i in alive[:4]]  # the outage charged nothing
    assert alive[2].reason == BROKER_LOST
    for earlier, later in itertools.pairwise(alive):
        assert earlier.end == later.start
    will = read_intervals(ledger, "loa-will")
    assert [i.state for i in will][:3] == [State.UNKNOWN, State.UP, State.DOWN]
    assert killed <= will[2].start <= down
    silent = read_intervals(ledger, "loa-silent")
    assert [i.state for i in silent][:2] == [State.UNKNOWN, State.DOWN]
    assert read_runs(ledger)[0].clean


def connected(daemon: Daemon) -> bool:
    return daemon.metric("districtmon_mqtt_broker_connected") == 1


def site_up(daemon: Daemon, site: str) -> bool:
    return daemon.metric("districtmon_site_up", site=site) == 1


def test_three_shards_watch_every_site_exactly_once(
    tmp_path: Path, broker: Mosquitto, snmpd: Snmpd
) -> None:
    speakers = {f"loa-{n:02d}": "{heartbeat_timeout_seconds: 60}" for n in range(12)}
    bts = [f"bts-{n:02d}" for n in range(6)]
    everything = set(speakers) | set(bts)
    daemons: list[Daemon] = []
    configs: list[Path] = []
    try:
        for index in (1, 2, 3):
            port = free_tcp_port()
            root = write_config(tmp_path / f"s{index}", port, broker, speakers, bts, snmpd)
            configs.append(root)
            env = {"DISTRICTMON_MQTT_BROKER_PASSWORD": PASSWORD}
            daemons.append(Daemon(root, port, env=env, extra_args=("--shard", f"{index}/3")))
        for daemon in daemons:
            wait_for("connected", functools.partial(connected, daemon), daemon)
        for site in speakers:
            broker.publish(f"{base(site)}/telemetry", telemetry(battery_volts=12.0))

        def watched(daemon: Daemon) -> set[str]:
            _, text = daemon.get("/metrics")
            return set(re.findall(r'^districtmon_site_info\{[^}]*site="([^"]+)"', text, re.M))

        shares = [watched(daemon) for daemon in daemons]
        assert set().union(*shares) == everything
        assert sum(len(share) for share in shares) == len(everything)  # disjoint
        assert all(shares), "18 sites over 3 shards: none should be empty"
        for index, (daemon, share) in enumerate(zip(daemons, shares, strict=True), start=1):
            assert share == {site for site in everything if Shard(index, 3).owns(site)}
            for site in share:
                wait_for(
                    f"{site} up in shard {index}", functools.partial(site_up, daemon, site), daemon
                )
            others = len(set(speakers) - share)
            assert (
                daemon.metric("districtmon_mqtt_messages_ignored_total", reason="other_shard")
                == others
            )
            assert (
                daemon.metric("districtmon_mqtt_messages_rejected_total", reason="unknown_site")
                == 0
            )
    finally:
        codes = [daemon.stop() if daemon.proc.poll() is None else -1 for daemon in daemons]
    assert codes == [0, 0, 0]
    for index, root in enumerate(configs, start=1):
        ledger = root / f"ledger.shard-{index}-of-3.sqlite"
        assert {i.site for i in read_intervals(ledger)} == shares[index - 1]
        assert not (root / "ledger.sqlite").exists()


def test_an_amplifier_fault_reported_over_mqtt_makes_the_cluster_degraded_with_its_code(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The shipped loudspeaker mapping's health rule through a real broker and the daemon
    process: amplifier_ok false, confirmed by the usual run of answers, is degraded with reason
    code amplifier_fault on /metrics and in the ledger; the amplifier repaired, it is up."""
    port = free_tcp_port()
    config = write_config(tmp_path / "config", port, broker, {"loa-amp": "{}"})
    env = {"DISTRICTMON_MQTT_BROKER_PASSWORD": PASSWORD}
    daemon = Daemon(config, port, env=env)
    topic = f"{base('loa-amp')}/telemetry"
    try:
        wait_for("connected", functools.partial(connected, daemon), daemon)
        broker.publish(topic, telemetry(amplifier_ok=True, battery_volts=13.6))
        wait_for("up", functools.partial(site_up, daemon, "loa-amp"), daemon)
        for _ in range(3):  # down_after unhealthy answers leave up
            broker.publish(topic, telemetry(amplifier_ok=False, battery_volts=13.6))
        wait_for(
            "degraded by the amplifier",
            lambda: (
                daemon.metric("districtmon_site_reason", site="loa-amp", reason="amplifier_fault")
                == 1
            ),
            daemon,
        )
        assert daemon.metric("districtmon_site_state", site="loa-amp", state="degraded") == 1
        assert daemon.metric("districtmon_site_up", site="loa-amp") == 1  # it answers
        assert daemon.metric("districtmon_device_amplifier_ok", site="loa-amp") == 0
        _, body = daemon.get("/api/v1/sites/loa-amp")
        record = json.loads(body)["site"]
        assert record["reason_codes"] == ["amplifier_fault"] and "amplifier" in record["reason"]
        for _ in range(2):  # up_after healthy answers bring it back
            broker.publish(topic, telemetry(amplifier_ok=True, battery_volts=13.6))
        wait_for(
            "repaired",
            lambda: daemon.metric("districtmon_site_state", site="loa-amp", state="up") == 1,
            daemon,
        )
        assert (
            daemon.metric("districtmon_site_reason", site="loa-amp", reason="amplifier_fault")
            is None
        )
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    intervals = read_intervals(config / "ledger.sqlite", "loa-amp")
    degraded = [i for i in intervals if i.state is State.DEGRADED]
    assert [i.codes for i in degraded] == [("amplifier_fault",)]
