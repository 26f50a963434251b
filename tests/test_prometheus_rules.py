"""The shipped Prometheus files: promtool accepts them, their unit tests (config/prometheus/
tests/*.yml) pass, every alert is tested both firing and silent, every alert carries the
labels Alertmanager routes on and a runbook section, and the metrics the rules read are either
exported by the daemon today or declared pending in alerts.yml.

Needs promtool (Debian package prometheus; `./dev setup` installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from alerting import (
    ALERT_RULES,
    PROMETHEUS_DIR,
    RECORDING_RULES,
    RULE_TESTS,
    RUNBOOKS,
    alert_rules,
    load_yaml,
    rule_groups,
)
from prometheus_client.registry import CollectorRegistry

from monitor.config.load import load_config
from monitor.core.model import Observation, Sample, State, Transition
from monitor.expose.availability_metrics import AvailabilityCollector, SiteAvailabilityCollector
from monitor.expose.device_metrics import DeviceValueCollector
from monitor.expose.mqtt_metrics import registered_counts
from monitor.expose.objective_metrics import ObjectiveCollector
from monitor.expose.self_metrics import build_registry, utc_offset_seconds
from monitor.expose.site_metrics import SiteCollector
from monitor.ledger.recent import AvailabilityGauges
from monitor.state.live import LiveState

ROOT = Path(__file__).resolve().parent.parent
# An alert's runbook is on the daemon that raised it: its scrape address (`instance`), or,
# for an alert without one, the address of a daemon that watches its sites, found by a query.
RUNBOOK_ON_INSTANCE = "http://{{ $labels.instance }}/runbooks/"
RUNBOOK_FOUND = re.compile(
    r"http://\{\{ with printf `districtmon_site_info\{(?:job=%q,)?(site|commune|owner)=%q\}` "
    r"(?:\$labels\.job )?\$labels\.(parent|commune|owner) \| query \| sortByLabel `instance` \}\}"
    r"\s*\{\{- \. \| first \| label `instance` \}\}\{\{ end \}\}/runbooks/(\w+)"
)
SCOPES = {"site", "commune", "operator", "dependency", "monitor"}
SEVERITIES = {"critical", "warning", "none"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool not found: ./dev setup installs it (Debian package prometheus)")
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR
    )


def test_rule_files_pass_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RECORDING_RULES), str(ALERT_RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 2


def test_example_prometheus_config_passes_promtool_check_config() -> None:
    result = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 rule files found" in result.stdout


def test_example_prometheus_config_loads_every_rule_file_shipped() -> None:
    """The dashboards read recording rules of their own (dashboards.rules.yml): a
    Prometheus set up from the example must evaluate them too."""
    shipped = sorted(p.name for p in PROMETHEUS_DIR.glob("*.yml") if p.name != "prometheus.yml")
    loaded = load_yaml(PROMETHEUS_DIR / "prometheus.yml")["rule_files"]
    assert sorted(loaded) == shipped


@pytest.mark.parametrize("tests_file", RULE_TESTS, ids=[p.stem for p in RULE_TESTS])
def test_rule_unit_tests_pass_promtool_test_rules(tests_file: Path) -> None:
    result = promtool("test", "rules", str(tests_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _alert_tests() -> list[dict[str, Any]]:
    return [
        case
        for path in RULE_TESTS
        for group in load_yaml(path)["tests"]
        for case in group.get("alert_rule_test", [])
    ]


def test_every_alert_is_unit_tested_both_firing_and_silent() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    cases = _alert_tests()
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert names - fired == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested staying silent"
    assert (fired | silent) - names == set(), "tests of alerts that do not exist"


def test_unit_tests_evaluate_recording_rules_before_the_alerts_that_read_them() -> None:
    # promtool evaluates the groups it is not told about in an arbitrary order
    groups = rule_groups()
    for path in RULE_TESTS:
        doc = load_yaml(path)
        assert doc["rule_files"] == ["../recording.yml", "../alerts.yml"], path.name
        assert doc["group_eval_order"] == groups, path.name


def test_every_alert_carries_routing_labels_and_annotations() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        labels = rule.get("labels", {})
        assert labels.get("severity") in SEVERITIES, name
        assert labels.get("scope") in SCOPES, name
        assert (labels.get("scope") == "monitor") == name.startswith("Districtmon"), name
        annotations = rule.get("annotations", {})
        assert {"summary", "description", "runbook_url"} <= annotations.keys(), name
        assert runbook_path(annotations["runbook_url"]) == f"/runbooks/{name.lower()}", name


def runbook_path(url: str) -> str:
    """The path of a rule's runbook link, for the forms a link may take."""
    if url.startswith(RUNBOOK_ON_INSTANCE):
        return url.removeprefix("http://{{ $labels.instance }}")
    found = RUNBOOK_FOUND.fullmatch(url)
    if found:
        return f"/runbooks/{found.group(3)}"
    # DistrictmonDown may know no daemon at all: then the copy `make install` puts on disk
    daemon_down = re.fullmatch(
        r"\{\{ with \$labels\.instance \}\}http://\{\{ \. \}\}(/runbooks/\w+)\{\{ else \}\}"
        r"file:///opt/districtmon/share/prometheus/runbooks\.md\{\{ end \}\}",
        url,
    )
    assert daemon_down, f"not a runbook link of a known form: {url}"
    return daemon_down.group(1)


