"""From outage to notification: the daemon polls real SNMP agents on loopback, a real
Prometheus runs the shipped prometheus.yml and rules, a real Alertmanager the shipped routes
and inhibitions, and a webhook receiver run by the test records what is sent.

Every timer of the stack is divided by one factor (alerting.py): the rules' `for:` and
`keep_firing_for:`, their range selectors, the scrape and evaluation intervals, Prometheus'
resend delay and lookback, Alertmanager's group_wait, group_interval, repeat_interval and
resolve_timeout, and the daemon's poll interval; their proportions, which decide whether an
alert is lost on its way, are the shipped ones. Only destinations change: each receiver
becomes a webhook to the test.

"Once firing and once resolved": Alertmanager sends a group's whole state at each flush, so
an alert may be listed in several notifications; read in order, each alert's statuses must
be `firing`, then `resolved`, and nothing after (never resolved without having fired, never
firing again).

The district: in Thanh Nưa two Viettel BTS, each its own snmpd, and a VNPT BTS that stays
up (else both Viettel BTS down would be the commune cut off); in Nà Tấu four MobiFone BTS
on one snmpsim (stopped together: a storm) and a VNPT BTS that stays up; in Mường Phăng
the commune gateway, the radio station and two loudspeaker clusters parented on them, on one
snmpsim, so stopping it is what losing the gateway does: nothing behind it answers either.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alerting import (
    ALERT_RULES,
    ALERTMANAGER_CONFIG,
    Notification,
    WebhookReceiver,
    alert_rules,
    alertmanager_test_config,
    load_yaml,
    parse_duration,
    scaled_prometheus,
)
from conftest import ROUTER_COMMUNITY, SNMPD_COMMUNITY
from harness import Daemon, free_tcp_port, wait_for
from peers import ROUTER_RECORDING, Snmpd, Snmpsim, free_udp_port, recording
from promstack import Alertmanager, Prometheus

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = load_yaml(ROOT / "config" / "districtmon.yaml")
FACTOR = 60  # every timer of the stack divided by this
POLL = SHIPPED["poll"]["interval_seconds"] / FACTOR
TIMEOUT = 0.15  # not divided: it bounds an answer on loopback, not an outage
TIMEZONE = SHIPPED["timezone"]
STORM = 4  # MobiFone BTS of Nà Tấu, on one snmpsim
COMMUNE_SITES = 4  # the Mường Phăng gateway, station and two clusters, on one snmpsim


def rule(alertname: str, key: str) -> float:
    """A timer of the shipped rule, in seconds of this test."""
    [found] = {str(r[key]) for r in alert_rules() if r["alert"] == alertname}
    return parse_duration(found) / FACTOR


def route_timer(key: str) -> float:
    return parse_duration(load_yaml(ALERTMANAGER_CONFIG)["route"][key]) / FACTOR


GROUP_WAIT = route_timer("group_wait")
GROUP_INTERVAL = route_timer("group_interval")
CONFIRM = SHIPPED["state"]["down_after"] * POLL + TIMEOUT  # the daemon's own wait
# the longest any step may take: confirmation, the longest `for:` and keep_firing_for
# involved, a group interval, and room for a loaded machine
PATIENCE = CONFIRM + rule("GatewayDown", "for") + rule("CommuneIsolated", "keep_firing_for")
PATIENCE += 2 * GROUP_INTERVAL + 15


def write_district(root: Path, http_port: int, agents: dict[str, int]) -> Path:
    (root / "inventory").mkdir(parents=True)
    state = SHIPPED["state"]
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{http_port}"}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: {POLL}, timeout_seconds: {TIMEOUT}, retries: 0}}
state: {{down_after: {state["down_after"]}, up_after: {state["up_after"]}}}
timezone: {TIMEZONE}
""",
        encoding="utf-8",
    )
    (root / "credentials.yaml").write_text(
        f"snmp:\n  bts-ro: {{version: 2c, community: {SNMPD_COMMUNITY}}}\n"
        f"  commune-ro: {{version: 2c, community: {ROUTER_COMMUNITY}}}\n",
        encoding="utf-8",
    )

    def snmp(agent: str, credential: str = "bts-ro") -> str:
        return f"{{snmp: {{address: 127.0.0.1, port: {agents[agent]}, credential: {credential}}}}}"

    storm = "".join(
        f"  - {{id: bts-mbf-na-tau-0{n}, kind: bts, name: BTS MobiFone Nà Tấu 0{n}, "
        f"commune: na-tau, owner: mobifone, lat: 21.5, lon: 103.1, probe: {snmp(f'storm{n}')}}}\n"
        for n in range(1, STORM + 1)
    )
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-nua, name: Thanh Nưa, lat: 21.43, lon: 103.0}}
  - {{id: na-tau, name: Nà Tấu, lat: 21.5, lon: 103.1}}
  - {{id: muong-phang, name: Mường Phăng, lat: 21.46, lon: 103.13}}
