"""The benchmarks still run: the ledger's (tiny: a few hundred sites over two days, about a
second) and the soak's smoke mode (one fault of each kind, about a minute); their real figures
come from running them by hand at full size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "bench" / "ledger_bench.py"


def test_the_ledger_benchmark_runs_and_prints_its_table() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--sites", "300", "--days", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = {line.split("  ")[0]: line for line in out.stdout.splitlines()}
    for measure in ("bytes per site per day", "31-day report, by site", "ledger file"):
        assert measure in lines, out.stdout
    per_day = int(lines["bytes per site per day"].split()[5].replace(",", ""))
    assert 0 < per_day < 5000


SOAK = Path(__file__).parents[1] / "bench" / "soak.py"


def test_the_soak_survives_one_fault_of_each_kind() -> None:
    """bench/soak.py --smoke: the daemon against a broker, devices, services, its trap port and
    a ledger disk of its own, through one fault of each kind; every must-be-zero figure is."""
    out = subprocess.run(
        [sys.executable, str(SOAK), "--smoke"],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    rows = {line[:33].strip(): line[33:].strip() for line in out.stdout.splitlines()}
    assert out.returncode == 0, out.stdout + out.stderr
    assert rows["faults in all"] == "8", out.stdout
    for must_be_zero in (
        "false downs",
        "missed downs",
        "lost ledger intervals",
        "tracebacks in the log",
    ):
        assert rows[must_be_zero] == "0", out.stdout
    assert rows["trap datagrams sent / uncounted"] == "2000 / 0"
    assert rows["ledger overlaps / integrity"] == "0 / ok"


CONFIG = Path(__file__).parents[1] / "bench" / "config_bench.py"


def test_the_config_load_benchmark_loads_a_generated_province_whole_and_as_a_shard() -> None:
    """bench/config_bench.py --smoke: 2,000 generated sites loaded as `districtmon run` loads
    them, whole and as --shard 1/2; the shard keeps about half and knows the rest."""
    out = subprocess.run(
        [sys.executable, str(CONFIG), "--smoke"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {}
    for line in out.stdout.splitlines()[2:]:
        sites, load, wall, cpu, peak, after, before, kept, others = line.split()
        rows[load] = (float(cpu), float(peak), float(after), int(kept.replace(",", "")))
        rows[load + " others"] = (0, 0, 0, int(others.replace(",", "")))
        assert sites == "2,000" and float(wall) > 0 and float(cpu) > 0, out.stdout
        assert float(after) <= float(peak) and float(before) < float(peak), out.stdout
    assert rows["whole"][3] == 2000 and rows["whole others"][3] == 0, out.stdout
    assert rows["1/2"][3] + rows["1/2 others"][3] == 2000, out.stdout
    assert 700 < rows["1/2"][3] < 1300, out.stdout
