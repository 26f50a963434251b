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
    .venv/bin/python bench/simulator_bench.py --district      # the shipped day at x60, ~7 min
    .venv/bin/python bench/simulator_bench.py --smoke         # 300 sites, 1 s phases, ~15 s

`--district` plays the shipped district's day (config/scenarios/day.yaml) at --speed with the
ground truth written to a file, polled as the daemon polls at that speed, and compares it with
the same district without scenario or truth file: simulator CPU, answer latency, truth records,
and how late each action ran (read from the truth itself). It runs in a network namespace of
its own (root), so that its fixed ports and its nftables table touch nothing else.

Only loopback addresses are used. `--smoke` is run by tests/test_bench_smoke.py: every phase
must be answered, the simulator's own count of answers agreeing with the load generator's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
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


def write_inventory(
    root: Path, sites: int, port: int, mqtt: bool = False
) -> list[tuple[str, str, str]]:
    """N sites in 100 communes: 70% BTS, 20% loudspeakers, 10% gateways (no parents). With
    `mqtt` the loudspeakers report over MQTT, as shipped, and answer no SNMP."""
    (root / "inventory").mkdir(parents=True)
    (root / "districtmon.yaml").write_text("{}\n")
    (root / "credentials.yaml").write_text((REPO / "config" / "credentials.yaml").read_text())
    if mqtt:
        shutil.copytree(REPO / "config" / "mqtt", root / "mqtt")
    lines = ["communes:"]
    for c in range(100):
        lines.append(f"  - {{id: c{c}, name: Commune {c}, lat: 21.0, lon: 103.0, areas: [a]}}")
    lines += ["owners:", "  - {id: o, name: Owner, kind: operator}", "sites:"]
    targets = []
    credential = {"bts": "viettel-ro", "gateway": "district-ro", "loudspeaker": "rtv-ro"}
    for i in range(sites):
        kind = "bts" if i % 10 < 7 else "loudspeaker" if i % 10 < 9 else "gateway"
        addr = address(i)
        if mqtt and kind == "loudspeaker":
            probe = "{mqtt: {}}"
        else:
            probe = f"{{snmp: {{address: {addr}, port: {port}, credential: {credential[kind]}}}}}"
            targets.append((addr, kind, COMMUNITY[kind]))
        lines.append(
            f"  - {{id: s{i}, kind: {kind}, name: Site {i}, commune: c{i % 100}, owner: o, "
            f"lat: 21.0, lon: 103.0, probe: {probe}}}"
        )
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

    targets = [tuple(t) for t in spec["targets"]]  # type: ignore[attr-defined]
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


# --- the shipped district at speed, with its day and its ground truth (--district) ---------


def district_targets(config: Path) -> list[tuple[str, str, str]]:
    """(address, kind, community) of every SNMP site of the configuration."""
    from monitor.config.load import load_config
    from monitor.core.model import SnmpProbe

    loaded = load_config(config, environ={})
    targets = []
    for site in loaded.sites.values():
        if isinstance(site.probe, SnmpProbe):
            secret = loaded.credentials[site.probe.credential].community
            assert secret is not None
            targets.append((site.probe.address, site.kind, secret.reveal()))
    return targets


def lateness_ms(records: list[dict[str, object]]) -> list[float]:
    """How late each scenario action ran, in real milliseconds: its record's wall clock
    against the wall time its simulated time stands for."""
    start = records[0]
    speed = float(start["speed"])  # type: ignore[arg-type]
    late = []
    for r in records:
        if r["type"] == "action":
            due = float(start["wall"]) + (float(r["sim"]) - float(start["sim"])) / speed  # type: ignore[arg-type]
            late.append(1000 * (float(r["wall"]) - due))  # type: ignore[arg-type]
    return sorted(late)