owners:
  - {{id: viettel, name: Viettel, kind: operator}}
  - {{id: vnpt, name: VNPT / VinaPhone, kind: operator}}
  - {{id: mobifone, name: MobiFone, kind: operator}}
  - {{id: dien-bien-rtv, name: Đài Truyền thanh Truyền hình huyện Điện Biên, kind: broadcaster}}
  - {{id: district-it, name: Trung tâm Văn hóa Thông tin huyện Điện Biên, kind: agency}}
sites:
  - {{id: bts-vtl-thanh-nua-01, kind: bts, name: BTS Viettel Thanh Nưa 01, commune: thanh-nua,
      owner: viettel, lat: 21.46, lon: 102.98, probe: {snmp("first")}}}
  - {{id: bts-vtl-thanh-nua-02, kind: bts, name: BTS Viettel Thanh Nưa 02, commune: thanh-nua,
      owner: viettel, lat: 21.44, lon: 103.0, probe: {snmp("second")}}}
  - {{id: bts-vnp-thanh-nua-01, kind: bts, name: BTS VNPT Thanh Nưa 01, commune: thanh-nua,
      owner: vnpt, lat: 21.45, lon: 103.01, probe: {snmp("steady")}}}
{storm}  - {{id: bts-vnp-na-tau-01, kind: bts, name: BTS VNPT Nà Tấu 01, commune: na-tau,
      owner: vnpt, lat: 21.5, lon: 103.1, probe: {snmp("steady")}}}
  - {{id: gw-ubnd-muong-phang, kind: gateway, name: Cổng mạng UBND xã Mường Phăng,
      commune: muong-phang, owner: district-it, lat: 21.456, lon: 103.134,
      probe: {snmp("gw", "commune-ro")}}}
  - {{id: radio-muong-phang, kind: radio_station, name: Đài truyền thanh xã Mường Phăng,
      commune: muong-phang, owner: dien-bien-rtv, lat: 21.461, lon: 103.132,
      parent: gw-ubnd-muong-phang, probe: {snmp("radio", "commune-ro")}}}
  - {{id: loa-muong-phang-01, kind: loudspeaker, name: Cụm loa Mường Phăng 01,
      commune: muong-phang, owner: dien-bien-rtv, lat: 21.458, lon: 103.13,
      parent: gw-ubnd-muong-phang, probe: {snmp("loa1", "commune-ro")}}}
  - {{id: loa-muong-phang-02, kind: loudspeaker, name: Cụm loa Mường Phăng 02,
      commune: muong-phang, owner: dien-bien-rtv, lat: 21.47, lon: 103.14,
      parent: radio-muong-phang, probe: {snmp("loa2", "commune-ro")}}}
""",
        encoding="utf-8",
    )
    return root


@dataclass
class Stack:
    daemon: Daemon
    prom: Prometheus
    am: Alertmanager
    hook: WebhookReceiver
    agents: dict[str, Snmpd | Snmpsim]
    settled: int = 0  # notifications of the start, before the scenario

    def context(self) -> str:
        return (
            "notifications:\n  "
            + "\n  ".join(f"{n.at:.1f} {n.describe()}" for n in self.hook.received)
            + f"\n(the first {self.settled} at the start)"
            + f"\nprometheus alerts: {[(a['labels'], a['state']) for a in self.prom.alerts()]}\n"
            f"daemon log:\n{self.daemon.log.read_text()[-2000:]}\n"
            f"prometheus log:\n{self.prom.log()[-1500:]}\n"
            f"alertmanager log:\n{self.am.log()[-1500:]}"
        )

    def wait_until(self, what: str, check: Callable[[], bool], limit: float = PATIENCE) -> float:
        """Poll `check` (bounded); the wall time it first held."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if check():
                return time.time()
            time.sleep(0.05)
        raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}\n{self.context()}")

    def firing(self, alertname: str, site: str) -> dict[str, Any] | None:
        for alert in self.prom.alerts():
            labels = alert["labels"]
            if (labels["alertname"], labels.get("site"), alert["state"]) == (
                alertname,
                site,
                "firing",
            ):
                return alert
        return None

    def sent(self) -> list[Notification]:
        """What Alertmanager sent since the stack settled."""
        return self.hook.received[self.settled :]

    def told(self, receiver: str) -> list[Notification]:
        return [n for n in self.sent() if n.receiver == receiver]


