"""From one broker message to at most one observation: what counts as a sign of life, what is
refused and why, and that hostile input never crashes nor touches another site."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from monitor.config.load import load_config
from monitor.config.mqtt import MqttSettings
from monitor.core.model import MqttProbe, Observation, Site, State
from monitor.core.ratelimit import RateLimitedLog
from monitor.expose.mqtt_metrics import registered_counts
from monitor.probes.mqtt.counts import IGNORE_REASONS, REJECT_REASONS
from monitor.probes.mqtt.ingest import Ingest
from monitor.state.evaluator import Evaluator
from monitor.state.live import LiveState

NOW = 1_800_000_000.0
PROFILES = load_config(Path(__file__).parents[1] / "config", {}).mqtt.profiles
SETTINGS = MqttSettings(heartbeat_timeout_seconds=180.0, max_payload_bytes=1024, profiles=PROFILES)


def speaker(
    site_id: str,
    commune: str,
    topic: str | None = None,
    heartbeat_timeout_seconds: float | None = None,
) -> Site:
    probe = MqttProbe(topic=topic, heartbeat_timeout_seconds=heartbeat_timeout_seconds)
    return Site(site_id, "loudspeaker", site_id, commune, "rtv", 21.0, 103.0, probe)


SITES = {
    site.id: site
    for site in (
        speaker("loa-a", "thanh-nua"),
        speaker("loa-b", "thanh-nua"),
        speaker("loa-c", "muong-phang", heartbeat_timeout_seconds=60.0),
        speaker("loa-d", "muong-phang", topic="vendor/loa-d"),
    )
}
OTHER_SHARD = {"loa-z": speaker("loa-z", "thanh-an")}
TOPIC = {site_id: SETTINGS.base_topic(site) for site_id, site in SITES.items()}
A = TOPIC["loa-a"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """The ingest wired to a real evaluator and live state, as the daemon wires it."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    evaluator: Evaluator = field(default_factory=lambda: Evaluator(down_after=3, up_after=2))
    live: LiveState = field(default_factory=lambda: LiveState(SITES))
    heard: dict[str, float] = field(default_factory=dict)
    log_clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.counts = registered_counts(self.registry)
        for site_id in SITES:
            self.live.apply_transition(self.evaluator.start(site_id, 0.0))
        self.ingest = Ingest(
            SETTINGS,
            SITES.values(),
            OTHER_SHARD.values(),
            self.observe,
            self.heard,
            self.counts,
            wall=lambda: NOW,
            monotonic=lambda: 5.0,
            warn=RateLimitedLog(
                logging.getLogger("monitor.probes.mqtt.ingest"),
                period=10.0,
                burst=1,
                clock=self.log_clock,
            ),
        )

    def observe(self, obs: Observation) -> None:
        self.live.apply_observation(obs)
        transition = self.evaluator.observe(obs)
        if transition is not None:
            self.live.apply_transition(transition)

    def send(self, topic: str, payload: str | bytes, retain: bool = False) -> Observation | str:
        data = payload.encode() if isinstance(payload, str) else payload
        return self.ingest.handle(topic, data, retain)

    def state(self, site: str) -> State:
        return self.evaluator.sites[site].state

    def count(self, name: str, reason: str | None = None) -> float:
        labels = {"reason": reason} if reason else {}
        return (
            self.registry.get_sample_value(f"districtmon_mqtt_messages_{name}_total", labels) or 0
        )


def report(**fields: object) -> str:
    return json.dumps({"ts": NOW - 5, "online": True, **fields})


# --- signs of life ------------------------------------------------------------------------


def test_telemetry_becomes_named_values_and_a_sign_of_life() -> None:
    h = Harness()
    obs = h.send(f"{A}/telemetry", report(battery_volts=13.6, volume=70, amplifier_ok=True))
    assert isinstance(obs, Observation)
    assert (obs.site, obs.ok, obs.probe, obs.time) == ("loa-a", True, "mqtt", NOW)
    assert obs.values == {
        "online": 1.0,
        "battery_volts": 13.6,
        "volume_ratio": pytest.approx(0.7),
        "amplifier_ok": 1.0,
    }
    assert obs.degraded_reason is None and obs.codes == ()
    assert h.state("loa-a") is State.UP and h.heard == {"loa-a": 5.0}
    assert h.live.views["loa-a"].values["battery_volts"] == 13.6


