"""Ledger benchmark: bytes per site per day, and the time of a month's report for 20,000 sites.

A synthetic district is written through the real ledger writer (its batching, its hourly
rollups, its clamping) on a simulated clock, as the daemon would over a month:

- 70 % of sites are steady (an outage every 20 days), 25 % ordinary (one every 3 days),
  5 % flap (6 short outages a day); outages last minutes to hours (log-normal);
- 20 % of sites sit behind a parent: a third of their outages are `unreachable`;
- 10 % run on battery now and then (`degraded` for 1-3 h);
- a third (one operator) have a weekly 2 h maintenance window;
- the daemon restarts twice (a clean stop of 5 min, a crash of 2 h): every site unknown;
- every change is confirmed 0-3 min after it began and dated at its start, like the evaluator.

Then a 31-day report (a calendar month in Asia/Ho_Chi_Minh time, as the office asks for it)
is built for every site, by commune, and rendered to CSV, the monthly page the daemon serves
at /report is made (its weight too), a commune's 30-day history for the status page is read,
and the /metrics availability gauges are computed once. Prints a table.

    .venv/bin/python bench/ledger_bench.py                 # 20,000 sites, 31 days
    .venv/bin/python bench/ledger_bench.py --sites 500 --days 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import heapq
import math
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.core.availability import HOUR_MS, to_ms
from monitor.core.model import Commune, Owner, Site, SnmpProbe, State, Transition
from monitor.expose.commune import WindowTallies, commune_report
from monitor.ledger.recent import compute as compute_gauges
from monitor.ledger.writer import Ledger
from monitor.report.build import build_report
from monitor.report.monthly import report_html
from monitor.report.render import render_csv
from monitor.state.live import LiveState

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
GRACE = 900.0
PRIORITY = {State.MAINTENANCE: 4, State.DOWN: 3, State.UNREACHABLE: 3, State.DEGRADED: 2}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def district(n: int) -> tuple[list[Site], list[Commune], list[Owner]]:
    communes = [
        Commune(f"xa-{i:03d}", f"Xã Mường Ảng {i}", 21.0, 103.0) for i in range(max(1, n // 400))
    ]
    owners = [
        Owner("viettel", "Viettel", "operator"),
        Owner("vnpt", "VNPT Điện Biên", "operator"),
        Owner("mobifone", "MobiFone", "operator"),
    ]
    kinds = ["bts", "bts", "bts", "gateway", "loudspeaker"]
    sites = []
    for i in range(n):
        parent = f"s{i - i % 5:05d}" if i % 5 else None
        sites.append(
            Site(
                f"s{i:05d}",
                kinds[i % len(kinds)],
                f"Trạm {i} Điện Biên",
                communes[i % len(communes)].id,
                owners[i % 3].id,
                21.0,
                103.0,
                SnmpProbe("127.0.0.1"),
                parent=parent if i % 5 == 1 else None,
            )
        )
    return sites, communes, owners


def timeline(
    rng: random.Random, index: int, site: Site, start: float, end: float, weekly: list[float]
) -> list[tuple[float, State, str]]:
    """One site's true states over [start, end): (since, state, reason), changes only."""
    spans: list[tuple[float, float, State]] = []
    kind = rng.random()
    rate = 6.0 if kind < 0.05 else (1 / 3 if kind < 0.30 else 1 / 20)  # outages per day
    t = start
    while True:
        t += rng.expovariate(rate / 86400)
        if t >= end:
            break
        if rate > 1:
            length = rng.uniform(120, 600)
        else:
            length = min(6 * 3600, math.exp(rng.gauss(math.log(1200), 1.1)))
        state = State.UNREACHABLE if site.parent and rng.random() < 1 / 3 else State.DOWN
        spans.append((t, t + length, state))
        t += length
    if index % 10 == 3:
        t = start
        while (t := t + rng.expovariate(0.5 / 86400)) < end:
            spans.append((t, t + rng.uniform(3600, 3 * 3600), State.DEGRADED))
    if site.owner == "viettel":
        spans.extend((w, w + 7200, State.MAINTENANCE) for w in weekly)
    edges: list[tuple[float, int, State]] = []
    for a, b, state in spans:
        edges.append((max(a, start), 1, state))
        edges.append((min(b, end), -1, state))
    edges.sort(key=lambda e: e[0])
    active: dict[State, int] = {}
    out: list[tuple[float, State, str]] = [(start, State.UP, "")]
    for when, delta, state in edges:
        active[state] = active.get(state, 0) + delta
        live = [s for s, count in active.items() if count > 0]
        current = max(live, key=lambda s: PRIORITY[s]) if live else State.UP
        if current is not out[-1][1]:
            reason = "snmp timeout: no answer" if current is State.DOWN else ""
            if out[-1][0] == when:
                out[-1] = (when, current, reason)
            else:
                out.append((when, current, reason))
    return out


