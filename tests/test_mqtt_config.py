"""MQTT configuration: the `mqtt:` settings, broker accounts, per-site probes, telemetry
mappings and topics; every error placed by file, line and key, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import LOA, broken, edit, errors, load, write_config

from monitor.cli.summary import summarize
from monitor.config.credentials import Secret, mqtt_env_var
from monitor.config.load import load_config
from monitor.config.mqtt import MqttSettings
from monitor.core.model import MqttProbe

PASSWORD = "Kx9-broker-secret-77q"

MQTT_SETTINGS = """\
mqtt:
  host: broker.dienbien.example
  port: 8883
  credential: district-broker
  client_id: districtmon-a
  qos: 1
  keepalive_seconds: 20
  topic_prefix: dienbien
  heartbeat_timeout_seconds: 90
  max_payload_bytes: 2048
  reconnect_min_seconds: 0.5
  reconnect_max_seconds: 30
"""

MQTT_CREDENTIALS = f"""\
mqtt:
  district-broker:
    username: districtmon
    password: {PASSWORD}
"""

MAPPINGS = """\
profiles:
  loudspeaker:
    alive: online
    values:
      - {name: online, type: bool}
      - {name: battery_volts, type: number, help: Backup battery voltage.}
      - {name: volume_ratio, field: volume, type: number, scale: 0.01}
      - {name: on_mains, field: power, type: map, map: {mains: 1, battery: 0}}
