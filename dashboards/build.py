"""Writes the Grafana dashboards of dashboards/*.json: the JSON is what Grafana provisions and
what reviews read; this script is how it stays tidy (one datasource, one set of variables,
ids and layout computed, keys sorted). Edit here, run `python dashboards/build.py`, commit
both; tests/test_dashboards.py fails when the two differ.

Only the standard library: grafana-foundation-sdk was tried and left out (see
dashboards/README.md).

Every query filters with the dashboard's variables (commune, owner, kind) and reads either the
daemon's series or the recording rules of config/prometheus/dashboards.rules.yml.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "districtmon-prometheus"}
SCHEMA_VERSION = 39  # Grafana 11.0; newer Grafana migrates it on load
GRID_WIDTH = 24

# Recording rules (config/prometheus/dashboards.rules.yml)
COUNTS = "commune_owner_kind_state:districtmon_site_state:sum"
SEVERITY = "site:districtmon_site_state:severity"
COVERED_UP = "commune:districtmon_site_covered_areas_up:sum"
COVERAGE = "commune:districtmon_broadcast_coverage:ratio"

# A site's state as a number, worst highest: the map's colour and the order of tables.
STATE_SEVERITY = {
    "up": 0,
    "maintenance": 1,
    "unknown": 2,
    "degraded": 3,
    "unreachable": 4,
    "down": 5,
}
STATE_COLOURS = {
    "up": "green",
    "maintenance": "blue",
    "unknown": "#8e8e8e",
    "degraded": "yellow",
    "unreachable": "orange",
    "down": "red",
}

# The router profile's convention: a WAN port says so in its description (ifAlias).
WAN = 'alias=~"(?i).*(wan|uplink|internet).*"'


def severity_mappings() -> list[dict[str, Any]]:
    return [
        {
            "type": "value",
            "options": {
                str(n): {"text": state, "color": STATE_COLOURS[state], "index": n}
                for state, n in STATE_SEVERITY.items()
            },
        }
    ]


def severity_thresholds() -> dict[str, Any]:
    steps = [{"color": STATE_COLOURS["up"], "value": None}]
    steps += [
        {"color": STATE_COLOURS[state], "value": n} for state, n in STATE_SEVERITY.items() if n
    ]
    return {"mode": "absolute", "steps": steps}


def thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


GOOD_HIGH = thresholds(("red", None), ("orange", 0.9), ("yellow", 0.97), ("green", 0.99))
BAD_ABOVE_ZERO = thresholds(("green", None), ("red", 1))


# --- variables ----------------------------------------------------------------------------


def variable(name: str, label: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,  # on time range change: new sites appear without a reload
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "allValue": ".*" if multi else None,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
        "hide": 0,
        "options": [],
        "regex": "",
        "skipUrlSync": False,
    }


def site_variables(kinds: str = ".*") -> list[dict[str, Any]]:
    """commune, owner, kind; each narrowed by those before it and by the dashboard's kinds, so
    the BTS dashboard offers operators only."""
    base = f'kind=~"{kinds}"'
    return [
        variable("commune", "Commune", f"label_values(districtmon_site_info{{{base}}}, commune)"),
        variable(
            "owner",
            "Owner",
            f'label_values(districtmon_site_info{{{base},commune=~"$commune"}}, owner)',
        ),
        variable(
            "kind",
            "Kind",
            f'label_values(districtmon_site_info{{{base},commune=~"$commune",owner=~"$owner"}}, '
            "kind)",
        ),
    ]


SEL = 'commune=~"$commune",owner=~"$owner",kind=~"$kind"'


def selection(kinds: str) -> str:
    """The matchers of a panel on a dashboard about `kinds`: the dashboard's own kind filter,
    then the variables. The filter is repeated because a variable at All expands to its
    allValue `.*`, which would drop the kind filter of the variable's own query (a BTS
    dashboard at All would count every kind of site)."""
    if kinds == ".*":
        return SEL
    return f'kind=~"{kinds}",{SEL}'


# --- panels -------------------------------------------------------------------------------


@dataclass
class Target:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def json(self, ref: str) -> dict[str, Any]:
        return {
            "refId": ref,
            "datasource": DATASOURCE,
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "instant": self.instant,
            "range": not self.instant,
            "format": "table" if self.table else "time_series",
            "editorMode": "code",
        }


@dataclass
class Panel:
    kind: str
    title: str
    description: str
    targets: list[Target]
    width: int = 6
    height: int = 6
    unit: str = "short"
    decimals: int | None = None
    thresholds: dict[str, Any] | None = None
    mappings: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    # The shortest step Grafana may query at: it sizes $__rate_interval, so a rate over a
    # counter that moves once a poll sees several polls, not a stair of zeros and doubles.
    interval: str | None = None
    # Stable: dashboards/README.md lists each panel by it, and the whole-stack test names
    # panels by (dashboard uid, id). Never reuse the id of a removed panel.
    panel_id: int = 0

    def json(self, x: int, y: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {"unit": self.unit, "mappings": self.mappings}
        if self.thresholds is not None:
            defaults["thresholds"] = self.thresholds
            defaults["color"] = {"mode": "thresholds"}
        for key in ("decimals", "min", "max"):
            if getattr(self, key) is not None:
                defaults[key] = getattr(self, key)
        extra = {"interval": self.interval} if self.interval else {}
        return {
            "id": self.panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": [t.json(chr(ord("A") + i)) for i, t in enumerate(self.targets)],
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": self.options,
            "transformations": self.transformations,
            **extra,
        }


# Device counters move once a poll (60 s as shipped): a rate over them needs several polls.
DEVICE_RATE_INTERVAL = "5m"


def stat(title: str, description: str, expr: str, **kw: Any) -> Panel:
    kw.setdefault("width", 4)
    kw.setdefault("height", 4)
    legend = kw.pop("legend", "")
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background" if kw.get("thresholds") else "value",
        "graphMode": "none",
        "textMode": "auto",
        "justifyMode": "auto",
        "orientation": "auto",
    }
    panel = Panel("stat", title, description, [Target(expr, legend, instant=True)], **kw)
    panel.options = options
    return panel


def timeseries(title: str, description: str, *targets: Target, **kw: Any) -> Panel:
    kw.setdefault("width", 12)
    kw.setdefault("height", 8)
    panel = Panel("timeseries", title, description, list(targets), **kw)
    panel.options = {
        "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def bargauge(title: str, description: str, expr: str, legend: str, **kw: Any) -> Panel:
    kw.setdefault("width", 12)
    kw.setdefault("height", 8)
    panel = Panel("bargauge", title, description, [Target(expr, legend, instant=True)], **kw)
    panel.options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
        "minVizHeight": 10,
        "minVizWidth": 0,
        "valueMode": "color",
        "namePlacement": "auto",
        "sizing": "auto",
    }
    return panel


def table(title: str, description: str, *targets: Target, **kw: Any) -> Panel:
    kw.setdefault("width", 12)
    kw.setdefault("height", 8)
    sort = kw.pop("sort", None)
    hidden = kw.pop("hide", ("Time",))
    panel = Panel("table", title, description, list(targets), **kw)
    panel.options = {
        "showHeader": True,
        "cellHeight": "sm",
        "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""},
        "sortBy": [{"displayName": sort, "desc": True}] if sort else [],
    }
    if hidden:
        panel.transformations.insert(
            0,
            {
                "id": "organize",
                "options": {"excludeByName": dict.fromkeys(hidden, True), "renameByName": {}},
            },
        )
    return panel


def instant_table(expr: str) -> Target:
    return Target(expr, instant=True, table=True)


def matrix(row: str, column: str) -> dict[str, Any]:
    """An instant table of `sum by (row, column)` turned into rows x columns."""
    return {
        "id": "groupingToMatrix",
        "options": {"rowField": row, "columnField": column, "valueField": "Value"},
    }


def dashboard(uid: str, title: str, description: str, variables: list[dict[str, Any]],
              rows: list[list[Panel]], tags: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    panels = []
    y = 0
    ids: set[int] = set()
    for row in rows:
        x = 0
        height = 0
        for panel in row:
            if x + panel.width > GRID_WIDTH:
                raise ValueError(f"{uid}: row starting with {row[0].title!r} is too wide")
            if panel.panel_id <= 0 or panel.panel_id in ids:
                raise ValueError(f"{uid}: {panel.title!r} needs an id of its own")
            ids.add(panel.panel_id)
            panels.append(panel.json(x, y))
            x += panel.width
            height = max(height, panel.height)
        y += height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["districtmon", *tags],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["districtmon"],
                "asDropdown": True,
                "title": "districtmon",
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": variables},
        "panels": panels,
    }


# --- shared query pieces ------------------------------------------------------------------


def count(states: str, sel: str = SEL) -> str:
    return f'sum({COUNTS}{{state=~"{states}",{sel}}})'


def share_up(by: str, sel: str = SEL) -> str:
    return (
        f'sum by ({by}) ({COUNTS}{{state=~"up|degraded",{sel}}})\n'
        f"/ sum by ({by}) ({COUNTS}{{{sel}}})"
    )


OWNER_NAME = (
    'label_replace(max by (owner, name) (districtmon_owner_info), "owner_name", "$1", "name", '
    '"(.*)")'
)


def in_state_for(states: str, sel: str = SEL) -> str:
    """Seconds each site has been in its current state, for sites in `states`, with the
    state, the site's name and the owner's name joined in as labels."""
    return (
        f"(time() - districtmon_site_state_since_timestamp_seconds{{{sel}}})\n"
        f'* on (site) group_left (state) (districtmon_site_state{{state=~"{states}"}} == 1)\n'
        "* on (site) group_left (name) max by (site, name) (districtmon_site_info)\n"
        f"* on (owner) group_left (owner_name) {OWNER_NAME}"
    )


def weighted_availability(by: str, window: str, sel: str) -> str:
    """Availability of a group as the ledger and the monthly report count it: the sites'
    up+degraded seconds over their counted seconds, summed (a site weighs by the time it was
    watched), not a mean of the sites' ratios."""
    ratio = f'districtmon_site_availability_ratio{{window="{window}",{sel}}}'
    counted = f'districtmon_site_availability_counted_seconds{{window="{window}",{sel}}}'
    return f"sum by ({by}) ({ratio} * {counted})\n/ sum by ({by}) ({counted})"


