"""Prometheus series for what devices said: the values of their profiles and telemetry.

Device values render as `districtmon_device_<name>` with the labels dashboards group by (site,
kind, commune, owner) plus a table's own labels (`if`, `alias`...): base units in the names
(`_volts`, `_celsius`, `_seconds`, `_bytes`), counters as `_total`. Only numbers are exported;
text values (sys_name, a firmware string) are for health rules and reasons, not series. The
values are those of the last poll, none after a failed one. The counts of values a device
did not answer or answered wrongly (`snmp_values_missing`, `snmp_values_malformed`) are
exported only when not zero: at 20,000 healthy sites their zeros were 40,000 lines and 4.8 MB
of every scrape that said nothing (`... > 0` reads the same either way).

The daemon serves these families through `render()` (a MetricsRegistry calls it), from text
kept per site and family and made again only for the sites a poll changed (device_text.py),
the `{labels} ` part of each sample made by prometheus-client once per site and table row
(textformat.py). `collect()` stays the reference rendering; tests hold the two byte for byte
equal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from monitor.config.profiles import Profile
from monitor.core.model import Site
from monitor.expose.device_text import DeviceText, Key
from monitor.expose.site_metrics import PROBE_VALUES, SITE_LABELS
from monitor.expose.textformat import Prerendered, header, sample_name
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


#: Counts exported only when not zero.
_ONLY_IF_NOT_ZERO = frozenset({"snmp_values_missing", "snmp_values_malformed"})


def _exported(name: str, value: float | str) -> bool:
    if isinstance(value, str) or name in _ALREADY_EXPORTED:
        return False
    return not (value == 0 and name in _ONLY_IF_NOT_ZERO)


class DeviceValueCollector(Prerendered):
    def __init__(self, live: LiveState, helps: Mapping[str, str] | None = None) -> None:
        self.live = live
        self._lock = threading.Lock()
        # per family name: its HELP/TYPE lines and its sample name
        self._headers: dict[str, tuple[bytes, bytes]] = {}
        self.helps = helps or {}
        self._text: DeviceText | None = None  # the kept text of the current site table

    @property
    def helps(self) -> Mapping[str, str]:
        return self._helps

    @helps.setter
    def helps(self, helps: Mapping[str, str]) -> None:
        """A reload sets new HELP texts: the kept HELP lines are made again."""
        self._helps: Mapping[str, str] = dict(helps)
        self._headers = {}

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        label_sets: dict[str, tuple[str, ...]] = {}
        for site, view in self.live.items():
            if not view.values and not view.samples:
                continue
            base = [site.id, site.kind, site.commune, site.owner]
            for name, value in view.values.items():
                if not _exported(name, value):
                    continue
                assert not isinstance(value, str)
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
        family = self._new_family(name, extra)
        families[name] = family
        label_sets[name] = extra
        return family

    def _new_family(
        self, name: str, extra: tuple[str, ...]
    ) -> GaugeMetricFamily | CounterMetricFamily:
        help_text = self.helps.get(name) or _BUILTIN_HELP.get(name) or f"Device value {name}."
        labels = [*SITE_LABELS, *extra]
        if name.endswith("_total"):
            return CounterMetricFamily(PREFIX + name[: -len("_total")], help_text, labels=labels)
        return GaugeMetricFamily(PREFIX + name, help_text, labels=labels)

    def _header(self, name: str, extra: tuple[str, ...]) -> tuple[bytes, bytes]:
        found = self._headers.get(name)
        if found is None:
            family = self._new_family(name, extra)
            counter = family.type == "counter"
            found = header(family), sample_name(family.name + ("_total" if counter else ""))
            self._headers[name] = found
        return found

    def _text_for(self, sites: dict[str, Site]) -> DeviceText:
        """The kept text, made anew when a reload swapped the site table."""
        if self._text is None or self._text.sites is not sites:
            self._text = DeviceText(sites, _ALREADY_EXPORTED, _ONLY_IF_NOT_ZERO, self._sample_name)
        return self._text

    def _sample_name(self, key: Key) -> bytes:
        return self._header(*key)[1]

    def update(self) -> int:
        """Make the text of the sites polled since the last call (the daemon calls this every
        second, so that a scrape finds it made); how many sites were made again."""
        sites, views = self.live.snapshot()
        with self._lock:
            return self._text_for(sites).update(views)

    def render(self) -> bytes:
        """The text generate_latest writes for collect(), from the kept text (device_text.py)."""
        return b"".join(self.render_parts())

    def render_parts(self) -> list[bytes]:
        """Each family's HELP and TYPE lines, then its samples: a family none of whose lines
        changed since the last scrape is the same bytes object."""
        sites, views = self.live.snapshot()
        with self._lock:
            text = self._text_for(sites)
            text.update(views)
            families = text.families()
            return [part for key, lines in families for part in (self._header(*key)[0], lines)]


def profile_helps(profiles: Mapping[str, Profile]) -> dict[str, str]:
    """HELP text per value name from the profiles' `help` fields (first one wins)."""
    helps: dict[str, str] = {}
    for profile in profiles.values():
        specs = [*profile.scalars, *(col for table in profile.tables for col in table.columns)]
        for spec in specs:
            if spec.help and spec.name not in helps:
                helps[spec.name] = spec.help
    return helps
