"""The shipped Alertmanager configuration: amtool accepts it, every kind of alert the rules
raise reaches its owner's receiver (`amtool config routes test`, one case per alert and owner
of the inventory), the notification templates render Vietnamese names intact, and each
inhibition mutes what it should and nothing else, checked on a real Alertmanager fed with
`amtool alert add`.

Needs amtool and prometheus-alertmanager (Debian packages; `./dev setup` installs them)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from alerting import (
    ALERTMANAGER_CONFIG,
    ALERTMANAGER_DIR,
    OWNERS,
    PROMETHEUS_DIR,
    alert_rules,
    alertmanager_test_config,
    load_yaml,
    parse_duration,
)
from promstack import Alertmanager

from monitor.config.load import load_config

ROOT = Path(__file__).resolve().parent.parent

# Who answers for what: the receiver each owner of config/inventory/owners.yaml is paged on.
OWNER_RECEIVER = {
    "viettel": "viettel-noc",
    "vnpt": "vnpt-noc",
    "mobifone": "mobifone-noc",
    "dien-bien-rtv": "dien-bien-rtv",
    "district-it": "district-it",
    "ubnd-huyen": "district-it",
    "huyen-uy": "district-it",
    "phong-vhtt": "district-it",
    "phong-tnmt": "district-it",
    "bhxh-huyen": "district-it",
    "kho-bac": "district-it",
    "buu-dien": "district-it",
    "van-phong-ubnd": "district-it",
}

# The kinds of site each site alert is raised for (see the expressions in alerts.yml).
ALL_KINDS = ("bts", "gateway", "radio_station", "loudspeaker", "video_endpoint", "post_point")
ALERT_KINDS = {
    "BtsDown": ("bts",),
    "GatewayDown": ("gateway",),
    "RadioStationDown": ("radio_station",),
    "LoudspeakerDown": ("loudspeaker",),
    "SiteDown": ("video_endpoint", "post_point", "portal"),
    "BtsOnBattery": ("bts",),
    "BatteryLow": ("bts", "radio_station", "loudspeaker"),
    "AmplifierFault": ("loudspeaker", "radio_station"),
    "WanDown": ("gateway",),
    "SiteDegraded": ALL_KINDS,
    "AvailabilityBelowObjective": ALL_KINDS,
}
# Kinds the shipped inventory has no site of yet, and who would own one.
OWNERS_OF_FUTURE_KINDS = {
    "video_endpoint": ("district-it",),
    "post_point": ("buu-dien",),
    "portal": ("ubnd-huyen",),
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: ./dev setup installs it (Debian prometheus-alertmanager)")
    return path


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("amtool"), *args], capture_output=True, text=True, timeout=30)


def _first_rule(name: str) -> dict[str, Any]:
    return next(rule for rule in alert_rules() if rule["alert"] == name)


def _route_cases() -> Iterator[Any]:
    config = load_config(ROOT / "config")
    owners_of_kind: dict[str, set[str]] = {}
    for site in config.sites.values():
        owners_of_kind.setdefault(site.kind, set()).add(site.owner)
    for kind, owners in OWNERS_OF_FUTURE_KINDS.items():
        owners_of_kind.setdefault(kind, set()).update(owners)

    for name, kinds in ALERT_KINDS.items():
        labels = dict(_first_rule(name)["labels"])
        for kind in kinds:
            for owner in sorted(owners_of_kind[kind]):
                case = {
                    "alertname": name,
                    **labels,
                    "kind": kind,
                    "owner": owner,
                    "commune": "muong-phang",
                    "site": f"{kind}-1",
                    "parent": "gw-ubnd-muong-phang",
                }
                yield pytest.param(case, OWNER_RECEIVER[owner], id=f"{name}-{kind}-{owner}")

    commune = {"alertname": "CommuneIsolated", **_first_rule("CommuneIsolated")["labels"]}
    yield pytest.param({**commune, "commune": "muong-phang"}, "district-it", id="CommuneIsolated")
    outage = {"alertname": "OperatorBtsOutage", **_first_rule("OperatorBtsOutage")["labels"]}
    for operator in ("viettel", "vnpt", "mobifone"):
        yield pytest.param(
            {**outage, "owner": operator},
            OWNER_RECEIVER[operator],
            id=f"OperatorBtsOutage-{operator}",
        )
    parent = {"alertname": "ParentDown", **_first_rule("ParentDown")["labels"]}
    yield pytest.param({**parent, "parent": "gw-ubnd-muong-phang"}, "inhibit-only", id="ParentDown")
    for rule in alert_rules():
        if rule["labels"]["scope"] == "monitor":
            labels = {"alertname": rule["alert"], **rule["labels"], "instance": "127.0.0.1:9877"}
            yield pytest.param(labels, "district-it", id=rule["alert"])
    # an owner added to the inventory without a route of its own is still heard
    yield pytest.param(
        {"alertname": "GatewayDown", "scope": "site", "owner": "so-gddt", "commune": "na-tau"},
        "district-it",
        id="unrouted-owner",
    )


def test_alertmanager_config_passes_amtool_check_config() -> None:
    result = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 templates" in result.stdout


def test_every_owner_of_the_inventory_has_a_receiver() -> None:
    owners = {owner["id"] for owner in load_yaml(OWNERS)["owners"]}
    assert owners == set(OWNER_RECEIVER)
    receivers = {r["name"] for r in load_yaml(ALERTMANAGER_CONFIG)["receivers"]}
    assert set(OWNER_RECEIVER.values()) <= receivers


def test_every_alert_has_route_cases() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    site_alerts = {r["alert"] for r in alert_rules() if r["labels"]["scope"] == "site"}
    assert site_alerts == set(ALERT_KINDS)
    covered = {param.values[0]["alertname"] for param in _route_cases()}
    assert names <= covered


@pytest.mark.parametrize(("labels", "receiver"), list(_route_cases()))
def test_each_kind_of_alert_reaches_its_owners_receiver(
    labels: dict[str, str], receiver: str
) -> None:
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={receiver}",
        *(f"{key}={value}" for key, value in labels.items()),
    )
    assert result.returncode == 0, f"routed to {result.stdout.strip()}, expected {receiver}"


def test_notification_templates_render_vietnamese_names_intact(tmp_path: Path) -> None:
    alert = {
        "status": "firing",
        "labels": {
            "alertname": "CommuneIsolated",
            "commune": "muong-phang",
            "commune_name": "Mường Phăng",
        },
        "annotations": {
            "summary": "Commune isolated: Mường Phăng",
            "description": "All 4 watched sites of Mường Phăng are down or unreachable: the "
            "commune is cut off since 2026-12-01 14:03:10 (UTC+7).",
            "runbook_url": "http://10.20.0.5:9877/runbooks/communeisolated",
        },
    }
    over = {
        "status": "resolved",
        "labels": {"alertname": "BtsDown", "commune": "muong-phang", "site": "bts-1"},
        "annotations": {
            "summary": "BTS down: BTS Viettel Mường Phăng 01 (Mường Phăng)",
            "description": "BTS Viettel Mường Phăng 01 has not answered since 2026-12-01 "
            "13:58:00 (UTC+7). Owner: Viettel.",
            "runbook_url": "http://10.20.0.5:9877/runbooks/btsdown",
        },
    }
    rendered = render(tmp_path, [alert])
    assert rendered["districtmon.title"].strip() == (
        "[FIRING:1] Mường Phăng: Commune isolated: Mường Phăng"
    )
    assert rendered["districtmon.text"].splitlines()[:3] == [
        "🔴 Commune isolated: Mường Phăng",
        "All 4 watched sites of Mường Phăng are down or unreachable: the commune is cut off "
        "since 2026-12-01 14:03:10 (UTC+7).",
        "Runbook: http://10.20.0.5:9877/runbooks/communeisolated",
    ]
    assert "<b>Commune isolated: Mường Phăng</b>" in rendered["districtmon.telegram"]
    assert (
        '<a href="http://10.20.0.5:9877/runbooks/communeisolated">'
        in (rendered["districtmon.telegram"])
    )
    # what is over comes after what fires, with what was last said of it, local time intact
    text = render(tmp_path, [over, alert])["districtmon.text"]
    assert text.index("🔴 Commune isolated") < text.index("✅ Over: BTS down: BTS Viettel")
    assert "It was: BTS Viettel Mường Phăng 01 has not answered since 2026-12-01 13:58:00" in text


def render(tmp_path: Path, alerts: list[dict[str, Any]]) -> dict[str, str]:
    """The three templates of districtmon.tmpl, rendered by amtool for one notification."""
    firing = [a for a in alerts if a["status"] == "firing"]
    data = {
        "receiver": "district-it",
        "status": "firing" if firing else "resolved",
        "alerts": alerts,
        "groupLabels": {"commune": "muong-phang"},
        "commonLabels": alerts[0]["labels"] if len(alerts) == 1 else {"commune": "muong-phang"},
        "commonAnnotations": alerts[0]["annotations"] if len(alerts) == 1 else {},
        "externalURL": "http://127.0.0.1:9093",
    }
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    rendered = {}
    for name in ("districtmon.title", "districtmon.text", "districtmon.telegram"):
        result = amtool(
            "template",
            "render",
            f"--template.glob={ALERTMANAGER_DIR / 'templates' / '*.tmpl'}",
            f"--template.data={data_file}",
            f"--template.text={{{{ template {json.dumps(name)} . }}}}",
        )
        assert result.returncode == 0, result.stderr
        rendered[name] = result.stdout
    return rendered


# --- timings: no alert lost while it waits in a group ------------------------------------


def _route_timings() -> list[dict[str, float]]:
    """group_wait, group_interval, repeat_interval of every route, inherited down the tree."""
    found = []

    def walk(route: dict[str, Any], inherited: dict[str, float]) -> None:
        timings = dict(inherited)
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                timings[key] = parse_duration(route[key])
        found.append(timings)
        for child in route.get("routes", []):
            walk(child, timings)

    defaults = {"group_wait": 30.0, "group_interval": 300.0, "repeat_interval": 14400.0}
    walk(load_yaml(ALERTMANAGER_CONFIG)["route"], defaults)
    return found


def _keep(rule: dict[str, Any]) -> float:
    return parse_duration(str(rule.get("keep_firing_for", "0s")))


# The labels an alert of each scope gets from its expression (alerts.yml), beyond those the
# rule sets itself.
FROM_SERIES = {
    "site": {"site", "kind", "commune", "owner", "parent", "probe", "instance", "job"},
    "commune": {"commune"},
    "operator": {"owner"},
    "dependency": {"parent"},
    "monitor": {"instance", "job"},
}


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    """An Alertmanager matcher against a rule's own labels; one on a label the rule's series
    carry (site, commune, owner, probe...) may match at run time; any other label is empty."""
    found = re.fullmatch(r'(\w+)(=~|!~|!=|=)"(.*)"', matcher)
    assert found, matcher
    key, op, value = found.groups()
    if key not in labels and key in FROM_SERIES[labels["scope"]]:
        return True
    have = labels.get(key, "")
    if op in ("=~", "!~"):
        hit = re.fullmatch(value, have) is not None
        return hit if op == "=~" else not hit
    return (have == value) == (op == "=")


EVALUATION = parse_duration(
    load_yaml(PROMETHEUS_DIR / "prometheus.yml")["global"]["evaluation_interval"]
)
POLL = float(load_yaml(ROOT / "config" / "districtmon.yaml")["poll"]["interval_seconds"])


def test_every_alert_that_notifies_keeps_firing_longer_than_it_can_wait_in_a_group() -> None:
    """An alert joining a group that has just flushed waits group_interval; resolved before
    the next flush, it would be lost (NOTES.md). A margin of two evaluations covers the
    alert's last evaluation and its delivery."""
    longest = max(t["group_interval"] for t in _route_timings())
    for rule in alert_rules():
        if rule["labels"]["severity"] == "none":
            continue  # routed to no integration
        assert _keep(rule) >= longest + 2 * EVALUATION, rule["alert"]


