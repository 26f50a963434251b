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