def events(
    sites: list[Site], start: float, end: float, seed: int
) -> Iterator[tuple[float, Transition]]:
    """Every recorded change of every site, in the order the daemon would record them."""
    rng = random.Random(seed)
    first_tuesday = dt.datetime.fromtimestamp(start, HCM).date()
    while first_tuesday.weekday() != 1:
        first_tuesday += dt.timedelta(days=1)
    weekly = []
    day = first_tuesday
    while (w := dt.datetime.combine(day, dt.time(2), HCM).timestamp()) < end:
        weekly.append(w)
        day += dt.timedelta(days=7)
    streams = []
    for index, site in enumerate(sites):
        changes = timeline(rng, index, site, start, end, weekly)
        stream = []
        previous = State.UNKNOWN
        for since, state, reason in changes:
            delay = 0.0 if state is State.MAINTENANCE else rng.uniform(0, 180)
            stream.append((since + delay, Transition(site.id, state, since, previous, reason)))
            previous = state
        streams.append(stream)
    return heapq.merge(*streams, key=lambda e: e[0])


def state_at(changes: dict[str, State], site: str) -> State:
    return changes.get(site, State.UP)


async def generate(path: Path, n: int, start: float, end: float, seed: int) -> dict[str, float]:
    sites, communes, owners = district(n)
    clock = Clock(start)
    rng = random.Random(seed + 1)
    restarts = [
        (start + (end - start) * 0.37, 300.0, True),
        (start + (end - start) * 0.71, 7200.0, False),
    ]
    stats = {"transitions": 0.0, "write_seconds": 0.0, "rollup_passes": 0.0}
    t_wall = time.perf_counter()
    ledger = await Ledger.open(
        path, clock=clock, heartbeat_seconds=0.002, rollup_grace_seconds=GRACE
    )
    await ledger.sync_sites(sites, communes, owners)
    writer = asyncio.create_task(ledger.run())
    for site in sites:
        ledger.record(Transition(site.id, State.UNKNOWN, start, State.UNKNOWN, "no data yet"))
    current: dict[str, State] = {}
    passes = 0

    def count_pass(_watermark: int) -> None:
        nonlocal passes
        passes += 1

    ledger.on_rollup = count_pass
    next_hour = (int(start) // 3600 + 1) * 3600.0
    dead_until = -1.0
    pending_restarts = list(restarts)
    for due, transition in events(sites, start, end + 3 * 3600, seed):
        while due >= next_hour:
            clock.now = next_hour
            await settle(ledger, clock)
            next_hour += 3600.0
        if pending_restarts and due >= pending_restarts[0][0]:
            at, length, clean = pending_restarts.pop(0)
            clock.now = at
            await settle(ledger, clock)
            ledger.stop()
            await writer
            if clean:
                await ledger.close(at=at)
            else:  # a crash: what is committed stays, nothing is closed
                await ledger._db.close()
            clock.now = dead_until = at + length
            ledger = await Ledger.open(
                path, clock=clock, heartbeat_seconds=0.002, rollup_grace_seconds=GRACE
            )
            ledger.on_rollup = count_pass
            await ledger.sync_sites(sites, communes, owners)
            writer = asyncio.create_task(ledger.run())
            for site in sites:  # unknown until the first poll, within a minute
                ledger.record(
                    Transition(site.id, State.UNKNOWN, dead_until, State.UNKNOWN, "no data yet")
                )
                first = dead_until + rng.uniform(0, 60)
                ledger.record(Transition(site.id, state_at(current, site.id), first, State.UNKNOWN))
            next_hour = (int(clock.now) // 3600 + 1) * 3600.0
        if transition.since < dead_until:
            current[transition.site] = transition.state
            continue  # the daemon was not running
        clock.now = max(clock.now, due)
        current[transition.site] = transition.state
        ledger.record(transition)
        stats["transitions"] += 1
    clock.now = end + 3 * 3600
    await settle(ledger, clock)
    ledger.stop()
    await writer
    await ledger.close(at=clock.now)
    stats["write_seconds"] = time.perf_counter() - t_wall
    stats["rollup_passes"] = passes
    return stats


async def settle(ledger: Ledger, clock: Clock) -> None:
    target = (to_ms(clock.now) - ledger.rollup_grace_ms) // HOUR_MS * HOUR_MS
    for _ in range(1_000_000):
        if ledger.pending == 0 and ledger.watermark >= target:
            return
        await asyncio.sleep(0.001)


def table_sizes(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        try:
            rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:
            return {}
        indexes = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type='index'"))
    sizes: dict[str, int] = {}
    for name, size in rows:
        table = indexes.get(name, name)
        if table.startswith("sqlite_autoindex_"):
            table = table.split("_")[2]
        sizes[table] = sizes.get(table, 0) + int(size)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sites", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the ledger here and keep it")
    args = parser.parse_args()

    month = dt.datetime(2025, 3, 1, tzinfo=HCM)
    start = month.timestamp()
    end = (month + dt.timedelta(days=args.days)).timestamp()
    gen_start = start - 86400  # a day before the month: the report's first edge is real data
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "ledger.sqlite"
        path.unlink(missing_ok=True)
        stats = asyncio.run(generate(path, args.sites, gen_start, end, args.seed))
        size = path.stat().st_size
        site_days = args.sites * (end + 3 * 3600 - gen_start) / 86400
        sizes = table_sizes(path)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            intervals = conn.execute("SELECT COUNT(*) FROM intervals").fetchone()[0]
            rollups = conn.execute("SELECT COUNT(*) FROM rollup_days").fetchone()[0]

        timings = {}
        began = time.perf_counter()
        report = build_report([path], start, end, "site", "Asia/Ho_Chi_Minh", now=end + 86400)
        timings["report"] = time.perf_counter() - began
        began = time.perf_counter()
        csv_text = render_csv(report)
        timings["csv"] = time.perf_counter() - began
        began = time.perf_counter()
        by_commune = build_report(
            [path], start, end, "commune", "Asia/Ho_Chi_Minh", now=end + 86400
        )
        timings["commune"] = time.perf_counter() - began
        began = time.perf_counter()
        page = report_html(None, [path], start, end, "Asia/Ho_Chi_Minh")
        timings["page"] = time.perf_counter() - began
        listed, communes, owners = district(args.sites)
        sites = {s.id: s for s in listed}
        live = LiveState(sites, {c.id: c for c in communes}, {o.id: o for o in owners})
        shared = WindowTallies(path)  # as the daemon's HTTP server keeps it
        began = time.perf_counter()
        commune = commune_report(live, communes[0].id, shared, "30d", now=end)
        timings["commune_page"] = time.perf_counter() - began
        assert commune is not None and commune["history"] is not None
        began = time.perf_counter()
        commune_report(live, communes[-1].id, shared, "30d", now=end + 10)
        timings["commune_warm"] = time.perf_counter() - began
        cache: dict = {}  # type: ignore[type-arg]
        began = time.perf_counter()
        gauges = compute_gauges(path, sites, end + 3 * 3600, cache)
        timings["gauges"] = time.perf_counter() - began
        began = time.perf_counter()  # a minute later: the rolled-up middle is cached
        gauges = compute_gauges(path, sites, end + 3 * 3600 + 60, cache)
        timings["gauges_warm"] = time.perf_counter() - began

    assert len(report.rows) == args.sites and csv_text.count("\n") == args.sites + 2
    assert len(by_commune.rows) == max(1, args.sites // 400) and gauges.sites
    avail = report.total.figures.availability or 0.0
    rows = [
        ("sites x days", f"{args.sites:,} x {args.days} (+1 day before, as the month's edge)"),
        (
            "transitions written",
            f"{stats['transitions']:,.0f}  "
            f"({stats['transitions'] / site_days:.2f} per site per day)",
        ),
        ("intervals / rollup rows", f"{intervals:,} / {rollups:,}"),
        (
            "generation (writer, rollups)",
            f"{stats['write_seconds']:.1f} s, {stats['rollup_passes']:.0f} hourly passes",
        ),
        ("ledger file", f"{size / 1e6:,.1f} MB"),
        ("bytes per site per day", f"{size / site_days:,.0f} B   (target < 1,000)"),
    ]
    for table in ("intervals", "rollup_days", "sites", "site_keys"):
        if table in sizes:
            rows.append((f"  of which {table}", f"{sizes[table] / site_days:,.0f} B"))
    rows += [
        ("31-day report, by site", f"{timings['report']:.2f} s   (target < 3 s)"),
        ("  + CSV rendering", f"{timings['csv']:.2f} s"),
        ("31-day report, by commune", f"{timings['commune']:.2f} s"),
        (
            "/report page (commune, owner, kind)",
            f"{timings['page']:.2f} s, {len(page.encode()) / 1024:,.1f} KB",
        ),
        (
            "a commune's 30 days (status page)",
            f"{timings['commune_page']:.2f} s, then {timings['commune_warm']:.3f} s for any "
            "commune within the minute",
        ),
        (
            "/metrics gauges (1h/24h/7d/30d)",
            f"{timings['gauges']:.2f} s after a rollup pass, "
            f"{timings['gauges_warm']:.2f} s otherwise (worker thread)",
        ),
        ("district availability", f"{avail * 100:.3f} %, {report.total.figures.outages:,} outages"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
