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

import importlib.util
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from broker import Mosquitto
from conftest import SNMPD_COMMUNITY, UPS_COMMUNITY
from harness import Daemon, free_tcp_port, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from peers import UPS_RECORDING, Snmpd, Snmpsim, free_udp_port, recording
from promstack import Prometheus, http_json

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "dashboards"
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
# $name, ${name}, ${name:format}, [[name]]; not $1 (a label_replace group)
VARIABLE_REF = re.compile(r"\$([A-Za-z_]\w*)|\$\{([A-Za-z_]\w*)(?::\w+)?\}|\[\[(\w+)\]\]")
ALL = ".*"  # what a variable at All expands to (allValue)

# What the recordings serve (tests/data/*.snmprec, and the gateway written below).
NORMAL_VOLTS, NORMAL_CABINET = 53.5, 31.2
BATTERY_VOLTS, BATTERY_CABINET = 49.2, 46.8
WAN_IN_BYTES_PER_SECOND, WAN_OUT_BYTES_PER_SECOND = 1250, 625
LAN_IN_BYTES_PER_SECOND = 125_000  # a wrong filter would show this


def dashboards() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        found[path.name] = json.loads(path.read_text(encoding="utf-8"))
    return found


def provisioned_datasource() -> dict[str, Any]:
    [path] = list((PROVISIONING / "datasources").glob("*.yaml"))
    [source] = yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    return dict(source)


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def base_kinds(board: dict[str, Any]) -> str:
    """The dashboard's own kind filter, as its first site variable's query states it."""
    for var in board["templating"]["list"]:
        match = re.search(r'districtmon_site_info\{kind=~"([^"]+)"', var["query"]["query"])
        if match:
            return match.group(1)
    raise AssertionError(f"{board['uid']}: no site variable with a kind filter")


def test_there_is_a_dashboard_for_each_question_operators_ask() -> None:
    titles = {board["uid"]: board["title"] for board in dashboards().values()}
    assert set(titles) == {
        "districtmon-overview",
        "districtmon-bts",
        "districtmon-broadcast",
        "districtmon-agency",
        "districtmon-sla",
        "districtmon-monitor",
    }


