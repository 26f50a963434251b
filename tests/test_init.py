"""`districtmon init DIR`: a commented starter that passes check-config and runs as written,
with one commune and a site of each kind on loopback, and that never overwrites anything."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for

from monitor.cli.init import starter_files
from monitor.cli.main import main
from monitor.config.load import load_config
from monitor.core.model import SITE_KINDS

SHIPPED = Path(__file__).parents[1] / "config"


def test_init_writes_a_starter_that_check_config_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "dienbien"
    assert main(["init", str(target)]) == 0
    said = capsys.readouterr().out
    assert f"districtmon check-config -c {target}" in said
    assert main(["check-config", "-c", str(target)]) == 0
    summary = capsys.readouterr().out
    assert "sites: 7\ncommunes: 1\n" in summary
    assert "probes: http 1, icmp 1, mqtt 1, snmp 3, tcp 1\n" in summary
    config = load_config(target, {})
    assert sorted(site.kind for site in config.sites.values()) == sorted(SITE_KINDS)
    assert len(config.communes) == 1
    for site in config.sites.values():
        address = getattr(site.probe, "address", None) or getattr(site.probe, "url", "")
        if address:
            assert "127." in address, f"{site.id}: {address} is not loopback"
    # the profiles and mappings are the shipped district's, byte for byte
    for name in ("profiles/bts-power.yaml", "profiles/router.yaml", "mqtt/mappings.yaml"):
        assert (target / name).read_bytes() == (SHIPPED / name).read_bytes()
    assert stat.S_IMODE((target / "credentials.yaml").stat().st_mode) == 0o600
    # commented: each file says what it is
    for name in ("districtmon.yaml", "credentials.yaml", "inventory/district.yaml"):
        assert (target / name).read_text(encoding="utf-8").startswith("# ")


def test_init_never_writes_beside_or_over_a_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "districtmon.yaml").write_text("{}\n", encoding="utf-8")
    assert main(["init", str(taken)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert sorted(os.listdir(taken)) == ["districtmon.yaml"]
    assert (taken / "districtmon.yaml").read_text(encoding="utf-8") == "{}\n"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["init", str(a_file)]) == 2
    assert "not a directory" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["init", str(empty)]) == 0


def test_the_starter_runs_and_metrics_show_its_sites(tmp_path: Path) -> None:
    target = tmp_path / "district"
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "init", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    port = free_tcp_port()
    settings = target / "districtmon.yaml"
    text = settings.read_text(encoding="utf-8")
    assert "listen: 127.0.0.1:9877" in text
    settings.write_text(text.replace("127.0.0.1:9877", f"127.0.0.1:{port}"), encoding="utf-8")
    daemon = Daemon(target, port)
    try:
        ids = [path for path, _ in starter_files()]
        assert ids  # the packaged starter is found
        config = load_config(target, {})
        wait_for(
            "every site on /metrics",
            lambda: all(
                daemon.metric("districtmon_site_info", site=site) == 1 for site in config.sites
            ),
            daemon,
        )
        assert daemon.get("/healthz")[0] == 200
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert (target / "var" / "ledger.sqlite").is_file(), "the ledger lands in the directory"
