"""The Grafana dashboards: well-formed JSON that Grafana can provision, kept equal to their
source (dashboards/build.py), every panel listed in dashboards/README.md by its stable id,
and every panel and variable query run against a real Prometheus that scraped a running
daemon, with the dashboards' recording rules: at All and at one value of the variables, each
panel must show only sites of its dashboard's kinds and of the selected commune, owner and
kind (asserted on the labels of what comes back), and the figures the test can know from its
district must be right.

The district: SNMP agents replaying recordings whose values are known (a BTS power plant on
mains and two on battery, a gateway whose WAN port is down, one whose WAN counters move at a
set rate), net-snmp agents, dead ports, ICMP on loopback, and two loudspeaker clusters
publishing telemetry to a real mosquitto. Which state the daemon gave each site is read from
its JSON API: this test checks what the queries make of the daemon's states and values, not
how the daemon judges (the whole-stack test compares both with the simulator's record).

No Grafana package is reachable here (see /work/shared/NOTES.md), so Grafana's side is
checked structurally and the queries, which are what can go wrong, are run for real."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from broker import Mosquitto
from conftest import SNMPD_COMMUNITY, UPS_COMMUNITY
from harness import Daemon, free_tcp_port, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from panels import (
    ALL,
    ANNOTATIONS,
    DASHBOARDS,
    EXPECTED,
    ROOT,
    STATES,
    VARIABLE_REF,
    Place,
    Range,
    Selection,
    Truth,
    World,
    approx,
    base_kinds,
    check_labels,
    dashboards,
    panels,
    substitute,
)
from peers import UPS_RECORDING, Snmpd, Snmpsim, free_udp_port, recording
from promstack import Prometheus, http_json

PROVISIONING = DASHBOARDS / "provisioning"
README = DASHBOARDS / "README.md"
RULES = ROOT / "config" / "prometheus" / "dashboards.rules.yml"
DATA = Path(__file__).parent / "data"
MAPPINGS = ROOT / "config" / "mqtt" / "mappings.yaml"

# Series that other branches add to the daemon (names as the dashboards expect them). A query
# that reads one of them must parse but may come back empty here; the last test fails once
# one of them appears on /metrics: then take it out of this list, and its panels are checked.
PENDING_METRICS: dict[str, str] = {}

# Grafana's own variables, as the test substitutes them (Prometheus scrapes every second here).
GRAFANA_GLOBALS = {"$__rate_interval": "5s", "$__interval": "1s", "$__range": "1m"}

# What the recordings serve (tests/data/*.snmprec, and the gateway written below).
NORMAL_VOLTS, NORMAL_CABINET = 53.5, 31.2
BATTERY_VOLTS, BATTERY_CABINET = 49.2, 46.8
WAN_IN_BYTES_PER_SECOND, WAN_OUT_BYTES_PER_SECOND = 1250, 625
LAN_IN_BYTES_PER_SECOND = 125_000  # a wrong filter would show this


def provisioned_datasource() -> dict[str, Any]:
    [path] = list((PROVISIONING / "datasources").glob("*.yaml"))
    [source] = yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    return dict(source)


def test_there_is_a_dashboard_for_each_question_operators_ask() -> None:
    titles = {board["uid"]: board["title"] for board in dashboards().values()}
    assert set(titles) == {
        "districtmon-overview",
        "districtmon-bts",
        "districtmon-broadcast",
        "districtmon-agency",
        "districtmon-sla",
        "districtmon-monitor",
        "districtmon-site",
        "districtmon-commune",
    }


def load_build() -> Any:
    spec = importlib.util.spec_from_file_location("dashboards_build", DASHBOARDS / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build  # dataclasses look their module up while being made
    try:
        spec.loader.exec_module(build)
    finally:
        del sys.modules[spec.name]
    return build


def test_dashboard_json_is_what_build_py_writes() -> None:
    build = load_build()
    assert sorted(f"{name}.json" for name in build.DASHBOARDS) == sorted(dashboards())
    for name, make in build.DASHBOARDS.items():
        committed = (DASHBOARDS / f"{name}.json").read_text(encoding="utf-8")
        assert committed == build.render(make), f"{name}.json: run python dashboards/build.py"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_dashboard_structure_is_valid(name: str) -> None:
    board = dashboards()[name]
    source = provisioned_datasource()
    expected_ref = {"type": source["type"], "uid": source["uid"]}
    assert board["uid"] and len(board["uid"]) <= 40 and board["title"]
    assert isinstance(board["schemaVersion"], int) and 36 <= board["schemaVersion"] <= 41
    assert board["time"]["from"] and board["refresh"]

    variables = board["templating"]["list"]
    names = [v["name"] for v in variables]
    assert len(names) == len(set(names)), names
    assert {"commune", "owner", "kind"} <= set(names)
    defined: set[str] = set()
    for var in variables:
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", var["name"]), var["name"]
        assert var["type"] == "query" and var["datasource"] == expected_ref
        query = var["query"]["query"]
        assert query == var["definition"]
        assert query.startswith(("label_values(", "query_result(")), query
        if query.startswith("query_result("):  # offers names, puts ids in the queries
            assert "(?<value>" in var["regex"] and "(?<text>" in var["regex"], var["name"]
        used = {next(filter(None, m)) for m in VARIABLE_REF.findall(query)}
        assert used <= defined, f"{var['name']} uses {used - defined} before it is defined"
        defined.add(var["name"])
        if var["multi"]:
            assert var["includeAll"] and var["allValue"] == ALL

    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in panels(board):
        where = f"{name} panel {panel['id']} {panel['title']!r}"
        assert panel["title"] and panel["description"], where
        assert panel["datasource"] == expected_ref, where
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, where
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}  # fmt: skip
        assert not area & cells, f"{where} overlaps another panel"
        cells |= area
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)) and all(refs), where
        for target in panel["targets"]:
            assert target["datasource"] == expected_ref, where
            assert target["expr"].strip(), where
            used = {next(filter(None, m)) for m in VARIABLE_REF.findall(target["expr"])}
            unknown = {u for u in used if u not in defined and f"${u}" not in GRAFANA_GLOBALS}
            assert not unknown, f"{where}: undefined variables {unknown}"


def test_the_build_checks_pass_and_catch_what_operators_rely_on() -> None:
    """build.py's own checks hold for the committed dashboards, and each fails when its rule
    is broken: a panel without a unit, one that does not say what to do when red, a link to
    a dashboard that does not exist, an id used twice, a variable nobody defined."""
    build = load_build()
    boards = dashboards()
    assert build.check(boards) == []
    broken = copy.deepcopy(boards)
    overview = broken["overview.json"]
    first, second, third = overview["panels"][:3]
    first["fieldConfig"]["defaults"]["unit"] = ""
    first["description"] = first["description"].split("**Khi đỏ")[0]
    second["id"] = first["id"]
    third["targets"][0]["expr"] += " * $nowhere"
    overview["links"][0]["url"] = "/d/districtmon-nowhere/x"
    problems = "\n".join(build.check(broken))
    for expected in (
        f"panel {first['id']}: no unit",
        f"panel {first['id']}: the description says nothing of what to do",
        f"panel {first['id']}: id used twice",
        "uses undefined {'nowhere'}",
        "link to a dashboard that does not exist: /d/districtmon-nowhere/x",
    ):
        assert expected in problems, problems


def test_every_table_row_of_a_site_or_commune_leads_to_its_dashboard() -> None:
    """A table that names sites links the name to the site dashboard, one that names
    communes links the commune; both keep the time range and the variables."""
    for name, board in dashboards().items():
        for panel in panels(board):
            if panel["type"] != "table":
                continue
            exprs = " ".join(t["expr"] for t in panel["targets"])
            urls = [
                link["url"]
                for override in panel["fieldConfig"]["overrides"]
                for prop in override["properties"]
                if prop["id"] == "links"
                for link in prop["value"]
            ]
            where = f"{name} {panel['id']}"
            if "group_left (name)" in exprs and board["uid"] != "districtmon-site":
                assert any(u.startswith("/d/districtmon-site/") for u in urls), where
            if "group_left (commune_name)" in exprs and "by (commune, " not in exprs:
                assert any(u.startswith("/d/districtmon-commune/") for u in urls), where
            for url in urls:
                assert "${__url_time_range}" in url and "${kind:queryparam}" in url, where


SELECTOR = re.compile(r"\{([^{}]*)\}")


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_selector_that_follows_the_variables_keeps_the_dashboards_kinds(name: str) -> None:
    """A variable at All is `.*`: a selector filtered by owner or kind only through the
    variables would read every kind of site. Each must carry the dashboard's kinds itself."""
    board = dashboards()[name]
    kinds = base_kinds(board)
    if kinds == ALL:
        return
    allowed = set(kinds.split("|"))
    loose = []
    for panel in panels(board):
        for target in panel["targets"]:
            for matchers in SELECTOR.findall(target["expr"]):
                if "$owner" not in matchers and "$kind" not in matchers:
                    continue
                fixed = re.findall(r'kind(=~|=)"([^"$]+)"', matchers)
                if not fixed or not set(fixed[0][1].split("|")) <= allowed:
                    loose.append(f"{panel['id']} {panel['title']!r}: {{{matchers}}}")
    assert not loose, f"selectors without the kind filter {kinds!r}:\n" + "\n".join(loose)


