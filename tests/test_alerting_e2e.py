"""From outage to notification: the daemon polls real SNMP agents on loopback, a real
Prometheus scrapes it and evaluates the shipped rules, a real Alertmanager with the shipped
routes and inhibitions notifies a webhook receiver run by the test.

Only timings differ from what is shipped: every `for:` and `keep_firing_for:` is divided by
60 (minutes become seconds, in the same order, so an inhibiting alert still fires before the
alerts it mutes), Prometheus scrapes and evaluates every 0.5 s, Alertmanager groups within
1 s, and each receiver's integrations are replaced by one webhook to the test.

The district: two BTS of Thanh Nưa, each its own snmpd; and Mường Phăng behind its commune
gateway: the gateway, the commune radio station and a loudspeaker cluster parented on the
gateway, a second cluster parented on the station. The four answer from one snmpsim process
on four ports, so stopping it is what losing the gateway does: nothing behind it answers
either.

Whether the daemon marks the sites behind a down gateway `unreachable` (the dependency model)
or still `down` (before that lands), the test holds: unreachable sites raise no alert by
construction, and down ones are muted by the inhibitions (ParentDown, CommuneIsolated).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alerting import (
    ALERT_RULES,
    RECORDING_RULES,
    Notification,
    WebhookReceiver,
    alertmanager_test_config,
    shortened_rules,
)
from conftest import ROUTER_COMMUNITY, SNMPD_COMMUNITY
from harness import Daemon, free_tcp_port, write_settings
from peers import ROUTER_RECORDING, Snmpd, Snmpsim, free_udp_port, recording
from promstack import Alertmanager, Prometheus

SPEED_UP = 60
BTS_FOR = 3.0  # BtsDown's 3m, shortened
COMMUNE_SITES = 4  # the gateway, the station and two clusters, on one snmpsim


def write_district(root: Path, http_port: int, vtl: Snmpd, vnp: Snmpd, commune: Snmpsim) -> Path:
    write_settings(root, http_port, {"bts-ro": SNMPD_COMMUNITY, "commune-ro": ROUTER_COMMUNITY})
    gw, radio, loa1, loa2 = commune.ports
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-nua, name: Thanh Nưa, lat: 21.43, lon: 103.0}}
  - {{id: muong-phang, name: Mường Phăng, lat: 21.46, lon: 103.13}}
owners:
  - {{id: viettel, name: Viettel, kind: operator}}
  - {{id: vnpt, name: VNPT / VinaPhone, kind: operator}}
  - {{id: dien-bien-rtv, name: Đài Truyền thanh Truyền hình huyện Điện Biên, kind: broadcaster}}
  - {{id: district-it, name: Trung tâm Văn hóa Thông tin huyện Điện Biên, kind: agency}}
sites:
  - {{id: bts-vtl-thanh-nua-01, kind: bts, name: BTS Viettel Thanh Nưa 01, commune: thanh-nua,
      owner: viettel, lat: 21.46, lon: 102.98,
      probe: {{snmp: {{address: 127.0.0.1, port: {vtl.port}, credential: bts-ro}}}}}}
  - {{id: bts-vnp-thanh-nua-01, kind: bts, name: BTS VNPT Thanh Nưa 01, commune: thanh-nua,
      owner: vnpt, lat: 21.44, lon: 103.0,
      probe: {{snmp: {{address: 127.0.0.1, port: {vnp.port}, credential: bts-ro}}}}}}
  - {{id: gw-ubnd-muong-phang, kind: gateway, name: Cổng mạng UBND xã Mường Phăng,
      commune: muong-phang, owner: district-it, lat: 21.456, lon: 103.134,
      probe: {{snmp: {{address: 127.0.0.1, port: {gw}, credential: commune-ro}}}}}}
  - {{id: radio-muong-phang, kind: radio_station, name: Đài truyền thanh xã Mường Phăng,
      commune: muong-phang, owner: dien-bien-rtv, lat: 21.461, lon: 103.132,
      parent: gw-ubnd-muong-phang,
      probe: {{snmp: {{address: 127.0.0.1, port: {radio}, credential: commune-ro}}}}}}
  - {{id: loa-muong-phang-01, kind: loudspeaker, name: Cụm loa Mường Phăng 01,
      commune: muong-phang, owner: dien-bien-rtv, lat: 21.458, lon: 103.13,
      parent: gw-ubnd-muong-phang,
      probe: {{snmp: {{address: 127.0.0.1, port: {loa1}, credential: commune-ro}}}}}}
  - {{id: loa-muong-phang-02, kind: loudspeaker, name: Cụm loa Mường Phăng 02,
      commune: muong-phang, owner: dien-bien-rtv, lat: 21.47, lon: 103.14,
      parent: radio-muong-phang,
      probe: {{snmp: {{address: 127.0.0.1, port: {loa2}, credential: commune-ro}}}}}}
""",
        encoding="utf-8",
    )
    return root