"""

SNMP_LOA = "snmp: {address: loa-01.thanh-nua.example, port: 1162, credential: district-ro}"


def mqtt_config(root: Path, probe: str = "mqtt: {}") -> Path:
    """The valid test configuration with its loudspeaker reporting over MQTT."""
    write_config(root)
    with (root / "districtmon.yaml").open("a", encoding="utf-8") as settings:
        settings.write(MQTT_SETTINGS)
    with (root / "credentials.yaml").open("a", encoding="utf-8") as credentials:
        credentials.write(MQTT_CREDENTIALS)
    (root / "mqtt").mkdir()
    (root / "mqtt" / "mappings.yaml").write_text(MAPPINGS, encoding="utf-8")
    edit(root / "inventory/sites.yaml", SNMP_LOA, probe)
    return root


def test_mqtt_settings_probe_and_account_are_read(tmp_path: Path) -> None:
    config = load(mqtt_config(tmp_path, "mqtt: {heartbeat_timeout_seconds: 45}"))
    mqtt = config.mqtt
    assert (mqtt.host, mqtt.port, mqtt.client_id, mqtt.qos) == (
        "broker.dienbien.example",
        8883,
        "districtmon-a",
        1,
    )
    assert (mqtt.username, mqtt.password) == ("districtmon", Secret(PASSWORD))
    assert mqtt.keepalive_seconds == 20 and mqtt.max_payload_bytes == 2048
    assert (mqtt.reconnect_min_seconds, mqtt.reconnect_max_seconds) == (0.5, 30.0)
    site = config.sites["loa-thanh-nua-01"]
    assert site.probe == MqttProbe(heartbeat_timeout_seconds=45)
    assert mqtt.timeout_of(site) == 45
    assert mqtt.timeout_of(config.sites["gw-thanh-nua"]) == 90  # the default
    assert mqtt.base_topic(site) == "dienbien/thanh-nua/loudspeaker/loa-thanh-nua-01"
    profile = mqtt.profiles["loudspeaker"]
    assert profile.alive == "online"
    assert [spec.name for spec in profile.values] == [
        "online",
        "battery_volts",
        "volume_ratio",
        "on_mains",
    ]
    doc = {"online": True, "battery_volts": 12, "volume": 70, "power": "battery", "x": [1]}
    assert profile.decode(doc) == {
        "online": 1.0,
        "battery_volts": 12.0,
        "volume_ratio": 0.7,  # the decimal product, as on the SNMP path
        "on_mains": 0.0,
    }


def test_the_mqtt_section_is_optional_with_loopback_defaults(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path)
    text = (root / "districtmon.yaml").read_text(encoding="utf-8")
    (root / "districtmon.yaml").write_text(text.split("mqtt:")[0], encoding="utf-8")
    mqtt = load(root).mqtt
    assert (mqtt.host, mqtt.port, mqtt.tls, mqtt.username) == ("127.0.0.1", 1883, None, None)
    assert mqtt.profiles["loudspeaker"].alive == "online"


def test_tls_true_uses_the_system_authorities_and_port_8883(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path)
    edit(root / "districtmon.yaml", "  port: 8883\n", "  tls: true\n")
    mqtt = load(root).mqtt
    assert mqtt.tls is not None and mqtt.tls.ca_file is None and mqtt.port == 8883


def test_tls_files_must_exist(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path)
    edit(root / "districtmon.yaml", "  port: 8883\n", "  tls: {ca_file: mqtt/ca.pem}\n")
    assert errors(root) == [
        f"districtmon.yaml:15: mqtt.tls.ca_file: file not found: {root}/mqtt/ca.pem"
    ]


def test_the_environment_overrides_the_broker_password(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path)
    variable = mqtt_env_var("district-broker")
    assert variable == "DISTRICTMON_MQTT_DISTRICT_BROKER_PASSWORD"
    assert load(root, {variable: "from-env"}).mqtt.password == Secret("from-env")
    edit(root / "credentials.yaml", f"    password: {PASSWORD}\n", "")
    assert load(root, {variable: "only-env"}).mqtt.password == Secret("only-env")
    assert errors(root) == [
        "credentials.yaml:6: mqtt.district-broker.password: "
        f"no password: set it here or in the environment variable {variable}"
    ]


def test_an_unknown_broker_account_is_named_where_it_is_used(tmp_path: Path) -> None:
    root = broken(tmp_path, "districtmon.yaml", "http:", "http:")  # the plain valid config
    mqtt_config(tmp_path)
    edit(root / "districtmon.yaml", "credential: district-broker", "credential: broker-x")
    assert errors(root) == [
        "districtmon.yaml:16: mqtt.credential: unknown credential 'broker-x' "
        "(not in the mqtt section of credentials.yaml)"
    ]


def test_the_will_grace_is_read_and_bounded(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path)
    assert load(root).mqtt.will_grace_seconds == 2.0
    edit(root / "districtmon.yaml", "  qos: 1\n", "  qos: 1\n  will_grace_seconds: 0.5\n")
    assert load(root).mqtt.will_grace_seconds == 0.5
    edit(root / "districtmon.yaml", "will_grace_seconds: 0.5", "will_grace_seconds: 90")
    assert [e.split(": ", 2)[1:] for e in errors(root)] == [
        ["mqtt.will_grace_seconds", "must be a number 0..60, got 90"]
    ]


def test_mqtt_settings_are_validated_with_their_place(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path)
    edit(root / "districtmon.yaml", "  qos: 1\n", "  qos: 2\n  colour: blue\n")
    edit(root / "districtmon.yaml", "keepalive_seconds: 20", "keepalive_seconds: 0")
    edit(root / "districtmon.yaml", "topic_prefix: dienbien", "topic_prefix: dien/+/bien")
    assert errors(root) == [
        "districtmon.yaml:18: mqtt.qos: must be an integer 0..1, got 2",
        "districtmon.yaml:19: mqtt.colour: unknown key (expected one of: host, port, tls, "
        "credential, client_id, qos, keepalive_seconds, topic_prefix, topic_pattern, "
        "heartbeat_timeout_seconds, max_payload_bytes, reconnect_min_seconds, "
        "reconnect_max_seconds, self_check_seconds, will_grace_seconds, mappings)",
        "districtmon.yaml:20: mqtt.keepalive_seconds: must be an integer 5..3600, got 0",
        "districtmon.yaml:21: mqtt.topic_prefix: must not hold MQTT wildcards (+ #), "
        "got 'dien/+/bien'",
    ]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{prefix}/{commune}/{kind}", "must hold {site} exactly once"),
        ("{prefix}/{zone}/{site}", "unknown placeholder {zone}"),
        ("{prefix}/x{commune}/{site}", "a placeholder must fill a whole topic level"),
        ("{prefix}//{site}", "must not have empty levels"),
    ],
)
def test_a_topic_pattern_must_name_each_site_by_whole_levels(
    tmp_path: Path, pattern: str, message: str
) -> None:
    root = mqtt_config(tmp_path)
    edit(root / "districtmon.yaml", "  topic_prefix: dienbien\n", f'  topic_pattern: "{pattern}"\n')
    [problem] = errors(root)
    assert problem.startswith("districtmon.yaml:20: mqtt.topic_pattern: " + message)


def test_a_site_needs_a_profile_for_its_kind(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path, "mqtt: {profile: loa-v2}")
    assert errors(root) == [
        f"inventory/sites.yaml:35: sites[2].probe.mqtt: no telemetry profile 'loa-v2' "
        f"in mappings.yaml{LOA}"
    ]


def test_two_sites_cannot_share_a_topic(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path, "mqtt: {topic: dienbien/loa/one}")
    edit(
        root / "inventory/sites.yaml",
        "    probe:\n      snmp:\n        address: 127.1.0.1\n        credential: district-ro\n",
        "    probe: {mqtt: {topic: dienbien/loa/one, profile: loudspeaker}}\n",
    )
    assert errors(root) == [
        "inventory/sites.yaml:32: sites[2].probe.mqtt: topic 'dienbien/loa/one' is also the "
        f"topic of site 'gw-thanh-nua' (sites.yaml:2){LOA}"
    ]


def test_a_site_topic_cannot_hold_wildcards_or_unknown_keys(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path, "mqtt: {topic: 'dienbien/#', interval_seconds: 5}")
    assert errors(root) == [
        "inventory/sites.yaml:36: sites[2].probe.mqtt.interval_seconds: unknown key "
        f"(expected one of: topic, profile, heartbeat_timeout_seconds){LOA}",
        "inventory/sites.yaml:36: sites[2].probe.mqtt.topic: must not hold MQTT wildcards "
        f"(+ #), got 'dienbien/#'{LOA}",
    ]


def test_subscriptions_cover_the_pattern_and_each_own_topic_outside_it(tmp_path: Path) -> None:
    config = load(mqtt_config(tmp_path, "mqtt: {topic: vendor/x/loa-01}"))
    assert config.mqtt.filters(config.sites.values()) == [
        "dienbien/+/+/+/status",
        "dienbien/+/+/+/telemetry",
        "vendor/x/loa-01/status",
        "vendor/x/loa-01/telemetry",
    ]
    inside = load(mqtt_config(tmp_path / "b", "mqtt: {topic: dienbien/a/b/c}"))
    assert len(inside.mqtt.filters(inside.sites.values())) == 2


MAPPING_ERRORS = """\
profiles:
  loudspeaker:
    alive: playing
    values:
      - {name: online, type: boolean}
      - {name: up, type: bool}
      - {name: Battery-Volts, type: number}
      - {name: volts, type: number, scale: 0}
      - {name: volts, type: number}
      - {name: mode, type: map, map: {a: one}}
      - {name: level, type: bool, scale: 2}
      - name: noted
  Bad Name: {values: []}
