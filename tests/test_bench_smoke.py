"""The ledger benchmark still runs (tiny: a few hundred sites over two days, about a second);
its real figures come from running it by hand at full size."""

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
