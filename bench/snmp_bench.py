#!/usr/bin/env python3
"""SNMP polling benchmark: N agents, one GET of 5 OIDs per agent per interval, measured for
the whole districtmon daemon on each engine, for each engine alone, and for Prometheus'
snmp_exporter, all against the same agents. Prints one table.

    .venv/bin/python bench/snmp_bench.py --sites 20000 --interval 60 --duration 60
    .venv/bin/python bench/snmp_bench.py --sites 2000 --interval 10 --targets daemon:gufo
    .venv/bin/python bench/snmp_bench.py --smoke     # 50 sites, three targets, ~40 s

Targets (--targets, comma separated):
  daemon:gufo, daemon:pysnmp  `districtmon run` on a generated config of N sites (profile of
                              5 OIDs: sysUpTime, sysName, battery volts, mains, door), its
                              own scheduler, evaluator, ledger and /metrics: the whole
                              daemon's CPU divided by its polls.
  engine:gufo, engine:pysnmp  the engine alone in a bare process, paced the same way: what
                              the library costs, without the daemon around it.
  exporter                    prometheus-snmp-exporter (Debian package) with a generated
                              snmp.yml for the same 5 OIDs, scraped by a paced load
                              generator (its CPU is not counted, the exporter's is).

The agent fleet is pluggable (--fleet): `snmpsim` (default) starts snmpsim processes, each
serving up to --per-process endpoints on their own loopback addresses (127.10.x.y, all on one
free UDP port), replaying tests/data/bts-power-normal.snmprec; `snmpd` starts net-snmp agents
answering the same five values (much cheaper per answer: the fleet for a loaded machine);
`file:PATH` uses agents that already run, one `address port community` per line (e.g. the
district simulator's list). Add a class to FLEETS for anything else.

Measured over --duration seconds after one interval of warm-up (every agent polled once):
polls/s, CPU seconds per 1,000 polls (utime+stime of the measured process from /proc),
CPU as a share of one core, p50/p99 poll latency, p50/p99 schedule lag, failed polls, RSS.
For the daemon, latency and lag come from its own histograms (interpolated within buckets).
Everything talks to 127.0.0.0/8 only, every wait is bounded, every process started is
stopped at the end. `--smoke` (50 sites polled every 2 s, 6 s measured, the exporter, gufo
alone and the daemon on gufo) is run by tests/test_bench_smoke.py: each target must poll each
site as often as asked, without a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import math
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECORDING = ROOT / "tests" / "data" / "bts-power-normal.snmprec"
COMMUNITY = "bench"
OIDS = [
    "1.3.6.1.2.1.1.3.0",  # sysUpTime
    "1.3.6.1.2.1.1.5.0",  # sysName
    "1.3.6.1.2.1.33.1.2.5.0",  # upsBatteryVoltage
    "1.3.6.1.2.1.33.1.4.1.0",  # upsOutputSource
    "1.3.6.1.4.1.99999.1.3.0",  # envDoorState
]
PROFILE = """\
description: benchmark profile, 5 OIDs with sysUpTime and sysName
values:
  - {name: battery_volts, oid: 1.3.6.1.2.1.33.1.2.5.0, scale: 0.1}
  - {name: mains_ok, oid: 1.3.6.1.2.1.33.1.4.1.0, map: {5: 0, default: 1}}
  - {name: door_open, oid: 1.3.6.1.4.1.99999.1.3.0, map: {2: 1, default: 0}}
health:
  - {reason: on battery, when: {mains_ok: {equals: 0}}}