REASON_COLUMNS = {
    "id": "organize",
    "options": {
        "excludeByName": {
            "Time": True,
            "Value": True,
            "instance": True,
            "job": True,
            "__name__": True,
        },
        "indexByName": {"name": 0, "site": 1, "reason": 2, "commune": 3, "kind": 4, "owner": 5},
        "renameByName": {},
    },
}
OUTAGE_COLUMNS = {
    "id": "organize",
    "options": {
        "excludeByName": {"Time": True, "instance": True, "job": True, "__name__": True},
        "indexByName": {
            "state": 0,
            "name": 1,
            "site": 2,
            "commune": 3,
            "kind": 4,
            "owner_name": 5,
            "owner": 6,
            "Value": 7,
        },
        "renameByName": {"Value": "for", "owner_name": "owner name"},
    },
}
STATE_CELLS = [
    {
        "matcher": {"id": "byName", "options": "state"},
        "properties": [
            {
                "id": "mappings",
                "value": [
                    {
                        "type": "value",
                        "options": {
                            s: {"color": c, "index": i}
                            for i, (s, c) in enumerate(STATE_COLOURS.items())
                        },
                    }
                ],
            },
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
        ],
    }
]


# --- the dashboards -----------------------------------------------------------------------


def overview() -> dict[str, Any]:
    sel = selection(".*")
    commune_map = Panel(
        "geomap",
        "Communes, coloured by their worst site state",
        "Each commune at its centre (districtmon_commune_info), coloured by the worst state of "
        "its sites in the selection: red down, orange unreachable, yellow degraded, grey "
        "unknown, blue maintenance, green all up.",
        [
            instant_table(
                f"max by (commune) ({SEVERITY}{{{sel}}})\n"
                "* on (commune) group_left (name, lat, lon)\n"
                "  max by (commune, name, lat, lon) (districtmon_commune_info)"
            )
        ],
        width=12,
        height=14,
        thresholds=severity_thresholds(),
        mappings=severity_mappings(),
        transformations=[
            {
                "id": "convertFieldType",
                "options": {
                    "fields": {},
                    "conversions": [
                        {"targetField": "lat", "destinationType": "number"},
                        {"targetField": "lon", "destinationType": "number"},
                    ],
                },
            }
        ],
        options={
            "view": {"id": "fit", "allLayers": True, "padding": 10, "lat": 0, "lon": 0, "zoom": 9},
            "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
            "basemap": {"type": "default", "name": "Basemap", "config": {}},
            "layers": [
                {
                    "type": "markers",
                    "name": "Communes",
                    "tooltip": True,
                    "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                    "config": {
                        "showLegend": False,
                        "style": {
                            "color": {"field": "Value", "fixed": "dark-green"},
                            "opacity": 0.8,
                            "size": {"fixed": 14},
                            "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                            "text": {"mode": "field", "field": "name", "fixed": ""},
                            "textConfig": {"fontSize": 11, "offsetY": -16, "textAlign": "center"},
                        },
                    },
                }
            ],
            "tooltip": {"mode": "details"},
        },
        panel_id=5,
    )
    by_state = stat(
        "Sites by state",
        "How many sites of the selection are in each state now.",
        f"sum by (state) ({COUNTS}{{{sel}}})",
        legend="{{state}}",
        width=12,
        height=5,
        panel_id=4,
    )
    by_state.overrides = [
        {
            "matcher": {"id": "byName", "options": state},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}],
        }
        for state, colour in STATE_COLOURS.items()
    ]
    by_state.options["colorMode"] = "background"
    kinds = table(
        "Sites by kind and state",
        "Counts of the selection, one row per kind of site.",
        instant_table(f"sum by (kind, state) ({COUNTS}{{{sel}}})"),
        transformations=[matrix("kind", "state")],
        width=12,
        height=14,
        hide=(),
        panel_id=6,
    )
    outages = table(
        "Current outages",
        "Sites down, unreachable or degraded now: for how long, and whose they are. Empty when "
        "every site of the selection is up.",
        instant_table(in_state_for("down|unreachable|degraded", sel)),
        transformations=[OUTAGE_COLUMNS],
        overrides=STATE_CELLS,
        unit="dtdurations",
        width=16,
        height=10,
        sort="for",
        hide=(),
        panel_id=7,
    )
    reasons = table(
        "Why: reason codes of the sites not up",
        "One row per reason the daemon gives for a site that is not up (timeout, on_battery, "
        "wan_down, behind_parent, maintenance, auth...): the bounded codes of "
        "districtmon_site_reason; the full text is in the JSON API and the log.",
        instant_table(
            f"(districtmon_site_reason{{{sel}}} == 1)\n"
            "* on (site) group_left (name) max by (site, name) (districtmon_site_info)"
        ),
        transformations=[REASON_COLUMNS],
        width=8,
        height=10,
        hide=(),
        panel_id=9,
    )
    down_over_time = timeseries(
        "Sites down or unreachable, by kind",
        "How the outage count moved over the time range.",
        Target(f'sum by (kind) ({COUNTS}{{state=~"down|unreachable",{sel}}})', "{{kind}}"),
        width=24,
        panel_id=8,
    )
    return dashboard(
        "districtmon-overview",
        "districtmon: district overview",
        "What is broken, where, whose and since when, across every kind of site.",
        site_variables(),
        [
            [
                stat(
                    "Down",
                    "Sites down now (N failed polls in a row).",
                    count("down", sel),
                    thresholds=BAD_ABOVE_ZERO,
                    panel_id=1,
                ),
                stat(
                    "Unreachable",
                    "Sites whose parent link is down: not their own fault.",
                    count("unreachable", sel),
                    thresholds=thresholds(("green", None), ("orange", 1)),
                    panel_id=2,
                ),
                stat(
                    "Up",
                    "Share of the selection up or degraded now (unknown and maintenance "
                    "count as not up).",
                    f"{count('up|degraded', sel)} / {count('.*', sel)}",
                    unit="percentunit",
                    decimals=1,
                    thresholds=GOOD_HIGH,
                    panel_id=3,
                ),
                by_state,
            ],
            [commune_map, kinds],
            [outages, reasons],
            [down_over_time],
        ],
        tags=("overview",),
    )


