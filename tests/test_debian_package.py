"""The Debian package built by packaging/build-deb: what `make install` stages, in the Debian
places, installed with dpkg into a scratch root (its maintainer scripts run against that root
through DPKG_ROOT), checked there, and removed.

Needs make, dpkg and python3-venv (Debian packages, installed by `./dev setup`) and systemd's
systemd-analyze and systemd-sysusers; systemd need not be PID 1."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_systemd_units import UNIT, only, tool, verify, write_unit

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/opt/districtmon"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build for the module: make install into a staging tree, then dpkg-deb (pip installs
    the project and its dependencies into the venv: about 15 s)."""
    out = tmp_path_factory.mktemp("dist")
    # uncompressed: xz takes half a minute of the build and changes nothing tested here
    done = subprocess.run(
        [str(ROOT / "packaging" / "build-deb"), str(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "DEB_COMPRESSION": "none"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == out
    return path


class Scratch:
    """An empty system root with its own dpkg database; the package's maintainer scripts run
    on this machine with DPKG_ROOT pointing here (no chroot: the root holds no shell)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        admin = root / "var" / "lib" / "dpkg"
        for name in ("info", "updates", "triggers"):
            (admin / name).mkdir(parents=True)
        (admin / "status").touch()
        (admin / "available").touch()
        (root / "etc").mkdir()

    def dpkg(self, *args: str) -> subprocess.CompletedProcess[str]:
        force = ["--force-script-chrootless", "--force-depends"]
        if os.geteuid() != 0:
            force.append("--force-not-root")
        return run(
            tool("dpkg"), f"--root={self.root}", *force, "--log=/dev/null",
            "--force-confold", *args,
        )  # fmt: skip

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def python(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The installed program, run by its venv's interpreter (its scripts' shebang names
        /opt, which is the scratch root's, not this machine's)."""
        python = self.path(f"{PREFIX}/bin/python")
        return subprocess.run(
            [str(python), *args], capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.root)},
            cwd=self.root,  # not the checkout: its own metadata (an egg-info) would be found
        )  # fmt: skip


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Scratch]:
    yield Scratch(tmp_path / "root")


def test_the_package_says_what_it_is_and_lists_the_configuration_as_conffiles(deb: Path) -> None:
    info = run(tool("dpkg-deb"), "--field", str(deb)).stdout
    fields = dict(re.findall(r"^(\S+): (.*)$", info, re.M))
    assert fields["Package"] == "districtmon"
    version = sys.version_info
    assert f"python3 (>= {version.major}.{version.minor}~)" in fields["Depends"]
    assert f"python3 (<< {version.major}.{version.minor + 1}~)" in fields["Depends"]
    arch = run(tool("dpkg"), "--print-architecture").stdout.strip()
    assert fields["Architecture"] == arch
    conffiles = run(tool("dpkg-deb"), "--info", str(deb), "conffiles").stdout.split()
    contents = run(tool("dpkg-deb"), "--contents", str(deb)).stdout
    under_etc = [
        line.split()[-1].removeprefix(".")
        for line in contents.splitlines()
        if line.startswith("-") and " ./etc/" in line
    ]
    assert sorted(conffiles) == sorted(under_etc), "every file of /etc is a conffile"
    for name in ("districtmon.yaml", "credentials.yaml", "inventory/bts.yaml"):
        assert f"/etc/districtmon/{name}" in conffiles
    assert "./usr/lib/systemd/system/districtmon.service" in contents
    assert "./usr/share/districtmon/grafana/dashboards/overview.json" in contents
    assert "monitor/examples/starter/districtmon.yaml" in contents  # package data