def readme_panels() -> dict[str, dict[int, str]]:
    """The panel lists of dashboards/README.md: uid -> {id: title}."""
    listed: dict[str, dict[int, str]] = {}
    current = None
    for line in README.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### `(districtmon-[a-z]+)`", line)
        if heading:
            current = listed.setdefault(heading.group(1), {})
            continue
        row = re.match(r"^\| (\d+) \| (.+?) \| .+ \|$", line)
        if row and current is not None:
            current[int(row.group(1))] = row.group(2)
    return listed


def test_the_readme_lists_every_panel_by_its_id() -> None:
    listed = readme_panels()
    for board in dashboards().values():
        shown = {p["id"]: p["title"] for p in panels(board)}
        assert listed.get(board["uid"]) == shown, board["uid"]


def test_provisioning_points_grafana_at_the_datasource_and_the_dashboards() -> None:
    source = provisioned_datasource()
    assert source["type"] == "prometheus" and source["uid"] == "districtmon-prometheus"
    assert source["url"].startswith("http")
    [path] = list((PROVISIONING / "dashboards").glob("*.yaml"))
    provider = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert provider["apiVersion"] == 1
    [entry] = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"].startswith("/")


def test_recording_rules_pass_promtool() -> None:
    check = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


# --- the test district --------------------------------------------------------------------