def key(alert: dict[str, Any]) -> tuple[str, str]:
    labels = alert["labels"]
    return labels["alertname"], labels.get("site") or labels.get("commune", "")


def statuses(notifications: list[Notification]) -> dict[tuple[str, str], list[str]]:
    """Each alert's statuses across notifications, in order, repeats folded."""
    seen: dict[tuple[str, str], list[str]] = {}
    for notification in notifications:
        for alert in notification.alerts:
            told = seen.setdefault(key(alert), [])
            if not told or told[-1] != alert["status"]:
                told.append(alert["status"])
    return seen


def first_with(notifications: list[Notification], wanted: tuple[str, str], status: str) -> int:
    return next(
        i
        for i, n in enumerate(notifications)
        if any(key(a) == wanted and a["status"] == status for a in n.alerts)
    )


def local(timestamp: float) -> str:
    """A time as the texts write it: in the daemon's timezone, with the offset."""
    moment = datetime.fromtimestamp(timestamp, UTC).astimezone(ZoneInfo(TIMEZONE))
    offset = moment.utcoffset()
    assert offset is not None
    return f"{moment:%Y-%m-%d %H:%M:%S} (UTC{offset.total_seconds() / 3600:+g})"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with ExitStack() as stop:
        agents: dict[str, Snmpd | Snmpsim] = {}
        for name in ("first", "second", "steady"):
            agents[name] = stop.enter_context(Snmpd(community=SNMPD_COMMUNITY, sys_name=name))
        storm_ports = [free_udp_port() for _ in range(STORM)]
        commune_ports = [free_udp_port() for _ in range(COMMUNE_SITES)]
        rec = {SNMPD_COMMUNITY: recording(ROUTER_RECORDING)}
        agents["storm"] = stop.enter_context(Snmpsim(rec, ports=storm_ports))
        router = {ROUTER_COMMUNITY: recording(ROUTER_RECORDING)}
        agents["commune"] = stop.enter_context(Snmpsim(router, ports=commune_ports))
        for agent in agents.values():
            agent.start()
        ports = {name: agents[name].port for name in ("first", "second", "steady")}
        ports |= {f"storm{n + 1}": port for n, port in enumerate(storm_ports)}
        ports |= dict(zip(("gw", "radio", "loa1", "loa2"), commune_ports, strict=True))
        http_port = free_tcp_port()
        config = write_district(tmp_path / "config", http_port, ports)
        hook = stop.enter_context(WebhookReceiver())
        am = stop.enter_context(Alertmanager(alertmanager_test_config(hook.url, FACTOR)))
        am.start()
        rules = tmp_path / "rules"
        rules.mkdir()
        prom_config, flags = scaled_prometheus([f"127.0.0.1:{http_port}"], am.url, rules, FACTOR)
        prom = stop.enter_context(Prometheus([], config=prom_config, flags=tuple(flags)))
        daemon = Daemon(config, http_port)
        stop.callback(daemon.kill)
        # scraped from Prometheus' first scrape on: no DistrictmonDown at the start
        wait_for("the daemon's listener", lambda: _listens(daemon), daemon)
        prom.start()
        yield Stack(daemon, prom, am, hook, agents)


def _listens(daemon: Daemon) -> bool:
    try:
        return daemon.get("/healthz")[0] in (200, 503)
    except OSError:
        return False