"""


def test_a_broken_mapping_gives_every_problem_at_its_line(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path)
    (root / "mqtt" / "mappings.yaml").write_text(MAPPING_ERRORS, encoding="utf-8")
    kinds = "bool, number, map"
    profile = " (profile 'loudspeaker')"
    assert errors(root) == [
        "mqtt/mappings.yaml:3: profiles.loudspeaker.alive: must name one of the profile's "
        f"values, got 'playing'{profile}",
        "mqtt/mappings.yaml:5: profiles.loudspeaker.values[0].type: "
        f"must be one of {kinds}; got 'boolean'; did you mean 'bool'?{profile}",
        "mqtt/mappings.yaml:6: profiles.loudspeaker.values[1].name: "
        f"'up' is taken by a series districtmon renders itself{profile}",
        "mqtt/mappings.yaml:7: profiles.loudspeaker.values[2].name: must be a metric name part "
        f"([a-z][a-z0-9_]*, at most 64), got 'Battery-Volts'{profile}",
        f"mqtt/mappings.yaml:8: profiles.loudspeaker.values[3].scale: must not be 0{profile}",
        "mqtt/mappings.yaml:10: profiles.loudspeaker.values[5].map.a: "
        f"must be a number, got 'one'{profile}",
        "mqtt/mappings.yaml:11: profiles.loudspeaker.values[6].scale: "
        f"only values of type number have a scale (type is bool){profile}",
        f"mqtt/mappings.yaml:12: profiles.loudspeaker.values[7].type: is required{profile}",
        "mqtt/mappings.yaml:13: profiles.Bad Name: a profile name must be "
        "[a-z0-9][a-z0-9_-]*, at most 64 characters (a site kind, or e.g. loa-v2)",
    ]


def test_a_missing_mapping_file_is_one_problem_not_one_per_site(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path)
    (root / "mqtt" / "mappings.yaml").unlink()
    assert errors(root) == ["mqtt/mappings.yaml: file not found"]


def test_the_broker_password_never_appears_in_errors_repr_or_summary(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path)
    config = load(root)
    assert PASSWORD not in repr(config) and PASSWORD not in summarize(config)
    assert "mqtt broker: mqtt://broker.dienbien.example:8883 as districtmon-a" in summarize(config)
    edit(root / "credentials.yaml", f"password: {PASSWORD}", f"password: [{PASSWORD}]")
    edit(root / "credentials.yaml", "username: districtmon", "username: districtmon\n    x: 1")
    problems = errors(root)
    assert len(problems) == 2 and not any(PASSWORD in problem for problem in problems)


def test_the_shipped_mappings_read_the_agreed_telemetry() -> None:
    config = load_config(Path(__file__).parents[1] / "config", {})
    report = {
        "ts": 1.0,
        "online": True,
        "amplifier_ok": True,
        "playing": False,
        "volume": 70,
        "battery_volts": 12.6,
        "rssi_dbm": -71,
        "temperature_celsius": 38.5,
    }
    values = config.mqtt.profiles["loudspeaker"].decode(report)
    assert values == {
        "online": 1.0,
        "amplifier_ok": 1.0,
        "playing": 0.0,
        "volume_ratio": 0.7,
        "battery_volts": 12.6,
        "rssi_dbm": -71.0,
        "temperature_celsius": 38.5,
    }
    assert isinstance(config.mqtt, MqttSettings)


def test_mapping_health_rules_are_the_profiles_rule_language(tmp_path: Path) -> None:
    root = mqtt_config(tmp_path)
    rules = """\
    health:
      - reason: "running on battery at {battery_volts} V"
        code: on_battery
        when: {on_mains: {equals: 0}}
      - reason: battery below 11.8 V
        when: {battery_volts: {below: 11.8}}