def wait_until(
    what: str, check: Callable[[], bool], limit: float, context: Callable[[], str]
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}\n{context()}")


def only(notification: Notification) -> dict[str, Any]:
    [alert] = notification.alerts
    return alert


def is_(receiver: str, status: str, alertname: str) -> Callable[[Notification], bool]:
    def match(n: Notification) -> bool:
        return n.receiver == receiver and n.status == status and n.alertnames() == [alertname]

    return match


def test_outages_reach_the_owner_once_and_dependents_stay_silent(tmp_path: Path) -> None:
    commune_ports = [free_udp_port() for _ in range(COMMUNE_SITES)]
    with (
        Snmpd(community=SNMPD_COMMUNITY, sys_name="bts-vtl") as vtl,
        Snmpd(community=SNMPD_COMMUNITY, sys_name="bts-vnp") as vnp,
        Snmpsim({ROUTER_COMMUNITY: recording(ROUTER_RECORDING)}, ports=commune_ports) as commune,
        WebhookReceiver() as hook,
    ):
        for agent in (vtl, vnp, commune):
            agent.start()
        http_port = free_tcp_port()
        config = write_district(tmp_path / "config", http_port, vtl, vnp, commune)
        rules = (
            shortened_rules(RECORDING_RULES, tmp_path / "recording.yml", SPEED_UP),
            shortened_rules(ALERT_RULES, tmp_path / "alerts.yml", SPEED_UP),
        )
        daemon = Daemon(config, http_port)
        try:
            with (
                Alertmanager(alertmanager_test_config(hook.url)) as am,
                Prometheus(
                    [f"127.0.0.1:{http_port}"],
                    rule_files=rules,
                    scrape_interval="500ms",
                    evaluation_interval="500ms",
                    alertmanager_url=am.url,
                ) as prom,
            ):
                am.start()
                prom.start()
                run_scenario(daemon, prom, am, hook, vtl, commune)
        finally:
            daemon.kill()


