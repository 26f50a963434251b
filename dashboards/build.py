"""Writes the Grafana dashboards of dashboards/*.json: the JSON is what Grafana provisions and
what reviews read; this script is how it stays tidy (one datasource, one set of variables,
ids and layout computed, keys sorted). Edit here, run `python dashboards/build.py`, commit
both; tests/test_dashboards.py fails when the two differ.

Only the standard library: grafana-foundation-sdk was tried and left out (see
dashboards/README.md).

Every query filters with the dashboard's variables (commune, owner, kind) and reads either the
daemon's series or the recording rules of config/prometheus/dashboards.rules.yml.

What people read is in Vietnamese (titles, variable and state names), with the English title
at the head of every description; each description ends with what to do when the panel is
red and a link to the runbook the daemon serves. `check` (run by `main` and by the tests)
refuses a dashboard that breaks the rules operators rely on: a panel without a description,
a unit or a translation, a link to a dashboard that does not exist, a duplicate id, a
variable used before it is defined, two units on one axis.
"""

from __future__ import annotations

import json
import re
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


# What a state is called on screen: Vietnamese, the daemon's word in brackets (it is what the
# alerts, the API and the log say).
STATE_NAMES = {
    "up": "hoạt động (up)",
    "maintenance": "bảo trì (maintenance)",
    "unknown": "không rõ (unknown)",
    "degraded": "suy giảm (degraded)",
    "unreachable": "không tới được (unreachable)",
    "down": "mất kết nối (down)",
}