def near(rate: float) -> Range:
    """A rate() over a few scrapes of a counter that the agent steps once a second."""
    return approx(rate, 0.3 * rate)


BATTERY = {"mains_ok": 0, "battery_volts": BATTERY_VOLTS, "cabinet": BATTERY_CABINET}
NORMAL = {"mains_ok": 1, "battery_volts": NORMAL_VOLTS, "cabinet": NORMAL_CABINET}
MP, TN = "muong-phang", "thanh-nua"
RTV, IT = "dien-bien-rtv", "district-it"
DISTRICT = (
    Place("bts-vtl-muong-phang-01", "bts", MP, "viettel", "bts-normal", "bts-power", facts=NORMAL),
    Place("bts-vtl-muong-phang-02", "bts", MP, "viettel", "dead"),
    Place("bts-vnp-muong-phang-01", "bts", MP, "vnpt", "bts-battery", "bts-power", facts=BATTERY),
    Place("radio-muong-phang", "radio_station", MP, RTV, "snmpd"),
    Place("loa-muong-phang-01", "loudspeaker", MP, RTV, UPS_COMMUNITY,
          covers=("Bản Co Củ", "Bản Phăng")),
    Place("loa-muong-phang-02", "loudspeaker", MP, RTV, "dead", covers=("Bản Nghịu",)),
    Place("loa-muong-phang-03", "loudspeaker", MP, RTV, "mqtt", covers=("Bản Khá",),
          facts={"amplifier_ok": 1, "playing": 1, "rssi_dbm": -71}),
    Place("gw-ubnd-muong-phang", "gateway", MP, IT, "router-wan", "router",
          facts={"wan_down": 1, "wan_in": 0}),  # its recording has no ifHCOutOctets
    Place("gw-ubnd-muong-phang-2", "gateway", MP, IT, "dead"),
    Place("gw-ubnd-muong-phang-ping", "gateway", MP, IT, "icmp"),
    Place("video-muong-phang", "video_endpoint", MP, IT, "icmp"),
    Place("bts-vtl-thanh-nua-01", "bts", TN, "viettel", "bts-battery", "bts-power", facts=BATTERY),
    Place("bts-vnp-thanh-nua-01", "bts", TN, "vnpt", "dead"),
    Place("radio-thanh-nua", "radio_station", TN, RTV, UPS_COMMUNITY),
    Place("loa-thanh-nua-01", "loudspeaker", TN, RTV, "snmpd", covers=("Bản Ta Pô", "Bản Mển")),
    Place("loa-thanh-nua-02", "loudspeaker", TN, RTV, "dead", covers=("Bản Pa Pốm",)),
    Place("loa-thanh-nua-03", "loudspeaker", TN, RTV, "mqtt", covers=("Bản Giăng",),
          facts={"amplifier_ok": 0, "playing": 0, "rssi_dbm": -95}),
    Place("gw-ubnd-thanh-nua", "gateway", TN, IT, "gw-traffic", "router",
          facts={"wan_down": 0, "wan_in": near(8 * WAN_IN_BYTES_PER_SECOND),
                 "wan_out": near(8 * WAN_OUT_BYTES_PER_SECOND)}),
    Place("gw-ubnd-huyen", "gateway", TN, "ubnd-huyen", "snmpd"),
    Place("portal-dien-bien", "portal", TN, "ubnd-huyen", "icmp"),
)  # fmt: skip
PLACES = {place.id: place for place in DISTRICT}
AREAS: dict[str, tuple[str, ...]] = {
    MP: ("Bản Co Củ", "Bản Phăng", "Bản Nghịu", "Bản Khá"),
    TN: ("Bản Ta Pô", "Bản Mển", "Bản Pa Pốm", "Bản Giăng"),
}
NAMES = {
    "viettel": "Viettel",
    "vnpt": "VNPT / VinaPhone",
    RTV: "Đài Truyền thanh huyện",
    IT: "Trung tâm Văn hóa - Thông tin huyện",
    "ubnd-huyen": "UBND huyện Điện Biên",
}
OWNER_KIND = {"viettel": "operator", "vnpt": "operator", RTV: "broadcaster"}
WORLD = World(DISTRICT, AREAS, NAMES, {p.id: f"Trạm {p.id}" for p in DISTRICT})
# The objectives the test's configuration sets: every kind's, and two sites' own.
KIND_OBJECTIVES = {"bts": 0.99, "radio_station": 0.98, "loudspeaker": 0.9, "gateway": 0.97,
                   "video_endpoint": 0.95, "post_point": 0.95, "portal": 0.96}  # fmt: skip