def bts() -> dict[str, Any]:
    sel = selection("bts")
    answering = "on (site) (districtmon_site_up == 1)"
    return dashboard(
        "districtmon-bts",
        "districtmon: BTS by operator and commune",
        "Mobile base stations of every operator: availability, power and reboots.",
        site_variables("bts"),
        [
            [
                bargauge(
                    "BTS up now, by operator",
                    "Share of each operator's BTS in the selection that answer now (up or "
                    "degraded).",
                    share_up("owner", sel),
                    "{{owner}}",
                    unit="percentunit",
                    thresholds=GOOD_HIGH,
                    min=0,
                    max=1,
                    width=8,
                    panel_id=1,
                ),
                bargauge(
                    "BTS availability, 30 days, by operator",
                    "Time-weighted availability from the ledger over the selected BTS of each "
                    "operator: up+degraded seconds over the seconds the monitor could count "
                    "(unknown, maintenance and unreachable time excluded), the monthly "
                    "report's figure.",
                    weighted_availability("owner", "30d", sel),
                    "{{owner}}",
                    unit="percentunit",
                    decimals=2,
                    thresholds=GOOD_HIGH,
                    min=0.9,
                    max=1,
                    width=8,
                    panel_id=2,
                ),
                stat(
                    "BTS on battery",
                    "BTS answering now whose power system runs on battery (mains lost).",
                    f"count(districtmon_device_mains_ok{{{sel}}} == 0 and {answering}) "
                    "or vector(0)",
                    thresholds=thresholds(("green", None), ("orange", 1)),
                    width=8,
                    height=8,
                    panel_id=3,
                ),
            ],
            [
                table(
                    "BTS down, by commune and operator",
                    "BTS down or unreachable now: one row per commune, one column per operator.",
                    instant_table(
                        f'sum by (commune, owner) ({COUNTS}{{state=~"down|unreachable",{sel}}})'
                    ),
                    transformations=[matrix("commune", "owner")],
                    hide=(),
                    panel_id=4,
                ),
                table(
                    "BTS availability, 24 hours, by commune and operator",
                    "Ledger availability over the last 24 hours, time-weighted over the BTS of "
                    "each commune and operator.",
                    instant_table(weighted_availability("commune, owner", "24h", sel)),
                    transformations=[matrix("commune", "owner")],
                    unit="percentunit",
                    decimals=2,
                    hide=(),
                    panel_id=5,
                ),
            ],
            [
                table(
                    "BTS on battery: battery voltage",
                    "Each BTS answering now on battery, with its battery voltage; empty while "
                    "mains hold.",
                    instant_table(
                        f"districtmon_device_battery_volts{{{sel}}}\n"
                        f"and on (site) (districtmon_device_mains_ok{{{sel}}} == 0)\n"
                        f"and {answering}"
                    ),
                    unit="volt",
                    sort="Value",
                    panel_id=6,
                ),
                table(
                    "Reboots in the time range",
                    "Reboots seen as the device's sysUpTime going backwards, per commune and "
                    "operator, over the dashboard's time range.",
                    instant_table(
                        "sum by (commune, owner) "
                        f"(resets(districtmon_site_device_uptime_seconds{{{sel}}}[$__range]))"
                    ),
                    transformations=[matrix("commune", "owner")],
                    hide=(),
                    panel_id=7,
                ),
            ],
            [
                timeseries(
                    "BTS down over time, by operator",
                    "BTS down or unreachable.",
                    Target(
                        f'sum by (owner) ({COUNTS}{{state=~"down|unreachable",{sel}}})',
                        "{{owner}}",
                    ),
                    panel_id=8,
                ),
                timeseries(
                    "Hottest BTS cabinet, by commune",
                    "Highest cabinet temperature reported by the BTS power systems of each "
                    "commune (the bts-power profile's cabinet_temperature_celsius).",
                    Target(
                        "max by (commune) "
                        f"(districtmon_device_cabinet_temperature_celsius{{{sel}}})",
                        "{{commune}}",
                    ),
                    unit="celsius",
                    panel_id=9,
                ),
            ],
        ],
        tags=("bts",),
    )