"""
EXPORTER = "/usr/bin/prometheus-snmp-exporter"
TICK = os.sysconf("SC_CLK_TCK")


# --- fleets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    address: str
    port: int
    community: str


class Fleet(Protocol):
    def start(self, count: int) -> list[Agent]: ...
    def stop(self) -> None: ...


class SnmpsimFleet:
    """snmpsim command responders, `per_process` endpoints each, one loopback address per agent."""

    def __init__(self, per_process: int = 5000) -> None:
        self.per_process = per_process
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dir = Path(tempfile.mkdtemp(prefix="districtmon-bench-fleet-"))

    def start(self, count: int) -> list[Agent]:
        # A free port rather than a fixed one, so that two runs (a smoke test beside a full
        # run) never fight over the same addresses.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.10.0.1", 0))
            port = int(probe.getsockname()[1])
        agents = [Agent(_address(i), port, COMMUNITY) for i in range(count)]
        data = self.dir / "data"
        data.mkdir()
        shutil.copy(RECORDING, data / f"{COMMUNITY}.snmprec")
        responder = Path(sys.executable).parent / "snmpsim-command-responder"
        as_root = os.geteuid() == 0
        for start in range(0, count, self.per_process):
            cache = self.dir / f"cache{start}"
            cache.mkdir()
            group = agents[start : start + self.per_process]
            cmd = [
                str(responder),
                f"--data-dir={data}",
                f"--cache-dir={cache}",
                "--log-level=error",
                *(f"--agent-udpv4-endpoint={a.address}:{a.port}" for a in group),
            ]
            if as_root:
                cmd += ["--process-user=nobody", "--process-group=nogroup"]
            self.procs.append(
                subprocess.Popen(
                    cmd,
                    stdout=(self.dir / f"sim{start}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        if as_root:
            nobody = pwd.getpwnam("nobody")
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
        for start in range(0, count, self.per_process):
            last = agents[min(start + self.per_process, count) - 1]
            _wait_agent(last, 120)
        return agents

    def stop(self) -> None:
        for proc in self.procs:
            _stop(proc)
        shutil.rmtree(self.dir, ignore_errors=True)


SITES_A_FILE = 20_000


def _address(i: int) -> str:
    """The i-th agent's loopback address: 127.10.0.1 on, 250 a /24, then 127.11... (62,500
    agents a /16: 100,000 sites take two)."""
    return f"127.{10 + i // 62_500}.{i // 250 % 250}.{i % 250 + 1}"


class SnmpdFleet:
    """net-snmp snmpd processes (C: a fraction of snmpsim's CPU per answer, so the agents keep
    up on a loaded machine), `per_process` loopback addresses each, one free UDP port. The five
    OIDs answer what the recording says: sysUpTime and sysName are snmpd's own, the UPS-MIB
    and cabinet values are `override` lines of the same types and values."""

    OVERRIDES = (
        "override 1.3.6.1.2.1.33.1.2.5.0 integer 535\n"  # upsBatteryVoltage, 0.1 V
        "override 1.3.6.1.2.1.33.1.4.1.0 integer 3\n"  # upsOutputSource: normal
        "override 1.3.6.1.4.1.99999.1.3.0 integer 1\n"  # envDoorState: closed
    )

    def __init__(self, per_process: int = 100) -> None:
        # snmpd takes about 100 addresses from one agentAddress line (a longer line, or more
        # lines, and the last addresses are silently not bound)
        self.per_process = min(per_process, 100)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dir = Path(tempfile.mkdtemp(prefix="districtmon-bench-snmpd-"))

    def start(self, count: int) -> list[Agent]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.10.0.1", 0))
            port = int(probe.getsockname()[1])
        agents = [Agent(_address(i), port, COMMUNITY) for i in range(count)]
        for start in range(0, count, self.per_process):
            group = agents[start : start + self.per_process]
            work = self.dir / f"snmpd{start}"
            work.mkdir()
            addresses = ",".join(f"udp:{a.address}:{a.port}" for a in group)
            (work / "snmpd.conf").write_text(
                f"agentAddress {addresses}\nrocommunity {COMMUNITY} 127.0.0.0/8\n"
                f"sysName bts-power-sim\n{self.OVERRIDES}"
            )
            command = ["snmpd", "-f", "-Lo", "-C", "-c", str(work / "snmpd.conf")]
            command += ["-p", str(work / "pid")]
            self.procs.append(
                subprocess.Popen(
                    command,
                    stdout=(work / "snmpd.log").open("wb"),
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "SNMP_PERSISTENT_DIR": str(work)},
                )
            )
        for start in range(0, count, self.per_process):
            _wait_agent(agents[min(start + self.per_process, count) - 1], 60)
        return agents

    def stop(self) -> None:
        for proc in self.procs:
            _stop(proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class FileFleet:
    """Agents that run already: `address port community` per line."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def start(self, count: int) -> list[Agent]:
        agents = []
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and not line.startswith("#"):
                agents.append(Agent(parts[0], int(parts[1]), parts[2]))
        if len(agents) < count:
            raise SystemExit(f"{self.path} lists {len(agents)} agents, {count} wanted")
        return agents[:count]

    def stop(self) -> None:
        pass


