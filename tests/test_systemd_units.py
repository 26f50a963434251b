"""The systemd packaging: systemd/districtmon.service passes `systemd-analyze verify` and the
security gate (overall exposure at most 2.5), the sysusers snippet makes the user the unit
runs as, and `make install DESTDIR=...` stages a tree in which the unit's ExecStart exists,
runs the shipped config and serves the runbooks from the installed package, ships the
Prometheus and Alertmanager examples whole, and keeps an operator's config on reinstall and
uninstall.

Needs the Debian packages systemd (systemd-analyze, systemd-sysusers) and make; `./dev
setup` installs both. systemd need not be PID 1."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "districtmon.service"
SYSUSERS = ROOT / "systemd" / "districtmon.sysusers"
PREFIX = "/opt/districtmon"
UNIT_DIR = "usr/local/lib/systemd/system"
SYSUSERS_DIR = "usr/local/lib/sysusers.d"
CONF_DIR = "etc/districtmon"

# `systemd-analyze security --threshold=N` compares N with the overall exposure in tenths
# (0..100 for 0.0..10.0; default 100): 25 means "fail above 2.5".
THRESHOLD_TENTHS = 25
OVERALL = re.compile(r"Overall exposure level for \S+: (\d+\.\d)")


def tool(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        pytest.fail(f"{name} not found: ./dev setup installs it (Debian package systemd or make)")
    return path


def settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment of a unit file, in order, repeats kept."""
    section = ""
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def values(text: str, key: str) -> list[str]:
    return [v for _, k, v in settings(text) if k == key]


