"""Commune and owner names as info series (monitor/inventorymetrics.py): what alert texts and
dashboard legends join on to show "Mường Phăng" where site series carry `muong-phang`."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from monitor.config import load_config
from monitor.inventorymetrics import InventoryCollector

ROOT = Path(__file__).resolve().parent.parent


def test_the_daemon_exports_commune_and_owner_names_for_alert_texts() -> None:
    config = load_config(ROOT / "config")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(InventoryCollector(lambda: config))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }
    commune = ("districtmon_commune_info", (("commune", "muong-phang"), ("name", "Mường Phăng")))
    assert samples[commune] == 1
    station = config.owners["dien-bien-rtv"]
    assert station.name.startswith("Đài Truyền thanh")
    owner_labels = (("kind", "broadcaster"), ("name", station.name), ("owner", "dien-bien-rtv"))
    assert samples[("districtmon_owner_info", owner_labels)] == 1
    assert sum(1 for name, _ in samples if name == "districtmon_commune_info") == 25
    assert sum(1 for name, _ in samples if name == "districtmon_owner_info") == len(config.owners)


def test_commune_names_follow_a_reload() -> None:
    """The collector reads the configuration at each scrape: a reload swaps it whole."""
    config = load_config(ROOT / "config")
    current = [config]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(InventoryCollector(lambda: current[0]))
    renamed = {**config.communes}
    renamed["muong-phang"] = replace(renamed["muong-phang"], name="Mường Phăng (mới)")
    current[0] = replace(config, communes=renamed)
    names = {
        s.labels["name"]
        for family in registry.collect()
        for s in family.samples
        if s.labels.get("commune") == "muong-phang"
    }
    assert names == {"Mường Phăng (mới)"}


def test_exposition_keeps_vietnamese_names_and_passes_promtool_check_metrics() -> None:
    config = load_config(ROOT / "config")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(InventoryCollector(lambda: config))
    text = generate_latest(registry).decode("utf-8")
    assert 'districtmon_commune_info{commune="muong-phang",name="Mường Phăng"} 1.0' in text
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
