"""The Grafana dashboards: well-formed JSON that Grafana can provision, kept equal to their
source (dashboards/build.py), and every panel and variable query answered by a real Prometheus
that scraped a running daemon polling real SNMP agents, with the dashboards' recording rules.

No Grafana package is reachable here (see /work/shared/NOTES.md), so Grafana's side is
checked structurally and the queries, which are what can go wrong, are run for real."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SNMPD_COMMUNITY, UPS_COMMUNITY
from harness import Daemon, free_tcp_port, wait_for
from peers import Snmpd, Snmpsim, free_udp_port
from promstack import Prometheus, http_json

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "dashboards"
PROVISIONING = DASHBOARDS / "provisioning"
RULES = ROOT / "config" / "prometheus" / "dashboards.rules.yml"

# Series that other branches add to the daemon (names as the dashboards expect them; the lead
# adapts at merge). A query that reads one of them must parse but may come back empty here.
# The last test fails once one of them appears on /metrics: then take it out of this list.
PENDING_METRICS = {
    # Device values: the daemon exports them, but this test's district has no device profile
    # and no MQTT broker, so their panels are only parsed here (the SNMP and MQTT tests check
    # the series themselves). Serving them here too is the next step for this test.
    "districtmon_device_mains_ok": "bts-power profile (SNMP)",
    "districtmon_device_battery_volts": "bts-power profile (SNMP), MQTT telemetry",
    "districtmon_device_temperature_celsius": "MQTT telemetry",
    "districtmon_device_if_oper_up": "router profile (SNMP)",
    "districtmon_device_if_in_octets_total": "router profile (SNMP)",
    "districtmon_device_if_out_octets_total": "router profile (SNMP)",
    "districtmon_device_amplifier_ok": "MQTT telemetry",
    "districtmon_device_playing": "MQTT telemetry",
    "districtmon_device_rssi_dbm": "MQTT telemetry",
}

# Panels that may rightly show nothing in a healthy district, with the reason. Keyed by
# (dashboard uid, panel title). Not for pending metrics: those are listed above.
ALLOWED_EMPTY: dict[tuple[str, str], str] = {}

# Grafana's own variables, as the test substitutes them (Prometheus scrapes every second here).
GRAFANA_GLOBALS = {"$__rate_interval": "5s", "$__interval": "1s", "$__range": "1m"}
# $name, ${name}, ${name:format}, [[name]]; not $1 (a label_replace group)
VARIABLE_REF = re.compile(r"\$([A-Za-z_]\w*)|\$\{([A-Za-z_]\w*)(?::\w+)?\}|\[\[(\w+)\]\]")


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
            assert var["includeAll"] and var["allValue"] == ".*"

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


# --- every query against a real Prometheus -------------------------------------------------


def write_district(root: Path, http_port: int, snmpd: Snmpd, sim: Snmpsim, dead: int) -> Path:
    """Two communes, every kind and several owners; some sites point at a port where no agent
    answers and go down. "muong-phang" sorts first, so the variables' first values select it:
    it has a site of every kind up, and one down."""
    (root / "inventory").mkdir(parents=True)
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{http_port}"}}
ledger: {{path: ledger.sqlite, availability_refresh_seconds: 1}}
poll: {{interval_seconds: 0.5, timeout_seconds: 0.15, retries: 0}}
state: {{down_after: 2, up_after: 2}}
""",
        encoding="utf-8",
    )
    (root / "credentials.yaml").write_text(
        f"""
snmp:
  agent-ro: {{version: 2c, community: {SNMPD_COMMUNITY}}}
  ups-ro: {{version: 2c, community: {UPS_COMMUNITY}}}
""",
        encoding="utf-8",
    )
    up_snmpd = f"{{snmp: {{address: 127.0.0.1, port: {snmpd.port}, credential: agent-ro}}}}"
    up_ups = f"{{snmp: {{address: 127.0.0.1, port: {sim.port}, credential: ups-ro}}}}"
    down = f"{{snmp: {{address: 127.0.0.1, port: {dead}, credential: agent-ro}}}}"
    ping = "{icmp: {address: 127.0.0.1, count: 2, packet_interval_seconds: 0.05}}"
    sites = [
        # id, kind, commune, owner, probe, extra
        ("bts-vtl-muong-phang-01", "bts", "muong-phang", "viettel", up_ups, ""),
        ("bts-vtl-muong-phang-02", "bts", "muong-phang", "viettel", down, ""),
        ("bts-vnp-muong-phang-01", "bts", "muong-phang", "vnpt", up_snmpd, ""),
        ("bts-vtl-thanh-nua-01", "bts", "thanh-nua", "viettel", up_ups, ""),
        ("bts-vnp-thanh-nua-01", "bts", "thanh-nua", "vnpt", down, ""),
        ("radio-muong-phang", "radio_station", "muong-phang", "dien-bien-rtv", up_snmpd, ""),
        ("radio-thanh-nua", "radio_station", "thanh-nua", "dien-bien-rtv", up_ups, ""),
        ("loa-muong-phang-01", "loudspeaker", "muong-phang", "dien-bien-rtv", up_ups,
         "covers: [Bản Co Củ, Bản Phăng]"),
        ("loa-muong-phang-02", "loudspeaker", "muong-phang", "dien-bien-rtv", down,
         "covers: [Bản Nghịu]"),
        ("loa-thanh-nua-01", "loudspeaker", "thanh-nua", "dien-bien-rtv", up_snmpd,
         "covers: [Bản Ta Pô, Bản Mển]"),
        ("loa-thanh-nua-02", "loudspeaker", "thanh-nua", "dien-bien-rtv", down,
         "covers: [Bản Pa Pốm]"),
        ("gw-ubnd-muong-phang", "gateway", "muong-phang", "district-it", up_snmpd, ""),
        ("gw-ubnd-muong-phang-2", "gateway", "muong-phang", "district-it", down, ""),
        ("gw-ubnd-thanh-nua", "gateway", "thanh-nua", "district-it", up_ups, ""),
        ("gw-ubnd-huyen", "gateway", "thanh-nua", "ubnd-huyen", up_snmpd, ""),
        ("gw-ubnd-muong-phang-ping", "gateway", "muong-phang", "district-it", ping, ""),
    ]  # fmt: skip
    lines = []
    for site_id, kind, commune, owner, probe, extra in sites:
        lines.append(
            f"  - {{id: {site_id}, kind: {kind}, name: Trạm {site_id}, commune: {commune}, "
            f"owner: {owner}, lat: 21.4, lon: 103.0, probe: {probe}"
            + (f", {extra}" if extra else "")
            + "}"
        )
    (root / "inventory" / "district.yaml").write_text(
        """
communes:
  - {id: muong-phang, name: Mường Phăng, lat: 21.461, lon: 103.132,
     areas: [Bản Co Củ, Bản Phăng, Bản Nghịu, Bản Khá]}
  - {id: thanh-nua, name: Thanh Nưa, lat: 21.432, lon: 102.998,
     areas: [Bản Ta Pô, Bản Mển, Bản Pa Pốm, Bản Giăng]}
owners:
  - {id: viettel, name: Viettel, kind: operator}
  - {id: vnpt, name: VNPT / VinaPhone, kind: operator}
  - {id: dien-bien-rtv, name: Đài Truyền thanh - Truyền hình huyện Điện Biên, kind: broadcaster}
  - {id: district-it, name: Trung tâm Văn hóa - Thông tin huyện, kind: agency}
  - {id: ubnd-huyen, name: Ủy ban nhân dân huyện Điện Biên, kind: agency}
sites:
"""
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    return root


def rules_every_second(tmp: Path) -> Path:
    """The shipped rules with the evaluation interval of the test, not of production."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        group["interval"] = "1s"
    copy = tmp / RULES.name
    copy.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    return copy


class Stack:
    def __init__(self, daemon: Daemon, prometheus: Prometheus) -> None:
        self.daemon = daemon
        self.prometheus = prometheus

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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboards")
    with Snmpd(community=SNMPD_COMMUNITY) as snmpd, Snmpsim(
        {UPS_COMMUNITY: _ups_recording()}
    ) as sim:  # fmt: skip
        snmpd.start()
        sim.start()
        port = free_tcp_port()
        config = write_district(tmp / "config", port, snmpd, sim, free_udp_port())
        daemon = Daemon(config, port)
        try:
            wait_for(
                "every site decided",
                lambda: _states(daemon) == {"up": 11, "down": 5},
                daemon,
                limit=30,
            )
            with Prometheus(
                [daemon.url.removeprefix("http://")], rule_files=(rules_every_second(tmp),)
            ) as prometheus:
                prometheus.start()
                stack = Stack(daemon, prometheus)
                _wait_for_rules_and_rates(prometheus)
                yield stack
        finally:
            daemon.kill()


def _ups_recording() -> Path:
    from peers import UPS_RECORDING, recording

    return recording(UPS_RECORDING)


def _states(daemon: Daemon) -> dict[str, int]:
    try:
        _, body = daemon.get("/api/v1/sites")
    except OSError:
        return {}
    counts: dict[str, int] = {}
    for site in json.loads(body)["sites"]:
        counts[site["state"]] = counts.get(site["state"], 0) + 1
    return counts


def _wait_for_rules_and_rates(prometheus: Prometheus, limit: float = 30) -> None:
    """Until the recording rules have values and rate() has samples enough to work on."""
    deadline = time.monotonic() + limit
    checks = [
        "commune:districtmon_broadcast_coverage:ratio",
        "site:districtmon_site_state:severity",
        "rate(districtmon_polls_total[5s]) > 0",
        "count_over_time(up[1m]) > 5",
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


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_query_parses_and_returns_data(stack: Stack, name: str) -> None:
    board = dashboards()[name]
    chosen = variable_values(stack, board)
    everything = dict.fromkeys(chosen, ".*")
    empty = []
    for panel in panels(board):
        for target in panel["targets"]:
            for values in (chosen, everything):  # the first real value of each, then All
                expr = substitute(target["expr"], values)
                result = stack.prometheus.query(expr)  # raises on a parse error
                if result or pending_in(expr) or (board["uid"], panel["title"]) in ALLOWED_EMPTY:
                    continue
                empty.append(f"{panel['title']!r} {target['refId']} with {values}:\n  {expr}")
    assert not empty, "queries that returned nothing:\n" + "\n".join(empty)


def test_map_and_coverage_say_what_the_district_looks_like(stack: Stack) -> None:
    query = stack.prometheus.query
    worst = {r["metric"]["commune"]: float(r["value"][1]) for r in query(
        "max by (commune) (site:districtmon_site_state:severity)")}  # fmt: skip
    assert worst == {"muong-phang": 5.0, "thanh-nua": 5.0}  # each has a site down
    worst_bts_up = query(
        'max by (commune) (site:districtmon_site_state:severity{site="bts-vtl-muong-phang-01"})'
    )
    assert [float(r["value"][1]) for r in worst_bts_up] == [0.0]
    coverage = {
        r["metric"]["commune"]: float(r["value"][1])
        for r in query("commune:districtmon_broadcast_coverage:ratio")
    }
    # muong-phang: 2 of 4 areas on a live cluster (its other cluster is down);
    # thanh-nua: 2 of 4 (Bản Pa Pốm's cluster is down, Bản Giăng has none)
    assert coverage == {"muong-phang": 0.5, "thanh-nua": 0.5}
    counts = query(
        'commune_owner_kind_state:districtmon_site_state:sum{commune="thanh-nua",kind="bts"}'
    )
    by = {(r["metric"]["owner"], r["metric"]["state"]): float(r["value"][1]) for r in counts}
    assert by[("viettel", "up")] == 1 and by[("vnpt", "down")] == 1 and by[("vnpt", "up")] == 0


def test_pending_metrics_are_still_pending(stack: Stack) -> None:
    """When a branch brings one of these series, take it out of PENDING_METRICS so that its
    panels must show data."""
    _, text = stack.daemon.get("/metrics")
    present = {name for name in PENDING_METRICS if re.search(rf"^{name}[{{ ]", text, re.M)}
    assert not present, f"now served, remove from PENDING_METRICS: {sorted(present)}"
    titles = {(b["uid"], p["title"]) for b in dashboards().values() for p in panels(b)}
    assert set(ALLOWED_EMPTY) <= titles, "ALLOWED_EMPTY names a panel that does not exist"