def only(text: str, key: str) -> str:
    found = values(text, key)
    assert len(found) == 1, f"{key}= set {len(found)} times"
    return found[0]


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("systemd-analyze"), "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def security(unit: Path, threshold: int) -> tuple[int, float]:
    """Exit status of the offline security gate, and the overall exposure it printed."""
    done = subprocess.run(
        [
            tool("systemd-analyze"),
            "security",
            "--offline=yes",
            f"--threshold={threshold}",
            "--no-pager",
            str(unit),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = OVERALL.search(done.stdout)
    assert match, done.stdout + done.stderr
    return done.returncode, float(match.group(1))


def write_unit(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "districtmon.service"
    path.write_text(text, encoding="utf-8")
    return path


# --- the unit file ---------------------------------------------------------------------------


def verify_with_dev_venv(directory: Path, text: str) -> list[str]:
    """verify's complaints about the unit, its ExecStart pointed at this checkout's venv
    (verify checks that the program is executable). Unknown keys are only warnings with exit
    status 0, so a clean unit is one with nothing to say."""
    dev_bin = Path(sys.executable).parent
    assert (dev_bin / "districtmon").exists(), "./dev setup installs the console script"
    done = verify(write_unit(directory, text.replace(f"{PREFIX}/bin/", f"{dev_bin}/")))
    complaints = [
        line for line in (done.stdout + done.stderr).splitlines() if "districtmon" in line
    ]
    if done.returncode != 0:
        complaints.append(f"exit status {done.returncode}")
    return complaints


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    assert verify_with_dev_venv(tmp_path, UNIT.read_text(encoding="utf-8")) == []


def test_verify_catches_a_misspelt_setting(tmp_path: Path) -> None:
    text = UNIT.read_text(encoding="utf-8").replace("ProtectSystem=", "ProtectSytem=")
    complaints = verify_with_dev_venv(tmp_path, text)
    assert any("Unknown key" in line and "ProtectSytem" in line for line in complaints)


def test_verify_catches_a_missing_program(tmp_path: Path) -> None:
    done = verify(write_unit(tmp_path, UNIT.read_text(encoding="utf-8")))
    if Path(PREFIX, "bin", "districtmon").exists():
        pytest.skip(f"districtmon is installed in {PREFIX} on this machine")
    assert done.returncode != 0
    assert f"{PREFIX}/bin/districtmon" in done.stderr


def test_exposure_is_within_the_threshold() -> None:
    status, exposure = security(UNIT, THRESHOLD_TENTHS)
    print(f"overall exposure of districtmon.service: {exposure}")
    assert status == 0, f"exposure {exposure} above {THRESHOLD_TENTHS / 10}"
    assert exposure <= THRESHOLD_TENTHS / 10


def test_the_threshold_is_counted_in_tenths() -> None:
    """Pins what --threshold means: at the unit's own exposure x10 it passes, one below fails."""
    _, exposure = security(UNIT, 100)
    tenths = round(exposure * 10)
    assert security(UNIT, tenths)[0] == 0
    assert security(UNIT, tenths - 1)[0] != 0


WEAKENINGS = {
    # each alone must be caught by the gate
    "no system call filter": r"^SystemCall(Filter|Architectures|ErrorNumber)=.*$",
    "no capability bounding set": r"^CapabilityBoundingSet=.*$",
    "no Restrict*": r"^Restrict\w+=.*$",
    "no sandboxing at all": r"(?s)^# --- privileges.*?(?=^\[Install\])",
}


@pytest.mark.parametrize("pattern", WEAKENINGS.values(), ids=WEAKENINGS.keys())
def test_a_weakened_unit_fails_the_gate(tmp_path: Path, pattern: str) -> None:
    text = UNIT.read_text(encoding="utf-8")
    weakened = re.sub(pattern, "", text, flags=re.MULTILINE)
    assert weakened != text
    status, exposure = security(write_unit(tmp_path, weakened), THRESHOLD_TENTHS)
    assert exposure > THRESHOLD_TENTHS / 10
    assert status != 0


def test_the_unit_keeps_its_contract_with_the_daemon() -> None:
    text = UNIT.read_text(encoding="utf-8")
    # Debian 12 has systemd 252: no Type=notify-reload (253); reload is SIGHUP, and the
    # daemon answers with RELOADING=1 ... READY=1.
    assert only(text, "Type") == "notify"
    assert only(text, "NotifyAccess") == "main"
    assert only(text, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert only(text, "WatchdogSec") == "30s"
    command = shlex.split(only(text, "ExecStart"))
    assert command[:4] == [f"{PREFIX}/bin/districtmon", "run", "-c", "/etc/districtmon"]
    assert command[4:] == ["--log-format", "text"], "journald adds time and priority"
    # the ledger: the only writable place, persistent, found through $STATE_DIRECTORY
    assert only(text, "StateDirectory") == "districtmon"
    assert only(text, "ConfigurationDirectory") == "districtmon"
    assert values(text, "LogsDirectory") == [], "logs go to the journal"
    assert only(text, "ProtectSystem") == "strict"
    # the user is the one the sysusers snippet creates
    assert only(text, "User") == only(text, "Group") == "districtmon"
    assert values(text, "DynamicUser") == []
    sysusers = [line.split() for line in SYSUSERS.read_text().splitlines() if line[:1] == "u"]
    assert [entry[:2] for entry in sysusers] == [["u", "districtmon"]]
    # two capabilities, for traps on UDP 162 and ICMP; nothing else may ever be gained
    caps = {"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}
    assert set(only(text, "AmbientCapabilities").split()) == caps
    assert set(only(text, "CapabilityBoundingSet").split()) == caps
    # ambient capabilities would be void inside a user namespace
    assert values(text, "PrivateUsers") == []
    # devices live at arbitrary addresses
    assert values(text, "IPAddressDeny") == values(text, "IPAddressAllow") == []
    assert set(only(text, "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert only(text, "ProtectProc") == "invisible"
    assert values(text, "ProcSubset") == [], "hides /proc/stat: process_* metrics vanish"
    assert only(text, "MemoryDenyWriteExecute") == "yes"
    assert only(text, "UMask") == "0077"


def test_the_sysusers_snippet_creates_a_system_user_without_login(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    done = subprocess.run(
        [tool("systemd-sysusers"), f"--root={tmp_path}", "-"],
        input=SYSUSERS.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text().splitlines()
    name, _, uid, gid, _, home, shell = passwd[0].split(":")
    assert (name, home, shell) == ("districtmon", "/var/lib/districtmon", "/usr/sbin/nologin")
    assert int(uid) < 1000, "a system user"
    assert (tmp_path / "etc" / "group").read_text().startswith(f"districtmon:x:{gid}:")


# --- make install / uninstall, staged with DESTDIR --------------------------------------------


def make(target: str, destdir: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [tool("make"), "--no-print-directory", "-C", str(ROOT), target, f"DESTDIR={destdir}"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert done.returncode == 0, f"make {target}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `make install DESTDIR=...` for the module (pip installs the project: ~5-10 s)."""
    destdir = tmp_path_factory.mktemp("destdir")
    make("install", destdir)
    return destdir


def test_install_stages_what_the_unit_expects(staged: Path) -> None:
    unit = staged / UNIT_DIR / "districtmon.service"
    text = unit.read_text(encoding="utf-8")
    assert text == UNIT.read_text(encoding="utf-8"), "default PREFIX: the unit as written"
    program = shlex.split(only(text, "ExecStart"))[0]
    staged_program = staged / program.lstrip("/")
    assert staged_program.is_file() and os.access(staged_program, os.X_OK)
    # a staged venv must name its final place, not the staging one
    assert staged_program.read_text().splitlines()[0] == f"#!{PREFIX}/bin/python"
    leaks = subprocess.run(
        ["grep", "-rlF", str(staged), str(staged / "opt/districtmon/bin")],
        capture_output=True,
        text=True,
    )
    assert leaks.stdout == ""
    assert (staged / SYSUSERS_DIR / "districtmon.conf").read_bytes() == SYSUSERS.read_bytes()
    # the configuration the unit names (-c /etc/districtmon), group-readable only
    conf = staged / CONF_DIR
    for name in ("districtmon.yaml", "credentials.yaml", "inventory/communes.yaml"):
        assert (conf / name).read_bytes() == (ROOT / "config" / name).read_bytes()
        assert stat.S_IMODE((conf / name).stat().st_mode) == 0o640
    assert stat.S_IMODE(conf.stat().st_mode) == 0o750
    assert only(text, "ConfigurationDirectoryMode") == "0750", "as installed: no warning"


def test_install_puts_the_dashboards_where_grafana_provisioning_reads_them(staged: Path) -> None:
    provider = (ROOT / "dashboards/provisioning/dashboards/districtmon.yaml").read_text("utf-8")
    [path] = re.findall(r"^\s*path:\s*(\S+)", provider, re.M)
    shipped = sorted(p.name for p in (ROOT / "dashboards").glob("*.json"))
    assert sorted(p.name for p in (staged / path.lstrip("/")).glob("*.json")) == shipped
    share = staged / PREFIX.lstrip("/") / "share"
    assert (share / "prometheus/dashboards.rules.yml").is_file()
    assert (share / "grafana/provisioning/datasources/districtmon.yaml").is_file()


def test_install_ships_the_runbooks_and_the_alerting_examples(staged: Path) -> None:
    """The alerts link to runbooks the daemon serves from its package, and the examples an
    operator copies to Prometheus and Alertmanager come with the program."""
    prefix = staged / PREFIX.lstrip("/")
    [packaged] = list(prefix.glob("lib/python3*/site-packages/monitor/expose/runbooks.md"))
    assert not packaged.is_symlink(), "the wheel holds the file, not the checkout's link"
    runbooks = (ROOT / "config/prometheus/runbooks.md").read_bytes()
    assert packaged.read_bytes() == runbooks
    share = prefix / "share"
    assert (share / "prometheus/runbooks.md").read_bytes() == runbooks
    for name in ("prometheus.yml", "recording.yml", "alerts.yml", "dashboards.rules.yml"):
        assert (share / "prometheus" / name).read_bytes() == (
            ROOT / "config/prometheus" / name
        ).read_bytes()
    assert (share / "alertmanager/alertmanager.yml").read_bytes() == (
        ROOT / "config/alertmanager/alertmanager.yml"
    ).read_bytes()
    shipped = sorted(p.name for p in (ROOT / "config/alertmanager/templates").glob("*.tmpl"))
    assert sorted(p.name for p in (share / "alertmanager/templates").glob("*.tmpl")) == shipped
    # as installed, each is whole: the rule files beside prometheus.yml, the templates beside
    # alertmanager.yml
    checked = subprocess.run(
        [tool("promtool"), "check", "config", str(share / "prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checked = subprocess.run(
        [tool("amtool"), "check-config", str(share / "alertmanager/alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0 and "1 templates" in checked.stdout, checked.stdout


def test_the_staged_unit_verifies_against_the_staged_tree(staged: Path, tmp_path: Path) -> None:
    text = (staged / UNIT_DIR / "districtmon.service").read_text(encoding="utf-8")
    unit = write_unit(tmp_path, text.replace(f"{PREFIX}/", f"{staged}{PREFIX}/"))
    done = verify(unit)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_installed_daemon_runs_as_the_unit_starts_it(staged: Path, tmp_path: Path) -> None:
    """ExecStart's command line, from the staged venv, on the installed config: READY=1 comes,
    and with no ledger.path the ledger lands in $STATE_DIRECTORY (StateDirectory=)."""
    conf = shutil.copytree(staged / CONF_DIR, tmp_path / "conf")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings_file = conf / "districtmon.yaml"
    shipped = settings_file.read_text(encoding="utf-8")
    assert "\nledger:" not in shipped, "the shipped config leaves the ledger to StateDirectory="
    settings_file.write_text(shipped.replace("127.0.0.1:9877", f"127.0.0.1:{port}"))
    state = tmp_path / "state"
    state.mkdir()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(0.5)

    unit = (staged / UNIT_DIR / "districtmon.service").read_text(encoding="utf-8")
    argv = shlex.split(only(unit, "ExecStart"))
    argv[0] = str(staged) + argv[0]
    argv[argv.index("/etc/districtmon")] = str(conf)
    python = staged / PREFIX.lstrip("/") / "bin" / "python"  # the shebang names /opt
    env = {
        "PATH": "/usr/bin:/bin",
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "STATE_DIRECTORY": str(state),
    }
    log = (tmp_path / "daemon.log").open("w")
    proc = subprocess.Popen(
        [str(python), *argv], cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while "READY=1" not in messages:
            assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
            assert time.monotonic() < deadline, "no READY=1 in 30 s"
            with contextlib.suppress(TimeoutError):
                messages += notify.recv(4096).decode().splitlines()
        assert (state / "ledger.sqlite").is_file()
        # the runbooks the alerts link to, served from the installed package
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/runbooks/BtsDown")
            response = connection.getresponse()
            response.read()
            assert (response.status, response.getheader("Location")) == (302, "/runbooks#btsdown")
            connection.request("GET", "/runbooks")
            page = connection.getresponse().read().decode()
            assert '<section id="btsdown"><pre>## BtsDown' in page
        finally:
            connection.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "daemon.log").read_text()
    finally:
        proc.kill()
        proc.wait()
        notify.close()
        log.close()


def test_reinstall_keeps_the_config_and_uninstall_keeps_config_and_ledger(
    staged: Path, tmp_path: Path
) -> None:
    destdir = tmp_path / "destdir"
    shutil.copytree(staged, destdir, symlinks=True)
    edited = destdir / CONF_DIR / "credentials.yaml"
    edited.write_text("snmp: {}\n# the operator's own\n", encoding="utf-8")
    removed = destdir / CONF_DIR / "inventory" / "bts.yaml"
    removed.unlink()
    ledger = destdir / "var/lib/districtmon/ledger.sqlite"
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"history")

    again = make("install", destdir)
    assert "keeping the existing configuration" in again.stdout
    assert edited.read_text(encoding="utf-8").endswith("# the operator's own\n")
    assert not removed.exists(), "nothing is put back either"

    make("uninstall", destdir)
    assert not (destdir / "opt/districtmon").exists()
    assert not (destdir / UNIT_DIR / "districtmon.service").exists()
    assert not (destdir / SYSUSERS_DIR / "districtmon.conf").exists()
    assert edited.read_text(encoding="utf-8").endswith("# the operator's own\n")
    assert ledger.read_bytes() == b"history"


def test_install_refuses_to_touch_the_system_without_root() -> None:
    as_user = [tool("make"), "-C", str(ROOT), "install"]
    if os.geteuid() == 0:  # CI runs as root: try it as nobody
        as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *as_user]
    done = subprocess.run(as_user, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "run as root" in done.stderr
