"""The MQTT listener's counts as Prometheus series: what the broker handed over, what was refused
and why, and whether the daemon can see the broker at all.

The listener counts in plain numbers (monitor/probes/mqtt/counts.py); this renders them at
scrape time. Every reason is there from the start at zero, so that `rate()` and `increase()`
see a series from the beginning rather than from its first event.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.probes.mqtt.counts import MqttCounts


class MqttCollector(Collector):
    def __init__(self, counts: MqttCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        yield CounterMetricFamily(
            "districtmon_mqtt_messages_received",
            "Messages the broker delivered to the daemon, on any subscribed topic.",
            value=counts.received,
        )
        rejected = CounterMetricFamily(
            "districtmon_mqtt_messages_rejected",
            "Messages not taken as an observation, by reason (unknown_site, not_json, "
            "wrong_type, oversized, stale, ...).",
            labels=["reason"],
        )
        for reason, count in list(counts.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected
        ignored = CounterMetricFamily(
            "districtmon_mqtt_messages_ignored",
            "Well-formed messages that say nothing about this daemon's sites, by reason.",
            labels=["reason"],
        )
        for reason, count in list(counts.ignored.items()):
            ignored.add_metric([reason], count)
        yield ignored
        yield GaugeMetricFamily(
            "districtmon_mqtt_broker_connected",
            "1 while the daemon is connected and subscribed to the broker (and its self-check "
            "echoes), else 0 (its MQTT sites are then unknown).",
            value=1.0 if counts.connected else 0.0,
        )
        yield CounterMetricFamily(
            "districtmon_mqtt_broker_reconnects",
            "Connections made again after the broker was lost or a reload asked for one.",
            value=counts.reconnects,
        )
        yield CounterMetricFamily(
            "districtmon_mqtt_broker_connect_failures",
            "Attempts to connect and subscribe that failed (each is retried with backoff).",
            value=counts.connect_failures,
        )
        yield GaugeMetricFamily(
            "districtmon_mqtt_sites",
            "Sites this daemon watches over MQTT (no connection is made while there are none).",
            value=counts.sites,
        )
        yield GaugeMetricFamily(
            "districtmon_mqtt_subscriptions",
            "Topic filters the daemon is subscribed to.",
            value=counts.subscriptions,
        )


def registered_counts(registry: CollectorRegistry) -> MqttCounts:
    """Fresh counts for a listener, rendered by `registry` from now on."""
    counts = MqttCounts()
    registry.register(MqttCollector(counts))
    return counts