"""
    with (root / "mqtt" / "mappings.yaml").open("a", encoding="utf-8") as mappings:
        mappings.write(rules)
    profile = load(root).mqtt.profiles["loudspeaker"]
    assert [(rule.code, rule.reason) for rule in profile.health] == [
        ("on_battery", "running on battery at {battery_volts} V"),
        ("battery_below_11_8_v", "battery below 11.8 V"),  # derived from the reason
    ]
    # the same reader, so the same mistakes are refused the same way, at their lines
    (root / "mqtt" / "mappings.yaml").write_text(
        MAPPINGS
        + """\
    health:
      - reason: "amplifier {amp} fault"
        code: Amplifier-Fault
        when: {amplifier_ok: {equals: 0}}
      - reason: on battery
        code: timeout
        when: {on_mains: {below: x}}
""",
        encoding="utf-8",
    )
    profile_name = " (profile 'loudspeaker')"
    assert errors(root) == [
        "mqtt/mappings.yaml:10: profiles.loudspeaker.health[0].reason: placeholder {amp} must "
        "be a value or label of this rule (battery_volts, on_mains, online, volume_ratio), "
        "without format or conversion" + profile_name,
        "mqtt/mappings.yaml:11: profiles.loudspeaker.health[0].code: a reason code is "
        "[a-z][a-z0-9_]*, at most 48 characters, got 'Amplifier-Fault'" + profile_name,
        "mqtt/mappings.yaml:12: profiles.loudspeaker.health[0].when.amplifier_ok: unknown value "
        "(not in this profile's values)" + profile_name,
        "mqtt/mappings.yaml:14: profiles.loudspeaker.health[1].code: 'timeout' is a fixed "
        "reason code of districtmon (see monitor/core/reasons.py); name what this rule finds"
        + profile_name,
        "mqtt/mappings.yaml:15: profiles.loudspeaker.health[1].when.on_mains.below: must be a "
        "number, got 'x'" + profile_name,
    ]


def test_the_shipped_mappings_judge_amplifiers_transmitters_and_power() -> None:
    config = load_config(Path(__file__).parents[1] / "config", {})
    profiles = config.mqtt.profiles
    codes = {name: {rule.code for rule in profile.health} for name, profile in profiles.items()}
    assert codes["loudspeaker"] >= {"amplifier_fault", "on_battery"}
    assert codes["radio_station"] >= {"transmitter_off_air", "on_battery"}
    station = profiles["radio_station"]
    on_battery = station.decode({"amplifier_ok": True, "playing": False, "power": "battery"})
    assert on_battery["on_battery"] == 1.0 and on_battery["on_mains"] == 0.0
    generator = station.decode({"power": "generator"})
    assert (generator["on_battery"], generator["on_mains"]) == (0.0, 0.0)
    # `playing` is no fault: no rule of any profile tests it
    for profile in profiles.values():
        assert all(c.value != "playing" for rule in profile.health for c in rule.conditions)
