"""The MQTT listener's own metrics: what the broker handed over, what was refused and why, and
whether the daemon can see the broker at all.

Every reason is created at zero up front, so that `rate()` and `increase()` see a series from
the start rather than from its first event.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

# Why a message was not taken as an observation (it is also logged, rate limited).
REJECT_REASONS = (
    "unknown_site",  # the topic follows the scheme but names no site of the inventory
    "wrong_topic",  # a site of ours, on a topic that is not its own (commune or kind wrong)
    "unknown_topic",  # the topic does not follow the scheme
    "oversized",  # payload larger than mqtt.max_payload_bytes
    "not_json",  # telemetry that is not UTF-8 JSON
    "not_object",  # JSON, but not an object
    "wrong_type",  # a field of the wrong type (see the telemetry profile)
    "bad_status",  # a status other than `online` / `offline`
    "stale",  # older than the site's heartbeat timeout, or retained without a timestamp
    "future",  # timestamped further ahead than the heartbeat timeout (a wrong clock)
    "internal",  # a fault of ours while handling it (logged with its traceback)
)
# Messages that are fine but say nothing about a site we watch.
IGNORE_REASONS = (
    "other_shard",  # a site another shard watches
    "retained_status",  # a retained `online`: the broker's memory, not a sign of life
    "self_check",  # the daemons' own subscription checks (see mqttconfig.PROBE_MARK)
)


class MqttMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "districtmon_mqtt_messages_received",
            "Messages the broker delivered to the daemon, on any subscribed topic.",
            registry=registry,
        )
        self.rejected = Counter(
            "districtmon_mqtt_messages_rejected",
            "Messages not taken as an observation, by reason (unknown_site, not_json, "
            "wrong_type, oversized, stale, ...).",
            ["reason"],
            registry=registry,
        )
        self.ignored = Counter(
            "districtmon_mqtt_messages_ignored",
            "Well-formed messages that say nothing about this daemon's sites, by reason.",
            ["reason"],
            registry=registry,
        )
        self.connected = Gauge(
            "districtmon_mqtt_broker_connected",
            "1 while the daemon is connected and subscribed to the broker (and its self-check "
            "echoes), else 0 (its MQTT sites are then unknown).",
            registry=registry,
        )
        self.reconnects = Counter(
            "districtmon_mqtt_broker_reconnects",
            "Connections made again after the broker was lost or a reload asked for one.",
            registry=registry,
        )
        self.connect_failures = Counter(
            "districtmon_mqtt_broker_connect_failures",
            "Attempts to connect and subscribe that failed (each is retried with backoff).",
            registry=registry,
        )
        self.sites = Gauge(
            "districtmon_mqtt_sites",
            "Sites this daemon watches over MQTT (no connection is made while there are none).",
            registry=registry,
        )
        self.subscriptions = Gauge(
            "districtmon_mqtt_subscriptions",
            "Topic filters the daemon is subscribed to.",
            registry=registry,
        )
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        for reason in IGNORE_REASONS:
            self.ignored.labels(reason)
