"""Availability objectives: set once in the configuration (districtmon.yaml `objectives:` per
kind, a site's own `objective:` in the inventory), refused with file, line and key when they
are no share, and served by the running daemon as districtmon_objective_ratio (per kind) and
districtmon_site_objective_ratio (what each site is held to), which the alert rules and the
SLA dashboard read. A reload moves the served figures."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for, write_settings

from monitor.config.load import load_config
from monitor.config.problems import ConfigError
from monitor.config.settings import DEFAULT_OBJECTIVES

SITES = """
communes:
  - {id: thanh-nua, name: Thanh Nưa, lat: 21.45, lon: 103.0, areas: [Bản Ta Pô]}
owners:
  - {id: viettel, name: Viettel, kind: operator}
  - {id: district-it, name: Trung tâm Văn hóa - Thông tin huyện, kind: agency}
sites:
  - {id: bts-a, kind: bts, name: BTS A, commune: thanh-nua, owner: viettel, lat: 21.4,
     lon: 103.0, probe: {icmp: {address: 127.0.0.1}}}
  - {id: bts-b, kind: bts, name: BTS B, commune: thanh-nua, owner: viettel, lat: 21.4,
     lon: 103.0, objective: 0.999, probe: {icmp: {address: 127.0.0.1}}}
  - {id: gw-a, kind: gateway, name: Cổng A, commune: thanh-nua, owner: district-it, lat: 21.4,
     lon: 103.0, probe: {icmp: {address: 127.0.0.1}}}
"""


def district(root: Path, port: int, objectives: str) -> Path:
    write_settings(root, port, {})
    with (root / "districtmon.yaml").open("a", encoding="utf-8") as settings:
        settings.write(objectives)
    (root / "inventory" / "district.yaml").write_text(SITES, encoding="utf-8")
    return root


def problems(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(root, {})
    return [str(p).removeprefix(f"{root}/") for p in caught.value.problems]


def test_objectives_default_per_kind_and_a_site_may_set_its_own(tmp_path: Path) -> None:
    config = load_config(district(tmp_path, 9, "objectives: {gateway: 0.97}\n"), {})
    assert config.objectives["gateway"] == 0.97
    assert config.objectives["bts"] == DEFAULT_OBJECTIVES["bts"] == 0.995
    assert config.sites["bts-b"].objective == 0.999
    assert config.sites["bts-a"].objective is None


def test_an_objective_that_is_no_share_is_refused_at_its_key(tmp_path: Path) -> None:
    root = district(tmp_path, 9, "objectives: {bts: 99.5, radio: 0.9}\n")
    found = problems(root)
    assert any(
        re.match(r"districtmon\.yaml:\d+: objectives\.bts: must be a number 0\.\.1, got 99\.5", p)
        for p in found
    ), found
    assert any(
        "objectives.radio: unknown key (expected one of: bts, radio_station" in p for p in found
    )


def test_a_sites_objective_outside_0_1_names_the_site(tmp_path: Path) -> None:
    root = district(tmp_path, 9, "")
    inventory = root / "inventory" / "district.yaml"
    inventory.write_text(SITES.replace("objective: 0.999", "objective: 2"), encoding="utf-8")
    [problem] = problems(root)
    assert re.match(
        r"inventory/district\.yaml:\d+: sites\[1\]\.objective: must be a number", problem
    )
    assert "bts-b" in problem


def served(daemon: Daemon) -> dict[tuple[str, str], float]:
    """(family, kind or site) -> value, of the objective families on /metrics."""
    try:
        _, text = daemon.get("/metrics")
    except OSError:  # not listening yet
        return {}
    found: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = re.match(r"(districtmon_(?:site_)?objective_ratio)\{(.*)\} (\S+)$", line)
        if match:
            labels: dict[str, str] = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            found[str(match.group(1)), labels.get("site", labels["kind"])] = float(match.group(3))
    return found


def test_the_daemon_serves_the_objectives_it_was_given_and_follows_a_reload(
    tmp_path: Path,
) -> None:
    port = free_tcp_port()
    root = district(tmp_path, port, "objectives: {gateway: 0.97}\n")
    daemon = Daemon(root, port)
    try:
        wait_for("metrics served", lambda: bool(served(daemon)), daemon)
        got = served(daemon)
        kinds = {
            key: v for (family, key), v in got.items() if family == "districtmon_objective_ratio"
        }
        assert kinds == {**DEFAULT_OBJECTIVES, "gateway": 0.97}
        sites = {
            key: v
            for (family, key), v in got.items()
            if family == "districtmon_site_objective_ratio"
        }
        assert sites == {"bts-a": 0.995, "bts-b": 0.999, "gw-a": 0.97}

        settings = root / "districtmon.yaml"
        settings.write_text(
            settings.read_text(encoding="utf-8").replace("gateway: 0.97", "gateway: 0.9"),
            encoding="utf-8",
        )
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(
            "the reloaded objective served",
            lambda: served(daemon).get(("districtmon_site_objective_ratio", "gw-a")) == 0.9,
            daemon,
        )
        assert served(daemon)[("districtmon_objective_ratio", "gateway")] == 0.9
    finally:
        daemon.kill()


def test_the_objective_text_is_kept_until_the_sites_or_objectives_are_swapped(
    tmp_path: Path,
) -> None:
    """20,000 unchanged lines must not be written again at every scrape: the kept text is
    what prometheus-client writes, the same bytes object while nothing was swapped, and made
    again when a reload brings new objectives or a new site table."""
    from prometheus_client import generate_latest

    from monitor.expose.objective_metrics import ObjectiveCollector
    from monitor.expose.textformat import Families

    config = load_config(district(tmp_path, free_tcp_port(), "objectives: {gateway: 0.97}\n"), {})
    sites = dict(config.sites)
    table = {"sites": sites}
    collector = ObjectiveCollector(lambda: table["sites"], config.objectives)

    def library() -> bytes:
        return generate_latest(Families(list(collector.collect())))

    first = collector.render()
    assert first == library()
    assert b'districtmon_site_objective_ratio{commune="thanh-nua"' in first
    assert collector.render() is first

    collector.objectives = {**config.objectives, "gateway": 0.9}
    after_reload = collector.render()
    assert after_reload == library() != first
    assert b'kind="gateway",owner="district-it",site="gw-a"} 0.9\n' in after_reload

    table["sites"] = {k: v for k, v in sites.items() if k != "bts-b"}
    fewer = collector.render()
    assert fewer == library()
    assert b'site="bts-b"' not in fewer and b'site="bts-b"' in after_reload