def test_site_alerts_join_names_and_parent_for_the_inhibitions() -> None:
    """Alertmanager mutes a site's alert by its `commune` (CommuneIsolated) and its `parent`
    (ParentDown): every site-scope alert must copy `parent` (and the names) from the info."""
    for rule in alert_rules():
        if rule["labels"]["scope"] != "site":
            continue
        expr = " ".join(rule["expr"].split())
        assert (
            "group_left (name, parent, commune_name, owner_name, probe) "
            "site:districtmon_site_info:named" in expr
        ), rule["alert"]


def test_runbooks_have_one_section_per_alert_and_none_other() -> None:
    sections = re.findall(r"^## (\S+)$", RUNBOOKS.read_text(encoding="utf-8"), re.MULTILINE)
    names = list(dict.fromkeys(rule["alert"] for rule in alert_rules()))
    assert sorted(sections) == sorted(names)
    assert len(sections) == len(set(sections))


def _exported_metric_names() -> set[str]:
    """Sample names the daemon serves today, with one site of each probe observed the way
    the shipped profiles and telemetry mappings name their values (so that the per-site and
    device series all appear)."""
    config = load_config(ROOT / "config")
    live = LiveState(config.sites, config.communes, config.owners)
    by_kind = {site.kind: site.id for site in config.sites.values()}
    bts, gateway, speaker = by_kind["bts"], by_kind["gateway"], by_kind["loudspeaker"]
    device_values: dict[str, float | str] = {
        "uptime_seconds": 5.0,
        "mains_ok": 1.0,
        "battery_volts": 54.0,
    }
    live.apply_observation(Observation(bts, 1.0, True, 0.01, values=device_values))
    wan = Sample("if_oper_up", (("alias", "WAN uplink"), ("if", "wan0")), 1.0)
    live.apply_observation(Observation(gateway, 1.0, True, 0.01, samples=(wan,)))
    live.apply_observation(
        Observation(speaker, 1.0, True, values={"amplifier_ok": 1.0}, probe="mqtt")
    )
    live.apply_transition(Transition(bts, State.UP, 1.0, State.UNKNOWN))
    # a site not up, so that its reason code is served too
    live.apply_transition(
        Transition(gateway, State.DOWN, 1.0, State.UNKNOWN, "snmp timeout", ("timeout",))
    )
    registry, _ = build_registry()
    registry.register(SiteCollector(live))
    registry.register(DeviceValueCollector(live))
    registry.register(ObjectiveCollector(lambda: live.sites, config.objectives))
    registered_counts(registry)
    # the ledger's gauges have samples only once computed; their family names are what count
    gauges = AvailabilityGauges(ROOT / "unused.sqlite", 60)
    availability = [AvailabilityCollector(gauges, live), SiteAvailabilityCollector(gauges, live)]
    return _sample_names(registry) | {f.name for c in availability for f in c.collect()}


def _sample_names(registry: CollectorRegistry) -> set[str]:
    return {sample.name for family in registry.collect() for sample in family.samples}


def _declared_pending() -> set[str]:
    """Metric names listed under "Metrics that do not exist yet" at the top of alerts.yml."""
    header = ALERT_RULES.read_text(encoding="utf-8").split("\ngroups:")[0]
    block = header.split("Metrics that do not exist yet", 1)[1]
    return set(re.findall(r"^#\s+- (districtmon_[a-z0-9_]+)", block, re.MULTILINE))


def test_rules_read_exported_metrics_or_ones_declared_pending() -> None:
    recorded = {
        rule["record"]
        for path in (RECORDING_RULES, ALERT_RULES)
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    read = set()
    for path in (RECORDING_RULES, ALERT_RULES):
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                # the texts query series too (names, reasons, times)
                queries = [rule["expr"], *rule.get("annotations", {}).values()]
                for text in queries:
                    text = re.sub(r'job=~?"[^"]*"', "", text)  # job names are not metrics
                    read |= set(re.findall(r"\b(districtmon_[a-z0-9_]+)\b", text))
    read = {name for name in read if name not in recorded and f":{name}:" not in str(recorded)}
    exported = _exported_metric_names()
    pending = _declared_pending()
    assert read - exported - pending == set(), "rules read metrics nobody exports"
    # when a pending metric lands under that very name: drop it from the list (and the
    # PENDING METRIC marks of its rules), after checking its labels against the rules
    assert pending & exported == set(), "declared pending but exported now"
    assert pending <= read, "declared pending but no rule reads it"


def test_the_daemon_exports_its_utc_offset_for_local_times_in_the_texts() -> None:
    """Prometheus' and Alertmanager's templates know no timezone: the alert texts add the
    offset of the daemon's `timezone:` to the UTC times they format."""
    registry, _ = build_registry("Asia/Ho_Chi_Minh")
    [sample] = [
        s
        for family in registry.collect()
        for s in family.samples
        if s.name == "districtmon_timezone_offset_seconds"
    ]
    assert sample.labels == {} and sample.value == 7 * 3600
    assert utc_offset_seconds(None) == 0.0
    # read when scraped, so it follows daylight saving where there is any
    winter, summer = 1767225600.0, 1782864000.0  # 2026-01-01, 2026-07-01 (UTC)
    assert utc_offset_seconds("Europe/Berlin", winter) == 3600
    assert utc_offset_seconds("Europe/Berlin", summer) == 7200
    assert utc_offset_seconds("America/Sao_Paulo", winter) == -3 * 3600