def broadcast() -> dict[str, Any]:
    sel = selection("radio_station|loudspeaker")
    communes = 'commune=~"$commune"'
    # panels about one kind ignore the kind variable: they would be empty otherwise
    radio = 'commune=~"$commune",owner=~"$owner",kind="radio_station"'
    speakers = 'commune=~"$commune",owner=~"$owner",kind="loudspeaker"'
    answering = "on (site) (districtmon_site_up == 1)"
    areas = f"max by (commune) (districtmon_commune_areas{{{communes}}})"
    coverage_note = (
        " An area counts as covered while a loudspeaker cluster that reaches it (the "
        "inventory's `covers`) is up or degraded and reports no amplifier fault; a cluster "
        "the monitor cannot see (unknown) covers nothing here. Areas reached by two clusters "
        "count twice, capped at 100% per commune."
    )
    return dashboard(
        "districtmon-broadcast",
        "districtmon: broadcast",
        "Radio stations and loudspeaker clusters: online, amplifier faults, live coverage.",
        site_variables("radio_station|loudspeaker"),
        [
            [
                stat(
                    "Radio stations up",
                    "Share of the radio stations of the selection up or degraded now.",
                    f"{count('up|degraded', radio)} / {count('.*', radio)}",
                    unit="percentunit",
                    thresholds=GOOD_HIGH,
                    panel_id=1,
                ),
                stat(
                    "Loudspeaker clusters up",
                    "Share of the loudspeaker clusters of the selection up or degraded now.",
                    f"{count('up|degraded', speakers)} / {count('.*', speakers)}",
                    unit="percentunit",
                    thresholds=GOOD_HIGH,
                    panel_id=2,
                ),
                stat(
                    "Live coverage, district",
                    "Share of the residential areas of the selected communes reached now by a "
                    "working loudspeaker cluster." + coverage_note,
                    f"sum({COVERAGE}{{{communes}}} * on (commune) {areas})\n/ sum({areas})",
                    unit="percentunit",
                    thresholds=thresholds(("red", None), ("orange", 0.4), ("green", 0.55)),
                    panel_id=3,
                ),
                stat(
                    "Amplifier faults",
                    "Loudspeaker clusters answering now that report an amplifier fault.",
                    f"count(districtmon_device_amplifier_ok{{{speakers}}} == 0 and {answering})"
                    " or vector(0)",
                    thresholds=BAD_ABOVE_ZERO,
                    panel_id=4,
                ),
                stat(
                    "Playing now",
                    "Clusters answering now that report playing a broadcast.",
                    f"count(districtmon_device_playing{{{speakers}}} == 1 and {answering})"
                    " or vector(0)",
                    panel_id=5,
                ),
                stat(
                    "Broker connection",
                    "1 while the daemon is connected to the MQTT broker that carries the "
                    "clusters' telemetry; 0 means MQTT sites are unknown, not down.",
                    "min(districtmon_mqtt_broker_connected)",
                    thresholds=thresholds(("red", None), ("green", 1)),
                    mappings=[
                        {
                            "type": "value",
                            "options": {"0": {"text": "lost"}, "1": {"text": "connected"}},
                        }
                    ],
                    panel_id=6,
                ),
            ],
            [
                bargauge(
                    "Live coverage by commune",
                    "Per commune: residential areas reached by a working cluster now, over "
                    "all its residential areas." + coverage_note,
                    f"{COVERAGE}{{{communes}}}",
                    "{{commune}}",
                    unit="percentunit",
                    min=0,
                    max=1,
                    thresholds=thresholds(("red", None), ("orange", 0.4), ("green", 0.55)),
                    height=10,
                    panel_id=7,
                ),
                timeseries(
                    "Live coverage over time",
                    "The coverage share of each selected commune." + coverage_note,
                    Target(f"{COVERAGE}{{{communes}}}", "{{commune}}"),
                    unit="percentunit",
                    min=0,
                    max=1,
                    height=10,
                    panel_id=8,
                ),
            ],
            [
                table(
                    "Broadcast sites not up",
                    "Radio stations and clusters down, unreachable or degraded, with how long.",
                    instant_table(in_state_for("down|unreachable|degraded", sel)),
                    transformations=[OUTAGE_COLUMNS],
                    overrides=STATE_CELLS,
                    unit="dtdurations",
                    sort="for",
                    hide=(),
                    panel_id=9,
                ),
                table(
                    "Areas silent now, by cluster",
                    "Each cluster that reaches no one now (down, unreachable, or answering "
                    "with an amplifier fault) and the number of residential areas it leaves "
                    "without the loudspeaker.",
                    instant_table(
                        f"districtmon_site_covered_areas{{{speakers}}}\n"
                        "and on (site) (\n"
                        "    districtmon_site_up == 0\n"
                        f"  or on (site) (districtmon_device_amplifier_ok == 0 and {answering})\n"
                        ")"
                    ),
                    sort="Value",
                    panel_id=10,
                ),
            ],
            [
                table(
                    "Amplifier faults",
                    "Clusters answering now whose telemetry reports amplifier_ok false.",
                    instant_table(
                        f"districtmon_device_amplifier_ok{{{speakers}}} == 0 and {answering}"
                    ),
                    panel_id=11,
                ),
                timeseries(
                    "Signal strength of the clusters' 4G links",
                    "RSSI reported in the clusters' telemetry, weakest per commune.",
                    Target(
                        f"min by (commune) (districtmon_device_rssi_dbm{{{speakers}}})",
                        "{{commune}}",
                    ),
                    unit="dBm",
                    panel_id=12,
                ),
            ],
        ],
        tags=("broadcast",),
    )