def test_what_mutes_keeps_firing_until_what_it_muted_is_over_and_flushed() -> None:
    """When an inhibition's source stops firing, whatever it muted that is still firing, or
    resolved but not yet flushed, would be sent. What it mutes comes back within two polls of
    the common cause's end, keeps firing its own keep_firing_for, and is flushed within a
    group_interval: the source must keep firing that long, and an evaluation more.

    Left out: DistrictmonDown muting the same daemon's other alerts. Those read the series of
    the daemon that is no longer scraped, so they end when its cause begins, before it fires."""
    longest = max(t["group_interval"] for t in _route_timings())
    rules = [{"alertname": r["alert"], **r["labels"], "_keep": r} for r in alert_rules()]
    for inhibit in load_yaml(ALERTMANAGER_CONFIG)["inhibit_rules"]:
        if inhibit["source_matchers"] == ['alertname="DistrictmonDown"']:
            continue
        sources = [r for r in rules if all(_matches(m, r) for m in inhibit["source_matchers"])]
        targets = [r for r in rules if all(_matches(m, r) for m in inhibit["target_matchers"])]
        assert sources and targets, inhibit
        needed = max(_keep(t["_keep"]) for t in targets) + 2 * POLL + longest + EVALUATION
        for source in sources:
            assert _keep(source["_keep"]) >= needed, (source["alertname"], inhibit)