def test_an_amplifier_fault_is_an_unhealthy_answer_by_the_profiles_health_rules() -> None:
    """The shipped loudspeaker rules: amplifier_ok false is a fault; a battery below the
    charger's float voltage says the cluster runs on it. The evaluator's usual confirmation
    applies (down_after unhealthy answers to leave up)."""
    h = Harness()
    h.send(f"{A}/telemetry", report(amplifier_ok=True, battery_volts=13.6))
    assert h.state("loa-a") is State.UP
    for _ in range(2):
        h.send(f"{A}/telemetry", report(amplifier_ok=False, battery_volts=13.6))
        assert h.state("loa-a") is State.UP
    obs = h.send(f"{A}/telemetry", report(amplifier_ok=False, battery_volts=12.4))
    assert isinstance(obs, Observation) and obs.ok
    assert obs.codes == ("amplifier_fault", "on_battery")
    assert obs.degraded_reason is not None and "amplifier fault" in obs.degraded_reason
    assert "12.4 V" in obs.degraded_reason
    assert h.state("loa-a") is State.DEGRADED
    assert h.evaluator.sites["loa-a"].codes == ("amplifier_fault", "on_battery")


def test_health_is_judged_on_the_values_last_reported_field_by_field() -> None:
    """A report that leaves the amplifier out, or a live `online`, says nothing of it: the
    fault last reported stands until the device reports the amplifier working again."""
    h = Harness()
    h.send(f"{A}/telemetry", report(amplifier_ok=False))
    assert h.state("loa-a") is State.DEGRADED  # from unknown, the first answer decides
    for message in (report(rssi_dbm=-70), "online", report(rssi_dbm=-71)):
        obs = h.send(f"{A}/{'status' if message == 'online' else 'telemetry'}", message)
        assert isinstance(obs, Observation) and obs.codes == ("amplifier_fault",)
    assert h.state("loa-a") is State.DEGRADED
    for _ in range(2):
        obs = h.send(f"{A}/telemetry", report(amplifier_ok=True))
        assert isinstance(obs, Observation) and obs.degraded_reason is None
    assert h.state("loa-a") is State.UP
    # another site's fault is its own
    obs = h.send(f"{TOPIC['loa-b']}/telemetry", report(rssi_dbm=-70))
    assert isinstance(obs, Observation) and obs.codes == ()


def test_a_report_without_ts_counts_when_live_but_not_when_retained() -> None:
    h = Harness()
    assert h.send(f"{A}/telemetry", '{"online": true}', retain=True) == "stale"
    assert h.state("loa-a") is State.UNKNOWN and not h.heard
    assert isinstance(h.send(f"{A}/telemetry", '{"online": true}'), Observation)


def test_an_old_or_future_timestamp_is_no_sign_of_life() -> None:
    h = Harness()
    assert h.send(f"{A}/telemetry", report(ts=NOW - 181)) == "stale"
    assert h.send(f"{A}/telemetry", report(ts=NOW - 181), retain=True) == "stale"
    assert h.send(f"{A}/telemetry", report(ts=NOW + 181)) == "future"
    c = TOPIC["loa-c"]  # its own, shorter timeout
    assert h.send(f"{c}/telemetry", report(ts=NOW - 61)) == "stale"
    assert isinstance(h.send(f"{A}/telemetry", report(ts=NOW - 179), retain=True), Observation)
    assert h.count("rejected", "stale") == 3 and h.count("rejected", "future") == 1


def test_a_live_online_is_a_sign_of_life_and_a_retained_one_is_not() -> None:
    h = Harness()
    assert h.send(f"{A}/status", "online", retain=True) == "retained_status"
    assert h.state("loa-a") is State.UNKNOWN
    assert h.count("ignored", "retained_status") == 1
    obs = h.send(f"{A}/status", "online")
    assert isinstance(obs, Observation) and obs.ok and h.state("loa-a") is State.UP