SITE_OBJECTIVES = {"gw-ubnd-thanh-nua": 0.999, "bts-vtl-muong-phang-02": 0.5}
OBJECTIVE_TRUTH = Truth(
    objectives={p.id: SITE_OBJECTIVES.get(p.id, KIND_OBJECTIVES[p.kind]) for p in DISTRICT},
    kind_objectives=KIND_OBJECTIVES,
)

# The gateway whose WAN counters move: the router profile's table, ifAlias naming the WAN port.
GW_TRAFFIC = f"""1.3.6.1.2.1.1.1.0|4|districtmon test gateway, WAN up
1.3.6.1.2.1.1.3.0|67|123456
1.3.6.1.2.1.1.5.0|4|gw-traffic
1.3.6.1.2.1.2.1.0|2|2
1.3.6.1.2.1.2.2.1.2.1|4|GigabitEthernet0/0
1.3.6.1.2.1.2.2.1.2.2|4|GigabitEthernet0/1
1.3.6.1.2.1.2.2.1.7.1|2|1
1.3.6.1.2.1.2.2.1.7.2|2|1
1.3.6.1.2.1.2.2.1.8.1|2|1
1.3.6.1.2.1.2.2.1.8.2|2|1
1.3.6.1.2.1.31.1.1.1.1.1|4|Gi0/0
1.3.6.1.2.1.31.1.1.1.1.2|4|Gi0/1
1.3.6.1.2.1.31.1.1.1.6.1|70:numeric|rate={WAN_IN_BYTES_PER_SECOND},initial=1000
1.3.6.1.2.1.31.1.1.1.6.2|70:numeric|rate={LAN_IN_BYTES_PER_SECOND},initial=1000
1.3.6.1.2.1.31.1.1.1.10.1|70:numeric|rate={WAN_OUT_BYTES_PER_SECOND},initial=1000
1.3.6.1.2.1.31.1.1.1.10.2|70:numeric|rate={LAN_IN_BYTES_PER_SECOND},initial=1000
1.3.6.1.2.1.31.1.1.1.18.1|4|Internet FTTH
1.3.6.1.2.1.31.1.1.1.18.2|4|LAN UBND
"""


