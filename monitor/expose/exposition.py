"""Renders the per-site families of /metrics fast enough for a province.

prometheus-client formats every sample anew on each scrape (sorting and escaping its labels):
about 6 µs a sample, 1.6 s for the 260,000 samples of 20,000 sites, where a scrape should take
a fraction of a second. Almost all of that text never changes between scrapes: the inventory
families, and the `name{labels} ` part of every live sample. So this module asks
prometheus-client to render that text once per inventory (the label escaping stays the
library's), keeps it, and at scrape time only appends the values, formatted by the library's
own `floatToGoString`. The result is byte for byte what `SiteCollector` gives through
`generate_latest` (tests hold the two equal); it is served in the text format 0.0.4.

Runs in the HTTP thread. The cache is rebuilt when a reload swaps the site table (seen by the
identity of the sites dict), so a reload costs one slow render, not every scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress, count
from operator import is_not

from prometheus_client.core import GaugeMetricFamily, Metric

from monitor.core.model import Site, State
from monitor.expose.site_metrics import (
    SITE_GAUGES,
    SITE_LABELS,
    SITE_STATE_HELP,
    SITE_STATE_NAME,
    SITE_UP,
    STATES,
    SiteGauge,
    inventory_families,
    reason_codes,
    reason_family,
    site_label_values,
)
from monitor.expose.spliced import Pieces, Spliced
from monitor.expose.textformat import PLACEHOLDER as _PLACEHOLDER
from monitor.expose.textformat import render as _render
from monitor.expose.textformat import value_text as _format
from monitor.state.live import Inventory, LiveState, SiteView


def _template(family: Metric) -> tuple[bytes, list[bytes]]:
    """HELP/TYPE header and one `name{labels} ` prefix per sample, in sample order."""
    lines = _render([family]).split(b"\n")
    header = lines[0] + b"\n" + lines[1] + b"\n"
    prefixes = []
    for line in lines[2:-1]:
        if not line.endswith(b" " + _PLACEHOLDER):
            raise RuntimeError(f"unexpected sample line from prometheus-client: {line!r}")
        prefixes.append(line[: -len(_PLACEHOLDER)])
    return header, prefixes


@dataclass(slots=True)
class _Gauge:
    """One per-site gauge family: its HELP/TYPE lines, its name as its lines begin, and its
    samples' text, one line per site that has a value (spliced.py: some change at every
    scrape). A line is the name, the site's `{labels} ` (the same for every family: kept
    once, in _Templates.labels) and the value. The text stays the same bytes object while
    none of its lines changed (most scrapes, for a gauge such as state_since or
    last_poll_success), which spares gzip compressing it again."""

    gauge: SiteGauge
    header: bytes
    name: bytes
    text: Pieces = field(default_factory=Pieces)


@dataclass(slots=True)
class _Templates:
    sites: dict[str, Site]
    inventory: Inventory
    static: bytes
    up: _Gauge
    gauges: list[_Gauge]  # SITE_GAUGES, in their order
    labels: list[bytes]  # per site: its `{labels} `, as prometheus-client writes it
    state_header: bytes
    state_name: bytes  # districtmon_site_state, as its lines begin
    reason_header: bytes
    label_rows: list[list[str]]  # per site: its label values
    # (site index, code) -> its districtmon_site_reason line; codes are bounded by the
    # configuration, so this stays as small as the set of reasons ever seen
    reason_lines: dict[tuple[int, str], bytes]
    # per site, the view the gauge lines were made from: a view is replaced by every
    # observation, so a site whose view is the same object has the same lines (most sites,
    # between two scrapes); only the others are made again
    seen: Sequence[SiteView | None]
    lock: threading.Lock
    # the state sets' text, six lines a site, and the states it holds (None: none yet): the
    # same bytes object while no state changed (most scrapes), which spares gzip too
    state_text: Spliced = field(default_factory=Spliced)
    states: Sequence[State | None] = ()


def _build(sites: dict[str, Site], inventory: Inventory) -> _Templates:
    rows = [site_label_values(site) for site in sites.values()]

    def placeholder_family(name: str, help_text: str) -> Metric:
        family = GaugeMetricFamily(name, help_text, labels=SITE_LABELS)
        for labels in rows:
            family.add_metric(labels, 0.0)
        return family

    # the state lines are made from each site's `{labels} ` (below): checked once, on the
    # first site, against the library's own lines
    state = GaugeMetricFamily(SITE_STATE_NAME, SITE_STATE_HELP, labels=[*SITE_LABELS, "state"])
    for labels in rows[:1]:
        for s in STATES:
            state.add_metric([*labels, s.value], 0.0)
    state_header, state_prefixes = _template(state)

    # every gauge family has the same labels: their text is read once, from one family
    up_name = SITE_UP.name.encode()
    _header, up_prefixes = _template(placeholder_family(SITE_UP.name, SITE_UP.help))
    site_labels = [prefix.removeprefix(up_name) for prefix in up_prefixes]
    del up_prefixes

    def gauge_of(gauge: SiteGauge) -> _Gauge:
        family = GaugeMetricFamily(gauge.name, gauge.help, labels=SITE_LABELS)
        for row in rows[:1]:
            family.add_metric(row, 0.0)
        header, first = _template(family)
        name = gauge.name.encode()
        if first != [name + label for label in site_labels[:1]]:
            raise RuntimeError(f"{gauge.name}: its labels are not written as {SITE_UP.name}'s")
        return _Gauge(gauge, header, name)

    state_name = SITE_STATE_NAME.encode()
    zeros = b"".join(prefix + _PLACEHOLDER + b"\n" for prefix in state_prefixes)
    if rows and _state_set(state_name, site_labels[0], None) != zeros:
        raise RuntimeError(f"{SITE_STATE_NAME}: its labels are not written as {SITE_UP.name}'s")
    reason_header, _ = _template(reason_family())
    return _Templates(
        sites=sites,
        inventory=inventory,
        static=_render(inventory_families(sites.values(), inventory)),
        up=gauge_of(SITE_UP),
        gauges=[gauge_of(gauge) for gauge in SITE_GAUGES],
        labels=site_labels,
        state_header=state_header,
        state_name=state_name,
        reason_header=reason_header,
        label_rows=rows,
        reason_lines={},
        seen=[None] * len(rows),
        lock=threading.Lock(),
        states=[None] * len(rows),
    )


def _reason_line(t: _Templates, index: int, code: str) -> bytes:
    """One districtmon_site_reason line, as prometheus-client writes it (made once)."""
    line = t.reason_lines.get((index, code))
    if line is None:
        family = reason_family()
        family.add_metric([*t.label_rows[index], code], 0.0)
        _header, [prefix] = _template(family)
        line = prefix + _format(1.0) + b"\n"
        t.reason_lines[index, code] = line
    return line


def _state_set(name: bytes, labels: bytes, state: State | None) -> bytes:
    """A site's six state lines, 1 for `state`, made from its `{labels} ` as prometheus-client
    writes them: `state` sorts after every site label, so it goes last."""
    inner = name + labels[:-2]
    return b"".join(
        b'%s,state="%s"} %s\n' % (inner, value, _ONE if s is state else _PLACEHOLDER)
        for s, value in _STATE_VALUES
    )


_ONE = _format(1.0)
_STATE_VALUES = [(s, s.value.encode()) for s in STATES]


class SiteExposition:
    def __init__(self, live: LiveState) -> None:
        self.live = live
        self._templates: _Templates | None = None
        self._lock = threading.Lock()  # two scrapes at once build the cache once

    def _templates_for(self, sites: dict[str, Site], inventory: Inventory) -> _Templates:
        with self._lock:
            t = self._templates
            if t is None or t.sites is not sites or t.inventory is not inventory:
                t = self._templates = _build(sites, inventory)
            return t

    def render(self) -> bytes:
        return b"".join(self.render_parts())

    def render_parts(self) -> list[bytes]:
        """The text in parts: the inventory families, the state sets and each gauge family
        are the same bytes objects from one scrape to the next while nothing changed in them
        (gzipparts.py)."""
        t, views = self._current()
        states = [view.state for view in views]
        out = [t.reason_header]
        for index, view in enumerate(views):
            if view.state is not State.UP:
                for code in reason_codes(view):
                    out.append(_reason_line(t, index, code))
        with t.lock:  # two at once: the lines stay those of one set of views
            changed = list(compress(count(), map(is_not, states, t.states)))
            for i in changed:
                t.state_text.put(i, _state_set(t.state_name, t.labels[i], states[i]))
            t.states = states
            _refresh(t, views)
            up, *gauges = ((g.header, g.text.text()) for g in (t.up, *t.gauges))
            state_text = t.state_text.text()
        return [
            t.static,
            *up,
            t.state_header,
            state_text,
            b"".join(out),
            *(part for gauge in gauges for part in gauge),
        ]

    def update(self) -> None:
        """Make the gauge lines of the sites whose views were replaced since the last call.
        The daemon calls this every second (monitor/runtime/daemon.py), so that a scrape finds
        the lines of the sites polled since made, as device_text.py explains."""
        t, views = self._current()
        with t.lock:
            _refresh(t, views)

    def _current(self) -> tuple[_Templates, list[SiteView]]:
        """The kept templates of the live table, and its views in the order of its sites."""
        sites, views_by_id = self.live.snapshot()
        t = self._templates_for(sites, self.live.inventory)
        return t, list(views_by_id.values())  # in the sites' order (monitor/state/live.py)


def _refresh(t: _Templates, views: list[SiteView]) -> None:
    """The gauges' lines as of `views`: those of the sites whose view is not the one its
    lines were made from (found in C) are made again. The caller holds t.lock."""
    changed = list(compress(count(), map(is_not, views, t.seen)))
    if changed:
        for gauge in (t.up, *t.gauges):
            _update(gauge, t.labels, views, changed)
        t.seen = views


def _update(g: _Gauge, labels: list[bytes], views: list[SiteView], changed: list[int]) -> None:
    """The gauge's lines of the sites `changed` (indexes), whose views were replaced."""
    get, name, text = g.gauge.value, g.name, g.text
    for i in changed:
        value = get(views[i])
        text.put(i, b"" if value is None else name + labels[i] + _format(value) + b"\n")