def agency() -> dict[str, Any]:
    sel = selection("gateway|video_endpoint|portal")
    # panels named for gateways read gateways only (and still follow the kind variable)
    gateways = selection("gateway")
    answering = "on (site) (districtmon_site_up == 1)"
    return dashboard(
        "districtmon-agency",
        "districtmon: agency networks",
        "LAN gateways and WAN links of the state agencies and commune People's Committees.",
        site_variables("gateway|video_endpoint|portal"),
        [
            [
                stat(
                    "Gateways down",
                    "Gateways of the selection down now.",
                    count("down", gateways),
                    thresholds=BAD_ABOVE_ZERO,
                    panel_id=1,
                ),
                stat(
                    "Gateways up",
                    "Share of the selection's gateways up or degraded now.",
                    f"{count('up|degraded', gateways)} / {count('.*', gateways)}",
                    unit="percentunit",
                    thresholds=GOOD_HIGH,
                    panel_id=2,
                ),
                stat(
                    "WAN links down",
                    "Gateways answering but with a WAN interface (ifAlias naming WAN, uplink "
                    "or internet) down.",
                    f"count(count by (site) (districtmon_device_if_oper_up{{{WAN},{gateways}}} "
                    f"== 0) and {answering}) or vector(0)",
                    thresholds=BAD_ABOVE_ZERO,
                    panel_id=3,
                ),
                stat(
                    "Slowest answer",
                    "Longest last-poll duration among the selection.",
                    f"max(districtmon_site_last_poll_duration_seconds{{{sel}}})",
                    unit="s",
                    panel_id=4,
                ),
            ],
            [
                table(
                    "Every gateway: state and for how long",
                    "All gateways of the selection, worst first.",
                    instant_table(in_state_for(".*", gateways)),
                    transformations=[OUTAGE_COLUMNS],
                    overrides=STATE_CELLS,
                    unit="dtdurations",
                    width=24,
                    height=10,
                    hide=(),
                    panel_id=5,
                ),
            ],
            [
                timeseries(
                    "WAN traffic in",
                    "Bits per second received on each gateway's WAN interfaces (ifAlias "
                    "naming WAN, uplink or internet), over at least five polls.",
                    Target(
                        "8 * sum by (site) (rate(districtmon_device_if_in_octets_total"
                        f"{{{WAN},{gateways}}}[$__rate_interval]))",
                        "{{site}}",
                    ),
                    unit="bps",
                    interval=DEVICE_RATE_INTERVAL,
                    panel_id=6,
                ),
                timeseries(
                    "WAN traffic out",
                    "Bits per second sent on each gateway's WAN interfaces (ifAlias naming "
                    "WAN, uplink or internet), over at least five polls.",
                    Target(
                        "8 * sum by (site) (rate(districtmon_device_if_out_octets_total"
                        f"{{{WAN},{gateways}}}[$__rate_interval]))",
                        "{{site}}",
                    ),
                    unit="bps",
                    interval=DEVICE_RATE_INTERVAL,
                    panel_id=7,
                ),
            ],
            [
                timeseries(
                    "Poll round trip, by commune",
                    "Mean duration of the last poll of the selection's sites in each commune: "
                    "a slow link shows here first.",
                    Target(
                        f"avg by (commune) (districtmon_site_last_poll_duration_seconds{{{sel}}})",
                        "{{commune}}",
                    ),
                    unit="s",
                    panel_id=8,
                ),
                timeseries(
                    "Ping round trip and loss",
                    "ICMP probes of the selection's sites that speak no SNMP: mean round trip "
                    "and worst loss per commune.",
                    Target(
                        f"avg by (commune) (districtmon_site_rtt_seconds{{{sel}}})",
                        "rtt {{commune}}",
                    ),
                    Target(
                        f"max by (commune) (districtmon_site_loss_ratio{{{sel}}})",
                        "loss {{commune}}",
                    ),
                    unit="s",
                    panel_id=9,
                ),
            ],
        ],
        tags=("agency",),
    )