def write_district(root: Path, http_port: int, agents: dict[str, int], broker: Mosquitto) -> Path:
    """The config of DISTRICT: `agents` maps each probe of the snmp kind to its port."""
    (root / "inventory").mkdir(parents=True)
    (root / "mqtt").mkdir()
    (root / "mqtt" / "mappings.yaml").write_bytes(MAPPINGS.read_bytes())
    (root / "profiles").mkdir()
    for profile in ("bts-power", "router"):
        source = ROOT / "config" / "profiles" / f"{profile}.yaml"
        (root / "profiles" / source.name).write_bytes(source.read_bytes())
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{http_port}"}}
ledger: {{path: ledger.sqlite, availability_refresh_seconds: 1}}
poll: {{interval_seconds: 0.5, timeout_seconds: 0.15, retries: 0}}
state: {{down_after: 2, up_after: 2}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, keepalive_seconds: 5, self_check_seconds: 0.5}}
objectives: {{{", ".join(f"{kind}: {value}" for kind, value in KIND_OBJECTIVES.items())}}}
""",
        encoding="utf-8",
    )
    communities = {"agent-ro": SNMPD_COMMUNITY, UPS_COMMUNITY: UPS_COMMUNITY}
    communities |= {c: c for c in ("bts-normal", "bts-battery", "router-wan", "gw-traffic")}
    (root / "credentials.yaml").write_text(
        "snmp:\n"
        + "".join(f"  {n}: {{version: 2c, community: {c}}}\n" for n, c in communities.items()),
        encoding="utf-8",
    )
    lines = []
    for place in DISTRICT:
        if place.probe == "icmp":
            probe = "{icmp: {address: 127.0.0.1, count: 2, packet_interval_seconds: 0.05}}"
        elif place.probe == "mqtt":
            probe = "{mqtt: {}}"
        else:
            credential = "agent-ro" if place.probe in ("snmpd", "dead") else place.probe
            profile = f", profile: {place.profile}" if place.profile else ""
            probe = (
                f"{{snmp: {{address: 127.0.0.1, port: {agents[place.probe]}, "
                f"credential: {credential}{profile}}}}}"
            )
        covers = f", covers: [{', '.join(place.covers)}]" if place.covers else ""
        if place.id in SITE_OBJECTIVES:
            covers += f", objective: {SITE_OBJECTIVES[place.id]}"
        lines.append(
            f"  - {{id: {place.id}, kind: {place.kind}, name: Trạm {place.id}, "
            f"commune: {place.commune}, owner: {place.owner}, lat: 21.4, lon: 103.0, "
            f"probe: {probe}{covers}}}"
        )
    owners = "\n".join(
        f"  - {{id: {owner}, name: {name}, kind: {OWNER_KIND.get(owner, 'agency')}}}"
        for owner, name in NAMES.items()
    )
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: {MP}, name: Mường Phăng, lat: 21.461, lon: 103.132, areas: [{", ".join(AREAS[MP])}]}}
  - {{id: {TN}, name: Thanh Nưa, lat: 21.432, lon: 102.998, areas: [{", ".join(AREAS[TN])}]}}
owners:
{owners}
sites:
"""
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    return root


class Telemetry:
    """The MQTT clusters of DISTRICT, publishing their facts every 0.3 s until closed."""

    def __init__(self, broker: Mosquitto) -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dashboard-clusters")
        self._client.connect(broker.host, broker.port, keepalive=10)
        self._client.loop_start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for place in DISTRICT:
                if place.probe != "mqtt":
                    continue
                facts = place.facts
                report = {
                    "ts": time.time(),
                    "online": True,
                    "amplifier_ok": bool(facts["amplifier_ok"]),
                    "playing": bool(facts["playing"]),
                    "rssi_dbm": facts["rssi_dbm"],
                    "volume": 70,
                }
                topic = f"dienbien/{place.commune}/loudspeaker/{place.id}/telemetry"
                self._client.publish(topic, json.dumps(report), qos=1)
            self._stop.wait(0.3)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.disconnect()
        self._client.loop_stop()


