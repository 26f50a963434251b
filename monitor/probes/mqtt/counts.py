"""What the MQTT listener counts: messages taken, refused and ignored by reason, and what it
sees of the broker.

Plain numbers, written by the event loop and read by the exposition at scrape time
(monitor/expose/mqtt_metrics.py): probes know nothing of Prometheus. Every reason is present
from the start, at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    "broker_shutdown",  # a live will that came with the loss of the broker (see wills.py)
)


@dataclass(slots=True)
class MqttCounts:
    received: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    ignored: dict[str, int] = field(default_factory=lambda: dict.fromkeys(IGNORE_REASONS, 0))
    connected: bool = False  # connected, subscribed, and the self-check echoes
    reconnects: int = 0
    connect_failures: int = 0
    sites: int = 0
    subscriptions: int = 0
