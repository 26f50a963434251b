#!/usr/bin/env python3
"""What one `districtmon simulate` process costs per answer, and whether it carries 20,000 sites.

Generates an inventory of N sites (default 20,000: BTS, gateways, loudspeaker clusters, each on
its own 127.x.y.z address), starts the simulator as its own process, then drives it from
another process (gufo_snmp, a Rust-core SNMP client, so that the load generator is not the
bottleneck) through a series of phases. The simulator's CPU is read from /proc before and
after each phase; its idle cost (timers, nothing to answer) is measured first and subtracted.
With --mqtt, a mosquitto is started and the loudspeaker clusters publish over it (one
connection each), and the idle cost of those connections is measured too.

    .venv/bin/python bench/simulator_bench.py                 # 20,000 sites, ~2 minutes
    .venv/bin/python bench/simulator_bench.py --sites 2000 --seconds 5 --mqtt

Only loopback addresses are used. Not run by ./dev test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
COMMUNITY = {"bts": "sim-viettel", "gateway": "sim-district", "loudspeaker": "sim-rtv"}
GET_POLL = ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0"]  # what the daemon asks today
GET_UPS = [
    "1.3.6.1.2.1.1.3.0",
    "1.3.6.1.2.1.33.1.2.1.0",
    "1.3.6.1.2.1.33.1.2.2.0",
    "1.3.6.1.2.1.33.1.2.3.0",
    "1.3.6.1.2.1.33.1.2.5.0",
    "1.3.6.1.2.1.33.1.4.1.0",
]


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def address(index: int) -> str:
    return f"127.{20 + index // 65536}.{index // 256 % 256}.{index % 256}"


def write_inventory(root: Path, sites: int, port: int) -> list[tuple[str, str, str]]:
    """N sites in 100 communes: 70% BTS, 20% loudspeakers, 10% gateways (no parents)."""
    (root / "inventory").mkdir(parents=True)
    (root / "districtmon.yaml").write_text("{}\n")
    (root / "credentials.yaml").write_text((REPO / "config" / "credentials.yaml").read_text())
    lines = ["communes:"]
    for c in range(100):
        lines.append(f"  - {{id: c{c}, name: Commune {c}, lat: 21.0, lon: 103.0, areas: [a]}}")
    lines += ["owners:", "  - {id: o, name: Owner, kind: operator}", "sites:"]
    targets = []
    credential = {"bts": "viettel-ro", "gateway": "district-ro", "loudspeaker": "rtv-ro"}
    for i in range(sites):
        kind = "bts" if i % 10 < 7 else "loudspeaker" if i % 10 < 9 else "gateway"
        addr = address(i)
        lines.append(
            f"  - {{id: s{i}, kind: {kind}, name: Site {i}, commune: c{i % 100}, owner: o, "
            f"lat: 21.0, lon: 103.0, probe: {{snmp: {{address: {addr}, port: {port}, "
            f"credential: {credential[kind]}}}}}}}"
        )
        targets.append((addr, kind, COMMUNITY[kind]))
    (root / "inventory" / "sites.yaml").write_text("\n".join(lines) + "\n")
    return targets


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def control(port: int, path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return dict(json.loads(r.read()))


# --- the load generator (runs in its own process: `--load`) ---------------------------------


async def _load(spec: dict[str, object]) -> dict[str, object]:
    from gufo.snmp import SnmpVersion
    from gufo.snmp.aio import SnmpSession

    targets = [tuple(t) for t in spec["targets"]]  # type: ignore[union-attr]
    kind, rate, seconds = str(spec["kind"]), float(spec["rate"]), float(spec["seconds"])  # type: ignore[arg-type]
    port, in_flight = int(spec["port"]), int(spec["in_flight"])  # type: ignore[call-overload]
    if kind == "ups":
        targets = [t for t in targets if t[1] == "bts"]
    random.Random(1).shuffle(targets)
    latencies: list[float] = []
    failed = 0
    slots = asyncio.Semaphore(in_flight)

    async def one(target: tuple[str, ...]) -> None:
        nonlocal failed
        started = time.perf_counter()
        try:
            async with SnmpSession(
                addr=target[0], port=port, community=target[2], timeout=2.0,
                version=SnmpVersion.v2c,
            ) as session:  # fmt: skip
                if kind == "bulk":
                    n = 0
                    async for _ in session.getbulk("1.3.6.1.2.1.2.2.1", max_repetitions=20):
                        n += 1
                else:
                    await session.get_many(GET_UPS if kind == "ups" else GET_POLL)
            latencies.append(time.perf_counter() - started)
        except Exception:
            failed += 1
        finally:
            slots.release()

    tasks = set()
    start = time.perf_counter()
    sent = 0
    while time.perf_counter() - start < seconds:
        if rate > 0:
            due = start + sent / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await slots.acquire()
        task = asyncio.create_task(one(targets[sent % len(targets)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "sent": sent,
        "answered": len(latencies),
        "failed": failed,
        "elapsed": elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
    }


def run_load(spec: dict[str, object]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, __file__, "--load"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=float(spec["seconds"]) + 120,  # type: ignore[arg-type]
        check=True,
    )
    return dict(json.loads(proc.stdout))


# --- the bench ----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--mqtt", action="store_true", help="also measure MQTT publishers")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(asyncio.run(_load(json.loads(sys.stdin.read())))))
        return 0

    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="districtmon-simbench-") as tmp:
        root = Path(tmp)
        udp, ctl = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
        targets = write_inventory(root / "config", args.sites, udp)
        extra: list[str] = []
        broker = None
        if args.mqtt:
            mqtt_port = free_port(socket.SOCK_STREAM)
            (root / "mosquitto.conf").write_text(
                f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\n"
            )
            broker = subprocess.Popen(
                ["/usr/sbin/mosquitto", "-c", str(root / "mosquitto.conf")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            extra = ["--mqtt", f"127.0.0.1:{mqtt_port}"]
        started = time.monotonic()
        sim = subprocess.Popen(
            [sys.executable, "-m", "monitor", "simulate", "-c", str(root / "config"),
             "--control", f"127.0.0.1:{ctl}", "--log-level", "warning", *extra],
            stderr=(root / "sim.log").open("wb"),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    control(ctl, "/healthz")
                    break
                except OSError:
                    if sim.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit((root / "sim.log").read_text()) from None
                    time.sleep(0.1)
            ready = time.monotonic() - started
            stats = control(ctl, "/stats")
            print(
                f"{args.sites} sites ready in {ready:.1f} s; {stats['sockets']} UDP socket(s), "
                f"{stats['bind']} binding; RSS {rss_mib(sim.pid):.0f} MiB",
                flush=True,
            )
            if args.mqtt:
                speakers = sum(1 for t in targets if t[1] == "loudspeaker")
                t0 = time.monotonic()
                while control(ctl, "/stats")["mqtt"]["connected"] < speakers:  # type: ignore[index]
                    if time.monotonic() - t0 > 300:
                        break
                    time.sleep(0.5)
                connected = control(ctl, "/stats")["mqtt"]["connected"]  # type: ignore[index]
                print(
                    f"{connected} MQTT connections up in {time.monotonic() - t0:.1f} s; "
                    f"RSS {rss_mib(sim.pid):.0f} MiB",
                    flush=True,
                )
            time.sleep(2)
            c0 = cpu_seconds(sim.pid)
            time.sleep(args.seconds)
            idle = (cpu_seconds(sim.pid) - c0) / args.seconds
            label = "idle (timers" + (", MQTT keepalive and telemetry)" if args.mqtt else ")")
            rows.append((label, "-", "-", "-", "-", "-", f"{100 * idle:.1f}%", "-"))
            phases = [
                ("GET sysUpTime+sysName, 20k sites/min", "get", args.sites / 60, 64),
                ("GET sysUpTime+sysName, 1000/s", "get", 1000, 64),
                ("GET 6 UPS-MIB objects (BTS), 20k/min", "ups", args.sites / 60, 64),
                ("GETBULK walk of ifTable (x20 reps), 50/s", "bulk", 50, 16),
                ("GET sysUpTime+sysName, flat out", "get", 0, 128),
            ]
            for label, kind, rate, in_flight in phases:
                spec = {"targets": targets, "kind": kind, "rate": rate, "seconds": args.seconds,
                        "port": udp, "in_flight": in_flight}  # fmt: skip
                before = control(ctl, "/stats")["snmp"]["answered"]  # type: ignore[index]
                c0 = cpu_seconds(sim.pid)
                result = run_load(spec)
                cpu = cpu_seconds(sim.pid) - c0
                after = control(ctl, "/stats")["snmp"]["answered"]  # type: ignore[index]
                answers = sum(after.values()) - sum(before.values())  # type: ignore[attr-defined]
                elapsed = float(result["elapsed"])  # type: ignore[arg-type]
                net = max(0.0, cpu - idle * elapsed)
                rows.append(
                    (
                        label,
                        f"{answers / elapsed:.0f}",
                        str(answers),
                        str(result["failed"]),
                        f"{1000 * net / answers:.3f}" if answers else "-",
                        f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f}"
                        if result["p50_ms"] is not None
                        else "-",
                        f"{100 * cpu / elapsed:.0f}%",
                        f"{rss_mib(sim.pid):.0f}",
                    )
                )
                print(f"  done: {label}", flush=True)
        finally:
            sim.terminate()
            sim.wait(30)
            if broker is not None:
                broker.terminate()
                broker.wait(10)
    header = ("phase", "answers/s", "answers", "failed", "sim CPU ms/answer",
              "latency p50/p99 ms", "sim CPU (1 core)", "RSS MiB")  # fmt: skip
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(
        "\nms/answer = simulator CPU during the phase minus its idle CPU, per SNMP answer "
        "(a bulk walk's answers are its GETBULK requests). Load generator: gufo_snmp in another "
        "process, a new session per request; one run on a machine shared with other work."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
