"""Prometheus series for what devices said: the values of their profiles and telemetry.

Device values render as `districtmon_device_<name>` with the labels dashboards group by (site,
kind, commune, owner) plus a table's own labels (`if`, `alias`...): base units in the names
(`_volts`, `_celsius`, `_seconds`, `_bytes`), counters as `_total`. Only numbers are exported;
text values (sys_name, a firmware string) are for health rules and reasons, not series. The
values are those of the last poll, none after a failed one. The counts of values a device
did not answer or answered wrongly (`snmp_values_missing`, `snmp_values_malformed`) are
exported only when not zero: at 20,000 healthy sites their zeros were 40,000 lines and 4.8 MB
of every scrape that said nothing (`... > 0` reads the same either way).

The daemon serves these families through `render()` (a MetricsRegistry calls it): the
`{labels} ` part of each sample is made once by prometheus-client and kept per site and table
row (textformat.py), so a scrape formats only the values: 0.5 µs a sample instead of 6.
`collect()` stays the reference rendering; tests hold the two byte for byte equal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from monitor.config.profiles import Profile
from monitor.core.model import Site
from monitor.expose.site_metrics import PROBE_VALUES, SITE_LABELS, site_label_values
from monitor.expose.textformat import Prerendered, header, label_parts, sample_name, value_text
from monitor.state.live import LiveState, SiteView

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


KEEP_LINES = 300_000
#: Counts exported only when not zero.
_ONLY_IF_NOT_ZERO = frozenset({"snmp_values_missing", "snmp_values_malformed"})
Labels = tuple[tuple[str, str], ...]


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
        # per site: `{labels} ` by the sample's own labels (() for an unlabelled value)
        self._parts: dict[str, dict[Labels, bytes]] = {}
        self._parts_of: dict[str, Site] | None = None  # the site table the parts are for
        self._kept = 0  # how many parts are kept, to drop them when most went out of use
        # per site: the view its lines were made from, and those lines with their family's
        # name and label names; a view is replaced by every poll, so a site whose view is
        # the same object has the same lines (most sites, between two scrapes). At most
        # KEEP_LINES lines are kept (about 40 MB): past that, sites are made at each scrape.
        self._lines: dict[str, tuple[SiteView, list[tuple[str, tuple[str, ...], bytes]]]] = {}
        self._kept_lines = 0

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

    def _parts_for(self, sites: dict[str, Site]) -> dict[str, dict[Labels, bytes]]:
        """The kept label parts, dropped when a reload swapped the site table or when most of
        them went out of use (table rows renamed: interface aliases are typed by people)."""
        if self._parts_of is not sites:
            self._parts, self._parts_of, self._kept = {}, sites, 0
            self._lines, self._kept_lines = {}, 0
        return self._parts

    def render(self) -> bytes:
        """The text generate_latest writes for collect(), made from kept label parts.

        Written for speed (it runs for every sample of every scrape): the same choices as
        collect() and _family(), with the lookups hoisted out of the loops."""
        sites, views = self.live.snapshot()
        with self._lock:
            parts = self._parts_for(sites)
            memo = self._lines
        # per family, in order of first appearance: its sample name, the label names it was
        # made with, and its lines (None where a label part is still to be made)
        families: dict[str, tuple[bytes, tuple[str, ...], list[bytes | None]]] = {}
        names_of: dict[Labels, tuple[str, ...]] = {}
        todo: list[tuple[list[bytes | None], int, Site, Labels, bytes, float]] = []
        skip, only_if_not_zero, text = _ALREADY_EXPORTED, _ONLY_IF_NOT_ZERO, value_text
        for site_id, site in sites.items():
            view = views[site_id]
            kept = memo.get(site_id)
            if kept is not None and kept[0] is view:
                for name, label_names, line in kept[1]:
                    family = families.get(name)
                    if family is None:
                        sample_bytes = self._header(name, label_names)[1]
                        family = families[name] = (sample_bytes, label_names, [])
                    elif family[1] != label_names:
                        continue
                    family[2].append(line)
                continue
            values, samples = view.values, view.samples
            if not values and not samples:
                continue
            rows: list[tuple[str, tuple[str, ...], bytes]] = []
            whole = True  # every line made and shown: the site's lines can be kept
            own = parts.get(site_id)
            if own is None:
                own = parts[site_id] = {}
            part = own.get(())
            for name, value in values.items():
                if isinstance(value, str) or name in skip:
                    continue
                if name in only_if_not_zero and value == 0:
                    continue
                family = families.get(name)
                if family is None:
                    family = families[name] = (self._header(name, ())[1], (), [])
                elif family[1]:
                    whole = False
                    continue
                if part is None:
                    todo.append((family[2], len(family[2]), site, (), family[0], value))
                    family[2].append(None)
                    whole = False
                else:
                    line = b"%s%s%s\n" % (family[0], part, text(value))
                    family[2].append(line)
                    rows.append((name, (), line))
            for sample in samples:
                name, labels = sample.name, sample.labels
                extra = names_of.get(labels)
                if extra is None:
                    extra = names_of[labels] = tuple(key for key, _ in labels)
                family = families.get(name)
                if family is None:
                    family = families[name] = (self._header(name, extra)[1], extra, [])
                elif family[1] != extra:
                    whole = False
                    continue
                row = own.get(labels)
                if row is None:
                    todo.append((family[2], len(family[2]), site, labels, family[0], sample.value))
                    family[2].append(None)
                    whole = False
                else:
                    line = b"%s%s%s\n" % (family[0], row, text(sample.value))
                    family[2].append(line)
                    rows.append((name, extra, line))
            if whole:
                self._keep(memo, site_id, view, rows)
        if todo:
            self._make_parts(parts, todo, sum(len(f[2]) for f in families.values()))
        out: list[bytes] = []
        for name, (_sample, extra, lines) in families.items():
            out.append(self._header(name, extra)[0])
            out.extend(lines)  # type: ignore[arg-type]  # _make_parts filled every None
        return b"".join(out)

    def _keep(
        self,
        memo: dict[str, tuple[SiteView, list[tuple[str, tuple[str, ...], bytes]]]],
        site_id: str,
        view: SiteView,
        rows: list[tuple[str, tuple[str, ...], bytes]],
    ) -> None:
        old = memo.get(site_id)
        grown = len(rows) - (len(old[1]) if old is not None else 0)
        if self._kept_lines + grown <= KEEP_LINES:
            memo[site_id] = (view, rows)  # one assignment: a concurrent scrape sees either
            self._kept_lines += grown
        elif old is not None:
            del memo[site_id]
            self._kept_lines -= len(old[1])

    def _make_parts(
        self,
        parts: dict[str, dict[Labels, bytes]],
        todo: list[tuple[list[bytes | None], int, Site, Labels, bytes, float]],
        used: int,
    ) -> None:
        """Label parts not yet kept: one library call per set of label names."""
        by_names: dict[tuple[str, ...], dict[tuple[str, Labels], Site]] = {}
        for _family, _at, site, labels, _name, _value in todo:
            names = tuple(key for key, _ in labels)
            by_names.setdefault(names, {})[site.id, labels] = site
        made: dict[tuple[str, Labels], bytes] = {}
        for names, keys in by_names.items():
            rows = [
                [*site_label_values(site), *(value for _, value in labels)]
                for (_id, labels), site in keys.items()
            ]
            made.update(zip(keys, label_parts([*SITE_LABELS, *names], rows), strict=True))
        with self._lock:
            self._kept += len(made)
            if self._kept > 2 * used + 10_000:
                self._parts, self._kept = {}, 0  # made again from the next scrape on
                self._lines, self._kept_lines = {}, 0
            for (site_id, labels), part in made.items():
                parts.setdefault(site_id, {})[labels] = part
        for family, at, site, labels, sample_bytes, value in todo:
            family[at] = b"%s%s%s\n" % (sample_bytes, made[site.id, labels], value_text(value))


def profile_helps(profiles: Mapping[str, Profile]) -> dict[str, str]:
    """HELP text per value name from the profiles' `help` fields (first one wins)."""
    helps: dict[str, str] = {}
    for profile in profiles.values():
        specs = [*profile.scalars, *(col for table in profile.tables for col in table.columns)]
        for spec in specs:
            if spec.help and spec.name not in helps:
                helps[spec.name] = spec.help
    return helps