def run_scenario(
    daemon: Daemon,
    prom: Prometheus,
    am: Alertmanager,
    hook: WebhookReceiver,
    vtl: Snmpd,
    commune: Snmpsim,
) -> None:
    def context() -> str:
        return (
            f"notifications: {[n.describe() for n in hook.received]}\n"
            f"prometheus alerts: {[(a['labels'], a['state']) for a in prom.alerts()]}\n"
            f"daemon log:\n{daemon.log.read_text()[-2000:]}\n"
            f"prometheus log:\n{prom.log()[-1500:]}\nalertmanager log:\n{am.log()[-1500:]}"
        )

    # every site up, and the recording rules naming them (the commune names come from the
    # daemon's districtmon_commune_info)
    wait_until(
        "all six sites up and named in Prometheus",
        lambda: (
            bool(prom.query('count(site:districtmon_site_info:named{commune_name!=""}) == 6'))
            and bool(prom.query('count(districtmon_site_state{state="up"} == 1) == 6'))
        ),
        30,
        context,
    )

    # --- a BTS goes dark: its operator's NOC hears of it once, then of its recovery -------
    stopped = time.monotonic()
    vtl.stop()
    hook.wait_for(
        "BtsDown at viettel-noc",
        lambda got: any(map(is_("viettel-noc", "firing", "BtsDown"), got)),
        limit=40,
    )
    assert time.monotonic() - stopped >= BTS_FOR, "paged before BtsDown's for: elapsed"
    vtl.start()
    received = hook.wait_for(
        "BtsDown resolved at viettel-noc",
        lambda got: any(map(is_("viettel-noc", "resolved", "BtsDown"), got)),
        limit=30,
    )
    assert [n.describe() for n in received] == [
        "viettel-noc firing: BtsDown(bts-vtl-thanh-nua-01):firing",
        "viettel-noc resolved: BtsDown(bts-vtl-thanh-nua-01):resolved",
    ]
    alert = only(received[0])
    assert alert["labels"]["owner"] == "viettel"
    assert alert["labels"]["commune"] == "thanh-nua"
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == "BTS down: BTS Viettel Thanh Nưa 01 (Thanh Nưa)"
    assert received[0].payload["groupLabels"] == {"commune": "thanh-nua"}

    # --- the commune gateway goes dark, and everything behind it -----------------------------
    commune.stop()
    received = hook.wait_for(
        "CommuneIsolated at district-it",
        lambda got: any(map(is_("district-it", "firing", "CommuneIsolated"), got)),
        limit=40,
    )
    alert = only(received[-1])
    assert alert["labels"]["commune_name"] == "Mường Phăng"
    assert alert["annotations"]["summary"] == "Commune isolated: Mường Phăng"

    # The gateway's own GatewayDown fires later (5 s against 1 s): it reaches Alertmanager
    # and is held there, inhibited, as is any per-site alert of the commune that fired.
    def commune_site_alerts_firing() -> list[dict[str, Any]]:
        return [
            a
            for a in prom.alerts()
            if a["state"] == "firing"
            and a["labels"].get("scope") == "site"
            and a["labels"].get("commune") == "muong-phang"
        ]

    def firing(alertname: str) -> bool:
        return any(a["labels"]["alertname"] == alertname for a in commune_site_alerts_firing())

    wait_until("GatewayDown firing in Prometheus", lambda: firing("GatewayDown"), 30, context)
    # The station behind the gateway: unreachable (silent by construction), or down with
    # its own alert firing (same for: as the gateway), to be muted by ParentDown.
    wait_until(
        "the radio station unreachable, or RadioStationDown firing",
        lambda: (
            firing("RadioStationDown")
            or bool(
                prom.query(
                    'districtmon_site_state{site="radio-muong-phang", state="unreachable"} == 1'
                )
            )
        ),
        15,
        context,
    )

    def held_in_alertmanager() -> bool:
        firing_sites = {a["labels"]["site"] for a in commune_site_alerts_firing()}
        alerts = am.alerts()
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

    wait_until("site alerts inhibited in Alertmanager", held_in_alertmanager, 15, context)
    # Two more group intervals: anything not inhibited would have been sent by now.
    time.sleep(3)
    assert [n.describe() for n in hook.received[2:]] == [
        "district-it firing: CommuneIsolated(muong-phang):firing"
    ], context()

    # --- and comes back ------------------------------------------------------------------------
    commune.start()
    hook.wait_for(
        "CommuneIsolated resolved at district-it",
        lambda got: any(map(is_("district-it", "resolved", "CommuneIsolated"), got)),
        limit=30,
    )
    wait_until(
        "every alert resolved in Prometheus and Alertmanager",
        lambda: (
            not [a for a in prom.alerts() if a["labels"].get("scope") != "monitor"]
            and not am.alerts()
        ),
        20,
        context,
    )
    time.sleep(3)
    assert [n.describe() for n in hook.received] == [
        "viettel-noc firing: BtsDown(bts-vtl-thanh-nua-01):firing",
        "viettel-noc resolved: BtsDown(bts-vtl-thanh-nua-01):resolved",
        "district-it firing: CommuneIsolated(muong-phang):firing",
        "district-it resolved: CommuneIsolated(muong-phang):resolved",
    ], context()