def district_run(root: Path, args: argparse.Namespace, day: bool) -> tuple[str, ...]:
    """One run of the shipped district for the day's length: with the day scenario and the
    truth written to a file, or with neither (the baseline); SNMP polled as the daemon would
    at that speed (every SNMP site once per 60 simulated seconds)."""
    config = root / "config"
    ctl, mqtt_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    (root / "mosquitto.conf").write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen(
        ["/usr/sbin/mosquitto", "-c", str(root / "mosquitto.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    truth = root / "truth.jsonl"
    truth.unlink(missing_ok=True)
    extra = ["--scenario", str(REPO / "config" / "scenarios" / "day.yaml"), "--truth", str(truth)]
    time.sleep(0.3)
    sim = subprocess.Popen(
        [sys.executable, "-m", "monitor", "simulate", "-c", str(config), "--speed",
         str(args.speed), "--mqtt", f"127.0.0.1:{mqtt_port}", "--control", f"127.0.0.1:{ctl}",
         "--log-level", "warning", *(extra if day else [])],
        stderr=(root / "sim.log").open("wb"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                control(ctl, "/healthz")
                break
            except OSError:
                if sim.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((root / "sim.log").read_text()) from None
                time.sleep(0.1)
        targets = district_targets(config)
        seconds = 3 * 3600 / args.speed + 5  # the day, and its last records
        spec = {"targets": targets, "kind": "get", "rate": len(targets) * args.speed / 60,
                "seconds": seconds, "port": 1161, "in_flight": 64}  # fmt: skip
        c0 = cpu_seconds(sim.pid)
        result = run_load(spec)
        cpu = cpu_seconds(sim.pid) - c0
        elapsed = float(result["elapsed"])  # type: ignore[arg-type]
        stats = control(ctl, "/stats")
        records = [json.loads(line) for line in truth.read_text().splitlines()] if day else []
        late = lateness_ms(records) if records else []
        return (
            "day + truth file" if day else "no scenario",
            f"{100 * cpu / elapsed:.1f}%",
            f"{result['sent']} / {result['failed']}",
            f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f}",
            str(stats["truth_records"]),
            f"{truth.stat().st_size / 1024:.0f} KiB" if day else "-",
            f"{late[len(late) // 2]:.1f} / {late[-1]:.1f}" if late else "-",
            f"{rss_mib(sim.pid):.0f}",
        )
    finally:
        sim.terminate()
        sim.wait(30)
        broker.terminate()
        broker.wait(10)


def district_main(args: argparse.Namespace) -> int:
    """The shipped district in a network namespace of its own (its fixed ports, its nftables
    table and its loopback addresses stay private): needs root."""
    if not args.in_netns:
        if os.geteuid() != 0:
            raise SystemExit(
                "--district runs the shipped district in a network namespace: run as root"
            )
        ns = f"dmbench-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            cmd = [sys.executable, __file__, "--district", "--in-netns", "--speed", str(args.speed)]
            return subprocess.run(["ip", "netns", "exec", ns, *cmd], check=False).returncode
        finally:
            subprocess.run(["ip", "netns", "del", ns], check=False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="districtmon-simbench-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "config", root / "config")
        for day in (False, True):
            rows.append(district_run(root, args, day))
            print(f"  done: {rows[-1][0]}", flush=True)
    header = ("run", "sim CPU (1 core)", "GETs sent / failed", "GET p50/p99 ms",
              "truth records", "truth file", "action lateness p50/max ms", "RSS MiB")  # fmt: skip
    print_table(header, rows)
    print(
        f"\nThe shipped district (386 sites) at x{args.speed:g} for the day's 3 simulated hours, "
        "mosquitto and 71 MQTT publishers included; SNMP polled at the daemon's rate at that "
        "speed. Lateness: how long after its simulated time each scenario action ran, from the "
        "truth's own wall and sim times."
    )
    return 0


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


# --- the bench ----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--mqtt", action="store_true", help="also measure MQTT publishers")
    parser.add_argument(
        "--district",
        action="store_true",
        help="the shipped district playing its day at --speed, with and without the truth (root)",
    )
    parser.add_argument("--speed", type=float, default=60.0, help="for --district (default 60)")
    parser.add_argument("--smoke", action="store_true", help="300 sites, 1 s phases (~15 s)")
    parser.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.sites, args.seconds = 300, 1.0
    if args.load:
        print(json.dumps(asyncio.run(_load(json.loads(sys.stdin.read())))))
        return 0
    if args.district:
        return district_main(args)

    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="districtmon-simbench-") as tmp:
        root = Path(tmp)
        udp, ctl = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
        targets = write_inventory(root / "config", args.sites, udp, args.mqtt)
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
                speakers = sum(1 for i in range(args.sites) if 7 <= i % 10 < 9)
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
            rows.append((label, "-", "-", "-", "-", "-", "-", f"{100 * idle:.1f}%", "-"))
            every = f"{args.sites:,} sites/min"
            phases = [
                (f"GET sysUpTime+sysName, {every}", "get", args.sites / 60, 64),
                ("GET sysUpTime+sysName, 1000/s", "get", 1000, 64),
                (f"GET 6 UPS-MIB objects (BTS), {every}", "ups", args.sites / 60, 64),
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
                answers = sum(after.values()) - sum(before.values())
                elapsed = float(result["elapsed"])  # type: ignore[arg-type]
                net = max(0.0, cpu - idle * elapsed)
                rows.append(
                    (
                        label,
                        f"{answers / elapsed:.0f}",
                        str(answers),
                        str(result["answered"]),
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
    header = ("phase", "answers/s", "answers", "client got", "failed", "sim CPU ms/answer",
              "latency p50/p99 ms", "sim CPU (1 core)", "RSS MiB")  # fmt: skip
    print_table(header, rows)
    print(
        "\nanswers: the simulator's own count; client got: GETs (or whole walks) the load "
        "generator got answered. ms/answer = simulator CPU during the phase minus its idle CPU, "
        "per SNMP answer (a bulk walk's answers are its GETBULK requests). Load generator: "
        "gufo_snmp in another process, a new session per request; one run on a machine shared "
        "with other work."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