def settle(stack: Stack) -> None:
    """Prometheus' service discovery hands it its targets up to 5 s after it starts, a delay
    no flag divides: DistrictmonDown, whose 2m are 2 s here, fires meanwhile and tells the
    district IT unit, truthfully, that the daemon was not scraped. Its end is waited for;
    the scenario starts after."""
    stack.wait_until(
        "the daemon scraped",
        lambda: bool(stack.prom.query('up{job="districtmon"} == 1')),
        limit=30,
    )
    stack.wait_until(
        "the start over in Prometheus and Alertmanager",
        lambda: not stack.prom.alerts() and not stack.am.alerts(),
        limit=rule("DistrictmonDown", "keep_firing_for") + PATIENCE,
    )
    time.sleep(2 * GROUP_INTERVAL)
    start = stack.hook.received
    assert {(n.receiver, a["labels"]["alertname"]) for n in start for a in n.alerts} <= {
        ("district-it", "DistrictmonDown")
    }, stack.context()
    assert all(told in (["firing", "resolved"], []) for told in statuses(start).values())
    stack.settled = len(start)


def test_every_outage_reaches_its_owner_once_and_dependents_stay_silent(stack: Stack) -> None:
    sites = 3 + STORM + 1 + COMMUNE_SITES
    settle(stack)
    stack.wait_until(
        "every site up and named in Prometheus",
        lambda: (
            bool(
                stack.prom.query(
                    f'count(site:districtmon_site_info:named{{owner_name!=""}}) == {sites}'
                )
            )
            and bool(
                stack.prom.query(f'count(districtmon_site_state{{state="up"}} == 1) == {sites}')
            )
        ),
        limit=30,
    )
    second_outage_just_after_a_flush(stack)
    storm_in_one_commune(stack)
    commune_cut_off(stack)
    # nothing else was sent to anyone
    assert {n.receiver for n in stack.sent()} == {
        "viettel-noc",
        "mobifone-noc",
        "district-it",
    }, stack.context()


def second_outage_just_after_a_flush(stack: Stack) -> None:
    """Two BTS of one operator in one commune: the second goes down two polls after the
    first, so its alert joins their group just after the group told of the first, and it is
    over soon after it fires. Before keep_firing_for outlasted group_interval, it resolved
    before the group's next flush and nobody heard of it (the outage that paged nobody)."""
    first, second = "bts-vtl-thanh-nua-01", "bts-vtl-thanh-nua-02"
    stopped = time.time()
    stack.agents["first"].stop()
    time.sleep(2 * POLL)
    stack.agents["second"].stop()

    def told_firing(site: str) -> Callable[[], bool]:
        return lambda: any(
            key(a) == ("BtsDown", site) and a["status"] == "firing"
            for n in stack.told("viettel-noc")
            for a in n.alerts
        )

    stack.wait_until("BtsDown of the first BTS told to viettel-noc", told_firing(first))
    flushed = stack.told("viettel-noc")[0].at
    assert flushed - stopped >= rule("BtsDown", "for"), "paged before BtsDown's for: elapsed"
    # what the daemon says of the first outage, for the page to say it too
    status, body = stack.daemon.get(f"/api/v1/sites/{first}")
    record = json.loads(body)["site"]
    assert status == 200 and record["state"] == "down", record
    stack.wait_until(
        "BtsDown of the second firing in Prometheus",
        lambda: stack.firing("BtsDown", second) is not None,
    )
    alert = stack.firing("BtsDown", second)
    assert alert is not None
    stack.agents["second"].start()  # back as soon as it fired: a short outage
    fired = datetime.fromisoformat(alert["activeAt"]).timestamp() + rule("BtsDown", "for")
    assert fired > flushed, "the case needs the second alert to join after the group flushed"
    stack.wait_until("BtsDown of the second told to viettel-noc", told_firing(second))
    stack.agents["first"].start()
    stack.wait_until(
        "both told over",
        lambda: (
            statuses(stack.told("viettel-noc")).get(("BtsDown", first)) == ["firing", "resolved"]
            and statuses(stack.told("viettel-noc")).get(("BtsDown", second))
            == ["firing", "resolved"]
        ),
    )
    time.sleep(2 * GROUP_INTERVAL)  # anything else would have been sent by now
    told = stack.told("viettel-noc")
    assert statuses(told) == {
        ("BtsDown", first): ["firing", "resolved"],
        ("BtsDown", second): ["firing", "resolved"],
    }, stack.context()
    assert all(n.payload["groupLabels"] == {"commune": "thanh-nua"} for n in told)

    # what the page says
    page = told[first_with(told, ("BtsDown", first), "firing")]
    [alert] = [a for a in page.alerts if key(a) == ("BtsDown", first)]
    labels, text = alert["labels"], alert["annotations"]
    assert (labels["owner"], labels["owner_name"]) == ("viettel", "Viettel")
    assert (labels["commune"], labels["commune_name"]) == ("thanh-nua", "Thanh Nưa")
    assert labels["severity"] == "critical"
    assert text["summary"] == "BTS down: BTS Viettel Thanh Nưa 01 (Thanh Nưa)"
    outage_began = float(record["since"])
    assert stopped - POLL <= outage_began <= stopped + POLL + TIMEOUT, "the first failed poll"
    codes = record.get("reason_codes") or []
    because = f" Reason: {', '.join(sorted(codes))}." if codes else ""
    assert text["description"] == (
        f"BTS Viettel Thanh Nưa 01 ({first}) in Thanh Nưa has not answered since "
        f"{local(outage_began)}.{because} Owner: Viettel."
    )
    link = urllib.parse.urlsplit(text["runbook_url"])
    assert f"{link.scheme}://{link.netloc}" == stack.daemon.url, "on the daemon that raised it"
    status, page_text = stack.daemon.get(link.path)  # follows the redirect to the page
    assert status == 200 and '<section id="btsdown"><pre>## BtsDown' in page_text


