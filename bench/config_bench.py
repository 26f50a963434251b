"""Configuration load benchmark: time and memory of loading a province-sized inventory.

A configuration directory is generated from the shipped district (config/): its settings,
credentials, device profiles and telemetry mappings as they are, and its inventory repeated
until it holds N sites. Each copy of the district is a district of its own (its communes,
its sites, their parents and the areas their loudspeakers cover, all renamed `...-dNNN`),
sharing the owners; every kind of site and probe of the shipped district is there in the
same proportions (BTS, gateways and radio stations over SNMP with their profiles,
loudspeakers over MQTT, video endpoints and post points by ICMP/TCP, portals by HTTP),
written one site a line as the shipped files are, in files of at most 5,000 sites.

Each measure runs in a fresh process that loads the directory the way `districtmon run`
does, the whole inventory and then as `--shard 1/2` and `--shard 1/4`: first reading every
file (`readings: none`, as `districtmon check-config` and a daemon's very first load do), then
with what the daemon keeps in a state directory of the bench's own: a whole load that makes
it (`made`); a shard's first load from each file's whole kept reading (reading_cache.py),
which keeps its part of each (`parts`: a shard started beside a whole daemon or another
shard); loads that find each file's kept reading, or their share's part of it, but no
outcome of the checks for their share (`files`: a reload after an edit of the inventory,
the edited file aside); and loads that find their share's kept outcome of the inventory's
checks (checked_inventory.py; `outcome`: a restart, a reload that changed no inventory
file). It reports:

- load wall and CPU seconds (its own CPU and that of any process it waited for);
- peak RSS (the highest of the process and of any process it waited for) and RSS after the
  load, what the daemon carries for the rest of its life;
- the sites it keeps (its own) and of other shards' those it meets (MQTT sites, parents).

    .venv/bin/python bench/config_bench.py                  # 20,000 and 100,000 sites
    .venv/bin/python bench/config_bench.py --sites 5000
    .venv/bin/python bench/config_bench.py --smoke          # 2,000 sites, a few seconds
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHIPPED = ROOT / "config"
SITES_PER_FILE = 5000
_PLAIN = re.compile(r"[A-Za-z0-9À-ỹ][A-Za-z0-9À-ỹ .()/_-]*")
_NUMBERISH = re.compile(r"[-+.0-9]|(true|false|yes|no|on|off|null|~)$", re.IGNORECASE)


def _scalar(value: object) -> str:
    """A value as the shipped files write it: plain where YAML reads it back unchanged."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and not _NUMBERISH.match(text) and not text.endswith(" "):
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    return _scalar(value)