def sla() -> dict[str, Any]:
    sel = selection(".*")

    def availability(by: str, panel_id: int, width: int = 8) -> Panel:
        return table(
            f"30-day availability by {by}",
            "Time-weighted availability from the ledger: up+degraded seconds over the seconds "
            "the monitor could count (unknown and maintenance excluded; unreachable charged to "
            f"the parent), summed over the selected sites of each {by}: the monthly report's "
            "figure.",
            instant_table(weighted_availability(by, "30d", sel)),
            unit="percentunit",
            decimals=3,
            thresholds=GOOD_HIGH,
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Value"},
                    "properties": [
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                        {"id": "displayName", "value": "availability"},
                    ],
                }
            ],
            width=width,
            height=10,
            hide=("Time",),
            panel_id=panel_id,
        )

    return dashboard(
        "districtmon-sla",
        "districtmon: SLA",
        "Availability per commune, owner and kind: the monthly report's figures, live.",
        site_variables(),
        [
            [availability("commune", 1), availability("owner", 2), availability("kind", 3)],
            [
                table(
                    "Least available sites, 30 days",
                    "The twenty sites of the selection with the lowest 30-day availability.",
                    instant_table(
                        f'bottomk(20, districtmon_site_availability_ratio{{window="30d",{sel}}})'
                    ),
                    unit="percentunit",
                    decimals=3,
                    sort=None,
                    panel_id=4,
                ),
                table(
                    "Share of scrapes up, by commune (Prometheus' view)",
                    "Mean of districtmon_site_up over the time range, as Prometheus sampled it: "
                    "a cross-check only. The ledger's figure above is the one reported.",
                    instant_table(
                        f"avg by (commune) (avg_over_time(districtmon_site_up{{{sel}}}[$__range]))"
                    ),
                    unit="percentunit",
                    decimals=3,
                    panel_id=5,
                ),
            ],
            [
                table(
                    "State changes in the time range, by commune and kind",
                    "How often sites changed state (flapping shows here).",
                    instant_table(
                        "sum by (commune, kind) (changes("
                        f"districtmon_site_state_since_timestamp_seconds{{{sel}}}[$__range]))"
                    ),
                    transformations=[matrix("commune", "kind")],
                    width=24,
                    hide=(),
                    panel_id=6,
                ),
            ],
        ],
        tags=("sla",),
    )