def test_a_storm_in_one_commune_is_grouped_and_an_outage_is_told_once() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    assert config["route"]["group_by"] == ["commune"]
    timings = _route_timings()
    # an alert is told again only after repeat_interval: longer than an outage worth a page
    assert min(t["repeat_interval"] for t in timings) >= 3600
    assert all(t["group_wait"] < t["group_interval"] for t in timings)


# --- inhibitions, on a real Alertmanager -------------------------------------------------


@pytest.fixture
def alertmanager() -> Iterator[Alertmanager]:
    """The shipped configuration, receivers without integrations: nothing is ever sent."""
    with Alertmanager(alertmanager_test_config(None)) as am:
        am.start()
        yield am


def add(am: Alertmanager, labels: dict[str, str]) -> None:
    result = amtool(
        f"--alertmanager.url={am.url}",
        "alert",
        "add",
        *(f"{key}={value}" for key, value in labels.items()),
    )
    assert result.returncode == 0, result.stderr


def muted(am: Alertmanager) -> dict[str, bool]:
    """Each alert's `id` label -> whether Alertmanager says it is inhibited."""
    result = amtool(
        f"--alertmanager.url={am.url}", "alert", "query", "--active", "--inhibited", "-o", "json"
    )
    assert result.returncode == 0, result.stderr
    return {a["labels"]["id"]: bool(a["status"]["inhibitedBy"]) for a in json.loads(result.stdout)}