def storm_in_one_commune(stack: Stack) -> None:
    """Four BTS of one commune go dark together: each is told once firing and once over,
    in a few messages, not one per site."""
    stack.agents["storm"].stop()
    storm = [("BtsDown", f"bts-mbf-na-tau-0{n}") for n in range(1, STORM + 1)]

    def all_told(status: list[str]) -> Callable[[], bool]:
        return lambda: all(statuses(stack.told("mobifone-noc")).get(k) == status for k in storm)

    stack.wait_until("the storm told to mobifone-noc", all_told(["firing"]))
    stack.agents["storm"].start()
    stack.wait_until("the storm told over", all_told(["firing", "resolved"]))
    time.sleep(2 * GROUP_INTERVAL)
    told = stack.told("mobifone-noc")
    assert statuses(told) == {k: ["firing", "resolved"] for k in storm}, stack.context()
    # the BTS fail within a poll of each other: one message for their outage, maybe two,
    # and as many when it is over
    assert len(told) <= 4, stack.context()
    assert all(n.payload["groupLabels"] == {"commune": "na-tau"} for n in told)


def commune_cut_off(stack: Stack) -> None:
    """The commune gateway goes dark, and everything behind it: the district IT unit hears
    once of the commune, and nobody of the sites behind the gateway, neither while it lasts
    nor when they come back one by one."""
    before = len(stack.sent())
    stack.agents["commune"].stop()
    stack.wait_until(
        "CommuneIsolated told to district-it",
        lambda: ("CommuneIsolated", "muong-phang") in statuses(stack.told("district-it")),
    )
    [alert] = [
        a
        for n in stack.told("district-it")
        for a in n.alerts
        if key(a) == ("CommuneIsolated", "muong-phang")
    ][:1]
    assert alert["labels"]["commune_name"] == "Mường Phăng"
    assert alert["annotations"]["summary"] == "Commune isolated: Mường Phăng"
    assert "the commune is cut off since " in alert["annotations"]["description"]
    link = urllib.parse.urlsplit(alert["annotations"]["runbook_url"])
    assert (f"{link.scheme}://{link.netloc}", link.path) == (
        stack.daemon.url,
        "/runbooks/communeisolated",
    )

    # The gateway's own GatewayDown fires later (its for: is longer): it reaches Alertmanager
    # and is held there, muted, as is any per-site alert of the commune that fired.
    def commune_site_alerts_firing() -> list[dict[str, Any]]:
        return [
            a
            for a in stack.prom.alerts()
            if a["state"] == "firing"
            and a["labels"].get("scope") == "site"
            and a["labels"].get("commune") == "muong-phang"
        ]

    stack.wait_until(
        "GatewayDown firing in Prometheus",
        lambda: any(
            a["labels"]["alertname"] == "GatewayDown" for a in commune_site_alerts_firing()
        ),
    )

    def held_in_alertmanager() -> bool:
        firing_sites = {a["labels"]["site"] for a in commune_site_alerts_firing()}
        alerts = stack.am.alerts()
        parents_down = {
            a["fingerprint"]: a["labels"]["parent"]
            for a in alerts
            if a["labels"]["alertname"] == "ParentDown"
        }
        held = {
            a["labels"]["site"]: a
            for a in alerts
            if a["labels"].get("scope") == "site" and a["labels"]["commune"] == "muong-phang"
        }
        if not firing_sites <= held.keys():
            return False
        for alert in held.values():
            status, parent = alert["status"], alert["labels"].get("parent")
            if status["state"] != "suppressed" or not status["inhibitedBy"]:
                return False
            # a dependent (one that went down rather than unreachable) is muted by its
            # parent's ParentDown, not only by the commune
            if parent and parent not in (parents_down.get(fp) for fp in status["inhibitedBy"]):
                return False
        return True

    stack.wait_until("site alerts muted in Alertmanager", held_in_alertmanager)
    time.sleep(2 * GROUP_INTERVAL)
    assert [n.describe() for n in stack.sent()[before:]] == [
        "district-it firing: CommuneIsolated(muong-phang):firing"
    ], stack.context()

    # --- and comes back ------------------------------------------------------------------
    stack.agents["commune"].start()
    stack.wait_until(
        "CommuneIsolated told over",
        lambda: (
            statuses(stack.told("district-it")).get(("CommuneIsolated", "muong-phang"))
            == ["firing", "resolved"]
        ),
    )
    stack.wait_until(
        "every alert over in Prometheus and Alertmanager",
        lambda: (
            not [a for a in stack.prom.alerts() if a["labels"].get("scope") != "monitor"]
            and not stack.am.alerts()
        ),
    )
    time.sleep(2 * GROUP_INTERVAL)
    assert statuses(stack.sent()[before:]) == {
        ("CommuneIsolated", "muong-phang"): ["firing", "resolved"]
    }, stack.context()


