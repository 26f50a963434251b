"""A reload that fails, however it fails, leaves the daemon running on the configuration it had,
and says so: in the log, on /healthz (a warning, still 200), in `districtmon status` and in
districtmon_config_last_reload_successful / ..._success_timestamp_seconds (the names
Prometheus uses for its own reloads, read by the DistrictmonConfigReloadFailed alert).

The daemon is a real process; its sites are TCP probes of its own HTTP port, so nothing else
needs to run."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for, wait_in_loop

from monitor.config.load import Config, load_config
from monitor.runtime.daemon import run_daemon

LONG_NAME = "p" * 300  # longer than a file name may be (NAME_MAX 255): stat() raises OSError
RELOAD_OK = "districtmon_config_last_reload_successful"
RELOADED_AT = "districtmon_config_last_reload_success_timestamp_seconds"


def write_config(root: Path, http_port: int, sites: list[str], profiles: str = "profiles") -> Path:
    (root / "inventory").mkdir(parents=True, exist_ok=True)
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{http_port}"}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: 0.5, timeout_seconds: 0.3, retries: 0}}
state: {{down_after: 2, up_after: 1}}
snmp: {{profiles: {profiles}}}
""",
        encoding="utf-8",
    )
    (root / "credentials.yaml").write_text("snmp: {}\n", encoding="utf-8")
    lines = "\n".join(
        f"  - {{id: {site}, kind: portal, name: 'Cổng {site}', commune: thanh-xuong,"
        f" owner: district-it, lat: 21.35, lon: 103.03,"
        f" probe: {{tcp: {{address: 127.0.0.1, port: {http_port}}}}}}}"
        for site in sites
    )
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-xuong, name: Thanh Xương, lat: 21.346, lon: 103.03}}
owners:
  - {{id: district-it, name: Trung tâm Văn hóa - Thông tin huyện Điện Biên, kind: agency}}
sites:
{lines}
""",
        encoding="utf-8",
    )
    return root


def up(daemon: Daemon, site: str) -> bool:
    return daemon.metric("districtmon_site_up", site=site) == 1


def health(daemon: Daemon) -> tuple[int, dict[str, object]]:
    status, body = daemon.get("/healthz")
    return status, json.loads(body)


def test_every_refused_reload_keeps_the_daemon_and_says_so(tmp_path: Path) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path / "config", port, ["web-a"])
    daemon = Daemon(config, port)
    try:
        wait_for(
            "web-a up", lambda: daemon.metric("districtmon_site_up", site="web-a") == 1, daemon
        )
        assert daemon.metric(RELOAD_OK) == 1
        started = daemon.metric(RELOADED_AT)
        assert started is not None and abs(started - time.time()) < 30

        # a path the system refuses: before, the OSError escaped the reload and killed it
        write_config(config, port, ["web-a", "web-b"], profiles=LONG_NAME)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for("the refusal", lambda: daemon.metric(RELOAD_OK) == 0, daemon)
        assert daemon.proc.poll() is None
        status, body = health(daemon)
        assert status == 200 and body["status"] == "ok"
        warnings = body["warnings"]
        assert isinstance(warnings, list) and len(warnings) == 1
        assert "reload refused (1 problems)" in str(warnings[0])
        assert daemon.metric(RELOADED_AT) == started
        assert daemon.metric("districtmon_site_info", site="web-b") is None  # not applied

        # a broken file: refused, and the timestamp still names the configuration running
        write_config(config, port, ["web-a", "web-b"])
        settings = config / "districtmon.yaml"
        settings.write_text(settings.read_text() + "colour: red\n", encoding="utf-8")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for("the second refusal", lambda: "colour" in daemon.log.read_text(), daemon)
        assert daemon.metric(RELOAD_OK) == 0 and daemon.proc.poll() is None

        write_config(config, port, ["web-a", "web-b"])
        asked = time.time()
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for("the good reload", lambda: daemon.metric(RELOAD_OK) == 1, daemon)
        reloaded = daemon.metric(RELOADED_AT)
        assert reloaded is not None and asked <= reloaded <= time.time()
        assert health(daemon)[1]["warnings"] == []
        wait_for(
            "web-b up", lambda: daemon.metric("districtmon_site_up", site="web-b") == 1, daemon
        )
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    log = daemon.log.read_text()
    assert f"{LONG_NAME}: cannot read: File name too long" in log
    assert "Traceback" not in log


def test_check_config_names_a_path_the_system_refuses_without_a_traceback(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "config", free_tcp_port(), ["web-a"], profiles=LONG_NAME)
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{config / LONG_NAME}: cannot read: File name too long" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_loader_that_fails_unexpectedly_does_not_stop_the_daemon(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever the loader raises (here a fault of ours, not a refusal), the daemon runs on."""
    port = free_tcp_port()
    config = load_config(write_config(tmp_path / "config", port, ["web-a"]), {})

    def broken_loader() -> Config:
        raise RuntimeError("a fault in the loader")

    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(config, reload_config=broken_loader, stop=stop))

    def metrics() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            return str(answer.read().decode())

    async def until(what: str, sample: str) -> None:
        await wait_in_loop(what, lambda: sample in metrics(), daemon, tries=200)

    try:
        await until("the start", f"{RELOAD_OK} 1.0")
        signal.raise_signal(signal.SIGHUP)
        await until("the failed reload", f"{RELOAD_OK} 0.0")
        assert not daemon.done()
    finally:
        stop.set()
        await asyncio.wait_for(daemon, 15)
    assert "new configuration not read (internal error)" in caplog.text