def monitor() -> dict[str, Any]:
    job = 'job=~"$job"'
    variables = [
        variable("job", "Job", "label_values(districtmon_build_info, job)"),
        *site_variables(),
    ]

    def quantile(q: float, metric: str, by: str = "") -> str:
        group = f"le, {by}" if by else "le"
        return (
            f"histogram_quantile({q}, sum by ({group}) "
            f"(rate({metric}_bucket{{{job}}}[$__rate_interval])))"
        )

    return dashboard(
        "districtmon-monitor",
        "districtmon: the monitor's own health",
        "Is the watcher watching? Polls, lag, errors, broker, ledger, scrapes.",
        variables,
        [
            [
                stat(
                    "Daemon scraped",
                    "1 while Prometheus can scrape the daemon.",
                    f"min(up{{{job}}})",
                    thresholds=thresholds(("red", None), ("green", 1)),
                    panel_id=1,
                ),
                stat(
                    "Polls per second",
                    "Polls completed per second, every probe.",
                    f"sum(rate(districtmon_polls_total{{{job}}}[$__rate_interval]))",
                    unit="reqps",
                    panel_id=2,
                ),
                stat(
                    "Oldest poll",
                    "Age of the least recently polled site of the selection: should stay "
                    "near the poll interval.",
                    f"time() - min(districtmon_site_last_poll_timestamp_seconds{{{SEL}}})",
                    unit="s",
                    panel_id=3,
                ),
                stat(
                    "Broker connection",
                    "1 while connected to the MQTT broker.",
                    f"min(districtmon_mqtt_broker_connected{{{job}}})",
                    thresholds=thresholds(("red", None), ("green", 1)),
                    panel_id=4,
                ),
                stat(
                    "Ledger errors in range",
                    "Ledger transactions that failed (and were retried).",
                    f"sum(increase(districtmon_ledger_write_errors_total{{{job}}}[$__range]))",
                    thresholds=BAD_ABOVE_ZERO,
                    panel_id=5,
                ),
                stat(
                    "Scrape duration",
                    "How long Prometheus took to scrape /metrics.",
                    f"max(scrape_duration_seconds{{{job}}})",
                    unit="s",
                    thresholds=thresholds(("green", None), ("orange", 0.25), ("red", 1)),
                    panel_id=6,
                ),
            ],
            [
                timeseries(
                    "Polls by result",
                    "Polls per second by probe and result.",
                    Target(
                        "sum by (probe, result) "
                        f"(rate(districtmon_polls_total{{{job}}}[$__rate_interval]))",
                        "{{probe}} {{result}}",
                    ),
                    unit="reqps",
                    panel_id=7,
                ),
                timeseries(
                    "Poll errors by reason",
                    "Failed polls per second by probe and reason (timeout, auth, malformed...).",
                    Target(
                        "sum by (probe, reason) "
                        f"(rate(districtmon_poll_errors_total{{{job}}}[$__rate_interval]))",
                        "{{probe}} {{reason}}",
                    ),
                    unit="reqps",
                    panel_id=8,
                ),
            ],
            [
                timeseries(
                    "Poll duration",
                    "p50 and p99 of poll durations, retries included.",
                    Target(
                        quantile(0.5, "districtmon_poll_duration_seconds", "probe"), "p50 {{probe}}"
                    ),
                    Target(
                        quantile(0.99, "districtmon_poll_duration_seconds", "probe"),
                        "p99 {{probe}}",
                    ),
                    unit="s",
                    width=8,
                    panel_id=9,
                ),
                timeseries(
                    "Schedule lag",
                    "How late polls start against their schedule (p50, p99); skipped rounds "
                    "mean the poller cannot keep up.",
                    Target(quantile(0.5, "districtmon_schedule_lag_seconds"), "p50"),
                    Target(quantile(0.99, "districtmon_schedule_lag_seconds"), "p99"),
                    Target(
                        f"sum(rate(districtmon_polls_skipped_total{{{job}}}[$__rate_interval]))",
                        "skipped per second",
                    ),
                    unit="s",
                    width=8,
                    panel_id=10,
                ),
                timeseries(
                    "Ledger write latency",
                    "p50 and p99 of ledger transactions; the queue waiting to be written.",
                    Target(quantile(0.5, "districtmon_ledger_write_seconds"), "p50"),
                    Target(quantile(0.99, "districtmon_ledger_write_seconds"), "p99"),
                    Target(f"max(districtmon_ledger_queue_length{{{job}}})", "queue"),
                    unit="s",
                    width=8,
                    panel_id=11,
                ),
            ],
            [
                timeseries(
                    "State changes",
                    "Confirmed state changes per second, by new state.",
                    Target(
                        "sum by (state) "
                        f"(rate(districtmon_state_transitions_total{{{job}}}[$__rate_interval]))",
                        "{{state}}",
                    ),
                    width=8,
                    panel_id=12,
                ),
                timeseries(
                    "Daemon CPU and memory",
                    "CPU cores used and resident memory of the daemon process.",
                    Target(
                        f"rate(process_cpu_seconds_total{{{job}}}[$__rate_interval])", "CPU cores"
                    ),
                    Target(f"process_resident_memory_bytes{{{job}}} / 2^30", "RSS GiB"),
                    width=8,
                    panel_id=13,
                ),
                table(
                    "Daemons",
                    "Version and start time of each daemon scraped.",
                    instant_table(
                        f"districtmon_start_time_seconds{{{job}}} * 1000\n"
                        f"* on (instance, job) group_left (version) districtmon_build_info{{{job}}}"
                    ),
                    unit="dateTimeAsIso",
                    width=8,
                    panel_id=14,
                ),
            ],
        ],
        tags=("monitor",),
    )


DASHBOARDS = {
    "overview": overview,
    "bts": bts,
    "broadcast": broadcast,
    "agency": agency,
    "sla": sla,
    "monitor": monitor,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    for name, build in DASHBOARDS.items():
        (HERE / f"{name}.json").write_text(render(build), encoding="utf-8")
    print(f"wrote {len(DASHBOARDS)} dashboards to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