def _shipped(key: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for path in sorted((SHIPPED / "inventory").glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        found.extend(document.get(key) or [])
    return found


def _renamed(entry: dict[str, object], copy: int, keys: tuple[str, ...]) -> dict[str, object]:
    """An entry of copy `copy` of the district: its own ids, references and areas."""
    if copy == 0:
        return entry
    suffix = f"-d{copy:03d}"
    found = dict(entry)
    for key in keys:
        if isinstance(found.get(key), str):
            found[key] = f"{found[key]}{suffix}"
    for key in ("areas", "covers"):  # each district its own residential areas
        areas = found.get(key)
        if isinstance(areas, list):
            found[key] = [f"{area} {suffix[1:]}" for area in areas]
    return found


def _sites(count: int) -> Iterator[tuple[int, dict[str, object]]]:
    template = _shipped("sites")
    copy = 0
    made = 0
    while made < count:
        for site in template:
            if made == count:
                return
            yield copy, _renamed(site, copy, ("id", "commune", "parent"))
            made += 1
        copy += 1


def generate(directory: Path, count: int) -> int:
    """Write a configuration of `count` sites into `directory`; return its inventory bytes."""
    for name in ("districtmon.yaml", "credentials.yaml", "maintenance.yaml"):
        if (SHIPPED / name).exists():
            shutil.copy(SHIPPED / name, directory / name)
    (directory / "credentials.yaml").chmod(0o600)
    shutil.copytree(SHIPPED / "profiles", directory / "profiles")
    shutil.copytree(SHIPPED / "mqtt", directory / "mqtt")
    inventory = directory / "inventory"
    inventory.mkdir()
    owners = _shipped("owners")
    (inventory / "owners.yaml").write_text(
        "owners:\n" + "".join(f"  - {_flow(owner)}\n" for owner in owners), encoding="utf-8"
    )
    communes = _shipped("communes")
    copies = 0
    lines: list[str] = []
    number = 0

    def flush() -> None:
        nonlocal lines, number
        if lines:
            number += 1
            text = "sites:\n" + "".join(lines)
            (inventory / f"sites-{number:03d}.yaml").write_text(text, encoding="utf-8")
            lines = []

    for copy, site in _sites(count):
        copies = max(copies, copy + 1)
        lines.append(f"  - {_flow(site)}\n")
        if len(lines) == SITES_PER_FILE:
            flush()
    flush()
    (inventory / "communes.yaml").write_text(
        "communes:\n"
        + "".join(
            f"  - {_flow(_renamed(commune, copy, ('id',)))}\n"
            for copy in range(copies)
            for commune in communes
        ),
        encoding="utf-8",
    )
    # the shipped maintenance windows name shipped sites and communes, which copy 0 keeps
    return sum(path.stat().st_size for path in inventory.iterdir())


def _rss_mb(field: str = "VmRSS") -> float:
    """This process's RSS now, or (VmHWM) its highest: the one that getrusage gives lags the
    RSS by a few pages, and a load that peaks at its end would seem to end above its peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _measure(directory: Path, shard_text: str | None, state: Path | None) -> dict[str, float]:
    """One load, in this (fresh) process, as `districtmon run [--shard i/N]` does it; with
    `state`, the daemon's state directory, where it keeps its readings."""
    from monitor.config import shards
    from monitor.config.load import load_config

    def restricted(directory: Path, shard: shards.Shard | None, environ: dict[str, str]) -> Any:
        return shards.restrict(load_config(directory, environ), shard)

    # a districtmon from before load_shard is measured the way its `run` loaded
    load_shard: Callable[..., Any] = getattr(shards, "load_shard", restricted)
    shard = shards.Shard.parse(shard_text) if shard_text else None
    before = _rss_mb()
    cpu = _cpu()
    wall = time.perf_counter()
    if state is None:
        config = load_shard(directory, shard, environ={})
    else:
        config = load_shard(directory, shard, environ={"STATE_DIRECTORY": str(state)}, cache=True)
    wall = time.perf_counter() - wall
    cpu = _cpu() - cpu
    after = _rss_mb()  # before the peak, which then counts it
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall": wall,
        "cpu": cpu,
        "peak": max(_rss_mb("VmHWM"), children.ru_maxrss / 1024),
        "before": before,
        "after": after,
        "sites": len(config.sites),
        "others": len(config.sites_of_other_shards),
    }


def _cpu() -> float:
    """CPU seconds of this process and of the processes it waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _run(directory: Path, shard: str | None, state: Path | None) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(directory)]
    if shard:
        command += ["--shard", shard]
    if state:
        command += ["--state", str(state)]
    out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"the load failed:\n{out.stdout}{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sites", type=int, action="append", help="inventory size (repeat)")
    parser.add_argument("--smoke", action="store_true", help="2,000 sites: does it still run")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--shard", help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_measure(args.child, args.shard, args.state)))
        return
    from monitor.config.checked_inventory import SUFFIX, share_tag  # the kept outcomes' names
    from monitor.config.shards import Shard

    sizes = args.sites or ([2000] if args.smoke else [20_000, 100_000])
    titles = [("sites", 8), ("load", -5), ("readings", -8), ("wall s", 7), ("CPU s", 7)]
    titles += [("peak RSS MB", 11), ("RSS after MB", 12), ("(before load)", 13)]
    titles += [("kept", 7), ("others met", 10)]
    header = "  ".join(title.ljust(-w) if w < 0 else title.rjust(w) for title, w in titles)
    print(header)
    print("-" * len(header))
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="config-bench-") as tmp:
            directory = Path(tmp)
            (directory / "config").mkdir()
            generate(directory / "config", size)
            state = directory / "state"
            plan: list[tuple[str | None, Path | None, str]]
            plan = [(shard, None, "none") for shard in (None, "1/2", "1/4")]
            plan += [(None, state, "made"), (None, state, "files")]
            plan += [(shard, state, row) for shard in ("1/2", "1/4") for row in ("parts", "files")]
            plan += [(shard, state, "outcome") for shard in (None, "1/2", "1/4")]
            for shard, kept, readings in plan:
                if readings in ("parts", "files"):  # as if this share's checks were not kept
                    tag = share_tag(None if shard is None else Shard.parse(shard))
                    for outcome in state.glob(f"*/*.{tag}{SUFFIX}"):
                        outcome.unlink()
                row = _run(directory / "config", shard, kept)
                cells = [f"{size:>8,}", f"{shard or 'whole':<5}", f"{readings:<8}"]
                cells += [f"{row['wall']:>7.2f}", f"{row['cpu']:>7.2f}", f"{row['peak']:>11.0f}"]
                cells += [f"{row['after']:>12.0f}", f"{row['before']:>13.0f}"]
                cells += [f"{int(row['sites']):>7,}", f"{int(row['others']):>10,}"]
                print("  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