class Stack:
    def __init__(
        self, daemon: Daemon, prometheus: Prometheus, states: dict[str, str], started: float
    ) -> None:
        self.daemon = daemon
        self.prometheus = prometheus
        self.states = states  # site -> the state the daemon gave it, once all were decided
        self.started = started  # when the daemon was started

    def label_values(self, query: str) -> list[str]:
        """What Grafana's label_values(selector, label) offers."""
        match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip(), re.S)
        assert match, query
        selector, label = match.groups()
        url = f"{self.prometheus.url}/api/v1/series?" + urllib.parse.urlencode(
            {"match[]": selector, "start": time.time() - 300}
        )
        series = http_json(url)["data"]
        return sorted({s[label] for s in series if label in s})

    def options(self, query: str) -> list[tuple[str, str]]:
        """What a variable offers, as (value, text), in Grafana's order (by text): for
        `label_values` the values themselves; for `query_result(expr)` each series as
        Grafana renders it (`{a="x",b="y"} 1 <ms>`, labels in the order Prometheus gives
        them) read by the variable's regex."""
        if query.startswith("label_values("):
            return [(value, value) for value in self.label_values(query)]
        expr, regex = query.split("\n#regex ")
        # Grafana's own pattern, which does not match across a line break
        inner = re.fullmatch(r"query_result\((.+)\)\s*", expr)
        assert inner, expr
        pattern = re.compile(regex.strip("/").replace("(?<", "(?P<"))
        found = set()
        for series in self.prometheus.query(inner.group(1)):
            labels = ",".join(f'{k}="{v}"' for k, v in series["metric"].items() if k != "__name__")
            line = f"{{{labels}}} {series['value'][1]} {int(series['value'][0] * 1000)}"
            match = pattern.search(line)
            if match:
                found.add((match.group("value"), match.group("text")))
        return sorted(found, key=lambda option: option[1])


DEAD = {"bts-vtl-muong-phang-02", "loa-muong-phang-02", "gw-ubnd-muong-phang-2",
        "bts-vnp-thanh-nua-01", "loa-thanh-nua-02"}  # fmt: skip
DEGRADED = {"bts-vnp-muong-phang-01", "bts-vtl-thanh-nua-01", "gw-ubnd-muong-phang"}


def _settled(states: dict[str, str]) -> bool:
    """Every site decided, the dead ones down, the on-battery plants and the gateway with its
    WAN port down degraded (their profiles' health rules); others up, or degraded for a health
    rule of pushed telemetry (the cluster reporting an amplifier fault)."""
    if set(states) != set(PLACES):
        return False
    for site, state in states.items():
        if site in DEAD:
            expected = {"down"}
        elif site in DEGRADED:
            expected = {"degraded"}
        elif site == "loa-thanh-nua-03":
            expected = {"up", "degraded"}
        else:
            expected = {"up"}
        if state not in expected:
            return False
    return True


