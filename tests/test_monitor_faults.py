"""The monitor's own failures are never a site's outage: a real snmpd refusing the daemon's
SNMPv3 key makes its site unknown with reason code `auth`, never down, in the live state,
/metrics, the JSON API, the ledger and the report. A wrong v2c community gets no answer at
all: that stays a timeout, and the site goes down."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SNMPD_COMMUNITY
from harness import DOWN_AFTER, INTERVAL, Daemon, free_tcp_port, wait_for, write_settings
from peers import Snmpd

from monitor.core.model import State
from monitor.ledger.records import read_intervals
from monitor.report.build import build_report

WRONG_KEY = "not-the-key-Zq7"


def write_config(root: Path, port: int, snmpd: Snmpd) -> Path:
    write_settings(root, port, {"agent": SNMPD_COMMUNITY, "wrong-community": "not-ours-Zq7"})
    with (root / "credentials.yaml").open("a", encoding="utf-8") as credentials:
        for name, auth_key in (("v3-right", snmpd.v3_auth_key), ("v3-wrong-key", WRONG_KEY)):
            credentials.write(
                f"  {name}:\n    version: 3\n    user: {snmpd.v3_user}\n"
                f"    auth_protocol: SHA\n    auth_key: {auth_key}\n"
                f"    priv_protocol: AES\n    priv_key: {snmpd.v3_priv_key}\n"
            )
    with (root / "districtmon.yaml").open("a", encoding="utf-8") as settings:
        settings.write(f"snmp: {{engine: {os.environ.get('DISTRICTMON_TEST_ENGINE', 'gufo')}}}\n")
    sites = "".join(
        f"""
  - id: {site_id}
    kind: bts
    name: {site_id}
    commune: thanh-nua
    owner: viettel
    lat: 21.45
    lon: 103.01
    probe: {{snmp: {{address: 127.0.0.1, port: {snmpd.port}, credential: {credential}}}}}
"""
        for site_id, credential in (
            ("bts-right", "v3-right"),
            ("bts-wrong-key", "v3-wrong-key"),
            ("bts-wrong-community", "wrong-community"),
        )
    )
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-nua, name: Thanh Nưa, lat: 21.45, lon: 103.0}}
owners:
  - {{id: viettel, name: Viettel, kind: operator}}
sites:{sites}""",
        encoding="utf-8",
    )
    return root


@pytest.fixture
def running(tmp_path: Path, snmpd: Snmpd) -> Iterator[tuple[Daemon, Path]]:
    port = free_tcp_port()
    config = write_config(tmp_path / "config", port, snmpd)
    daemon = Daemon(config, port)
    try:
        yield daemon, config
    finally:
        daemon.kill()


def test_a_wrong_v3_key_makes_the_site_unknown_never_down(running: tuple[Daemon, Path]) -> None:
    daemon, config = running
    began = time.time()
    wait_for(
        "the wrong key confirmed",
        lambda: daemon.metric("districtmon_site_reason", site="bts-wrong-key", reason="auth") == 1,
        daemon,
    )
    wait_for(
        "the wrong community down",
        lambda: daemon.metric("districtmon_site_up", site="bts-wrong-community") == 0,
        daemon,
    )
    # a few more polls: it stays unknown, it never turns down
    time.sleep(DOWN_AFTER * INTERVAL)
    site = {"site": "bts-wrong-key"}
    assert daemon.metric("districtmon_site_state", state="unknown", **site) == 1
    assert daemon.metric("districtmon_site_state", state="down", **site) == 0
    assert daemon.metric("districtmon_site_up", **site) is None  # unknown: no up sample
    assert daemon.metric("districtmon_site_up", site="bts-right") == 1
    errors = daemon.metric("districtmon_poll_errors_total", probe="snmp", reason="auth")
    assert errors is not None and errors >= DOWN_AFTER
    # the wrong community: no answer, a timeout, the site's own outage as far as we can tell
    assert (
        daemon.metric("districtmon_site_reason", site="bts-wrong-community", reason="timeout") == 1
    )
    _, metrics = daemon.get("/metrics")
    assert WRONG_KEY not in metrics
    _, body = daemon.get("/api/v1/sites/bts-wrong-key")
    record = json.loads(body)["site"]
    assert record["state"] == "unknown" and record["reason_codes"] == ["auth"]
    assert "monitor" in record["reason"] and "not the site" in record["reason"]

    assert daemon.stop() == 0
    ledger = config / "ledger.sqlite"
    intervals = read_intervals(ledger, "bts-wrong-key")
    assert {i.state for i in intervals} == {State.UNKNOWN}
    assert ("auth",) in {i.codes for i in intervals}
    down = read_intervals(ledger, "bts-wrong-community")
    assert [i.codes for i in down if i.state is State.DOWN] == [("timeout",)]
    rows = {r.key: r.figures for r in build_report([ledger], began - 60, time.time()).rows}
    assert (rows["bts-wrong-key"].down, rows["bts-wrong-key"].outages) == (0, 0)
    assert rows["bts-wrong-key"].availability is None  # nothing counted: not charged
    assert rows["bts-wrong-community"].outages == 1
    assert WRONG_KEY not in (config / "daemon.log").read_text() + body