def test_the_scaled_stack_keeps_the_shipped_proportions(tmp_path: Path) -> None:
    """What the test runs is the shipped configuration with every timer divided by FACTOR,
    nothing left at its shipped value and nothing changed otherwise."""
    config = alertmanager_test_config("http://127.0.0.1:1", FACTOR)
    shipped = load_yaml(ALERTMANAGER_CONFIG)
    assert parse_duration(config["route"]["group_interval"]) * FACTOR == parse_duration(
        shipped["route"]["group_interval"]
    )
    assert parse_duration(config["global"]["resolve_timeout"]) * FACTOR == parse_duration(
        shipped["global"]["resolve_timeout"]
    )
    assert config["inhibit_rules"] == shipped["inhibit_rules"]
    monitor = next(r for r in config["route"]["routes"] if r["matchers"] == ['scope="monitor"'])
    assert parse_duration(monitor["repeat_interval"]) == 3600 / FACTOR

    prom, flags = scaled_prometheus(["127.0.0.1:1"], "http://127.0.0.1:2", tmp_path, FACTOR)
    assert prom["global"]["evaluation_interval"] == "250ms"
    assert "--rules.alert.resend-delay=1000ms" in flags
    # both shipped jobs, each scraping the targets within its own (divided) interval
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert set(jobs) == {"districtmon", "districtmon_availability"}
    assert jobs["districtmon"]["scrape_timeout"] == prom["global"]["scrape_interval"] == "250ms"
    availability = jobs["districtmon_availability"]
    assert availability["scrape_interval"] == availability["scrape_timeout"] == "1000ms"
    assert all(job["static_configs"] == [{"targets": ["127.0.0.1:1"]}] for job in jobs.values())
    [alerts] = [path for path in prom["rule_files"] if path.endswith("alerts.yml")]
    scaled = {r["alert"]: r for g in load_yaml(Path(alerts))["groups"] for r in g["rules"]}
    for original in alert_rules():
        mine = scaled[original["alert"]]
        for timer in ("for", "keep_firing_for"):
            if timer in original:
                assert parse_duration(mine[timer]) * FACTOR == pytest.approx(
                    parse_duration(str(original[timer]))
                ), (original["alert"], timer)
    lagging = scaled["DistrictmonScheduleLagging"]["expr"]
    assert "[10000ms]" in lagging and "[10m]" not in lagging
    assert load_yaml(ALERT_RULES)["groups"][0]["rules"][0]["expr"] == scaled["BtsDown"]["expr"]