def severity_mappings() -> list[dict[str, Any]]:
    """A state's severity number shown as its name in its colour: the same six colours on
    every map, stat, timeline and table."""
    return [
        {
            "type": "value",
            "options": {
                str(n): {"text": STATE_NAMES[state], "color": STATE_COLOURS[state], "index": n}
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
# Error budget left (1 = untouched, 0 = spent, below 0 = the objective is missed): colours
# relative to each site's own objective, whatever its kind.
BUDGET = thresholds(("red", None), ("orange", 0), ("yellow", 0.25), ("green", 0.5))
# An availability coloured against the objective given by the panel's query B (Grafana's
# "config from query results"): red under it, green at or over it.
AGAINST_OBJECTIVE = thresholds(("red", None), ("green", 1))


def objective_threshold(ref: str = "B") -> dict[str, Any]:
    """Use the value of query `ref` (the objective) as the threshold of the other fields."""
    return {
        "id": "configFromData",
        "options": {
            "configRefId": ref,
            "applyTo": {"id": "byFrameRefID", "options": "A"},
            "mappings": [{"fieldName": "Value", "handlerKey": "threshold1"}],
        },
    }


# --- variables ----------------------------------------------------------------------------


def variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = True,
    regex: str = "",
    hide: int = 0,
) -> dict[str, Any]:
    """A query variable. With `regex` (named groups `value` and `text`) over a
    `query_result(...)`, Grafana offers the text (a name) and puts the value (an id) in the
    queries."""
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
        "hide": hide,
        "options": [],
        "regex": regex,
        "skipUrlSync": False,
    }


def named_variable(name: str, label: str, info: str, *, multi: bool = True) -> dict[str, Any]:
    """A variable whose value is the id label `name` and whose text is the `name` label of
    `info` (an instant vector of `max by (<name>, name) (...)`): Grafana renders each series
    as `{a="..", b=".."} 1 <ms>`, labels in name order, which the regex reads. One line:
    Grafana's pattern for query_result does not match across a line break."""
    if "\n" in info:
        raise ValueError(f"{name}: a query_result variable must be one line")
    first, second = sorted((name, "name"))
    groups = {name: "value", "name": "text"}
    regex = f'/{first}="(?<{groups[first]}>[^"]*)".*{second}="(?<{groups[second]}>[^"]*)"/'
    return variable(name, label, f"query_result({info})", multi=multi, regex=regex)


# The daemon's listener, for the runbook links of the descriptions (the alerts link the same
# place); hidden: nobody picks it.
DAEMON_VARIABLE = variable(
    "daemon",
    "Daemon",
    "label_values(districtmon_build_info, instance)",
    multi=False,
    hide=2,
)


def site_variables(kinds: str = ".*") -> list[dict[str, Any]]:
    """Xã (commune), chủ sở hữu (owner), loại (kind); each narrowed by those before it and by
    the dashboard's kinds, so the BTS dashboard offers operators only. All three are offered
    by name."""
    base = f'kind=~"{kinds}"'
    return [
        named_variable(
            "commune",
            "Xã",
            "max by (commune, name) (districtmon_commune_info "
            f"and on (commune) districtmon_site_info{{{base}}})",
        ),
        named_variable(
            "owner",
            "Chủ sở hữu",
            "max by (name, owner) (districtmon_owner_info "
            f'and on (owner) districtmon_site_info{{{base},commune=~"$commune"}})',
        ),
        named_variable(
            "kind",
            "Loại",
            "max by (kind, name) (districtmon_kind_info and on (kind) "
            f'districtmon_site_info{{{base},commune=~"$commune",owner=~"$owner"}})',
        ),
        DAEMON_VARIABLE,
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
    # a unit of its own, other than the panel's: drawn on the right-hand axis (one unit per
    # axis, at most two axes)
    unit: str | None = None

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
    unit: str = ""  # required: check() refuses a panel without one
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
        overrides = list(self.overrides)
        for i, target in enumerate(self.targets):
            if target.unit is not None and target.unit != self.unit:
                overrides.append(
                    {
                        "matcher": {"id": "byFrameRefID", "options": chr(ord("A") + i)},
                        "properties": [
                            {"id": "unit", "value": target.unit},
                            {"id": "custom.axisPlacement", "value": "right"},
                        ],
                    }
                )
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
            "title": TITLES.get(self.title, ""),
            "description": describe(self.title, self.description),
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": [t.json(chr(ord("A") + i)) for i, t in enumerate(self.targets)],
            "fieldConfig": {"defaults": defaults, "overrides": overrides},
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
    panel.options = bargauge_options()
    return panel


def bargauge_options() -> dict[str, Any]:
    return {
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


def state_columns() -> dict[str, Any]:
    """After a matrix by (kind, state): the states' names as column headers."""
    return {
        "id": "organize",
        "options": {
            "excludeByName": {},
            "indexByName": {"kind_name\\state": 0}
            | {state: 1 + n for state, n in STATE_SEVERITY.items()},
            "renameByName": {"kind_name\\state": "Loại \\ trạng thái"} | STATE_NAMES,
        },
    }


def dashboard(uid: str, title: str, description: str, variables: list[dict[str, Any]],
              rows: list[list[Panel]], tags: tuple[str, ...] = (),
              notes: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    """`notes`: the annotations (default: those of `annotations()` for every kind)."""
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
        "annotations": {"list": annotations(SEL) if notes is None else notes},
        "links": [
            {
                "type": "link",
                "title": "Tổng quan huyện (overview)",
                "url": "/d/districtmon-overview/districtmon-overview",
                "icon": "dashboard",
                "includeVars": True,
                "keepTime": True,
                "tags": [],
                "asDropdown": False,
                "targetBlank": False,
                "tooltip": "Back to the district overview, keeping time range and variables",
            },
            {
                "type": "dashboards",
                "tags": ["districtmon"],
                "asDropdown": True,
                "title": "districtmon",
                "includeVars": True,
                "keepTime": True,
            },
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
    state, the site's name, the commune's and the owner's name joined in as labels."""
    return (
        f"(time() - districtmon_site_state_since_timestamp_seconds{{{sel}}})\n"
        f'* on (site) group_left (state) (districtmon_site_state{{state=~"{states}"}} == 1)\n'
        "* on (site) group_left (name) max by (site, name) (districtmon_site_info)\n"
        f"* on (owner) group_left (owner_name) {OWNER_NAME}\n"
        f"* on (commune) group_left (commune_name) {COMMUNE_NAME}"
    )


def weighted_availability(by: str, window: str, sel: str) -> str:
    """Availability of a group as the ledger and the monthly report count it: the sites'
    up+degraded seconds over their counted seconds, summed (a site weighs by the time it was
    watched), not a mean of the sites' ratios."""
    ratio = f'districtmon_site_availability_ratio{{window="{window}",{sel}}}'
    counted = f'districtmon_site_availability_counted_seconds{{window="{window}",{sel}}}'
    return f"sum by ({by}) ({ratio} * {counted})\n/ sum by ({by}) ({counted})"


# Column headers of the tables: Vietnamese, the label in brackets. Ids (site, commune) keep
# their label as header: the data links read them by that name.
COLUMNS = {
    "state": "Trạng thái (state)",
    "name": "Tên (name)",
    "commune_name": "Xã (commune)",
    "owner_name": "Chủ sở hữu (owner)",
    "reason": "Lý do (reason)",
    "kind": "Loại (kind)",
    "kind_name": "Tên loại (kind name)",
}
FOR = "Thời gian (for)"
REASON_COLUMNS = {
    "id": "organize",
    "options": {
        "excludeByName": {
            "Time": True,
            "Value": True,
            "instance": True,
            "job": True,
            "__name__": True,
            "owner": True,
        },
        "indexByName": {
            "name": 0,
            "reason": 1,
            "commune_name": 2,
            "kind": 3,
            "site": 4,
            "commune": 5,
        },
        "renameByName": COLUMNS,
    },
}
OUTAGE_COLUMNS = {
    "id": "organize",
    "options": {
        "excludeByName": {"Time": True, "instance": True, "job": True, "__name__": True},
        "indexByName": {
            "state": 0,
            "name": 1,
            "commune_name": 2,
            "kind": 3,
            "owner_name": 4,
            "Value": 5,
            "site": 6,
            "commune": 7,
            "owner": 8,
        },
        "renameByName": {**COLUMNS, "Value": FOR},
    },
}
SITE_COLUMNS = {
    "id": "organize",
    "options": {
        "excludeByName": {"Time": True, "instance": True, "job": True, "__name__": True},
        "indexByName": {"name": 0, "Value": 1, "site": 2},
        "renameByName": COLUMNS,
    },
}
STATE_CELLS = [
    {
        "matcher": {"id": "byName", "options": COLUMNS["state"]},
        "properties": [
            {
                "id": "mappings",
                "value": [
                    {
                        "type": "value",
                        "options": {
                            s: {"color": c, "index": i, "text": STATE_NAMES[s]}
                            for i, (s, c) in enumerate(STATE_COLOURS.items())
                        },
                    }
                ],
            },
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
        ],
    }
]


# --- names, links, annotations ------------------------------------------------------------

COMMUNE_NAME = (
    'label_replace(max by (commune, name) (districtmon_commune_info), "commune_name", "$1", '
    '"name", "(.*)")'
)
SITE_NAME = "max by (site, name) (districtmon_site_info)"
KIND_NAME = (
    'label_replace(max by (kind, name) (districtmon_kind_info), "kind_name", "$1", "name", "(.*)")'
)


def named(expr: str, *labels: str) -> str:
    """`expr` with the names of its `labels` joined in (commune -> commune_name, owner ->
    owner_name, kind -> kind_name, site -> name): legends and columns show names, the ids
    stay for links and checks. The value is unchanged (each name series is 1)."""
    joins = {
        "commune": f"* on (commune) group_left (commune_name) {COMMUNE_NAME}",
        "owner": f"* on (owner) group_left (owner_name) {OWNER_NAME}",
        "site": f"* on (site) group_left (name) {SITE_NAME}",
    }
    for label in labels:
        if label == "kind":
            # a daemon without districtmon_kind_info (older) still shows its kinds, by id
            expr = (
                f"(\n  (\n  {expr}\n  )\n  * on (kind) group_left (kind_name) {KIND_NAME}\n)\n"
                f"or on (kind) (\n  {expr}\n)"
            )
            continue
        expr = f"(\n  {expr}\n)\n{joins[label]}"
    return expr


# A table row leads to the site's (the commune's) dashboard, with the time range and the
# variables the operator had chosen.
SITE_URL = (
    "/d/districtmon-site/districtmon-site?${__url_time_range}&${commune:queryparam}"
    "&${owner:queryparam}&${kind:queryparam}&var-site=${__data.fields.site}"
)
COMMUNE_URL = (
    "/d/districtmon-commune/districtmon-commune?${__url_time_range}&${owner:queryparam}"
    "&${kind:queryparam}&var-commune=${__data.fields.commune}"
)


def row_links(
    site_field: str | None = COLUMNS["name"], commune_field: str | None = COLUMNS["commune_name"]
) -> list[dict[str, Any]]:
    """Overrides that make a table's site name (commune name) a link to its dashboard."""
    found = []
    for column, title, url in (
        (site_field, "Mở trang của điểm (open the site's dashboard)", SITE_URL),
        (commune_field, "Mở trang của xã (open the commune's dashboard)", COMMUNE_URL),
    ):
        if column:
            found.append(
                {
                    "matcher": {"id": "byName", "options": column},
                    "properties": [{"id": "links", "value": [{"title": title, "url": url}]}],
                }
            )
    return found


def annotation(
    name: str,
    expr: str,
    colour: str,
    title: str,
    text: str,
    *,
    at_value: bool = False,
    enable: bool = True,
    tags: str = "",
) -> dict[str, Any]:
    """A Prometheus annotation. `at_value`: each series' value is a time (ms) and each
    distinct one is a moment (a start, a reload); otherwise a region while the series is
    non-zero."""
    return {
        "name": name,
        "datasource": DATASOURCE,
        "enable": enable,
        "hide": False,
        "iconColor": colour,
        "expr": expr,
        "step": "60s",
        "titleFormat": title,
        "textFormat": text,
        "tagKeys": tags,
        "useValueForTime": at_value,
    }


def annotations(sel: str, *, changes: bool = False) -> list[dict[str, Any]]:
    """State changes (off unless `changes`: at All on a province they would be thousands),
    maintenance, the daemon's starts, stops, reloads and refused reloads, and the times
    Prometheus could not scrape it."""
    return [
        annotation(
            "Đổi trạng thái (state changes)",
            f"(districtmon_site_state_since_timestamp_seconds{{{sel}}} * 1000)\n"
            '* on (site) group_left (state) (districtmon_site_state{state=~".+"} == 1)\n'
            f"* on (site) group_left (name) {SITE_NAME}",
            "purple",
            "{{name}} → {{state}}",
            "{{site}} ({{commune}}, {{kind}}): confirmed change to {{state}}",
            at_value=True,
            enable=changes,
            tags="state,commune,kind",
        ),
        annotation(
            "Bảo trì (maintenance)",
            f'(districtmon_site_state{{state="maintenance",{sel}}} == 1)\n'
            f"* on (site) group_left (name) {SITE_NAME}",
            "blue",
            "{{name}}: bảo trì (maintenance)",
            "{{site}} ({{commune}}) inside a planned maintenance window",
            tags="commune,kind",
        ),
        annotation(
            "Cửa sổ bảo trì (maintenance windows)",
            "(districtmon_maintenance_window_active == 1)\n"
            "* on (window, source) group_left (reason)\n"
            "  max by (window, source, reason) (districtmon_maintenance_window_info)",
            "light-blue",
            "cửa sổ bảo trì {{window}} (maintenance window)",
            "{{reason}} (from {{source}})",
            tags="window",
        ),
        annotation(
            "Daemon khởi động (daemon started)",
            "max by (instance) (districtmon_start_time_seconds) * 1000",
            "green",
            "districtmon khởi động (started)",
            "districtmon on {{instance}} started",
            at_value=True,
        ),
        annotation(
            "Daemon dừng (daemon stopped)",
            "max by (instance, clean) (districtmon_previous_run_end_timestamp_seconds) * 1000",
            "red",
            "districtmon dừng (stopped), clean={{clean}}",
            "districtmon on {{instance}} stopped (clean=false: crashed or lost power); every "
            "site is unknown until the next start",
            at_value=True,
        ),
        annotation(
            "Nạp cấu hình (configuration loaded)",
            "max by (instance) (districtmon_config_last_reload_success_timestamp_seconds) * 1000",
            "yellow",
            "cấu hình được nạp (configuration loaded)",
            "districtmon on {{instance}} loaded its configuration (a start or a reload)",
            at_value=True,
        ),
        annotation(
            "Nạp lại bị từ chối (reload refused)",
            "max by (instance) (1 - districtmon_config_last_reload_successful) > 0",
            "orange",
            "nạp lại bị từ chối (reload refused)",
            "districtmon on {{instance}} refused a new configuration and runs on the old one",
        ),
        annotation(
            "Không thu thập được daemon (daemon not scraped)",
            # the live state's scrape; each site's availability has its own job and alert
            # (DistrictmonAvailabilityNotScraped): the live panels still move without it
            "max by (instance) "
            '(up{job=~"districtmon.*", job!="districtmon_availability"} == 0) + 1',
            "dark-red",
            "Prometheus không thu thập được districtmon (not scraped)",
            "Prometheus could not scrape {{instance}}: the panels show nothing new meanwhile",
        ),
    ]


# --- words --------------------------------------------------------------------------------

# Each panel's title in Vietnamese, by the English title the code uses (also the head of the
# panel's description, so a reader without Vietnamese knows what it is).
TITLES = {
    "Down": "Điểm mất kết nối",
    "Unreachable": "Điểm không tới được",
    "Up": "Tỷ lệ điểm hoạt động",
    "Sites by state": "Số điểm theo trạng thái",
    "Communes, coloured by their worst site state": "Các xã, tô màu theo trạng thái xấu nhất",
    "Sites by kind and state": "Số điểm theo loại và trạng thái",
    "Current outages": "Sự cố hiện tại",
    "Why: reason codes of the sites not up": "Nguyên nhân: mã lý do của các điểm không hoạt động",
    "Sites down or unreachable, by kind": "Điểm mất kết nối hoặc không tới được, theo loại",
    "State of the selected sites over time": "Dòng thời gian trạng thái các điểm đã chọn",
    "Worst state by commune and kind": "Lịch sử trạng thái xấu nhất theo xã và loại",
    "BTS up now, by operator": "Tỷ lệ BTS hoạt động, theo nhà mạng",
    "BTS availability, 30 days, by operator": "Khả dụng BTS 30 ngày, theo nhà mạng",
    "BTS on battery": "BTS chạy ắc quy",
    "BTS down, by commune and operator": "BTS mất kết nối, theo xã và nhà mạng",
    "BTS availability, 24 hours, by commune and operator": (
        "Khả dụng BTS 24 giờ, theo xã và nhà mạng"
    ),
    "BTS on battery: battery voltage": "BTS chạy ắc quy: điện áp ắc quy",
    "Reboots in the time range": "Số lần khởi động lại trong khoảng thời gian",
    "BTS down over time, by operator": "BTS mất kết nối theo thời gian, theo nhà mạng",
    "Hottest BTS cabinet, by commune": "Tủ BTS nóng nhất, theo xã",
    "BTS error budget left, 30 days, by operator": (
        "Ngân sách lỗi BTS còn lại, 30 ngày, theo nhà mạng"
    ),
    "Radio stations up": "Đài truyền thanh hoạt động",
    "Loudspeaker clusters up": "Cụm loa hoạt động",
    "Live coverage, district": "Phủ sóng loa hiện tại, toàn huyện",
    "Amplifier faults": "Lỗi bộ khuếch đại",
    "Playing now": "Đang phát",
    "Broker connection": "Kết nối MQTT broker",
    "Live coverage by commune": "Phủ sóng loa theo xã",
    "Live coverage over time": "Phủ sóng loa theo thời gian",
    "Broadcast sites not up": "Điểm truyền thanh không hoạt động",
    "Areas silent now, by cluster": "Khu dân cư không nghe được loa, theo cụm",
    "Clusters with an amplifier fault": "Cụm loa lỗi bộ khuếch đại",
    "Signal strength of the clusters' 4G links": "Cường độ tín hiệu 4G của các cụm loa",
    "Gateways down": "Cổng mạng mất kết nối",
    "Gateways up": "Tỷ lệ cổng mạng hoạt động",
    "WAN links down": "Đường WAN bị đứt",
    "Slowest answer": "Phản hồi chậm nhất",
    "Every gateway: state and for how long": "Mọi cổng mạng: trạng thái và thời gian",
    "WAN traffic in": "Lưu lượng WAN vào",
    "WAN traffic out": "Lưu lượng WAN ra",
    "Poll round trip, by commune": "Thời gian thăm dò, theo xã",
    "Ping round trip and loss": "Ping: thời gian phản hồi và tỷ lệ mất gói",
    "30-day availability by commune": "Khả dụng 30 ngày theo xã",
    "30-day availability by owner": "Khả dụng 30 ngày theo chủ sở hữu",
    "30-day availability by kind": "Khả dụng 30 ngày theo loại",
    "Least available sites, 30 days": "Các điểm khả dụng thấp nhất, 30 ngày",
    "Share of scrapes up, by commune (Prometheus' view)": (
        "Tỷ lệ mẫu hoạt động theo xã (Prometheus)"
    ),
    "State changes in the time range, by commune and kind": (
        "Số lần đổi trạng thái, theo xã và loại"
    ),
    "Sites with the least error budget left, 30 days": (
        "Các điểm còn ít ngân sách lỗi nhất, 30 ngày"
    ),
    "Daemon scraped": "Daemon được thu thập",
    "Polls per second": "Số lần thăm dò mỗi giây",
    "Oldest poll": "Lần thăm dò cũ nhất",
    "Ledger errors in range": "Lỗi ghi sổ trong khoảng thời gian",
    "Scrape duration": "Thời gian thu thập /metrics",
    "Polls by result": "Thăm dò theo kết quả",
    "Poll errors by reason": "Lỗi thăm dò theo lý do",
    "Poll duration": "Thời gian thăm dò",
    "Schedule lag": "Độ trễ lịch thăm dò",
    "Ledger write latency": "Độ trễ ghi sổ",
    "State changes": "Đổi trạng thái",
    "Daemon CPU": "CPU của daemon",
    "Daemon memory": "Bộ nhớ của daemon",
    "Daemons": "Các daemon",
    "State now": "Trạng thái hiện tại",
    "State and for how long": "Trạng thái và thời gian",
    "State over time": "Dòng thời gian trạng thái",
    "Why: reason codes": "Nguyên nhân: mã lý do",
    "Voltages": "Điện áp",
    "Temperatures": "Nhiệt độ",
    "Radio signal": "Tín hiệu vô tuyến",
    "Health checks": "Kiểm tra tình trạng",
    "Time of the last poll": "Thời gian lần thăm dò gần nhất",
    "Availability against objective": "Khả dụng so với mục tiêu",
    "Error budget left, 30 days": "Ngân sách lỗi còn lại, 30 ngày",
    "State changes in the time range": "Số lần đổi trạng thái trong khoảng thời gian",
    "Sites of the commune": "Các điểm của xã",
    "Live coverage of the commune": "Phủ sóng loa của xã",
    "Gateways of the commune": "Cổng mạng của xã",
    "BTS up, by operator": "BTS hoạt động, theo nhà mạng",
    "Worst state by kind": "Lịch sử trạng thái xấu nhất theo loại",
}

# What to do when a panel is red (or shows what it warns of), and the runbook section
# (an alert name) that says more; "" links the runbooks' index.
WHEN_RED: dict[str, tuple[str, str]] = {
    "Down": (
        "open Current outages below: call the owner of each site down (the Owner column), worst "
        "first.",
        "SiteDown",
    ),
    "Unreachable": (
        "the fault is the parent link: find the parent down in Current outages and work on it, not"
        " on these sites.",
        "ParentDown",
    ),
    "Up": (
        "look at Current outages and the map for the commune or owner that pulls the share down.",
        "CommuneIsolated",
    ),
    "Sites by state": (
        "red is down, orange unreachable: open Current outages; grey (unknown) many at once means "
        "the monitor is blind, see the monitor dashboard.",
        "SiteDown",
    ),
    "Communes, coloured by their worst site state": (
        "click the commune's row in Current outages to open its dashboard; a whole commune red is "
        "a commune isolated.",
        "CommuneIsolated",
    ),
    "Sites by kind and state": (
        "many sites of one kind down at once point to a common cause (an operator, the broker): "
        "open that kind's dashboard.",
        "OperatorBtsOutage",
    ),
    "Current outages": (
        "call the owner shown, oldest outage first; click a name for the site's dashboard.",
        "SiteDown",
    ),
    "Why: reason codes of the sites not up": (
        "timeout: the device or its link is dead, send someone; auth: the credentials are wrong, "
        "fix credentials.yaml; on_battery: mains lost, warn the owner.",
        "SiteDown",
    ),
    "Sites down or unreachable, by kind": (
        "a step up of one kind at one moment is a common cause: check its operator or the district"
        " link.",
        "OperatorBtsOutage",
    ),
    "State of the selected sites over time": (
        "red bars are outages: hover for when they began; click the site in a table for its "
        "dashboard.",
        "SiteDown",
    ),
    "Worst state by commune and kind": (
        "a commune red across kinds is isolated: check its fibre and the commune gateway.",
        "CommuneIsolated",
    ),
    "BTS up now, by operator": (
        "call the operator's NOC with the BTS down (BTS dashboard table); many at once: an "
        "operator outage.",
        "OperatorBtsOutage",
    ),
    "BTS availability, 30 days, by operator": (
        "under its objective (red): raise it with the operator's service manager; it goes in the "
        "monthly report.",
        "AvailabilityBelowObjective",
    ),
    "BTS on battery": (
        "mains are lost at these BTS: tell the operator and the power company; watch the battery "
        "voltage below.",
        "BtsOnBattery",
    ),
    "BTS down, by commune and operator": (
        "call the operator's NOC for the commune shown; a whole commune: check its transmission "
        "link.",
        "BtsDown",
    ),
    "BTS availability, 24 hours, by commune and operator": (
        "a low figure here is an outage today: see the BTS dashboard's timeline and call the "
        "operator.",
        "AvailabilityBelowObjective",
    ),
    "BTS on battery: battery voltage": (
        "under 47 V the battery has little left: ask the operator for a generator now.",
        "BatteryLow",
    ),
    "Reboots in the time range": (
        "repeated reboots mean a failing power plant or controller: report to the operator.",
        "BtsDown",
    ),
    "BTS down over time, by operator": (
        "a step of one operator's line is an operator outage: call its NOC.",
        "OperatorBtsOutage",
    ),
    "Hottest BTS cabinet, by commune": (
        "over 45 °C the cooling failed or the door is open: tell the operator.",
        "SiteDegraded",
    ),
    "BTS error budget left, 30 days, by operator": (
        "red: the operator has spent its month's allowance of downtime; raise it with them.",
        "AvailabilityBelowObjective",
    ),
    "Radio stations up": (
        "call the district radio-TV station for the station down (table below).",
        "RadioStationDown",
    ),
    "Loudspeaker clusters up": (
        "see Areas silent: send the broadcast technician to the clusters down.",
        "LoudspeakerDown",
    ),
    "Live coverage, district": (
        "low coverage means villages hear no announcements: fix the clusters in Areas silent "
        "first.",
        "LoudspeakerDown",
    ),
    "Amplifier faults": (
        "the cluster answers but plays nothing: send the technician to its amplifier.",
        "AmplifierFault",
    ),
    "Playing now": (
        "nothing to do: this counts clusters playing.",
        "",
    ),
    "Broker connection": (
        "0: the MQTT broker is lost, clusters show unknown, not down; restart or check the broker.",
        "DistrictmonBrokerDisconnected",
    ),
    "Live coverage by commune": (
        "a commune under the line: open its dashboard and fix its clusters down.",
        "LoudspeakerDown",
    ),
    "Live coverage over time": (
        "a drop at one moment across communes is the broker or power: check the broker connection.",
        "LoudspeakerDown",
    ),
    "Broadcast sites not up": (
        "call the radio station for each row; click the name for the site's dashboard.",
        "LoudspeakerDown",
    ),
    "Areas silent now, by cluster": (
        "send the technician to the cluster with the most areas first.",
        "LoudspeakerDown",
    ),
    "Clusters with an amplifier fault": (
        "send the technician to the cluster's amplifier.",
        "AmplifierFault",
    ),
    "Signal strength of the clusters' 4G links": (
        "below -100 dBm the link is about to drop: check the antenna or ask the operator.",
        "LoudspeakerDown",
    ),
    "Gateways down": (
        "call the district IT unit: the agency's network is cut (table below).",
        "GatewayDown",
    ),
    "Gateways up": (
        "see Every gateway below for the gateways down.",
        "GatewayDown",
    ),
    "WAN links down": (
        "the gateway answers but its Internet link is down: call the ISP for that line.",
        "WanDown",
    ),
    "Slowest answer": (
        "over a second: a congested or failing link; check the gateway's WAN traffic.",
        "SiteDegraded",
    ),
    "Every gateway: state and for how long": (
        "call the district IT unit for each red row; click the name for its dashboard.",
        "GatewayDown",
    ),
    "WAN traffic in": (
        "a flat line at the link's speed is a saturated link; at zero, a dead one.",
        "WanDown",
    ),
    "WAN traffic out": (
        "a flat line at the link's speed is a saturated link; at zero, a dead one.",
        "WanDown",
    ),
    "Poll round trip, by commune": (
        "one commune slow: its fibre or gateway is congested.",
        "SiteDegraded",
    ),
    "Ping round trip and loss": (
        "loss above 0 for long: the link is failing, call the ISP.",
        "SiteDegraded",
    ),
    "30-day availability by commune": (
        "red budget: the commune's sites missed their objectives this month; see the least "
        "available sites below.",
        "AvailabilityBelowObjective",
    ),
    "30-day availability by owner": (
        "red budget: raise it with the owner's service manager for the monthly report.",
        "AvailabilityBelowObjective",
    ),
    "30-day availability by kind": (
        "red budget: that kind of site missed its objective; see the least available sites.",
        "AvailabilityBelowObjective",
    ),
    "Least available sites, 30 days": (
        "open each site's dashboard for its outages this month.",
        "AvailabilityBelowObjective",
    ),
    "Share of scrapes up, by commune (Prometheus' view)": (
        "a cross-check only: when it disagrees with the ledger's figure, check the daemon's gaps.",
        "DistrictmonDown",
    ),
    "State changes in the time range, by commune and kind": (
        "many changes: a flapping site; find it in the commune's dashboard and fix its link.",
        "SiteDown",
    ),
    "Sites with the least error budget left, 30 days": (
        "red: the site missed its objective this month; open its dashboard and tell the owner.",
        "AvailabilityBelowObjective",
    ),
    "Daemon scraped": (
        "0: the daemon is stopped or unreachable; run systemctl status districtmon.",
        "DistrictmonDown",
    ),
    "Polls per second": (
        "at zero the monitor is blind: check the daemon's log.",
        "DistrictmonPollsStalled",
    ),
    "Oldest poll": (
        "far above the poll interval: the poller is stuck or overloaded.",
        "DistrictmonPollsStalled",
    ),
    "Ledger errors in range": (
        "the disk refuses writes (full, read-only): free space on the ledger's disk.",
        "DistrictmonLedgerWriteErrors",
    ),
    "Scrape duration": (
        "over 1 s: /metrics is too slow for the scrape interval; see the monitor's CPU.",
        "DistrictmonDown",
    ),
    "Polls by result": (
        "errors rising everywhere at once: the monitor's own network, not the sites.",
        "DistrictmonPollsFailing",
    ),
    "Poll errors by reason": (
        "auth: credentials rejected, fix credentials.yaml; timeout everywhere: the monitor's "
        "network.",
        "DistrictmonCredentialsRejected",
    ),
    "Poll duration": (
        "p99 near the timeout: raise the timeout or fix the slow links.",
        "DistrictmonScheduleLagging",
    ),
    "Schedule lag": (
        "lag growing or polls skipped: the daemon cannot keep up; lower the load or shard it.",
        "DistrictmonScheduleLagging",
    ),
    "Ledger write latency": (
        "a growing queue: the disk is too slow or failing.",
        "DistrictmonLedgerBacklog",
    ),
    "State changes": (
        "a burst: many sites changed at once, a common cause (power, the broker, the district "
        "link).",
        "CommuneIsolated",
    ),
    "Daemon CPU": (
        "near 1 core: the daemon is saturated; see Schedule lag.",
        "DistrictmonScheduleLagging",
    ),
    "Daemon memory": (
        "growing without end: a leak; restart the daemon and report it.",
        "DistrictmonDown",
    ),
    "Daemons": (
        "a version you did not install, or a start you did not expect: check the service's log.",
        "DistrictmonDown",
    ),
    "State now": (
        "red: the site is down; call its owner (see Why below).",
        "SiteDown",
    ),
    "State and for how long": (
        "the longer red, the more urgent: call the owner.",
        "SiteDown",
    ),
    "State over time": (
        "red bars are outages: hover for when they began and ended.",
        "SiteDown",
    ),
    "Why: reason codes": (
        "timeout: send someone to the site or its link; auth: fix credentials.yaml; on_battery: "
        "mains lost.",
        "SiteDown",
    ),
    "Voltages": (
        "a battery falling towards its low mark: ask the owner for power before it runs out.",
        "BatteryLow",
    ),
    "Temperatures": (
        "a cabinet over 45 °C: cooling failed or the door is open; tell the owner.",
        "SiteDegraded",
    ),
    "Radio signal": (
        "below -100 dBm the link is about to drop: check the antenna.",
        "LoudspeakerDown",
    ),
    "Health checks": (
        "a check at 0 (mains, amplifier, WAN link) says what to repair.",
        "SiteDegraded",
    ),
    "Time of the last poll": (
        "near the timeout: the link is slow or failing.",
        "SiteDegraded",
    ),
    "Availability against objective": (
        "budget below 0: the site missed its objective this month; tell the owner.",
        "AvailabilityBelowObjective",
    ),
    "Error budget left, 30 days": (
        "below 0: the site missed its objective this month; tell the owner and find the outages in"
        " the timeline.",
        "AvailabilityBelowObjective",
    ),
    "State changes in the time range": (
        "many changes: the site flaps; check its link and power.",
        "SiteDown",
    ),
    "Sites of the commune": (
        "call the owner of each red row; click a name for its dashboard.",
        "SiteDown",
    ),
    "Live coverage of the commune": (
        "low: villages hear no announcements; fix the clusters down.",
        "LoudspeakerDown",
    ),
    "Gateways of the commune": (
        "the People's Committee's network is cut: call the district IT unit.",
        "GatewayDown",
    ),
    "BTS up, by operator": (
        "call the operator's NOC for its BTS down in this commune.",
        "BtsDown",
    ),
    "Worst state by kind": (
        "every kind red at once: the commune is isolated (fibre, power).",
        "CommuneIsolated",
    ),
}


def describe(title: str, description: str) -> str:
    """The description as shown: the English title, what the panel shows, what to do when it
    is red, the runbook."""
    action, section = WHEN_RED.get(title, ("", ""))
    link = "http://${daemon}/runbooks" + (f"/{section.lower()}" if section else "")
    return f"**{title}.** {description}\n\n**Khi đỏ (when red):** {action}\n\n[Runbook]({link})"


# --- checks -------------------------------------------------------------------------------

RUNBOOKS = HERE.parent / "config" / "prometheus" / "runbooks.md"
# $name, ${name}, ${name:format}, [[name]]; not $1 (a label_replace group)
VARIABLE_REF = re.compile(r"\$([A-Za-z_]\w*)|\$\{([A-Za-z_]\w*)(?::\w+)?\}|\[\[(\w+)\]\]")
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range", "__url_time_range", "__data",
                     "__all_variables"}  # fmt: skip


def _used(text: str) -> set[str]:
    return {next(filter(None, m)) for m in VARIABLE_REF.findall(text)} - GRAFANA_VARIABLES


def check(boards: dict[str, dict[str, Any]]) -> list[str]:
    """What is wrong with the dashboards (name -> JSON): every panel has a Vietnamese title, a
    description that says what to do when red with a runbook link to a section that exists,
    and a unit; at most two units per panel (left and right axis); unique ids; variables
    defined before use, in queries, descriptions and links; every data link and dashboard
    link points at a dashboard that exists."""
    uids = {board["uid"] for board in boards.values()}
    sections = set(re.findall(r"^## (\S+)", RUNBOOKS.read_text(encoding="utf-8"), re.M))
    anchors = {s.lower() for s in sections}
    problems: list[str] = []
    for name, board in boards.items():
        defined: set[str] = set()
        for var in board["templating"]["list"]:
            if not _used(var["query"]["query"]) <= defined:
                problems.append(f"{name}: variable {var['name']} uses one defined after it")
            defined.add(var["name"])
        urls = [link["url"] for link in board["links"] if link["type"] == "link"]
        ids: set[int] = set()
        for panel in board["panels"]:
            where = f"{name} panel {panel['id']}"
            if panel["id"] in ids:
                problems.append(f"{where}: id used twice")
            ids.add(panel["id"])
            if not panel["title"]:
                problems.append(f"{where}: no Vietnamese title (TITLES)")
            description = panel["description"]
            if not re.search(r"\*\*Khi đỏ \(when red\):\*\* \S", description):
                problems.append(f"{where}: the description says nothing of what to do (WHEN_RED)")
            for anchor in re.findall(r"/runbooks/([a-z]+)\)", description):
                if anchor not in anchors:
                    problems.append(f"{where}: no runbook section {anchor!r}")
            defaults = panel["fieldConfig"]["defaults"]
            if not defaults.get("unit"):
                problems.append(f"{where}: no unit")
            units = {defaults.get("unit")}
            for override in panel["fieldConfig"]["overrides"]:
                for prop in override["properties"]:
                    if prop["id"] == "unit":
                        units.add(prop["value"])
                    if prop["id"] == "links":
                        urls += [link["url"] for link in prop["value"]]
            if len(units) > 2:
                problems.append(f"{where}: {sorted(units)}: more units than axes")
            texts = [description] + [t["expr"] for t in panel["targets"]]
            for text in texts:
                if not _used(text) <= defined:
                    problems.append(f"{where}: uses undefined {_used(text) - defined}")
        for note in board["annotations"]["list"]:
            if not _used(note["expr"]) <= defined:
                problems.append(f"{name}: annotation {note['name']!r} uses undefined variables")
        for url in urls:
            target = re.match(r"/d/([^/?]+)", url)
            if not target or target.group(1) not in uids:
                problems.append(f"{name}: link to a dashboard that does not exist: {url}")
            if not _used(url) <= defined:
                problems.append(f"{name}: link uses undefined {_used(url) - defined}: {url}")
    return problems


# --- the dashboards -----------------------------------------------------------------------


def budget_left(by: str, window: str, sel: str) -> str:
    """The share of the error budget left over the window: 1 - downtime / allowed downtime,
    both summed over the sites in counted seconds, the allowance of each site from its own
    objective (districtmon_site_objective_ratio). 1: no downtime; 0: all of it spent; below
    0: the objective is missed. Colours follow from it whatever the kind's objective."""
    ratio = f'districtmon_site_availability_ratio{{window="{window}",{sel}}}'
    counted = f'districtmon_site_availability_counted_seconds{{window="{window}",{sel}}}'
    allowed = f"{counted} * on (site) group_left () (1 - districtmon_site_objective_ratio)"
    return f"1 - sum by ({by}) ((1 - {ratio}) * {counted})\n/ sum by ({by}) ({allowed})"


def objective_of(kind: str) -> Target:
    """Query B of an availability panel about one kind: its objective, the threshold."""
    return Target(f'max(districtmon_objective_ratio{{kind="{kind}"}})', "objective", True)


def timeline(title: str, description: str, expr: str, legend: str, **kw: Any) -> Panel:
    """A state-timeline of severity numbers, each drawn as its state's name and colour."""
    kw.setdefault("width", 24)
    kw.setdefault("height", 10)
    panel = Panel(
        kw.pop("kind", "state-timeline"),
        title,
        description,
        [Target(expr, legend)],
        unit="none",
        mappings=severity_mappings(),
        thresholds=severity_thresholds(),
        min=0,
        max=5,
        **kw,
    )
    panel.options = {
        "showValue": "never",
        "rowHeight": 0.9,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "single", "sort": "none"},
    }
    if panel.kind == "state-timeline":
        panel.options |= {"mergeValues": True, "alignValue": "left"}
    else:
        panel.options["colWidth"] = 0.9
    return panel


def site_timeline(sel: str, panel_id: int, title: str = "State over time") -> Panel:
    return timeline(
        title,
        "One row per selected site, coloured by its state over the time range: green up, "
        "yellow degraded, red down, orange unreachable, grey unknown, blue maintenance (the "
        "same colours on every dashboard).",
        named(f"max by (site) ({SEVERITY}{{{sel}}})", "site"),
        "{{name}}",
        panel_id=panel_id,
    )


def status_history(by: str, sel: str, panel_id: int, title: str, legend: str) -> Panel:
    labels = [label.strip() for label in by.split(",")]
    return timeline(
        title,
        f"The worst state of the selected sites of each {' and '.join(labels)}, over the "
        "time range, in the state colours.",
        named(f"max by ({by}) ({SEVERITY}{{{sel}}})", *labels),
        legend,
        kind="status-history",
        panel_id=panel_id,
    )


def reason_table(sel: str, panel_id: int, title: str, **kw: Any) -> Panel:
    return table(
        title,
        "One row per reason the daemon gives for a site that is not up (timeout, on_battery, "
        "wan_down, behind_parent, maintenance, auth...): the bounded codes of "
        "districtmon_site_reason; the full text is in the JSON API and the log.",
        instant_table(named(f"(districtmon_site_reason{{{sel}}} == 1)", "site", "commune")),
        transformations=[REASON_COLUMNS],
        overrides=row_links(),
        unit="none",
        hide=(),
        panel_id=panel_id,
        **kw,
    )


def outage_table(title: str, description: str, states: str, sel: str, **kw: Any) -> Panel:
    kw.setdefault("sort", FOR)
    return table(
        title,
        description,
        instant_table(in_state_for(states, sel)),
        transformations=[OUTAGE_COLUMNS],
        overrides=STATE_CELLS + row_links(),
        unit="dtdurations",
        hide=(),
        **kw,
    )


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
        unit="none",
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
        unit="short",
        panel_id=4,
    )
    by_state.overrides = [
        {
            "matcher": {"id": "byName", "options": state},
            "properties": [
                {"id": "color", "value": {"mode": "fixed", "fixedColor": colour}},
                {"id": "displayName", "value": STATE_NAMES[state]},
            ],
        }
        for state, colour in STATE_COLOURS.items()
    ]
    by_state.options["colorMode"] = "background"
    kinds = table(
        "Sites by kind and state",
        "Counts of the selection, one row per kind of site.",
        instant_table(named(f"sum by (kind, state) ({COUNTS}{{{sel}}})", "kind")),
        transformations=[matrix("kind_name", "state"), state_columns()],
        width=12,
        height=14,
        unit="short",
        hide=(),
        panel_id=6,
    )
    return dashboard(
        "districtmon-overview",
        "districtmon: tổng quan huyện (district overview)",
        "What is broken, where, whose and since when, across every kind of site. Click a "
        "site's or a commune's name in a table for its own dashboard.",
        site_variables(),
        [
            [
                stat(
                    "Down",
                    "Sites down now (N failed polls in a row).",
                    count("down", sel),
                    unit="short",
                    thresholds=BAD_ABOVE_ZERO,
                    panel_id=1,
                ),
                stat(
                    "Unreachable",
                    "Sites whose parent link is down: not their own fault.",
                    count("unreachable", sel),
                    unit="short",
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
            [
                outage_table(
                    "Current outages",
                    "Sites down, unreachable or degraded now: for how long, and whose they "
                    "are. Empty when every site of the selection is up.",
                    "down|unreachable|degraded",
                    sel,
                    width=16,
                    height=10,
                    panel_id=7,
                ),
                reason_table(sel, 9, "Why: reason codes of the sites not up", width=8, height=10),
            ],
            [site_timeline(sel, 10, "State of the selected sites over time")],
            [
                status_history(
                    "commune, kind",
                    sel,
                    11,
                    "Worst state by commune and kind",
                    "{{commune_name}} · {{kind_name}}",
                )
            ],
            [
                timeseries(
                    "Sites down or unreachable, by kind",
                    "How the outage count moved over the time range.",
                    Target(
                        named(
                            f'sum by (kind) ({COUNTS}{{state=~"down|unreachable",{sel}}})', "kind"
                        ),
                        "{{kind_name}}",
                    ),
                    unit="short",
                    width=24,
                    panel_id=8,
                )
            ],
        ],
        tags=("overview",),
    )


def bts() -> dict[str, Any]:
    sel = selection("bts")
    answering = "on (site) (districtmon_site_up == 1)"
    return dashboard(
        "districtmon-bts",
        "districtmon: BTS theo nhà mạng và xã (BTS by operator and commune)",
        "Mobile base stations of every operator: availability, power and reboots.",
        site_variables("bts"),
        [
            [
                bargauge(
                    "BTS up now, by operator",
                    "Share of each operator's BTS in the selection that answer now (up or "
                    "degraded).",
                    named(share_up("owner", sel), "owner"),
                    "{{owner_name}}",
                    unit="percentunit",
                    thresholds=GOOD_HIGH,
                    min=0,
                    max=1,
                    width=8,
                    panel_id=1,
                ),
                Panel(
                    "bargauge",
                    "BTS availability, 30 days, by operator",
                    "Time-weighted availability from the ledger over the selected BTS of each "
                    "operator: up+degraded seconds over the seconds the monitor could count "
                    "(unknown, maintenance and unreachable time excluded), the monthly "
                    "report's figure. Red under the BTS objective (query B: "
                    "districtmon_objective_ratio, the configuration's `objectives:`), green "
                    "at or over it.",
                    [
                        Target(
                            named(weighted_availability("owner", "30d", sel), "owner"),
                            "{{owner_name}}",
                            instant=True,
                        ),
                        objective_of("bts"),
                    ],
                    unit="percentunit",
                    decimals=2,
                    thresholds=AGAINST_OBJECTIVE,
                    transformations=[objective_threshold()],
                    min=0.9,
                    max=1,
                    width=8,
                    height=8,
                    options=bargauge_options(),
                    panel_id=2,
                ),
                stat(
                    "BTS on battery",
                    "BTS answering now whose power system runs on battery (mains lost).",
                    f"count(districtmon_device_mains_ok{{{sel}}} == 0 and {answering}) "
                    "or vector(0)",
                    unit="short",
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
                        named(
                            f'sum by (commune, owner) ({COUNTS}{{state=~"down|unreachable",'
                            f"{sel}}})",
                            "commune",
                            "owner",
                        )
                    ),
                    transformations=[matrix("commune_name", "owner_name")],
                    unit="short",
                    hide=(),
                    panel_id=4,
                ),
                table(
                    "BTS availability, 24 hours, by commune and operator",
                    "Ledger availability over the last 24 hours, time-weighted over the BTS of "
                    "each commune and operator.",
                    instant_table(
                        named(
                            weighted_availability("commune, owner", "24h", sel), "commune", "owner"
                        )
                    ),
                    transformations=[matrix("commune_name", "owner_name")],
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
                        named(
                            f"districtmon_device_battery_volts{{{sel}}}\n"
                            f"and on (site) (districtmon_device_mains_ok{{{sel}}} == 0)\n"
                            f"and {answering}",
                            "site",
                        )
                    ),
                    transformations=[SITE_COLUMNS],
                    overrides=row_links(commune_field=None),
                    unit="volt",
                    sort="Value",
                    hide=(),
                    panel_id=6,
                ),
                table(
                    "Reboots in the time range",
                    "Reboots seen as the device's sysUpTime going backwards, per commune and "
                    "operator, over the dashboard's time range.",
                    instant_table(
                        named(
                            "sum by (commune, owner) "
                            f"(resets(districtmon_site_device_uptime_seconds{{{sel}}}[$__range]))",
                            "commune",
                            "owner",
                        )
                    ),
                    transformations=[matrix("commune_name", "owner_name")],
                    unit="short",
                    hide=(),
                    panel_id=7,
                ),
            ],
            [
                timeseries(
                    "BTS down over time, by operator",
                    "BTS down or unreachable.",
                    Target(
                        named(
                            f'sum by (owner) ({COUNTS}{{state=~"down|unreachable",{sel}}})',
                            "owner",
                        ),
                        "{{owner_name}}",
                    ),
                    unit="short",
                    panel_id=8,
                ),
                timeseries(
                    "Hottest BTS cabinet, by commune",
                    "Highest cabinet temperature reported by the BTS power systems of each "
                    "commune (the bts-power profile's cabinet_temperature_celsius).",
                    Target(
                        named(
                            "max by (commune) "
                            f"(districtmon_device_cabinet_temperature_celsius{{{sel}}})",
                            "commune",
                        ),
                        "{{commune_name}}",
                    ),
                    unit="celsius",
                    panel_id=9,
                ),
            ],
            [
                bargauge(
                    "BTS error budget left, 30 days, by operator",
                    "Of the downtime each operator's BTS may have over 30 days under their "
                    "objectives (districtmon_site_objective_ratio), the share not yet spent: "
                    "100% none spent, 0 all spent, below 0 the objective is missed.",
                    named(budget_left("owner", "30d", sel), "owner"),
                    "{{owner_name}}",
                    unit="percentunit",
                    thresholds=BUDGET,
                    min=-1,
                    max=1,
                    width=24,
                    panel_id=10,
                ),
            ],
        ],
        tags=("bts",),
    )


COVERAGE_NOTE = (
    " An area counts as covered while a loudspeaker cluster that reaches it (the "
    "inventory's `covers`) is up or degraded and reports no amplifier fault; a cluster "
    "the monitor cannot see (unknown) covers nothing here. Areas reached by two clusters "
    "count twice, capped at 100% per commune."
)
COVERAGE_COLOURS = thresholds(("red", None), ("orange", 0.4), ("green", 0.55))


def broadcast() -> dict[str, Any]:
    sel = selection("radio_station|loudspeaker")
    communes = 'commune=~"$commune"'
    # panels about one kind ignore the kind variable: they would be empty otherwise
    radio = 'commune=~"$commune",owner=~"$owner",kind="radio_station"'
    speakers = 'commune=~"$commune",owner=~"$owner",kind="loudspeaker"'
    answering = "on (site) (districtmon_site_up == 1)"
    areas = f"max by (commune) (districtmon_commune_areas{{{communes}}})"
    return dashboard(
        "districtmon-broadcast",
        "districtmon: truyền thanh (broadcast)",
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
                    "working loudspeaker cluster." + COVERAGE_NOTE,
                    f"sum({COVERAGE}{{{communes}}} * on (commune) {areas})\n/ sum({areas})",
                    unit="percentunit",
                    thresholds=COVERAGE_COLOURS,
                    panel_id=3,
                ),
                stat(
                    "Amplifier faults",
                    "Loudspeaker clusters answering now that report an amplifier fault.",
                    f"count(districtmon_device_amplifier_ok{{{speakers}}} == 0 and {answering})"
                    " or vector(0)",
                    unit="short",
                    thresholds=BAD_ABOVE_ZERO,
                    panel_id=4,
                ),
                stat(
                    "Playing now",
                    "Clusters answering now that report playing a broadcast.",
                    f"count(districtmon_device_playing{{{speakers}}} == 1 and {answering})"
                    " or vector(0)",
                    unit="short",
                    panel_id=5,
                ),
                stat(
                    "Broker connection",
                    "1 while the daemon is connected to the MQTT broker that carries the "
                    "clusters' telemetry; 0 means MQTT sites are unknown, not down.",
                    "min(districtmon_mqtt_broker_connected)",
                    unit="none",
                    thresholds=thresholds(("red", None), ("green", 1)),
                    mappings=[
                        {
                            "type": "value",
                            "options": {
                                "0": {"text": "mất kết nối (lost)"},
                                "1": {"text": "đã kết nối (connected)"},
                            },
                        }
                    ],
                    panel_id=6,
                ),
            ],
            [
                bargauge(
                    "Live coverage by commune",
                    "Per commune: residential areas reached by a working cluster now, over "
                    "all its residential areas." + COVERAGE_NOTE,
                    named(f"{COVERAGE}{{{communes}}}", "commune"),
                    "{{commune_name}}",
                    unit="percentunit",
                    min=0,
                    max=1,
                    thresholds=COVERAGE_COLOURS,
                    height=10,
                    panel_id=7,
                ),
                timeseries(
                    "Live coverage over time",
                    "The coverage share of each selected commune." + COVERAGE_NOTE,
                    Target(named(f"{COVERAGE}{{{communes}}}", "commune"), "{{commune_name}}"),
                    unit="percentunit",
                    min=0,
                    max=1,
                    height=10,
                    panel_id=8,
                ),
            ],
            [
                outage_table(
                    "Broadcast sites not up",
                    "Radio stations and clusters down, unreachable or degraded, with how long.",
                    "down|unreachable|degraded",
                    sel,
                    panel_id=9,
                ),
                table(
                    "Areas silent now, by cluster",
                    "Each cluster that reaches no one now (down, unreachable, or answering "
                    "with an amplifier fault) and the number of residential areas it leaves "
                    "without the loudspeaker.",
                    instant_table(
                        named(
                            f"districtmon_site_covered_areas{{{speakers}}}\n"
                            "and on (site) (\n"
                            "    districtmon_site_up == 0\n"
                            "  or on (site) (districtmon_device_amplifier_ok == 0 and "
                            f"{answering})\n"
                            ")",
                            "site",
                        )
                    ),
                    transformations=[SITE_COLUMNS],
                    overrides=row_links(commune_field=None),
                    unit="short",
                    sort="Value",
                    hide=(),
                    panel_id=10,
                ),
            ],
            [
                table(
                    "Clusters with an amplifier fault",
                    "Clusters answering now whose telemetry reports amplifier_ok false.",
                    instant_table(
                        named(
                            f"districtmon_device_amplifier_ok{{{speakers}}} == 0 and {answering}",
                            "site",
                        )
                    ),
                    transformations=[SITE_COLUMNS],
                    overrides=row_links(commune_field=None),
                    unit="bool_yes_no",
                    hide=(),
                    panel_id=11,
                ),
                timeseries(
                    "Signal strength of the clusters' 4G links",
                    "RSSI reported in the clusters' telemetry, weakest per commune.",
                    Target(
                        named(
                            f"min by (commune) (districtmon_device_rssi_dbm{{{speakers}}})",
                            "commune",
                        ),
                        "{{commune_name}}",
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

    def wan(direction: str) -> Target:
        return Target(
            named(
                f"8 * sum by (site) (rate(districtmon_device_if_{direction}_octets_total"
                f"{{{WAN},{gateways}}}[$__rate_interval]))",
                "site",
            ),
            "{{name}}",
        )

    return dashboard(
        "districtmon-agency",
        "districtmon: mạng cơ quan (agency networks)",
        "LAN gateways and WAN links of the state agencies and commune People's Committees.",
        site_variables("gateway|video_endpoint|portal"),
        [
            [
                stat(
                    "Gateways down",
                    "Gateways of the selection down now.",
                    count("down", gateways),
                    unit="short",
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
                    unit="short",
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
                outage_table(
                    "Every gateway: state and for how long",
                    "All gateways of the selection, worst first.",
                    ".*",
                    gateways,
                    width=24,
                    height=10,
                    sort=None,
                    panel_id=5,
                ),
            ],
            [
                timeseries(
                    "WAN traffic in",
                    "Bits per second received on each gateway's WAN interfaces (ifAlias "
                    "naming WAN, uplink or internet), over at least five polls.",
                    wan("in"),
                    unit="bps",
                    interval=DEVICE_RATE_INTERVAL,
                    panel_id=6,
                ),
                timeseries(
                    "WAN traffic out",
                    "Bits per second sent on each gateway's WAN interfaces (ifAlias naming "
                    "WAN, uplink or internet), over at least five polls.",
                    wan("out"),
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
                        named(
                            "avg by (commune) "
                            f"(districtmon_site_last_poll_duration_seconds{{{sel}}})",
                            "commune",
                        ),
                        "{{commune_name}}",
                    ),
                    unit="s",
                    panel_id=8,
                ),
                timeseries(
                    "Ping round trip and loss",
                    "ICMP probes of the selection's sites that speak no SNMP: mean round trip "
                    "(left axis, seconds) and worst loss (right axis, share of the requests) "
                    "per commune.",
                    Target(
                        named(
                            f"avg by (commune) (districtmon_site_rtt_seconds{{{sel}}})", "commune"
                        ),
                        "rtt {{commune_name}}",
                    ),
                    Target(
                        named(
                            f"max by (commune) (districtmon_site_loss_ratio{{{sel}}})", "commune"
                        ),
                        "loss {{commune_name}}",
                        unit="percentunit",
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
        a, b = weighted_availability(by, "30d", sel), budget_left(by, "30d", sel)
        a, b = named(a, by), named(b, by)
        shown = f"{by}_name"
        return table(
            f"30-day availability by {by}",
            "Time-weighted availability from the ledger (A): up+degraded seconds over the "
            "seconds the monitor could count (unknown and maintenance excluded; unreachable "
            f"charged to the parent), summed over the selected sites of each {by}: the "
            "monthly report's figure. Error budget left (B): of the downtime the sites may "
            "have under their own objectives (districtmon_site_objective_ratio, set in the "
            "configuration), the share not yet spent; coloured red below 0 (the objectives "
            "are missed), orange under 25%, green over half.",
            instant_table(a),
            instant_table(b),
            unit="percentunit",
            decimals=3,
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "indexByName": {shown: 0, "Value #A": 1, "Value #B": 2},
                        "renameByName": {
                            **COLUMNS,
                            "Value #A": "Khả dụng (availability)",
                            "Value #B": "Ngân sách lỗi còn lại (budget left)",
                        },
                    },
                },
            ],
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Ngân sách lỗi còn lại (budget left)"},
                    "properties": [
                        {"id": "thresholds", "value": BUDGET},
                        {"id": "color", "value": {"mode": "thresholds"}},
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                    ],
                }
            ]
            + (row_links(None) if by == "commune" else []),
            width=width,
            height=10,
            hide=(),
            panel_id=panel_id,
        )

    return dashboard(
        "districtmon-sla",
        "districtmon: khả dụng và mục tiêu (SLA)",
        "Availability per commune, owner and kind against the objectives of the "
        "configuration: the monthly report's figures, live, and the error budget left.",
        site_variables(),
        [
            [availability("commune", 1), availability("owner", 2), availability("kind", 3)],
            [
                table(
                    "Least available sites, 30 days",
                    "The twenty sites of the selection with the lowest 30-day availability.",
                    instant_table(
                        named(
                            "bottomk(20, districtmon_site_availability_ratio"
                            f'{{window="30d",{sel}}})',
                            "site",
                        )
                    ),
                    transformations=[SITE_COLUMNS],
                    overrides=row_links(commune_field=None),
                    unit="percentunit",
                    decimals=3,
                    hide=(),
                    panel_id=4,
                ),
                table(
                    "Sites with the least error budget left, 30 days",
                    "The twenty sites of the selection that spent most of their error budget: "
                    "1 - downtime / the downtime their objective allows over 30 days "
                    "(districtmon_site_objective_ratio: the site's own objective or its "
                    "kind's). Below 0: the objective is missed.",
                    instant_table(named(f"bottomk(20, {budget_left('site', '30d', sel)})", "site")),
                    transformations=[SITE_COLUMNS],
                    overrides=[
                        *row_links(commune_field=None),
                        {
                            "matcher": {"id": "byName", "options": "Value"},
                            "properties": [
                                {"id": "custom.cellOptions", "value": {"type": "color-background"}}
                            ],
                        },
                    ],
                    thresholds=BUDGET,
                    unit="percentunit",
                    decimals=1,
                    hide=(),
                    panel_id=7,
                ),
            ],
            [
                table(
                    "Share of scrapes up, by commune (Prometheus' view)",
                    "Mean of districtmon_site_up over the time range, as Prometheus sampled it: "
                    "a cross-check only. The ledger's figure above is the one reported.",
                    instant_table(
                        named(
                            "avg by (commune) "
                            f"(avg_over_time(districtmon_site_up{{{sel}}}[$__range]))",
                            "commune",
                        )
                    ),
                    transformations=[
                        {
                            "id": "organize",
                            "options": {
                                "excludeByName": {"Time": True},
                                "indexByName": {"commune_name": 0, "Value": 1, "commune": 2},
                                "renameByName": COLUMNS,
                            },
                        }
                    ],
                    overrides=row_links(None),
                    unit="percentunit",
                    decimals=3,
                    hide=(),
                    panel_id=5,
                ),
                table(
                    "State changes in the time range, by commune and kind",
                    "How often sites changed state (flapping shows here).",
                    instant_table(
                        named(
                            "sum by (commune, kind) (changes("
                            f"districtmon_site_state_since_timestamp_seconds{{{sel}}}[$__range]))",
                            "commune",
                            "kind",
                        )
                    ),
                    transformations=[matrix("commune_name", "kind_name")],
                    unit="short",
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
        variable("job", "Tác vụ (job)", "label_values(districtmon_build_info, job)"),
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
        "districtmon: sức khỏe của hệ thống giám sát (the monitor's own health)",
        "Is the watcher watching? Polls, lag, errors, broker, ledger, scrapes.",
        variables,
        [
            [
                stat(
                    "Daemon scraped",
                    "1 while Prometheus can scrape the daemon.",
                    f"min(up{{{job}}})",
                    unit="none",
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
                    unit="none",
                    thresholds=thresholds(("red", None), ("green", 1)),
                    panel_id=4,
                ),
                stat(
                    "Ledger errors in range",
                    "Ledger transactions that failed (and were retried).",
                    f"sum(increase(districtmon_ledger_write_errors_total{{{job}}}[$__range]))",
                    unit="short",
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
                    "How late polls start against their schedule (p50, p99; left axis, "
                    "seconds); skipped polls per second (right axis) mean the poller cannot "
                    "keep up.",
                    Target(quantile(0.5, "districtmon_schedule_lag_seconds"), "p50"),
                    Target(quantile(0.99, "districtmon_schedule_lag_seconds"), "p99"),
                    Target(
                        f"sum(rate(districtmon_polls_skipped_total{{{job}}}[$__rate_interval]))",
                        "skipped per second",
                        unit="ops",
                    ),
                    unit="s",
                    width=8,
                    panel_id=10,
                ),
                timeseries(
                    "Ledger write latency",
                    "p50 and p99 of ledger transactions (left axis, seconds); the changes "
                    "waiting to be written (right axis).",
                    Target(quantile(0.5, "districtmon_ledger_write_seconds"), "p50"),
                    Target(quantile(0.99, "districtmon_ledger_write_seconds"), "p99"),
                    Target(f"max(districtmon_ledger_queue_length{{{job}}})", "queue", unit="short"),
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
                    unit="ops",
                    width=8,
                    panel_id=12,
                ),
                timeseries(
                    "Daemon CPU",
                    "CPU used by the daemon process: 100% is one core (the whole daemon runs "
                    "on one).",
                    Target(
                        f"rate(process_cpu_seconds_total{{{job}}}[$__rate_interval])",
                        "{{instance}}",
                    ),
                    unit="percentunit",
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
            [
                timeseries(
                    "Daemon memory",
                    "Resident memory of the daemon process.",
                    Target(f"process_resident_memory_bytes{{{job}}}", "{{instance}}"),
                    unit="bytes",
                    width=8,
                    panel_id=15,
                ),
            ],
        ],
        tags=("monitor",),
        notes=annotations(SEL),
    )


def device_values(pattern: str, sel: str) -> str:
    """The device values (districtmon_device_*) whose names match `pattern`, each with the
    value's name (`value`: battery_volts...) and the site's name as labels."""
    return named(
        f'label_replace({{__name__=~"districtmon_device_{pattern}",{sel}}}, "value", "$1", '
        '"__name__", "districtmon_device_(.*)")',
        "site",
    )


# The site dashboard's selection: the site variable on top of the usual three.
SITE_SEL = f'{SEL},site=~"$site"'


def site() -> dict[str, Any]:
    sel = SITE_SEL
    variables = site_variables()
    variables.insert(
        3,
        named_variable(
            "site",
            "Điểm (site)",
            f"max by (name, site) (districtmon_site_info{{{SEL}}})",
            multi=False,
        ),
    )

    def values(title: str, description: str, pattern: str, unit: str, panel_id: int) -> Panel:
        return timeseries(
            title,
            description + " As the device profile (SNMP) or the telemetry mapping (MQTT) "
            "names them; one unit on this panel.",
            Target(device_values(pattern, sel), "{{name}} {{value}}"),
            unit=unit,
            width=6,
            panel_id=panel_id,
        )

    state_now = stat(
        "State now",
        "The site's state now, in the state colours.",
        f"max({SEVERITY}{{{sel}}})",
        unit="none",
        thresholds=severity_thresholds(),
        mappings=severity_mappings(),
        width=6,
        panel_id=1,
    )
    against_objective = stat(
        "Availability against objective",
        "The site's 30-day availability from the ledger (A), red under the objective it is "
        "held to (B: districtmon_site_objective_ratio, its own `objective:` or its kind's), "
        "green at or over it.",
        named(f'districtmon_site_availability_ratio{{window="30d",{sel}}}', "site"),
        legend="{{name}}",
        unit="percentunit",
        decimals=3,
        thresholds=AGAINST_OBJECTIVE,
        transformations=[objective_threshold()],
        width=4,
        height=6,
        panel_id=10,
    )
    against_objective.targets.append(
        Target(f"max(districtmon_site_objective_ratio{{{sel}}})", "objective", instant=True)
    )
    return dashboard(
        "districtmon-site",
        "districtmon: một điểm (one site)",
        "One site: its state over time and why, what its device reports, how long its polls "
        "take, its availability against its objective. Reached from any table's site name; "
        "the links at the top lead back.",
        variables,
        [
            [
                state_now,
                table(
                    "State and for how long",
                    "The site's state, since when, its commune and owner (click the commune "
                    "for its dashboard).",
                    instant_table(in_state_for(".*", sel)),
                    transformations=[OUTAGE_COLUMNS],
                    overrides=STATE_CELLS + row_links(None),
                    unit="dtdurations",
                    width=18,
                    height=4,
                    hide=(),
                    panel_id=2,
                ),
            ],
            [site_timeline(sel, 3)],
            [
                reason_table(sel, 4, "Why: reason codes", width=12, height=6),
                against_objective,
                stat(
                    "Error budget left, 30 days",
                    "Of the downtime the site's objective allows over 30 days, the share not "
                    "yet spent: 100% none, 0 all of it, below 0 the objective is missed.",
                    named(budget_left("site", "30d", sel), "site"),
                    legend="{{name}}",
                    unit="percentunit",
                    decimals=1,
                    thresholds=BUDGET,
                    width=4,
                    height=6,
                    panel_id=11,
                ),
                stat(
                    "State changes in the time range",
                    "How often the site changed state over the time range (flapping shows here).",
                    named(
                        "changes(districtmon_site_state_since_timestamp_seconds"
                        f"{{{sel}}}[$__range])",
                        "site",
                    ),
                    legend="{{name}}",
                    unit="short",
                    width=4,
                    height=6,
                    panel_id=12,
                ),
            ],
            [
                values("Voltages", "Voltages the device reports.", ".*_volts", "volt", 5),
                values(
                    "Temperatures",
                    "Temperatures the device reports.",
                    ".*_celsius(_max)?",
                    "celsius",
                    6,
                ),
                values("Radio signal", "Radio signal strength reported.", ".*_dbm", "dBm", 7),
                values(
                    "Health checks",
                    "The device's yes/no facts (mains, amplifier, sensors): 1 yes, 0 no.",
                    ".*_ok",
                    "bool_yes_no",
                    8,
                ),
            ],
            [
                timeseries(
                    "Time of the last poll",
                    "How long each poll of the site took (districtmon_site_last_poll_duration_"
                    "seconds): a slow link or device shows here before it fails.",
                    Target(
                        named(f"districtmon_site_last_poll_duration_seconds{{{sel}}}", "site"),
                        "{{name}}",
                    ),
                    unit="s",
                    width=24,
                    panel_id=9,
                ),
            ],
        ],
        tags=("site",),
        notes=annotations(sel, changes=True),
    )


def commune() -> dict[str, Any]:
    sel = selection(".*")
    return dashboard(
        "districtmon-commune",
        "districtmon: một xã (one commune)",
        "One commune (or the communes selected): its sites by kind and state, loudspeaker "
        "coverage, its gateways, its BTS by operator. Reached from any table's commune name; "
        "a site's name leads to the site's dashboard.",
        site_variables(),
        [
            [
                table(
                    "Sites by kind and state",
                    "Counts of the commune's selected sites, one row per kind.",
                    instant_table(named(f"sum by (kind, state) ({COUNTS}{{{sel}}})", "kind")),
                    transformations=[matrix("kind_name", "state"), state_columns()],
                    unit="short",
                    width=10,
                    hide=(),
                    panel_id=2,
                ),
                bargauge(
                    "Live coverage of the commune",
                    "Residential areas reached now by a working loudspeaker cluster, over all "
                    "of the commune's areas." + COVERAGE_NOTE,
                    named(f'{COVERAGE}{{commune=~"$commune"}}', "commune"),
                    "{{commune_name}}",
                    unit="percentunit",
                    min=0,
                    max=1,
                    thresholds=COVERAGE_COLOURS,
                    width=7,
                    panel_id=3,
                ),
                bargauge(
                    "BTS up, by operator",
                    "Share of each operator's BTS of the commune that answer now.",
                    named(share_up("owner", selection("bts")), "owner"),
                    "{{owner_name}}",
                    unit="percentunit",
                    thresholds=GOOD_HIGH,
                    min=0,
                    max=1,
                    width=7,
                    panel_id=5,
                ),
            ],
            [
                outage_table(
                    "Sites of the commune",
                    "Every selected site of the commune, its state and for how long, worst "
                    "first; click a name for the site's dashboard.",
                    ".*",
                    sel,
                    width=14,
                    height=12,
                    sort=None,
                    panel_id=1,
                ),
                outage_table(
                    "Gateways of the commune",
                    "The commune's gateways (the People's Committee's network), their state "
                    "and for how long.",
                    ".*",
                    selection("gateway"),
                    width=10,
                    height=12,
                    sort=None,
                    panel_id=4,
                ),
            ],
            [status_history("kind", sel, 6, "Worst state by kind", "{{kind_name}}")],
            [site_timeline(sel, 7)],
        ],
        tags=("commune",),
        notes=annotations(sel, changes=True),
    )


DASHBOARDS = {
    "overview": overview,
    "bts": bts,
    "broadcast": broadcast,
    "agency": agency,
    "sla": sla,
    "monitor": monitor,
    "site": site,
    "commune": commune,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    boards = {name: build() for name, build in DASHBOARDS.items()}
    problems = check(boards)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    for name, build in DASHBOARDS.items():
        (HERE / f"{name}.json").write_text(render(build), encoding="utf-8")
    print(f"wrote {len(DASHBOARDS)} dashboards to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