def site_alert(id: str, alertname: str, **labels: str) -> dict[str, str]:
    return {"id": id, "alertname": alertname, "scope": "site", "severity": "critical", **labels}


INHIBITION_CASES = {
    "commune-isolated-mutes-its-communes-sites": (
        [
            {
                "id": "src",
                "alertname": "CommuneIsolated",
                "scope": "commune",
                "commune": "muong-phang",
            }
        ],
        {
            "gw": site_alert("gw", "GatewayDown", commune="muong-phang", owner="district-it"),
            "radio": site_alert(
                "radio", "RadioStationDown", commune="muong-phang", parent="gw-ubnd-muong-phang"
            ),
            "bts": site_alert("bts", "BtsDown", commune="muong-phang", owner="viettel"),
            "battery": site_alert("battery", "BtsOnBattery", commune="muong-phang"),
            "elsewhere": site_alert("elsewhere", "BtsDown", commune="thanh-nua", owner="viettel"),
        },
        {"gw", "radio", "bts", "battery"},
    ),
    "parent-down-mutes-dependents-not-the-parent": (
        [
            {
                "id": "src",
                "alertname": "ParentDown",
                "scope": "dependency",
                "parent": "gw-ubnd-muong-phang",
            }
        ],
        {
            "parent": site_alert(
                "parent",
                "GatewayDown",
                site="gw-ubnd-muong-phang",
                parent="gw-district-core",
                commune="muong-phang",
            ),
            "radio": site_alert(
                "radio", "RadioStationDown", site="radio-muong-phang", parent="gw-ubnd-muong-phang"
            ),
            "loa": site_alert(
                "loa", "LoudspeakerDown", site="loa-muong-phang-01", parent="gw-ubnd-muong-phang"
            ),
            "other": site_alert(
                "other", "LoudspeakerDown", site="loa-thanh-nua-01", parent="radio-huyen"
            ),
            "no-parent": site_alert("no-parent", "BtsDown", site="bts-vtl-muong-phang-01"),
        },
        {"radio", "loa"},
    ),
    "parent-down-works-at-any-depth": (
        [
            {
                "id": "core",
                "alertname": "ParentDown",
                "scope": "dependency",
                "parent": "gw-district-core",
            },
            {
                "id": "gw",
                "alertname": "ParentDown",
                "scope": "dependency",
                "parent": "gw-ubnd-muong-phang",
            },
        ],
        {
            "gateway": site_alert(
                "gateway", "GatewayDown", site="gw-ubnd-muong-phang", parent="gw-district-core"
            ),
            "radio": site_alert(
                "radio", "RadioStationDown", site="radio-muong-phang", parent="gw-ubnd-muong-phang"
            ),
            "core": site_alert("core", "GatewayDown", site="gw-district-core"),
        },
        {"gateway", "radio"},
    ),
    "blind-monitor-mutes-every-site-commune-and-operator-alert": (
        [
            {
                "id": "src",
                "alertname": "DistrictmonPollsFailing",
                "scope": "monitor",
                "blind": "all",
                "instance": "127.0.0.1:9877",
            }
        ],
        {
            "bts": site_alert("bts", "BtsDown", commune="muong-phang", owner="viettel"),
            "commune": {
                "id": "commune",
                "alertname": "CommuneIsolated",
                "scope": "commune",
                "commune": "thanh-nua",
            },
            "operator": {
                "id": "operator",
                "alertname": "OperatorBtsOutage",
                "scope": "operator",
                "owner": "vnpt",
            },
            "ledger": {
                "id": "ledger",
                "alertname": "DistrictmonLedgerWriteErrors",
                "scope": "monitor",
                "instance": "127.0.0.1:9877",
            },
        },
        {"bts", "commune", "operator"},
    ),
    "lost-broker-mutes-what-comes-over-mqtt": (
        [
            {
                "id": "src",
                "alertname": "DistrictmonBrokerDisconnected",
                "scope": "monitor",
                "blind": "mqtt",
                "instance": "127.0.0.1:9877",
            }
        ],
        {
            "mqtt": site_alert("mqtt", "AmplifierFault", probe="mqtt", site="loa-thanh-nua-01"),
            "snmp": site_alert("snmp", "AmplifierFault", probe="snmp", site="loa-thanh-nua-02"),
            "bts": site_alert("bts", "BtsDown", site="bts-vtl-thanh-nua-01"),
        },
        {"mqtt"},
    ),
    "monitor-not-scraped-mutes-its-other-alerts": (
        [
            {
                "id": "src",
                "alertname": "DistrictmonDown",
                "scope": "monitor",
                "blind": "all",
                "instance": "127.0.0.1:9877",
            }
        ],
        {
            "lag": {
                "id": "lag",
                "alertname": "DistrictmonScheduleLagging",
                "scope": "monitor",
                "instance": "127.0.0.1:9877",
            },
            "other-daemon": {
                "id": "other-daemon",
                "alertname": "DistrictmonScheduleLagging",
                "scope": "monitor",
                "instance": "10.0.0.12:9877",
            },
        },
        {"lag"},
    ),
    "operator-outage-mutes-that-operators-bts-down-only": (
        [{"id": "src", "alertname": "OperatorBtsOutage", "scope": "operator", "owner": "viettel"}],
        {
            "vtl": site_alert("vtl", "BtsDown", owner="viettel", commune="thanh-nua"),
            "vnp": site_alert("vnp", "BtsDown", owner="vnpt", commune="thanh-nua"),
            "battery": site_alert("battery", "BtsOnBattery", owner="viettel", commune="thanh-nua"),
        },
        {"vtl"},
    ),
    # a named degradation mutes nothing: SiteDegraded leaves it out in its expression
    "named-degradation-mutes-nothing": (
        [site_alert("src", "WanDown", site="gw-ubnd-thanh-nua")],
        {"same": site_alert("same", "SiteDegraded", site="gw-ubnd-thanh-nua")},
        set(),
    ),
}


