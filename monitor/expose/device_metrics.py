"""Prometheus series for what devices said: the values of their profiles and telemetry.

Device values render as `districtmon_device_<name>` with the labels dashboards group by (site,
kind, commune, owner) plus a table's own labels (`if`, `alias`...): base units in the names
(`_volts`, `_celsius`, `_seconds`, `_bytes`), counters as `_total`. Only numbers are exported;
text values (sys_name, a firmware string) are for health rules and reasons, not series. The
values are those of the last poll, none after a failed one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.config.profiles import Profile
from monitor.expose.site_metrics import PROBE_VALUES, SITE_LABELS
from monitor.state.live import LiveState

PREFIX = "districtmon_device_"
#: Rendered by the site collector already (districtmon_site_device_uptime_seconds).
# sysUpTime is districtmon_site_device_uptime_seconds; probe measurements (rtt, loss, HTTP
# status...) are districtmon_site_* gauges: what a device reports is all that is left here.
_ALREADY_EXPORTED = frozenset({"uptime_seconds", *(name for name, _m, _h in PROBE_VALUES)})
_BUILTIN_HELP = {
    "reboots_total": "Reboots of the device seen by this daemon (sysUpTime went backwards).",
    "snmp_values_missing": "Profile values the device did not answer at the last poll.",
    "snmp_values_malformed": "Profile values the device answered with a wrong type or value.",
    "profile_info": "The SNMP profile of the last poll (profile: auto: the one detected, "
    'chosen="auto"), with its vendor; always 1.',
}


class DeviceValueCollector(Collector):
    def __init__(self, live: LiveState, helps: Mapping[str, str] | None = None) -> None:
        self.live = live
        self.helps: Mapping[str, str] = dict(helps or {})

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        label_sets: dict[str, tuple[str, ...]] = {}
        for site, view in self.live.items():
            if not view.values and not view.samples:
                continue
            base = [site.id, site.kind, site.commune, site.owner]
            for name, value in view.values.items():
                if isinstance(value, str) or name in _ALREADY_EXPORTED:
                    continue
                family = self._family(families, label_sets, name, ())
                if family is not None:
                    family.add_metric(base, value)
            for sample in view.samples:
                names = tuple(key for key, _ in sample.labels)
                family = self._family(families, label_sets, sample.name, names)
                if family is not None:
                    family.add_metric([*base, *(value for _, value in sample.labels)], sample.value)
        yield from families.values()

    def _family(
        self,
        families: dict[str, GaugeMetricFamily | CounterMetricFamily],
        label_sets: dict[str, tuple[str, ...]],
        name: str,
        extra: tuple[str, ...],
    ) -> GaugeMetricFamily | CounterMetricFamily | None:
        """The family of `name`; None when a sample's labels differ from the family's (the
        profile loader keeps one label set per name, so this guards other value sources)."""
        family = families.get(name)
        if family is not None:
            return family if label_sets[name] == extra else None
        help_text = self.helps.get(name) or _BUILTIN_HELP.get(name) or f"Device value {name}."
        labels = [*SITE_LABELS, *extra]
        if name.endswith("_total"):
            family = CounterMetricFamily(PREFIX + name[: -len("_total")], help_text, labels=labels)
        else:
            family = GaugeMetricFamily(PREFIX + name, help_text, labels=labels)
        families[name] = family
        label_sets[name] = extra
        return family


def profile_helps(profiles: Mapping[str, Profile]) -> dict[str, str]:
    """HELP text per value name from the profiles' `help` fields (first one wins)."""
    helps: dict[str, str] = {}
    for profile in profiles.values():
        specs = [*profile.scalars, *(col for table in profile.tables for col in table.columns)]
        for spec in specs:
            if spec.help and spec.name not in helps:
                helps[spec.name] = spec.help
    return helps