def test_it_installs_into_a_root_runs_and_removes_cleanly(deb: Path, scratch: Scratch) -> None:
    host_users = Path("/etc/passwd").read_bytes()
    scratch.dpkg("-i", str(deb))
    assert Path("/etc/passwd").read_bytes() == host_users, "the scripts kept to the root"
    status = run(tool("dpkg"), f"--root={scratch.root}", "-s", "districtmon").stdout
    assert "Status: install ok installed" in status

    # the user, made in the root by the postinst (sysusers), owns the configuration's group
    passwd = scratch.path("/etc/passwd").read_text().splitlines()
    [entry] = [line.split(":") for line in passwd if line.startswith("districtmon:")]
    assert (entry[5], entry[6]) == ("/var/lib/districtmon", "/usr/sbin/nologin")
    gid = int(entry[3])
    conf = scratch.path("/etc/districtmon")
    assert conf.stat().st_gid == gid and (conf / "credentials.yaml").stat().st_gid == gid
    assert oct(conf.stat().st_mode & 0o777) == "0o750"
    assert oct((conf / "credentials.yaml").stat().st_mode & 0o777) == "0o640"

    # layout: the program in /opt, shared data in /usr/share, nothing else under the venv
    program = scratch.path(f"{PREFIX}/bin/districtmon")
    assert os.access(program, os.X_OK)
    assert program.read_text().splitlines()[0] == f"#!{PREFIX}/bin/python"
    assert sorted(p.name for p in scratch.path(f"{PREFIX}/share").iterdir()) == ["doc"]
    share = scratch.path("/usr/share/districtmon")
    assert sorted(p.name for p in (share / "grafana" / "dashboards").glob("*.json")) == sorted(
        p.name for p in (ROOT / "dashboards").glob("*.json")
    )
    assert (share / "prometheus" / "alerts.yml").read_bytes() == (
        ROOT / "config" / "prometheus" / "alerts.yml"
    ).read_bytes()
    provider = (share / "grafana/provisioning/dashboards/districtmon.yaml").read_text()
    [folder] = re.findall(r"^\s*path:\s*(\S+)", provider, re.M)
    assert folder == "/usr/share/districtmon/grafana/dashboards"
    assert scratch.path(folder).is_dir(), "the provider reads where the dashboards are"

    # the unit as installed, verified against the installed program
    unit_text = scratch.path("/usr/lib/systemd/system/districtmon.service").read_text()
    assert unit_text == UNIT.read_text(encoding="utf-8")
    assert shlex.split(only(unit_text, "ExecStart"))[0] == f"{PREFIX}/bin/districtmon"
    unit = write_unit(
        scratch.root.parent / "unit", unit_text.replace(f"{PREFIX}/", f"{scratch.root}{PREFIX}/")
    )
    done = verify(unit)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        scratch.path("/usr/lib/sysusers.d/districtmon.conf").read_bytes()
        == (ROOT / "systemd" / "districtmon.sysusers").read_bytes()
    )

    # the installed program reads the installed configuration, and writes a starter from its
    # own package data
    program_args = [str(program)]
    checked = scratch.python(*program_args, "check-config", "-c", str(conf))
    assert checked.returncode == 0, checked.stderr
    starter = scratch.root.parent / "starter"
    made = scratch.python(*program_args, "init", str(starter))
    assert made.returncode == 0, made.stderr
    again = scratch.python(*program_args, "check-config", "-c", str(starter))
    assert again.returncode == 0, again.stderr
    assert "sites: 7" in again.stdout

    # the distribution's metadata: its licence, what it is, where its documentation is
    script = (
        "import importlib.metadata as m; d = m.metadata('districtmon'); "
        "print(d['License-Expression']); print(*d.get_all('Classifier'), sep='\\n'); "
        "print(*d.get_all('Project-URL'), sep='\\n'); "
        "print(*[f for f in m.files('districtmon') if 'licenses' in str(f)])"
    )
    meta = scratch.python("-c", script)
    assert meta.returncode == 0, meta.stderr
    lines = meta.stdout.splitlines()
    assert lines[0] == "Apache-2.0"
    assert "Topic :: System :: Networking :: Monitoring" in lines
    urls = [line.split(", ", 1)[1] for line in lines if line.startswith("Documentation, ")]
    assert urls, lines
    assert scratch.path(urls[0].removeprefix("file://localhost")).is_file()
    assert any(line.endswith("licenses/LICENSE") for line in lines)

    # remove: the program goes, the configuration stays; purge: it goes too
    (conf / "districtmon.yaml").write_text("{}  # the operator's own\n")
    scratch.dpkg("-r", "districtmon")
    assert not scratch.path(f"{PREFIX}").exists()
    assert not scratch.path("/usr/lib/systemd/system/districtmon.service").exists()
    assert not scratch.path("/usr/share/districtmon").exists()
    assert (conf / "districtmon.yaml").read_text() == "{}  # the operator's own\n"
    scratch.dpkg("--purge", "districtmon")
    assert not conf.exists()
    assert "districtmon" not in run(tool("dpkg"), f"--root={scratch.root}", "-l").stdout


def test_an_edited_conffile_is_kept_when_the_package_is_installed_again(
    deb: Path, scratch: Scratch
) -> None:
    scratch.dpkg("-i", str(deb))
    edited = scratch.path("/etc/districtmon/inventory/bts.yaml")
    edited.write_text("sites: []  # our own BTS list comes later\n", encoding="utf-8")
    removed = scratch.path("/etc/districtmon/maintenance.yaml")
    removed.unlink()
    scratch.dpkg("-i", str(deb))
    assert edited.read_text(encoding="utf-8").endswith("later\n")
    assert not removed.exists(), "a conffile the operator deleted stays deleted"
    scratch.dpkg("--purge", "districtmon")