FLEETS: dict[str, type[SnmpsimFleet] | type[SnmpdFleet]] = {
    "snmpsim": SnmpsimFleet,
    "snmpd": SnmpdFleet,
}


def make_fleet(spec: str, per_process: int) -> Fleet:
    if spec.startswith("file:"):
        return FileFleet(spec[5:])
    if spec in FLEETS:
        return FLEETS[spec](per_process)
    raise SystemExit(f"unknown fleet {spec!r}: {', '.join(FLEETS)} or file:PATH")


def _wait_agent(agent: Agent, limit: float) -> None:
    deadline = time.monotonic() + limit
    env = {**os.environ, "MIBS": "", "MIBDIRS": ""}
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["snmpget", "-v2c", "-c", agent.community, "-t", "0.5", "-r", "0",
             f"{agent.address}:{agent.port}", OIDS[0]],
            capture_output=True, env=env, check=False,
        )  # fmt: skip
        if done.returncode == 0:
            return
        time.sleep(0.5)
    raise SystemExit(f"agent {agent} did not answer within {limit:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- measuring a process ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss / 1024, hwm / 1024


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Result:
    target: str
    sites: int
    interval: float
    window: float = 0.0
    polls: int = 0
    errors: int = 0
    cpu: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    lag50: float = float("nan")
    lag99: float = float("nan")
    rss: float = 0.0  # at the end of the window
    peak_rss: float = 0.0  # the process' highest (VmHWM), its start included
    rss_median: float = float("nan")  # sampled every second through the window
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.polls / self.window if self.window else 0.0

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu / self.polls * 1000 if self.polls else float("nan")

    @property
    def core_share(self) -> float:
        return self.cpu / self.window if self.window else 0.0


# --- the daemon ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_daemon_config(root: Path, agents: list[Agent], interval: float, engine: str) -> int:
    port = free_port()
    (root / "inventory").mkdir(parents=True)
    (root / "profiles").mkdir()
    (root / "profiles" / "bench-5.yaml").write_text(PROFILE)
    (root / "districtmon.yaml").write_text(
        f"http: {{listen: '127.0.0.1:{port}'}}\nledger: {{path: ledger.sqlite}}\n"
        f"poll: {{interval_seconds: {interval}, timeout_seconds: 2, retries: 1, "
        "max_in_flight: 256}\nstate: {down_after: 3, up_after: 2}\n"
        f"snmp: {{engine: {engine}, profiles: profiles}}\n"
    )
    (root / "credentials.yaml").write_text(
        f"snmp:\n  bench: {{version: 2c, community: {COMMUNITY}}}\n"
    )
    (root / "inventory" / "bench.yaml").write_text(
        "communes: [{id: bench, name: Bench, lat: 21.4, lon: 103.0}]\n"
        "owners: [{id: bench, name: Bench, kind: operator}]\n"
    )
    # files of SITES_A_FILE sites: one file of the inventory may not pass 8 MiB
    for first in range(0, len(agents), SITES_A_FILE):
        lines = ["sites:"]
        for i, agent in enumerate(agents[first : first + SITES_A_FILE], start=first):
            lines.append(
                f"  - {{id: s{i}, kind: bts, name: S{i}, commune: bench, owner: bench, "
                f"lat: 21.4, lon: 103.0, probe: {{snmp: {{address: {agent.address}, "
                f"port: {agent.port}, credential: bench, profile: bench-5}}}}}}"
            )
        name = f"sites-{first // SITES_A_FILE:03d}.yaml"
        (root / "inventory" / name).write_text("\n".join(lines) + "\n")
    return port


def gzip_get(port: int, path: str) -> tuple[bytes, bool]:
    """`path` as Prometheus asks for it (gzip): the body as sent, and whether it is gzip."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read(), response.headers.get("Content-Encoding") == "gzip"


def scrape(port: int) -> str:
    """/metrics as Prometheus asks for it, decompressed here, in the bench's CPU."""
    body, packed = gzip_get(port, "/metrics")
    return str((gzip.decompress(body) if packed else body).decode())


def samples(text: str, name: str) -> dict[str, float]:
    """Label string -> value for every sample of `name`."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            found[key[len(name) :]] = float(value)
    return found


def histogram(text: str, name: str) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for labels, value in samples(text, name + "_bucket").items():
        le = re.search(r'le="([^"]+)"', labels)
        if le:
            bound = float("inf") if le.group(1) == "+Inf" else float(le.group(1))
            buckets[bound] = buckets.get(bound, 0.0) + value
    return buckets


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, previous = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - previous) / max(count - previous, 1e-9)
        lower, previous = bound, count
    return bounds[-1]


def scraping(port: int, every: float, stop: threading.Event) -> threading.Thread:
    """A Prometheus of the shipped scrape config: /metrics gzip-compressed every `every` s,
    /metrics/availability every 60 s (its own job), until `stop`."""

    def get(path: str) -> None:
        with contextlib.suppress(OSError):
            gzip_get(port, path)

    def loop() -> None:
        # the window's own scrape at its end is the fourth of a minute: the first one here
        # comes an interval after the scrape that opened it
        next_availability = time.monotonic()
        next_metrics = next_availability + every
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_metrics:
                get("/metrics")
                next_metrics += every
            if now >= next_availability:
                get("/metrics/availability")
                next_availability += AVAILABILITY_EVERY
            stop.wait(max(0.0, min(next_metrics, next_availability) - time.monotonic()))

    thread = threading.Thread(target=loop, name="bench-scraper", daemon=True)
    thread.start()
    return thread


AVAILABILITY_EVERY = 60.0  # the shipped prometheus.yml's districtmon_availability job


def sampling_rss(pid: int, stop: threading.Event) -> tuple[threading.Thread, list[float]]:
    """The resident size of `pid`, read every second until `stop`: what the process carries
    through the window, where the end alone is the instant after a scrape."""
    found: list[float] = []

    def loop() -> None:
        while not stop.wait(1.0):
            with contextlib.suppress(OSError, AttributeError):
                found.append(rss_mb(pid)[0])

    thread = threading.Thread(target=loop, name="bench-rss", daemon=True)
    thread.start()
    return thread, found


def run_daemon(
    agents: list[Agent], interval: float, duration: float, engine: str, scrape_every: float = 0.0
) -> Result:
    """The whole daemon's CPU over the window; with `scrape_every`, scraped as the shipped
    Prometheus config scrapes it (every `scrape_every` s, and its availability each minute)
    through the window, so that the share of a core is the daemon's in production."""
    result = Result(f"daemon:{engine}", len(agents), interval)
    root = Path(tempfile.mkdtemp(prefix="districtmon-bench-daemon-"))
    port = write_daemon_config(root / "config", agents, interval, engine)
    log = (root / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(root / "config"), "--log-level",
         "warning"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                scrape(port)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((root / "daemon.log").read_text()[-3000:]) from None
                time.sleep(0.2)
        time.sleep(interval)  # warm-up: every site polled once
        # The window runs from the end of one scrape to the end of the next, so the poll
        # counts and the CPU cover the same span, and that span holds the scrape at its end:
        # with `scrape_every`, the last of the window's gzip scrapes, as Prometheus asks.
        c0 = cpu_seconds(proc.pid)
        before = scrape(port)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        stop = threading.Event()
        scraper = scraping(port, scrape_every, stop) if scrape_every else None
        sampler, resident = sampling_rss(proc.pid, stop)
        time.sleep(duration)
        stop.set()
        sampler.join(timeout=5)
        if scraper is not None:
            scraper.join(timeout=60)
        c2 = cpu_seconds(proc.pid)
        after = scrape(port)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        result.extra["scrape_cpu"] = ((cpu0 - c0) + (cpu1 - c2)) / 2
        result.rss, result.peak_rss = rss_mb(proc.pid)
        result.rss_median = percentile(resident, 0.5)
        result.window, result.cpu = t1 - t0, cpu1 - cpu0
        polls0, polls1 = (
            samples(before, "districtmon_polls_total"),
            samples(after, "districtmon_polls_total"),
        )
        result.polls = int(sum(polls1.values()) - sum(polls0.values()))
        result.errors = int(
            sum(v for k, v in polls1.items() if 'result="error"' in k)
            - sum(v for k, v in polls0.items() if 'result="error"' in k)
        )
        name = "districtmon_poll_duration_seconds"
        h0, h1 = histogram(before, name), histogram(after, name)
        result.p50, result.p99 = (histogram_quantile(h0, h1, q) * 1000 for q in (0.5, 0.99))
        name = "districtmon_schedule_lag_seconds"
        h0, h1 = histogram(before, name), histogram(after, name)
        result.lag50, result.lag99 = (histogram_quantile(h0, h1, q) * 1000 for q in (0.5, 0.99))
        skipped = samples(after, "districtmon_polls_skipped_total")
        scraped = (
            f"a gzip /metrics scrape every {scrape_every:g} s (the window's closing one "
            f"included) and /metrics/availability every {AVAILABILITY_EVERY:g} s"
            if scrape_every
            else "one gzip /metrics scrape"
        )
        result.note = (
            f"skipped {int(sum(skipped.values()))}; latency/lag from histograms; {scraped} "
            f"in the window (the closing scrape about {result.extra['scrape_cpu']:.2f} s CPU)"
        )
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
    return result


# --- an engine alone, or snmp_exporter, paced like the scheduler -------------------------------


def run_worker(kind: str, agents: list[Agent], interval: float, duration: float) -> Result:
    """Run `kind` (engine:NAME or exporter) in a child process and measure that process."""
    result = Result(kind, len(agents), interval)
    root = Path(tempfile.mkdtemp(prefix="districtmon-bench-worker-"))
    (root / "agents.json").write_text(json.dumps([a.__dict__ for a in agents]))
    exporter: subprocess.Popen[bytes] | None = None
    measured_pid: int
    args = [sys.executable, __file__, "--_worker", kind, "--_agents", str(root / "agents.json"),
            "--interval", str(interval), "--duration", str(duration)]  # fmt: skip
    if kind == "exporter":
        port = free_port()
        (root / "snmp.yml").write_text(exporter_config())
        exporter = subprocess.Popen(
            [EXPORTER, f"--config.file={root / 'snmp.yml'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"],
            stdout=(root / "exporter.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        args += ["--_exporter-port", str(port)]
        time.sleep(1.0)
        if exporter.poll() is not None:
            raise SystemExit((root / "exporter.log").read_text())
    worker = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    measured_pid = exporter.pid if exporter is not None else worker.pid
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()  # "warm" once the warm-up interval is over
        if not line.startswith(b"warm"):
            raise SystemExit(worker.stderr.read().decode() if worker.stderr else "worker died")
        cpu0, t0 = cpu_seconds(measured_pid), time.monotonic()
        line = worker.stdout.readline()  # "done" at the end of the window
        cpu1, t1 = cpu_seconds(measured_pid), time.monotonic()
        result.rss, result.peak_rss = rss_mb(measured_pid)
        stats = json.loads(worker.stdout.readline())
        result.window, result.cpu = t1 - t0, cpu1 - cpu0
        result.polls, result.errors = stats["polls"], stats["errors"]
        result.p50, result.p99 = stats["p50"], stats["p99"]
        result.lag50, result.lag99 = stats["lag50"], stats["lag99"]
        if kind == "exporter":
            result.note = "scrapes; load generator's CPU not counted"
    finally:
        _stop(worker)
        if exporter is not None:
            _stop(exporter)
        shutil.rmtree(root, ignore_errors=True)
    return result


def exporter_config() -> str:
    names = ["sysUpTime", "sysName", "upsBatteryVoltage", "upsOutputSource", "envDoorState"]
    types = ["gauge", "DisplayString", "gauge", "gauge", "gauge"]
    lines = ["bench:", "  get:"] + [f"    - {oid}" for oid in OIDS] + ["  metrics:"]
    for name, oid, kind in zip(names, OIDS, types, strict=True):
        lines.append(f"    - {{name: {name}, oid: {oid.removesuffix('.0')}, type: {kind}}}")
    lines += ["  version: 2", "  retries: 1", "  timeout: 2s", "  auth:",
              f"    community: {COMMUNITY}"]  # fmt: skip
    return "\n".join(lines) + "\n"


async def worker_main(kind: str, agents: list[Agent], interval: float, duration: float,
                      exporter_port: int | None) -> None:  # fmt: skip
    from monitor.config.credentials import Secret, SnmpCredential
    from monitor.probes.snmp.engine import SnmpError, SnmpTarget
    from monitor.probes.snmp.engines import create_engine
    from monitor.state.scheduler import phase

    slots = asyncio.Semaphore(256)
    latencies: list[float] = []
    lags: list[float] = []
    counts = {"polls": 0, "errors": 0}
    measuring = False
    engine = None
    credential = SnmpCredential("bench", "2c", Secret(COMMUNITY))
    reader_writers: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    if kind.startswith("engine:"):
        engine = create_engine(kind.split(":", 1)[1])
    else:
        for _ in range(256):  # keep-alive connections, like Prometheus keeps them
            reader_writers.append(await asyncio.open_connection("127.0.0.1", exporter_port))
    free = list(reader_writers)

    async def one(agent: Agent, due: float) -> None:
        async with slots:
            lag = time.monotonic() - due
            started = time.monotonic()
            ok = True
            if engine is not None:
                try:
                    await engine.get(
                        SnmpTarget(agent.address, agent.port, credential, 2.0, 1), OIDS
                    )
                except SnmpError:
                    ok = False
            else:
                reader, writer = free.pop()
                try:
                    writer.write(
                        f"GET /snmp?module=bench&target={agent.address}:{agent.port} HTTP/1.1\r\n"
                        "Host: 127.0.0.1\r\n\r\n".encode()
                    )
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
                    body = await reader.readexactly(length)
                    ok = b" 200 " in head.split(b"\r\n", 1)[0] and b"upsBatteryVoltage" in body
                finally:
                    free.append((reader, writer))
            if measuring:
                latencies.append((time.monotonic() - started) * 1000)
                lags.append(lag * 1000)
                counts["polls"] += 1
                counts["errors"] += 0 if ok else 1

    start = time.monotonic()
    queue = sorted((start + phase(f"s{i}", interval), i) for i in range(len(agents)))
    tasks: set[asyncio.Task[None]] = set()
    warm_at, end_at = start + interval, start + interval + duration
    rounds = 0
    while True:
        for due, i in queue:
            due += rounds * interval
            now = time.monotonic()
            if not measuring and now >= warm_at:
                measuring = True
                print("warm", flush=True)
            if now >= end_at:
                break
            if due > now:
                await asyncio.sleep(due - now)
            task = asyncio.create_task(one(agents[i], due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        else:
            rounds += 1
            continue
        break
    measuring = False
    print("done", flush=True)
    stats = {
        **counts,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "lag50": percentile(lags, 0.5),
        "lag99": percentile(lags, 0.99),
    }
    print(json.dumps(stats), flush=True)
    for task in tasks:
        task.cancel()
    for _, writer in reader_writers:
        writer.close()
    if engine is not None:
        await engine.close()


# --- report ---------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    exporter = next((r for r in results if r.target == "exporter"), None)
    head = ("| target | sites | interval s | polls/s | failed | CPU s / 1000 polls | "
            "share of 1 core | vs exporter | p50 ms | p99 ms | lag p50 ms | lag p99 ms | "
            "RSS MB: median, end (peak) |")  # fmt: skip
    rows = [head, "|" + "---|" * 13]
    for r in results:
        median = "" if math.isnan(r.rss_median) else f"{r.rss_median:.0f}, "
        ratio = (
            f"{r.cpu_per_1000 / exporter.cpu_per_1000:.2f}x"
            if exporter and exporter.polls and r.polls
            else "-"
        )
        rows.append(
            f"| {r.target} | {r.sites} | {r.interval:g} | {r.rate:.1f} | {r.errors} | "
            f"{r.cpu_per_1000:.3f} | {100 * r.core_share:.1f}% | {ratio} | {r.p50:.2f} | "
            f"{r.p99:.2f} | {r.lag50:.2f} | {r.lag99:.2f} | "
            f"{median}{r.rss:.0f} ({r.peak_rss:.0f}) |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--duration", type=float, default=60.0, help="measured window, s")
    parser.add_argument(
        "--targets", default="exporter,engine:gufo,engine:pysnmp,daemon:gufo,daemon:pysnmp"
    )
    parser.add_argument("--fleet", default="snmpsim", help="snmpsim, snmpd or file:PATH")
    parser.add_argument(
        "--scrape-every",
        type=float,
        default=0.0,
        help="daemon targets: scrape as the shipped Prometheus does, every S s (e.g. 15)",
    )
    parser.add_argument("--per-process", type=int, default=5000, help="snmpsim endpoints each")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="50 sites every 2 s, 6 s measured: exporter, engine:gufo, daemon:gufo (~40 s)",
    )
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    parser.add_argument("--_agents", help=argparse.SUPPRESS)
    parser.add_argument("--_exporter-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._worker:
        agents = [Agent(**a) for a in json.loads(Path(args._agents).read_text())]
        asyncio.run(worker_main(args._worker, agents, args.interval, args.duration,
                                args._exporter_port))  # fmt: skip
        return
    if args.smoke:
        args.sites, args.interval, args.duration = 50, 2.0, 6.0
        args.targets = "exporter,engine:gufo,daemon:gufo"
        args.scrape_every = args.scrape_every or 2.0  # the scraper runs too
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if "exporter" in targets and not Path(EXPORTER).exists():
        raise SystemExit(f"{EXPORTER} missing: apt-get install prometheus-snmp-exporter")
    fleet = make_fleet(args.fleet, args.per_process)
    results: list[Result] = []
    started = time.monotonic()
    try:
        print(f"starting {args.sites} agents ({args.fleet})...", file=sys.stderr)
        agents = fleet.start(args.sites)
        print(f"agents up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        for target in targets:
            print(f"running {target}...", file=sys.stderr)
            if target.startswith("daemon:"):
                results.append(
                    run_daemon(agents, args.interval, args.duration, target[7:], args.scrape_every)
                )
            else:
                results.append(run_worker(target, agents, args.interval, args.duration))
            print(table(results[-1:]).splitlines()[-1], file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            fleet.stop()
    print(f"\n{args.sites} agents, one GET of {len(OIDS)} OIDs per agent every "
          f"{args.interval:g} s (target {args.sites / args.interval:.1f} polls/s), "
          f"{args.duration:g} s measured after {args.interval:g} s warm-up; "
          f"{os.cpu_count()} cores shared by agents, load generator and target\n")  # fmt: skip
    print(table(results))
    for r in results:
        if r.note:
            print(f"- {r.target}: {r.note}")


if __name__ == "__main__":
    main()