def _states(daemon: Daemon) -> dict[str, str]:
    try:
        _, body = daemon.get("/api/v1/sites")
    except OSError:
        return {}
    return {site["id"]: site["state"] for site in json.loads(body)["sites"]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboards")
    gw_traffic = tmp / "gw-traffic.snmprec"
    gw_traffic.write_text(GW_TRAFFIC, encoding="utf-8")
    gw_traffic.chmod(0o644)
    recordings = {
        UPS_COMMUNITY: recording(UPS_RECORDING),
        "bts-normal": DATA / "bts-power-normal.snmprec",
        "bts-battery": DATA / "bts-power-on-battery.snmprec",
        "router-wan": DATA / "router-wan-down.snmprec",
        "gw-traffic": gw_traffic,
    }
    with (
        Snmpd(community=SNMPD_COMMUNITY) as snmpd,
        Snmpsim(recordings, probe_oid="1.3.6.1.2.1.1.5.0") as sim,
        Mosquitto() as broker,
    ):
        snmpd.start()
        sim.start()
        broker.start()
        agents = {"snmpd": snmpd.port, "dead": free_udp_port()}
        agents |= dict.fromkeys(recordings, sim.port)
        port = free_tcp_port()
        config = write_district(tmp / "config", port, agents, broker)
        started = time.time()
        daemon = Daemon(config, port)
        telemetry = Telemetry(broker)
        try:
            wait_for("every site decided", lambda: _settled(_states(daemon)), daemon, limit=30)
            with Prometheus(
                [daemon.url.removeprefix("http://")], rule_files=(rules_every_second(tmp),)
            ) as prometheus:
                prometheus.start()
                _wait_for_rules_and_rates(prometheus)
                yield Stack(daemon, prometheus, _states(daemon), started)
        finally:
            telemetry.close()
            daemon.kill()


def rules_every_second(tmp: Path) -> Path:
    """The shipped rules with the evaluation interval of the test, not of production."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        group["interval"] = "1s"
    copy = tmp / RULES.name
    copy.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    return copy


def _wait_for_rules_and_rates(prometheus: Prometheus, limit: float = 30) -> None:
    """Until the recording rules have values and rate() has samples enough to work on."""
    deadline = time.monotonic() + limit
    checks = [
        "commune:districtmon_broadcast_coverage:ratio",
        "site:districtmon_site_state:severity",
        "rate(districtmon_polls_total[5s]) > 0",
        "rate(districtmon_device_if_in_octets_total[5s]) > 0",
        "count_over_time(up[1m]) > 5",
        "districtmon_site_availability_ratio",
    ]
    while time.monotonic() < deadline:
        if all(prometheus.query(q) for q in checks):
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus did not get there in {limit} s:\n{prometheus.log()[-3000:]}")


def variable_values(stack: Stack, board: dict[str, Any]) -> dict[str, str]:
    """Each variable's first real value, as Grafana would list it, in dependency order."""
    chosen: dict[str, str] = {}
    for var in board["templating"]["list"]:
        options = stack.options(variable_query(var, chosen))
        assert options, f"{board['uid']}: variable {var['name']} offers nothing"
        chosen[var["name"]] = options[0][0]
    return chosen


def variable_query(var: dict[str, Any], values: dict[str, str]) -> str:
    """The variable's query as Grafana runs it, its regex after `#regex ` (Stack.options)."""
    query = substitute(var["query"]["query"], values, GRAFANA_GLOBALS)
    return f"{query}\n#regex {var['regex']}" if var["regex"] else query


def test_variables_offer_names_and_select_ids(stack: Stack) -> None:
    """Communes, owners and sites are offered by the inventory's names; what a panel query
    receives is the id."""
    board = dashboards()["site.json"]
    variables = {var["name"]: var for var in board["templating"]["list"]}
    everything = dict.fromkeys(variables, ALL)
    assert stack.options(variable_query(variables["commune"], everything)) == [
        (MP, "Mường Phăng"),
        (TN, "Thanh Nưa"),
    ]
    owners = stack.options(variable_query(variables["owner"], everything))
    assert owners == sorted(NAMES.items(), key=lambda owner: owner[1])
    in_thanh_nua = stack.options(variable_query(variables["owner"], {"commune": TN}))
    assert {owner for owner, _ in in_thanh_nua} == {p.owner for p in DISTRICT if p.commune == TN}
    kinds = stack.options(variable_query(variables["kind"], {**everything, "owner": RTV}))
    assert kinds == [("loudspeaker", "Cụm loa"), ("radio_station", "Đài truyền thanh")]
    sites = stack.options(variable_query(variables["site"], {**everything, "commune": MP}))
    assert sites == sorted(
        ((p.id, f"Trạm {p.id}") for p in DISTRICT if p.commune == MP), key=lambda s: s[1]
    )


def pending_in(expr: str) -> set[str]:
    return {name for name in PENDING_METRICS if re.search(rf"\b{name}\b", expr)}


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_shows_the_selected_sites_and_the_right_figures(
    stack: Stack, name: str
) -> None:
    board = dashboards()[name]
    kinds = base_kinds(board)
    chosen = variable_values(stack, board)
    everything = dict.fromkeys(chosen, ALL)
    targets = {
        (board["uid"], p["id"], t["refId"]): (p, t) for p in panels(board) for t in p["targets"]
    }
    ours = {key for key in EXPECTED if key[0] == board["uid"]}
    assert set(targets) == ours, "EXPECTED must name every target, and only those"
    problems = []
    for key, (panel, target) in targets.items():
        for values in (everything, chosen):  # All, then the first real value of each
            expr = substitute(target["expr"], values, GRAFANA_GLOBALS)
            result = stack.prometheus.query(expr)  # raises on a parse error
            sel = Selection(
                WORLD, values, stack.states, time.time() - stack.started + 1, OBJECTIVE_TRUTH
            )
            where = f"{panel['id']} {panel['title']!r} {target['refId']} with {values}"
            try:
                check_labels(kinds, target["expr"], sel, result)
                if pending_in(expr):
                    assert not result, "reads a pending metric, yet has data"
                else:
                    EXPECTED[key](sel, result)
            except AssertionError as exc:
                problems.append(f"{where}: {exc}\n  {expr}")
    assert not problems, "panels that show the wrong thing:\n" + "\n".join(problems)


def test_prometheus_with_the_shipped_jobs_stores_site_availability_from_its_own_path(
    stack: Stack,
) -> None:
    """The shipped scrape jobs: the live state from /metrics (job districtmon), each site's
    availability from /metrics/availability (job districtmon_availability), once each; the
    panels that read the availability (SLA, site, BTS) get it from there."""
    query = stack.prometheus.query
    assert {r["metric"]["job"]: r["value"][1] for r in query('up{instance!=""}')} == {
        "districtmon": "1",
        "districtmon_availability": "1",
    }
    for metric, job in (
        ("districtmon_site_availability_ratio", "districtmon_availability"),
        ("districtmon_site_availability_counted_seconds", "districtmon_availability"),
        ("districtmon_commune_availability_ratio", "districtmon"),
        ("districtmon_site_up", "districtmon"),
    ):
        found = query(metric)
        assert found and {r["metric"]["job"] for r in found} == {job}, metric
    ratios = query('districtmon_site_availability_ratio{window="1h"}')
    assert {r["metric"]["site"] for r in ratios} <= set(stack.states)
    assert len(ratios) == len({r["metric"]["site"] for r in ratios})  # one series a site


def test_pending_metrics_are_still_pending(stack: Stack) -> None:
    """When a branch brings one of these series, take it out of PENDING_METRICS so that its
    panels are checked."""
    _, text = stack.daemon.get("/metrics")
    present = {name for name in PENDING_METRICS if re.search(rf"^{name}[{{ ]", text, re.M)}
    assert not present, f"now served, remove from PENDING_METRICS: {sorted(present)}"


def test_annotations_mark_state_changes_and_the_daemons_start(stack: Stack) -> None:
    """On the site dashboard (the others share the annotations): a moment per site at the
    time its current state began, named by the site and titled with the state the daemon
    gave it; the daemon's start and the loading of its configuration at its start; no stop
    (the ledger's first run), no refused reload, no scrape missed, no maintenance (the
    district has no window)."""
    board = dashboards()["site.json"]
    notes = {note["name"]: note for note in board["annotations"]["list"]}
    everything = {var["name"]: ALL for var in board["templating"]["list"]}
    now = time.time()

    def query(name: str) -> list[dict[str, Any]]:
        note = notes[name]
        assert note["datasource"] == provisioned_datasource_ref(), name
        return stack.prometheus.query(substitute(note["expr"], everything, GRAFANA_GLOBALS))

    sel = Selection(WORLD, everything, stack.states, now - stack.started + 1, OBJECTIVE_TRUTH)
    for name, expected in ANNOTATIONS.items():
        expected(now)(sel, query(name))
    changes = {s["metric"]["site"]: s for s in query("Đổi trạng thái (state changes)")}
    assert sorted(changes) == sorted(PLACES)
    for site, series in changes.items():
        assert series["metric"]["state"] == stack.states[site], site
        assert series["metric"]["name"] == WORLD.site_names[site], site
        assert stack.started - 1 <= float(series["value"][1]) / 1000 <= now, site
    assert notes["Đổi trạng thái (state changes)"]["useValueForTime"] is True
    [start] = query("Daemon khởi động (daemon started)")
    assert stack.started - 1 <= float(start["value"][1]) / 1000 <= stack.started + 10
    [loaded] = query("Nạp cấu hình (configuration loaded)")
    assert abs(float(loaded["value"][1]) - float(start["value"][1])) < 5000
    for silent in (
        "Daemon dừng (daemon stopped)",
        "Nạp lại bị từ chối (reload refused)",
        "Không thu thập được daemon (daemon not scraped)",
        "Bảo trì (maintenance)",
        "Cửa sổ bảo trì (maintenance windows)",
    ):
        assert query(silent) == [], silent
    assert set(STATES) >= {s["metric"]["state"] for s in changes.values()}


def provisioned_datasource_ref() -> dict[str, Any]:
    source = provisioned_datasource()
    return {"type": source["type"], "uid": source["uid"]}