@pytest.mark.parametrize(
    ("sources", "targets", "expected"), INHIBITION_CASES.values(), ids=INHIBITION_CASES.keys()
)
def test_inhibition(
    alertmanager: Alertmanager,
    sources: list[dict[str, str]],
    targets: dict[str, dict[str, str]],
    expected: set[str],
) -> None:
    for labels in targets.values():
        add(alertmanager, labels)
    before = muted(alertmanager)
    assert not any(before[key] for key in targets), "muted before any source fired"
    for labels in sources:
        add(alertmanager, labels)
    after = muted(alertmanager)
    assert {key for key in targets if after[key]} == expected
    assert not any(after[source["id"]] for source in sources), "a source muted"


def test_example_credentials_and_addresses_are_placeholders() -> None:
    """The example must never carry a real secret or a real destination."""
    secrets: list[str] = []
    destinations: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("smtp_auth_password", "bot_token", "credentials", "auth_password"):
                    secrets.append(str(value))
                elif key in ("url", "to", "smtp_from", "smtp_smarthost", "smtp_auth_username"):
                    destinations.append(str(value))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(load_yaml(ALERTMANAGER_CONFIG))
    assert secrets and all("CHANGE-ME" in s for s in secrets), secrets
    for destination in destinations:
        if "://" in destination:
            host = urlsplit(destination).hostname or ""
        else:  # an e-mail address or host:port
            host = destination.rpartition("@")[2].partition(":")[0]
        assert host.endswith((".example", "example.org")), destination
