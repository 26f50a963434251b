"""The trap receiver's counts as Prometheus series: is it listening, and what came in."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class TrapCollector(Collector):
    """`districtmon_snmp_traps_total{result}`: accepted (mapped, unmapped, unknown_source) and
    refused (malformed, bad_version, bad_community, auth, unsupported, other, internal)
    datagrams; with `districtmon_snmp_trap_datagrams_total`, what reached the port."""

    def __init__(
        self,
        routed: Callable[[], Mapping[str, int]],
        refused: Callable[[], Mapping[str, int]],
        listening: bool = True,
        datagrams: Callable[[], int] = lambda: 0,
    ) -> None:
        self._routed = routed
        self._refused = refused
        self._listening = listening
        self._datagrams = datagrams

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "districtmon_snmp_trap_receiver_up",
            "1 if the trap receiver listens on its port, 0 if it could not bind it.",
        )
        up.add_metric([], 1.0 if self._listening else 0.0)
        yield up
        yield CounterMetricFamily(
            "districtmon_snmp_trap_datagrams",
            "Datagrams that reached the trap port; each has exactly one result in "
            "districtmon_snmp_traps_total.",
            value=float(self._datagrams()),
        )
        family = CounterMetricFamily(
            "districtmon_snmp_traps",
            "SNMP notifications received, by result: mapped (a site's profile knows it), "
            "unmapped, unknown_source, or refused (malformed, bad_version, bad_community, auth, "
            "unsupported, other, internal).",
            labels=["result"],
        )
        for result, count in {**dict(self._routed()), **dict(self._refused())}.items():
            family.add_metric([result], float(count))
        yield family
