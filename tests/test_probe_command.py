"""`districtmon probe ADDRESS --credential NAME` against real devices (snmpsim-data
recordings served by snmpsim on loopback): it says what the device is, which profile auto
picks and why, and what every value of that profile reads, as an engineer adding the device
would check it by hand."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers import Snmpsim, free_udp_port, recording
from test_config import write_config

from monitor.cli.main import main

SHIPPED_PROFILES = Path(__file__).parents[1] / "config" / "profiles"
CREDENTIALS = """\
snmp:
  district-ro: {version: 2c, community: not-served}
  ups-ro: {version: 2c, community: ups5000}
  switch-ro: {version: 2c, community: s5720}
"""


@pytest.fixture(scope="module")
def sim() -> Iterator[Snmpsim]:
    sources: dict[str, str | Path] = {
        "ups5000": recording("UPS/huawei-gse200m.snmprec.bz2"),
        "s5720": recording("network/router/huawei-s5720.snmprec.bz2"),
    }
    with Snmpsim(sources, probe_oid="1.3.6.1.2.1.1.2.0") as agent:
        agent.start(timeout=60)
        yield agent


@pytest.fixture
def config(tmp_path: Path) -> Path:
    root = write_config(tmp_path, {"credentials.yaml": CREDENTIALS})
    shutil.rmtree(root / "profiles", ignore_errors=True)
    shutil.copytree(SHIPPED_PROFILES, root / "profiles")
    return root


def probe(config: Path, *args: str) -> int:
    return main(["probe", "-c", str(config), *args])


def test_probe_says_what_the_device_is_and_every_value_its_profile_reads(
    sim: Snmpsim, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = probe(config, "127.0.0.1", "--port", str(sim.port), "--credential", "ups-ro")
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"device: 127.0.0.1:{sim.port} (credential ups-ro, SNMP v2c)" in out
    assert "sysObjectID: 1.3.6.1.4.1.8072.3.2.10" in out
    assert "sysDescr: Linux GSE200M 2.6.27-SPEAr310" in out
    assert (
        "profile auto picks: huawei-ups (Huawei): 1.3.6.1.4.1.2011.6.174.1.1.1.2.0 answered" in out
    )
    assert "  also matched: ups-mib: 1.3.6.1.2.1.33.1.1.1.0 answering" in out
    assert "  also matched: linux-host:" in out  # the card is a Linux box too
    assert "  battery_volts = 538.5\n" in out
    assert "  battery_charge_ratio = - (none: see problems)\n" in out
    assert '    input_volts{line="1"} = 236.9\n' in out
    assert "problems: not answered: input_line_bads_total; device says not available:" in out
    assert "state: up" in out


def test_probe_with_a_named_profile_polls_with_it(
    sim: Snmpsim, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["127.0.0.1", "--port", str(sim.port), "--credential", "switch-ro"]
    assert probe(config, *args, "--profile", "router") == 0
    out = capsys.readouterr().out
    assert "profile auto picks: huawei-switch (Huawei)" in out
    assert "polled with: router (--profile)" in out
    assert "profile: router - Router or LAN gateway" in out
    assert "board_cpu_load_ratio" not in out  # the router profile reads no boards


def test_a_silent_device_and_wrong_arguments_are_told_apart(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(free_udp_port())
    silent = ["127.0.0.1", "--port", port, "--credential", "ups-ro", "--timeout", "0.3"]
    assert probe(config, *silent) == 1
    assert "no answer: " in capsys.readouterr().out
    assert probe(config, "127.0.0.1", "--port", port, "--credential", "ups-r") == 2
    assert "no SNMP credential 'ups-r' in credentials.yaml" in capsys.readouterr().err
    wrong = ["127.0.0.1", "--port", port, "--credential", "ups-ro", "--profile", "routr"]
    assert probe(config, *wrong) == 2
    assert "no profile 'routr'" in capsys.readouterr().err