def test_offline_takes_the_site_down_at_once_retained_or_not() -> None:
    h = Harness()
    h.send(f"{A}/status", "online")
    obs = h.send(f"{A}/status", "offline", retain=True)
    assert isinstance(obs, Observation) and obs.decisive and obs.error_reason == "offline"
    assert h.state("loa-a") is State.DOWN
    assert h.state("loa-b") is State.UNKNOWN


def test_a_device_reporting_itself_out_of_service_is_a_failure() -> None:
    h = Harness()
    obs = h.send(f"{A}/telemetry", report(online=False, battery_volts=11.0))
    assert isinstance(obs, Observation) and not obs.ok
    assert obs.error_reason == "reported_offline" and obs.values["battery_volts"] == 11.0
    assert h.heard == {"loa-a": 5.0}  # it spoke, so it is not silent


def test_a_site_with_its_own_topic_is_found_there() -> None:
    h = Harness()
    obs = h.send("vendor/loa-d/telemetry", report())
    assert isinstance(obs, Observation) and obs.site == "loa-d"


# --- refused ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("dienbien/thanh-nua/loudspeaker/loa-x/telemetry", report(), "unknown_site"),
        ("dienbien/muong-phang/loudspeaker/loa-a/telemetry", report(), "wrong_topic"),
        ("dienbien/thanh-nua/loudspeaker/loa-a/config", report(), "unknown_topic"),
        ("other/thanh-nua/loudspeaker/loa-a/telemetry", report(), "unknown_topic"),
        (f"{A}/telemetry", b"\xff\xfe not utf-8", "not_json"),
        (f"{A}/telemetry", "{'single': 'quotes'}", "not_json"),
        (f"{A}/telemetry", "[" * 1000, "not_json"),  # deeper than the decoder goes
        (f"{A}/telemetry", "[1, 2]", "not_object"),
        (f"{A}/telemetry", report(battery_volts="12.6"), "wrong_type"),
        (f"{A}/telemetry", report(battery_volts=True), "wrong_type"),
        (f"{A}/telemetry", report(online=1), "wrong_type"),
        (f"{A}/telemetry", report(ts="yesterday"), "wrong_type"),
        (f"{A}/telemetry", '{"ts": NaN, "online": true}', "wrong_type"),
        (f"{A}/telemetry", '{"battery_volts": 1e999}', "wrong_type"),
        (f"{A}/telemetry", '{"battery_volts": ' + "9" * 400 + "}", "wrong_type"),
        (f"{A}/telemetry", report(pad="x" * 1100), "oversized"),
        (f"{A}/status", "maybe", "bad_status"),
    ],
)
def test_bad_messages_are_refused_by_reason_and_change_nothing(
    topic: str, payload: str | bytes, reason: str
) -> None:
    h = Harness()
    h.send(f"{TOPIC['loa-b']}/status", "online")
    assert h.send(topic, payload) == reason
    assert h.count("rejected", reason) == 1
    assert {site: h.state(site) for site in SITES} == {
        "loa-a": State.UNKNOWN,
        "loa-b": State.UP,
        "loa-c": State.UNKNOWN,
        "loa-d": State.UNKNOWN,
    }
    assert set(h.heard) == {"loa-b"}


def test_self_checks_are_handed_back_and_never_taken_for_sites() -> None:
    h = Harness()
    echoed: list[bytes] = []
    h.ingest._echo = echoed.append
    own = SETTINGS.probe_topic
    assert own == "dienbien/_districtmon/_districtmon/_districtmon.districtmon/status"
    assert h.send(own, "self-check 1 abc") == "self_check"
    other = own.replace("_districtmon.districtmon", "_districtmon.districtmon.shard-2-of-3")
    assert h.send(other, "self-check 9 def") == "self_check"
    assert echoed == [b"self-check 1 abc"]
    assert h.count("ignored", "self_check") == 2 and h.count("rejected", "unknown_site") == 0


