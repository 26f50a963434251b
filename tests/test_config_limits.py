"""What a configuration must not be able to do to the machine or to its secrets: files too big to
parse are refused before they are read, no error ever shows a secret the configuration knows
(wherever it was typed), and a credentials file others can read or change is warned about at
every start, reload and check-config."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness import Daemon, free_tcp_port, wait_for
from test_config import COMMUNITY, SITES, edit, errors, load, write_config

from monitor.config.located import MAX_FILE_BYTES

BIG_SITE = """
  - id: bts-{n}
    kind: bts
    name: BTS {n}
    commune: thanh-nua
    owner: viettel
    lat: 21.45
    lon: 103.01
    probe: {{snmp: {{address: 127.0.0.1, credential: district-ro}}}}
"""


def test_a_file_past_the_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    huge = root / "inventory" / "huge.yaml"
    with huge.open("w", encoding="utf-8") as out:  # 9 MiB of sites: a province is 3.7 MB
        out.write("sites:\n")
        n = 0
        while out.tell() <= MAX_FILE_BYTES + 1024 * 1024:
            out.write(BIG_SITE.format(n=n))
            n += 1
    started = time.monotonic()
    assert errors(root) == [
        "inventory/huge.yaml: larger than 8 MiB, the limit for one configuration file; "
        "split the inventory into several files of inventory/"
    ]
    assert time.monotonic() - started < 2.0  # refused unread: a 50 MB file took 67 s and 3 GB


def test_an_inventory_past_its_total_limit_is_refused_unread(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    chunk = "# padding\n" * 100_000  # 1 MB of comments per file, 40 files
    for n in range(40):
        (root / "inventory" / f"part-{n:02d}.yaml").write_text(chunk, encoding="utf-8")
    started = time.monotonic()
    [problem] = errors(root)
    assert problem.startswith("inventory: the inventory's files hold 38 MiB, more than the limit")
    assert time.monotonic() - started < 2.0


def test_a_secret_is_never_in_an_error_wherever_it_was_typed(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    # pasted where a key goes, in the inventory and in districtmon.yaml, and as a value
    edit(
        root / "inventory/sites.yaml",
        "    lat: 21.4502\n",
        f"    lat: 21.4502\n    {COMMUNITY}: 1\n",
    )
    settings = root / "districtmon.yaml"
    settings.write_text(settings.read_text() + "Passw0rd-Zq7x: 1\n", encoding="utf-8")
    edit(root / "inventory/sites.yaml", "owner: dien-bien-rtv", f"owner: {COMMUNITY}")
    found = errors(root)
    assert len(found) == 3, found
    assert all(COMMUNITY not in line and "Zq7" not in line for line in found), found
    assert any(".***: unknown key, not shown (not a key name: a secret?)" in x for x in found)
    # a secret from the environment is just as secret, even for a refused credential
    edit(root / "inventory/sites.yaml", f"owner: {COMMUNITY}", "owner: env-secret-4242")
    variable = "DISTRICTMON_SNMP_DISTRICT_RO_COMMUNITY"
    found = errors(root, {variable: "env-secret-4242"})
    assert found and all("env-secret-4242" not in line for line in found), found


def test_a_credential_name_that_is_no_slug_is_not_shown(tmp_path: Path) -> None:
    credentials = f"snmp:\n  {COMMUNITY.upper()}:\n    version: 2c\n    community: x\n"
    root = write_config(tmp_path, {"credentials.yaml": credentials})
    found = errors(root)
    assert "credentials.yaml:2: snmp.***: a credential name must be a slug" in found[0]
    assert all(COMMUNITY.upper() not in line for line in found), found


def test_a_credentials_file_others_can_read_or_change_is_warned_about(tmp_path: Path) -> None:
    root = write_config(tmp_path)
    credentials = root / "credentials.yaml"
    credentials.chmod(0o640)
    assert load(root).warnings == ()
    credentials.chmod(0o644)
    [readable] = load(root).warnings
    assert readable == (
        f"{credentials}: readable by every user of this machine (mode 0644) and it holds "
        "secrets: chmod o-r (0640 root:districtmon, or 0600 owned by districtmon's user)"
    )
    credentials.chmod(0o660)
    assert "writable by others than its owner (mode 0660)" in load(root).warnings[0]
    credentials.chmod(0o600)
    os.chown(credentials, 4242, -1)
    assert (
        "owned by uid 4242, neither root nor the user districtmon runs as"
        in (load(root).warnings[0])
    )
    os.chown(credentials, os.geteuid(), -1)
    credentials.chmod(0o644)
    check = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "-c", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0
    assert f"districtmon: warning: {credentials}: readable by every user" in check.stderr


def test_the_daemon_warns_at_start_about_a_world_readable_credentials_file(
    tmp_path: Path,
) -> None:
    port = free_tcp_port()
    root = write_config(tmp_path / "config")
    edit(root / "districtmon.yaml", "127.0.0.1:9877", f"127.0.0.1:{port}")
    edit(root / "districtmon.yaml", "path: var/ledger.sqlite", "path: ledger.sqlite")
    (root / "inventory" / "sites.yaml").write_text("sites: []\n", encoding="utf-8")
    assert "bts-vtl-thanh-nua-01" in SITES  # the sites are not needed to start
    (root / "credentials.yaml").chmod(0o644)
    daemon = Daemon(root, port)
    try:
        wait_for("the start", lambda: daemon.metric("districtmon_build_info") == 1, daemon)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    log = daemon.log.read_text()
    assert "WARNING monitor.runtime.daemon: " in log
    assert f"{root / 'credentials.yaml'}: readable by every user of this machine" in log