def test_dashboard_json_is_what_build_py_writes() -> None:
    spec = importlib.util.spec_from_file_location("dashboards_build", DASHBOARDS / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build  # dataclasses look their module up while being made
    try:
        spec.loader.exec_module(build)
    finally:
        del sys.modules[spec.name]
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
        assert query == var["definition"] and query.startswith("label_values(")
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


@dataclass(frozen=True)
class Place:
    """A site of the test district and what the test knows of it: how it is probed
    (`snmpd`, `dead`, a community of the snmpsim, `icmp`, `mqtt`) and what it reports."""

    id: str
    kind: str
    commune: str
    owner: str
    probe: str
    profile: str = ""
    covers: tuple[str, ...] = ()
    facts: dict[str, float] = field(default_factory=dict)


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
          facts={"wan_down": 0, "wan_in": 8 * WAN_IN_BYTES_PER_SECOND,
                 "wan_out": 8 * WAN_OUT_BYTES_PER_SECOND}),
    Place("gw-ubnd-huyen", "gateway", TN, "ubnd-huyen", "snmpd"),
    Place("portal-dien-bien", "portal", TN, "ubnd-huyen", "icmp"),
)  # fmt: skip
PLACES = {place.id: place for place in DISTRICT}
AREAS = {
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
SEVERITY = {"up": 0, "maintenance": 1, "unknown": 2, "degraded": 3, "unreachable": 4, "down": 5}
STATES = tuple(SEVERITY)

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


def substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in GRAFANA_GLOBALS.items():
        expr = expr.replace(name, value)

    def one(match: re.Match[str]) -> str:
        name = next(filter(None, match.groups()))
        return values[name]

    return VARIABLE_REF.sub(one, expr)


def variable_values(stack: Stack, board: dict[str, Any]) -> dict[str, str]:
    """Each variable's first real value, as Grafana would list it, in dependency order."""
    chosen: dict[str, str] = {}
    for var in board["templating"]["list"]:
        options = stack.label_values(substitute(var["query"]["query"], chosen))
        assert options, f"{board['uid']}: variable {var['name']} offers nothing"
        chosen[var["name"]] = options[0]
    return chosen


def pending_in(expr: str) -> set[str]:
    return {name for name in PENDING_METRICS if re.search(rf"\b{name}\b", expr)}


# --- what each panel must show ------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The variables as a panel sees them, the states the daemon gave, and how long ago the
    daemon started (no time in a state can be longer)."""

    values: dict[str, str]
    states: dict[str, str]
    age: float

    def matches(self, variable: str, value: str) -> bool:
        chosen = self.values.get(variable, ALL)
        return chosen in (ALL, value)

    def sites(self, kinds: str, follow_kind: bool = True) -> list[Place]:
        """The sites of `kinds` (a |-list) that the commune and owner variables select,
        and the kind variable too when the panel follows it."""
        return [
            p
            for p in DISTRICT
            if p.kind in kinds.split("|")
            and self.matches("commune", p.commune)
            and self.matches("owner", p.owner)
            and (not follow_kind or self.matches("kind", p.kind))
        ]

    def communes(self) -> list[str]:
        return [c for c in AREAS if self.matches("commune", c)]

    def state(self, place: Place) -> str:
        return self.states[place.id]

    def answering(self, place: Place) -> bool:
        return self.state(place) in ("up", "degraded")


Result = list[dict[str, Any]]
Check = Callable[[Selection, Result], None]
Keep = Callable[[Selection, Place], bool]
EVERY_KIND = "bts|radio_station|loudspeaker|gateway|video_endpoint|portal"
BROADCAST = "radio_station|loudspeaker"
AGENCY = "gateway|video_endpoint|portal"
GROUP_LABELS = ("commune", "owner", "kind")


def group_key(place: Place, labels: tuple[str, ...], state: str = "") -> tuple[str, ...]:
    attrs = {"commune": place.commune, "owner": place.owner, "kind": place.kind, "state": state}
    return tuple(attrs[label] for label in labels)


def values_by(result: Result, *labels: str) -> dict[tuple[str, ...], float]:
    found: dict[tuple[str, ...], float] = {}
    for series in result:
        key = tuple(series["metric"].get(label, "") for label in labels)
        assert key not in found, f"two series for {key}: {result}"
        found[key] = float(series["value"][1])
    return found


def scalar(result: Result) -> float | None:
    """The one value of an aggregate; None when the query returned nothing."""
    if not result:
        return None
    [series] = result
    return float(series["value"][1])


def share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def expect_scalar(compute: Callable[[Selection], float | None], tol: float = 1e-9) -> Check:
    def check(sel: Selection, result: Result) -> None:
        expected, got = compute(sel), scalar(result)
        if expected is None:
            assert got is None, f"expected no value, got {got}"
        else:
            assert got == pytest.approx(expected, abs=tol), f"expected {expected}, got {got}"

    return check


def expect_by(
    labels: tuple[str, ...],
    compute: Callable[[Selection], dict[tuple[str, ...], float | None]],
    tol: float = 1e-9,
) -> Check:
    """One series per expected key of `labels`, each with its value (None: any value >= 0)."""

    def check(sel: Selection, result: Result) -> None:
        expected, got = compute(sel), values_by(result, *labels)
        assert got.keys() == expected.keys(), f"series {sorted(got)}, expected {sorted(expected)}"
        for key, value in expected.items():
            if value is None:
                assert got[key] >= 0, f"{key}: {got[key]}"
            else:
                assert got[key] == pytest.approx(value, abs=tol), f"{key}: {got[key]} != {value}"

    return check


def count_in(kinds: str, states: str, follow_kind: bool = True) -> Check:
    """How many selected sites are in `states` (nothing at all when none is selected)."""

    def compute(sel: Selection) -> float | None:
        sites = sel.sites(kinds, follow_kind)
        in_states = sum(sel.state(p) in states.split("|") for p in sites)
        return float(in_states) if sites else None

    return expect_scalar(compute)


def up_share(kinds: str, follow_kind: bool = True) -> Check:
    def compute(sel: Selection) -> float | None:
        sites = sel.sites(kinds, follow_kind)
        return share(sum(sel.answering(p) for p in sites), len(sites))

    return expect_scalar(compute)


def grouped_counts(kinds: str, labels: tuple[str, ...], states: str | None = None) -> Check:
    """`sum by (labels)` of the one-hot state counts: one series per group of the selected
    sites, zeros included; per state too when `labels` has it (then `states` is None)."""

    def compute(sel: Selection) -> dict[tuple[str, ...], float | None]:
        found: dict[tuple[str, ...], float | None] = {}
        for place in sel.sites(kinds):
            for state in STATES if "state" in labels else ("",):
                key = group_key(place, labels, state)
                wanted = (state,) if state else str(states).split("|")
                found[key] = (found.get(key) or 0.0) + (sel.state(place) in wanted)
        return found

    return expect_by(labels, compute)


def share_by_owner(kinds: str) -> Check:
    def compute(sel: Selection) -> dict[tuple[str, ...], float | None]:
        owners: dict[tuple[str, ...], list[bool]] = {}
        for place in sel.sites(kinds):
            owners.setdefault((place.owner,), []).append(sel.answering(place))
        return {key: sum(up) / len(up) for key, up in owners.items()}

    return expect_by(("owner",), compute)


def facts_count(kinds: str, keep: Keep, follow_kind: bool = True) -> Check:
    """How many selected sites `keep` holds for (0 when none: the panels say `or vector(0)`)."""
    return expect_scalar(
        lambda sel: float(sum(keep(sel, p) for p in sel.sites(kinds, follow_kind)))
    )


def per_site(
    kinds: str,
    keep: Keep,
    value: Callable[[Selection, Place], float] | None,
    follow_kind: bool = True,
    tol: float = 1e-9,
) -> Check:
    def compute(sel: Selection) -> dict[tuple[str, ...], float | None]:
        return {
            (p.id,): value(sel, p) if value else None
            for p in sel.sites(kinds, follow_kind)
            if keep(sel, p)
        }

    return expect_by(("site",), compute, tol)


def per_group(
    kinds: str,
    labels: tuple[str, ...],
    keep: Keep,
    value: Callable[[list[Place]], float] | None = None,
    follow_kind: bool = True,
) -> Check:
    """One series per group of the selected sites `keep` holds for; `value` of its sites."""

    def compute(sel: Selection) -> dict[tuple[str, ...], float | None]:
        groups: dict[tuple[str, ...], list[Place]] = {}
        for p in sel.sites(kinds, follow_kind):
            if keep(sel, p):
                groups.setdefault(group_key(p, labels), []).append(p)
        return {key: value(ps) if value else None for key, ps in groups.items()}

    return expect_by(labels, compute)


def expect_sites(kinds: str, states: str) -> Check:
    """One row per selected site of `kinds` in `states`, with its state, name and owner's
    name as labels where the query joins them in, valued by its time in that state."""

    def check(sel: Selection, result: Result) -> None:
        sites = [p for p in sel.sites(kinds) if sel.state(p) in states.split("|")]
        got = {s["metric"]["site"]: s for s in result}
        assert sorted(got) == sorted(p.id for p in sites)
        for place in sites:
            metric = got[place.id]["metric"]
            assert metric["state"] == sel.state(place), place.id
            assert metric["name"] == f"Trạm {place.id}", place.id
            assert metric["owner_name"] == NAMES[place.owner], place.id
            assert 0 <= float(got[place.id]["value"][1]) <= sel.age, place.id

    return check


def weighted(kinds: str, labels: tuple[str, ...], tol: float = 0.05) -> Check:
    """Group availability weighted by counted time. The states never changed once decided,
    and every site was decided within seconds of the start: near the answering share."""

    def compute(sel: Selection) -> dict[tuple[str, ...], float | None]:
        groups: dict[tuple[str, ...], list[bool]] = {}
        for p in sel.sites(kinds):
            groups.setdefault(group_key(p, labels), []).append(sel.answering(p))
        return {key: sum(up) / len(up) for key, up in groups.items()}

    return expect_by(labels, compute, tol)


def coverage(sel: Selection, commune: str) -> tuple[int, int]:
    """Areas of the commune reached by a working cluster (answering, no amplifier fault),
    capped at the commune's areas; and its areas."""
    reached = sum(
        len(p.covers)
        for p in DISTRICT
        if p.kind == "loudspeaker"
        and p.commune == commune
        and sel.answering(p)
        and p.facts.get("amplifier_ok", 1) == 1
    )
    return min(reached, len(AREAS[commune])), len(AREAS[commune])


def coverage_by_commune(sel: Selection) -> dict[tuple[str, ...], float | None]:
    return {(c,): share(*coverage(sel, c)) for c in sel.communes()}


def district_coverage(sel: Selection) -> float | None:
    parts = [coverage(sel, c) for c in sel.communes()]
    return share(sum(p[0] for p in parts), sum(p[1] for p in parts))


def worst_by_commune(sel: Selection) -> dict[tuple[str, ...], float | None]:
    worst: dict[tuple[str, ...], float | None] = {}
    for p in sel.sites(EVERY_KIND):
        worst[(p.commune,)] = max(worst.get((p.commune,)) or 0.0, float(SEVERITY[sel.state(p)]))
    return worst


def fact(name: str, value: float | None = None) -> Keep:
    """The site answers and reports `name` (equal to `value` when given)."""
    return lambda sel, p: (
        sel.answering(p) and name in p.facts and (value is None or p.facts[name] == value)
    )


def answering(sel: Selection, place: Place) -> bool:
    return sel.answering(place)


def silent(sel: Selection, place: Place) -> bool:
    """Reaches nobody: down or unreachable, or answering with an amplifier fault."""
    return sel.state(place) in ("down", "unreachable") or fact("amplifier_ok", 0)(sel, place)


def snmp_answering(sel: Selection, place: Place) -> bool:
    return sel.answering(place) and place.probe not in ("icmp", "mqtt", "dead")


def not_mqtt(sel: Selection, place: Place) -> bool:
    return place.probe != "mqtt"


def icmp_answering(sel: Selection, place: Place) -> bool:
    return place.probe == "icmp" and sel.answering(place)


def anything(sel: Selection, result: Result) -> None:
    """A figure the test cannot know (rates of the daemon's own work, latencies, the
    process): only the labels of what comes back are checked."""


def at_most(limit: float) -> Check:
    def check(sel: Selection, result: Result) -> None:
        got = scalar(result)
        assert got is not None and 0 <= got <= limit, got

    return check


def ledger_ratio(sel: Selection, place: Place) -> float:
    """A site's 30-day availability as the ledger counts it here: its state never changed
    once decided, and the undecided start is not counted."""
    return 1.0 if sel.answering(place) else 0.0


# (dashboard uid, panel id, refId) -> what it must show. Every target has an entry (a new
# panel comes with its check), and every entry a target.
EXPECTED: dict[tuple[str, int, str], Check] = {
    # overview
    ("districtmon-overview", 1, "A"): count_in(EVERY_KIND, "down"),
    ("districtmon-overview", 2, "A"): count_in(EVERY_KIND, "unreachable"),
    ("districtmon-overview", 3, "A"): up_share(EVERY_KIND),
    ("districtmon-overview", 4, "A"): grouped_counts(EVERY_KIND, ("state",)),
    ("districtmon-overview", 5, "A"): expect_by(("commune",), worst_by_commune),
    ("districtmon-overview", 6, "A"): grouped_counts(EVERY_KIND, ("kind", "state")),
    ("districtmon-overview", 7, "A"): expect_sites(EVERY_KIND, "down|unreachable|degraded"),
    ("districtmon-overview", 8, "A"): grouped_counts(EVERY_KIND, ("kind",), "down|unreachable"),
    ("districtmon-overview", 9, "A"): anything,  # reason codes (pending); labels checked
    # BTS
    ("districtmon-bts", 1, "A"): share_by_owner("bts"),
    ("districtmon-bts", 2, "A"): weighted("bts", ("owner",)),
    ("districtmon-bts", 3, "A"): facts_count("bts", fact("mains_ok", 0)),
    ("districtmon-bts", 4, "A"): grouped_counts("bts", ("commune", "owner"), "down|unreachable"),
    ("districtmon-bts", 5, "A"): weighted("bts", ("commune", "owner")),
    ("districtmon-bts", 6, "A"): per_site(
        "bts", fact("mains_ok", 0), lambda sel, p: p.facts["battery_volts"]
    ),
    ("districtmon-bts", 7, "A"): per_group(
        "bts", ("commune", "owner"), snmp_answering, lambda ps: 0.0
    ),
    ("districtmon-bts", 8, "A"): grouped_counts("bts", ("owner",), "down|unreachable"),
    ("districtmon-bts", 9, "A"): per_group(
        "bts", ("commune",), fact("cabinet"), lambda ps: max(p.facts["cabinet"] for p in ps)
    ),
    # broadcast: the panels about one kind ignore the kind variable
    ("districtmon-broadcast", 1, "A"): up_share("radio_station", follow_kind=False),
    ("districtmon-broadcast", 2, "A"): up_share("loudspeaker", follow_kind=False),
    ("districtmon-broadcast", 3, "A"): expect_scalar(district_coverage),
    ("districtmon-broadcast", 4, "A"): facts_count(
        "loudspeaker", fact("amplifier_ok", 0), follow_kind=False
    ),
    ("districtmon-broadcast", 5, "A"): facts_count(
        "loudspeaker", fact("playing", 1), follow_kind=False
    ),
    ("districtmon-broadcast", 6, "A"): expect_scalar(lambda sel: 1.0),
    ("districtmon-broadcast", 7, "A"): expect_by(("commune",), coverage_by_commune),
    ("districtmon-broadcast", 8, "A"): expect_by(("commune",), coverage_by_commune),
    ("districtmon-broadcast", 9, "A"): expect_sites(BROADCAST, "down|unreachable|degraded"),
    ("districtmon-broadcast", 10, "A"): per_site(
        "loudspeaker", silent, lambda sel, p: float(len(p.covers)), follow_kind=False
    ),
    ("districtmon-broadcast", 11, "A"): per_site(
        "loudspeaker", fact("amplifier_ok", 0), lambda sel, p: 0.0, follow_kind=False
    ),
    ("districtmon-broadcast", 12, "A"): per_group(
        "loudspeaker",
        ("commune",),
        fact("rssi_dbm"),
        lambda ps: min(p.facts["rssi_dbm"] for p in ps),
        follow_kind=False,
    ),
    # agency: the panels named for gateways read gateways only
    ("districtmon-agency", 1, "A"): count_in("gateway", "down"),
    ("districtmon-agency", 2, "A"): up_share("gateway"),
    ("districtmon-agency", 3, "A"): facts_count("gateway", fact("wan_down", 1)),
    ("districtmon-agency", 4, "A"): at_most(1.0),  # a poll times out after 0.15 s
    ("districtmon-agency", 5, "A"): expect_sites("gateway", "|".join(STATES)),
    ("districtmon-agency", 6, "A"): per_site(
        "gateway", fact("wan_in"), lambda sel, p: p.facts["wan_in"], tol=0.3 * 8 * 1250
    ),
    ("districtmon-agency", 7, "A"): per_site(
        "gateway", fact("wan_out"), lambda sel, p: p.facts["wan_out"], tol=0.3 * 8 * 625
    ),
    ("districtmon-agency", 8, "A"): per_group(AGENCY, ("commune",), not_mqtt),
    ("districtmon-agency", 9, "A"): per_group(AGENCY, ("commune",), icmp_answering),
    ("districtmon-agency", 9, "B"): per_group(AGENCY, ("commune",), icmp_answering, lambda ps: 0.0),
    # SLA
    ("districtmon-sla", 1, "A"): weighted(EVERY_KIND, ("commune",)),
    ("districtmon-sla", 2, "A"): weighted(EVERY_KIND, ("owner",)),
    ("districtmon-sla", 3, "A"): weighted(EVERY_KIND, ("kind",)),
    ("districtmon-sla", 4, "A"): per_site(EVERY_KIND, lambda sel, p: True, ledger_ratio),
    ("districtmon-sla", 5, "A"): per_group(EVERY_KIND, ("commune",), lambda sel, p: True),
    ("districtmon-sla", 6, "A"): per_group(EVERY_KIND, ("commune", "kind"), lambda sel, p: True),
    # the monitor's own health
    ("districtmon-monitor", 1, "A"): expect_scalar(lambda sel: 1.0),
    ("districtmon-monitor", 2, "A"): anything,
    ("districtmon-monitor", 3, "A"): at_most(5.0),  # polls every 0.5 s, telemetry every 0.3 s
    ("districtmon-monitor", 4, "A"): expect_scalar(lambda sel: 1.0),
    ("districtmon-monitor", 5, "A"): expect_scalar(lambda sel: 0.0),
    **{
        ("districtmon-monitor", n, ref): anything
        for n, refs in {
            6: "A",
            7: "A",
            8: "A",
            9: "AB",
            10: "ABC",
            11: "ABC",
            12: "A",
            13: "AB",
            14: "A",
        }.items()
        for ref in refs
    },
}


def allowed_sites(board_kinds: str, expr: str, sel: Selection) -> list[Place]:
    """The sites whose series a panel query may return: of the kinds its selectors name (the
    dashboard's when they name none), and of the variables it follows."""
    literal = {k for _, ks in re.findall(r'kind(=~|=)"([^"$]+)"', expr) for k in ks.split("|")}
    kinds = literal or set((EVERY_KIND if board_kinds == ALL else board_kinds).split("|"))
    return [
        p
        for p in DISTRICT
        if p.kind in kinds
        and ("$commune" not in expr or sel.matches("commune", p.commune))
        and ("$owner" not in expr or sel.matches("owner", p.owner))
        and ("$kind" not in expr or sel.matches("kind", p.kind))
    ]


def check_labels(board_kinds: str, expr: str, sel: Selection, result: Result) -> None:
    """Every series is of a site, or of a commune / owner / kind that has a site, that the
    panel may show."""
    sites = allowed_sites(board_kinds, expr, sel)
    for series in result:
        metric = series["metric"]
        if "site" in metric:
            assert metric["site"] in {p.id for p in sites}, f"not selected: {metric}"
            continue
        present = [label for label in GROUP_LABELS if label in metric]
        if not present:
            continue
        wanted = tuple(metric[label] for label in present)
        assert any(group_key(p, tuple(present)) == wanted for p in sites), (
            f"no selected site has {metric}"
        )


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
            expr = substitute(target["expr"], values)
            result = stack.prometheus.query(expr)  # raises on a parse error
            sel = Selection(values, stack.states, time.time() - stack.started + 1)
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


def test_pending_metrics_are_still_pending(stack: Stack) -> None:
    """When a branch brings one of these series, take it out of PENDING_METRICS so that its
    panels are checked."""
    _, text = stack.daemon.get("/metrics")
    present = {name for name in PENDING_METRICS if re.search(rf"^{name}[{{ ]", text, re.M)}
    assert not present, f"now served, remove from PENDING_METRICS: {sorted(present)}"