def test_another_shards_site_is_ignored_not_refused() -> None:
    h = Harness()
    topic = SETTINGS.base_topic(OTHER_SHARD["loa-z"]) + "/telemetry"
    assert h.send(topic, report()) == "other_shard"
    assert h.count("ignored", "other_shard") == 1 and h.count("rejected", "unknown_site") == 0


def test_refusals_are_logged_at_most_once_per_reason_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    with caplog.at_level(logging.WARNING, logger="monitor.probes.mqtt.ingest"):
        for _ in range(50):
            h.send("dienbien/x/loudspeaker/nobody/telemetry", report())
        h.send(f"{A}/telemetry", "[]")
        h.log_clock.now = 11.0
        h.send("dienbien/x/loudspeaker/nobody\n\x1b[31mFAKE LINE/telemetry", report())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "unknown_site" in lines[0] and "not_object" in lines[1]
    assert "(49 more like it held back)" in lines[2]
    assert "\n" not in lines[2] and "\x1b" not in lines[2]  # a topic cannot forge log lines
    assert h.count("rejected", "unknown_site") == 51


def test_a_fault_of_ours_costs_one_message_not_the_listener(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()

    def broken_observe(obs: Observation) -> None:
        raise RuntimeError("bug")

    h.ingest._observe = broken_observe  # a bug further down the pipeline
    with caplog.at_level(logging.WARNING, logger="monitor.probes.mqtt.ingest"):
        assert h.send(f"{A}/telemetry", report()) == "internal"
    assert h.count("rejected", "internal") == 1
    assert "internal error" in caplog.records[0].getMessage()


# --- arbitrary input ----------------------------------------------------------------------

KNOWN_TOPICS = [
    f"{base}/{channel}" for base in TOPIC.values() for channel in ("status", "telemetry")
]
SITE_OF = {f"{TOPIC[s]}/{c}": s for s in SITES for c in ("status", "telemetry")}
FIELDS = ["ts", "online", "amplifier_ok", "playing", "volume", "battery_volts", "rssi_dbm"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=NOW - 400, max_value=NOW + 400)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
reports = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), json_values, max_size=8)
payloads = st.one_of(
    st.binary(max_size=200),
    reports.map(lambda doc: json.dumps(doc).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.sampled_from([b"online", b"offline", b" offline\n", b"ONLINE", b"", b"x" * 2000]),
)
topics = st.one_of(
    st.sampled_from(KNOWN_TOPICS),
    st.text(max_size=60),
    st.builds(lambda t, tail: t + tail, st.sampled_from(KNOWN_TOPICS), st.text(max_size=4)),
    st.builds(
        lambda parts: "/".join(parts),
        st.lists(st.sampled_from(["dienbien", "thanh-nua", "loudspeaker", "loa-a", "+", "#"])),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(topics, payloads, st.booleans()), min_size=1, max_size=12))
def test_arbitrary_topics_and_payloads_never_crash_nor_touch_another_site(
    messages: list[tuple[str, bytes, bool]],
) -> None:
    h = Harness()
    for topic, payload, retain in messages:
        before = {
            site: (replace(h.evaluator.sites[site]), h.live.views[site], h.heard.get(site))
            for site in SITES
        }
        outcome = h.ingest.handle(topic, payload, retain)
        touched = SITE_OF.get(topic)
        if isinstance(outcome, Observation):
            assert outcome.site == touched
            assert all(isinstance(v, float) and math.isfinite(v) for v in outcome.values.values())
        else:
            assert outcome in REJECT_REASONS or outcome in IGNORE_REASONS
            assert outcome != "internal"
        for site, (health, view, heard) in before.items():
            if site != touched:
                assert h.evaluator.sites[site] == health
                assert h.live.views[site] is view
                assert h.heard.get(site) == heard
    accepted = h.registry.get_sample_value("districtmon_mqtt_messages_received_total")
    refused = sum(h.count("rejected", r) for r in REJECT_REASONS)
    ignored = sum(h.count("ignored", r) for r in IGNORE_REASONS)
    observed = sum(1 for site in SITES if h.live.views[site].last_poll is not None)
    assert accepted == len(messages)
    assert refused + ignored <= len(messages)
    assert observed <= len(messages) - refused - ignored
