#!/usr/bin/env python3
"""The daemon under repeated faults for a bounded time, against devices on loopback.

    .venv/bin/python bench/soak.py --duration 600     # ten minutes of faults, then the table
    .venv/bin/python bench/soak.py --smoke            # one fault of each kind (~1 minute)

A real daemon (`districtmon run`, a process of its own) watches TCP services (listeners of
this process that a fault closes) and loudspeaker clusters reporting through a real
mosquitto (device processes with a retained `offline` last will); its trap port takes
garbage, its ledger lives on a small tmpfs of its own (root: a fault fills it to the last
byte). Faults come one at a time, in a shuffled round of every kind, each followed by a
pause to settle:

- broker_sigterm / broker_sigkill: mosquitto stopped as `systemctl restart` does (every
  device's will published first) or killed, restarted 3 s later: no site may be charged;
- agent_lost: a TCP service closed for 3 s: one down interval, dated within a poll of it;
- device_lost: a device process killed (its will comes): one down interval;
- daemon_sigkill: the daemon killed and started again: the ledger stays whole, the gap is
  unknown;
- sighup_broken: a broken districtmon.yaml and SIGHUP: refused, reported on /metrics, the
  daemon runs on; fixed and reloaded;
- disk_full: the ledger's disk filled while a service is lost, then freed: the outage
  reaches the ledger once there is room;
- trap_garbage: 2,000 random and truncated datagrams at the trap port: each counted once.

The table: faults injected by kind, false downs (a down interval no fault explains), missed
downs (a fault that should have downed a site and did not reach the ledger or the live
state), lost ledger intervals (seen down live, absent from the ledger; must be 0), trap
datagrams uncounted, ledger overlaps and integrity, peak RSS of the daemon, and tracebacks in
its log (must be 0). Exit status 1 when any of the must-be-zero figures is not.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.core.model import State  # noqa: E402
from monitor.ledger.records import Interval, read_intervals, read_runs  # noqa: E402

MOSQUITTO = "/usr/sbin/mosquitto"
TCP_SITES = [f"svc-{n}" for n in range(4)]
MQTT_SITES = [f"loa-{n}" for n in range(4)]
COMMUNITY = "soak-trap-community"
POLL = 0.5
SETTLE = 2.5
KINDS = (
    "broker_sigterm",
    "broker_sigkill",
    "agent_lost",
    "device_lost",
    "daemon_sigkill",
    "sighup_broken",
    "disk_full",
    "trap_garbage",
)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(what: str, check: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


# --- the parts ---------------------------------------------------------------------------


class Service:
    """A TCP port that a site is probed on, accepting and closing each connection; a fault
    closes the port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sock: socket.socket | None = None

    def open(self) -> None:
        sock = socket.create_server(("127.0.0.1", self.port), backlog=64)
        sock.settimeout(0.2)
        self.sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while self.sock is sock:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()


class Broker:
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.conf = work / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence false"]
        if os.geteuid() == 0:
            lines.append("user root")
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = (work / "mosquitto.log").open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=self.log, stderr=self.log
        )

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        wait("mosquitto", listening, 10)

    def stop(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None


class Device:
    """A loudspeaker cluster: this script with --device, killed for a power cut."""

    def __init__(self, broker: Broker, site: str, work: Path) -> None:
        self.broker, self.site = broker, site
        self.log = (work / f"device-{site}.log").open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--device", str(self.broker.port), self.site],
            stdout=self.log,
            stderr=self.log,
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


def run_device(port: int, site: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    base = f"soak/thanh-xuong/loudspeaker/{site}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-{site}")
    client.will_set(f"{base}/status", "offline", qos=1, retain=True)
    client.reconnect_delay_set(1, 1)

    def on_connect(c: mqtt.Client, *_args: object) -> None:
        c.publish(f"{base}/status", "online", qos=1, retain=True)

    client.on_connect = on_connect
    client.connect_async("127.0.0.1", port, keepalive=5)
    client.loop_start()
    while True:
        report = {"ts": time.time(), "online": True, "battery_volts": 13.7}  # on mains
        client.publish(f"{base}/telemetry", json.dumps(report), qos=1)
        time.sleep(0.5)


class Disk:
    """The ledger's own tmpfs (root only); else a plain directory and no disk_full fault."""

    def __init__(self, where: Path) -> None:
        self.path = where
        where.mkdir()
        self.mounted = os.geteuid() == 0 and shutil.which("mount") is not None
        if self.mounted:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], check=False
            )
            self.mounted = done.returncode == 0
        self.filler = where / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (65536, 4096, 512, 1):
                for _ in range(100_000):
                    try:
                        os.write(fd, b"\0" * size)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


@dataclass
class Fault:
    kind: str
    start: float
    end: float = 0.0
    site: str | None = None  # the site it should take down, if any


@dataclass
class Figures:
    faults: Counter[str] = field(default_factory=Counter)
    peak_rss_kb: int = 0
    seen_down: dict[str, list[float]] = field(default_factory=dict)  # site -> wall times
    trap_sent: int = 0
    trap_counted: int = 0
    lost_changes: float = 0.0
    reload_failures_seen: int = 0


class Soak:
    def __init__(self, work: Path, seed: int) -> None:
        self.work = work
        self.rng = random.Random(seed)
        self.config = work / "config"
        self.disk = Disk(work / "disk")
        self.ledger = self.disk.path / "ledger.sqlite"
        self.http_port = free_port()
        self.trap_port = free_port(socket.SOCK_DGRAM)
        self.services = {site: Service() for site in TCP_SITES}
        self.broker = Broker(work)
        self.devices = {site: Device(self.broker, site, work) for site in MQTT_SITES}
        self.daemon: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []
        self.faults: list[Fault] = []
        self.figures = Figures()
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    # --- configuration and the daemon ---------------------------------------------------

    def write_config(self, broken: bool = False) -> None:
        (self.config / "inventory").mkdir(parents=True, exist_ok=True)
        settings = f"""
http: {{listen: "127.0.0.1:{self.http_port}"}}
ledger: {{path: {self.ledger}, stop_timeout_seconds: 3}}
poll: {{interval_seconds: {POLL}, timeout_seconds: 0.3, retries: 0}}
state: {{down_after: 2, up_after: 1}}
snmp:
  traps: {{listen: "127.0.0.1:{self.trap_port}", credentials: [soak-trap]}}
mqtt:
  host: 127.0.0.1
  port: {self.broker.port}
  client_id: districtmon-soak
  topic_prefix: soak
  heartbeat_timeout_seconds: 3
  reconnect_min_seconds: 0.2
  reconnect_max_seconds: 1
  self_check_seconds: 1
  will_grace_seconds: 1
  mappings: {ROOT / "config" / "mqtt" / "mappings.yaml"}
"""
        if broken:
            settings += "colour: red\n"
        (self.config / "districtmon.yaml").write_text(settings, encoding="utf-8")
        credentials = self.config / "credentials.yaml"
        credentials.write_text(
            f"snmp:\n  soak-trap: {{version: 2c, community: {COMMUNITY}}}\n", encoding="utf-8"
        )
        credentials.chmod(0o600)
        rows = [
            f"  - {{id: {site}, kind: portal, name: 'Dịch vụ {site}', commune: thanh-xuong,"
            f" owner: district-it, lat: 21.35, lon: 103.03,"
            f" probe: {{tcp: {{address: 127.0.0.1, port: {self.services[site].port}}}}}}}"
            for site in TCP_SITES
        ] + [
            f"  - {{id: {site}, kind: loudspeaker, name: 'Cụm loa {site}', commune: thanh-xuong,"
            f" owner: district-it, lat: 21.35, lon: 103.03, probe: {{mqtt: {{}}}}}}"
            for site in MQTT_SITES
        ]
        (self.config / "inventory" / "district.yaml").write_text(
            "communes:\n  - {id: thanh-xuong, name: Thanh Xương, lat: 21.346, lon: 103.03}\n"
            "owners:\n  - {id: district-it, name: Trung tâm huyện, kind: agency}\n"
            "sites:\n" + "\n".join(rows) + "\n",
            encoding="utf-8",
        )

    def start_daemon(self) -> None:
        log = self.work / f"daemon-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("ab") as out:
            self.daemon = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "-c", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.config,
            )
        wait("the daemon", lambda: self.metric("districtmon_build_info") is not None, 30)
        wait("every site up", self.all_up, 30)

    def stop_daemon(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.read_counters()
            self.daemon.send_signal(sig)
            self.daemon.wait(30)
        self.daemon = None

    def get(self, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as r:
                return str(r.read().decode())
        except (urllib.error.URLError, OSError):
            return None

    def metric(self, name: str, **labels: str) -> float | None:
        text = self.get("/metrics")
        if text is None:
            return None
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in text.splitlines():
            head, _, value = line.rpartition(" ")
            if head == name or (head.startswith(name + "{") and want in head):
                return float(value)
        return None

    def states(self) -> dict[str, str]:
        text = self.get("/api/v1/sites")
        if text is None:
            return {}
        return {s["id"]: s["state"] for s in json.loads(text)["sites"]}

    def healthy(self) -> bool:
        text = self.get("/healthz")
        return text is not None and json.loads(text).get("status") == "ok"

    def all_up(self) -> bool:
        states = self.states()
        return bool(states) and set(states.values()) == {"up"}

    def read_counters(self) -> None:
        lost = self.metric("districtmon_ledger_lost_changes_total")
        self.figures.lost_changes += lost or 0.0

    def _sample(self) -> None:
        while self._sampling:
            states = self.states()
            now = time.time()
            for site, state in states.items():
                if state == "down":
                    self.figures.seen_down.setdefault(site, []).append(now)
            daemon = self.daemon
            if daemon is not None:
                try:
                    status = Path(f"/proc/{daemon.pid}/status").read_text()
                    rss = int(
                        next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1]
                    )
                    self.figures.peak_rss_kb = max(self.figures.peak_rss_kb, rss)
                except (OSError, StopIteration, ValueError):
                    pass
            time.sleep(0.2)

    # --- faults ---------------------------------------------------------------------------

    def fault(self, kind: str) -> None:
        fault = Fault(kind, time.time())
        if kind in ("broker_sigterm", "broker_sigkill"):
            self.broker.stop(signal.SIGTERM if kind == "broker_sigterm" else signal.SIGKILL)
            time.sleep(3)
            self.broker.start()
        elif kind == "agent_lost":
            fault.site = self.rng.choice(TCP_SITES)
            self.services[fault.site].close()
            time.sleep(3)
            self.services[fault.site].open()
        elif kind == "device_lost":
            fault.site = self.rng.choice(MQTT_SITES)
            self.devices[fault.site].kill()
            time.sleep(3)
            self.devices[fault.site].start()
        elif kind == "daemon_sigkill":
            self.stop_daemon(signal.SIGKILL)
            time.sleep(1)
            self.start_daemon()
        elif kind == "sighup_broken":
            assert self.daemon is not None
            self.write_config(broken=True)
            self.daemon.send_signal(signal.SIGHUP)
            wait("refused", lambda: self.metric("districtmon_config_last_reload_successful") == 0)
            self.figures.reload_failures_seen += 1
            self.write_config()
            self.daemon.send_signal(signal.SIGHUP)
            wait("reloaded", lambda: self.metric("districtmon_config_last_reload_successful") == 1)
        elif kind == "disk_full":
            fault.site = self.rng.choice(TCP_SITES)
            self.disk.fill()
            self.services[fault.site].close()
            time.sleep(4)
            self.services[fault.site].open()
            time.sleep(1)
            self.disk.free()
        elif kind == "trap_garbage":
            before = self.metric("districtmon_snmp_trap_datagrams_total") or 0.0
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for n in range(2000):
                    size = self.rng.randrange(0, 300)
                    sock.sendto(self.rng.randbytes(size), ("127.0.0.1", self.trap_port))
                    if n % 100 == 99:
                        time.sleep(0.02)
            self.figures.trap_sent += 2000
            with contextlib.suppress(RuntimeError):  # uncounted ones show in the table
                wait(
                    "the datagrams counted",
                    lambda: (
                        (self.metric("districtmon_snmp_trap_datagrams_total") or 0) - before >= 2000
                    ),
                    10,
                )
            after = self.metric("districtmon_snmp_trap_datagrams_total") or 0.0
            self.figures.trap_counted += int(after - before)
        fault.end = time.time()
        self.faults.append(fault)
        self.figures.faults[kind] += 1
        time.sleep(SETTLE)
        # recovered: every site up again and the ledger written (healthz says both)
        wait(f"every site up after {kind}", lambda: self.all_up() and self.healthy(), 40)

    # --- the run ----------------------------------------------------------------------------

    def run(self, duration: float, smoke: bool) -> int:
        for service in self.services.values():
            service.open()
        self.broker.start()
        for device in self.devices.values():
            device.start()
        self.write_config()
        self.start_daemon()
        self._sampler.start()
        kinds = [k for k in KINDS if k != "disk_full" or self.disk.mounted]
        deadline = time.monotonic() + duration
        rounds = 0
        while True:
            order = list(kinds)
            self.rng.shuffle(order)
            for kind in order:
                if not smoke and time.monotonic() >= deadline:
                    break
                self.fault(kind)
            rounds += 1
            if smoke or time.monotonic() >= deadline:
                break
        self.stop_daemon()
        self._sampling = False
        self._sampler.join(5)
        return self.report(kinds)

    def report(self, kinds: list[str]) -> int:
        intervals: dict[str, list[Interval]] = {}
        for interval in read_intervals(self.ledger):
            intervals.setdefault(interval.site, []).append(interval)
        expected = [f for f in self.faults if f.site is not None]
        false_downs = 0
        for site, recorded in intervals.items():
            for interval in recorded:
                if interval.state is State.DOWN and not any(
                    f.site == site and _overlaps(interval, f.start - 1, f.end + 3) for f in expected
                ):
                    false_downs += 1
        missed = lost = 0
        lost_faults: list[Fault] = []
        for f in expected:
            assert f.site is not None
            in_ledger = any(
                i.state is State.DOWN and _overlaps(i, f.start - 1, f.end + 3)
                for i in intervals.get(f.site, [])
            )
            seen = any(
                f.start - 1 <= t <= f.end + 3 for t in self.figures.seen_down.get(f.site, [])
            )
            if not in_ledger and seen:
                lost += 1
                lost_faults.append(f)
            elif not in_ledger:
                missed += 1
        overlaps = sum(
            1
            for recorded in intervals.values()
            for a, b in itertools.pairwise(recorded)
            if a.end is None or a.end > b.start
        )
        with sqlite3.connect(f"file:{self.ledger}?mode=ro", uri=True) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        runs = read_runs(self.ledger)
        tracebacks = 0
        for log in self.logs:
            text = log.read_text(errors="replace")
            tracebacks += text.count("Traceback")
            if "Traceback" in text:  # the first one, for whoever reads the table
                at = text.index("Traceback")
                start = text.rfind("\n", 0, max(0, text.rfind("\n", 0, at))) + 1
                print(f"--- {log.name}:\n{text[start : at + 3000]}", file=sys.stderr)
        for f in lost_faults:
            print(f"--- lost: {f.kind} {f.site} {f.start:.3f}..{f.end:.3f}", file=sys.stderr)
        uncounted = self.figures.trap_sent - self.figures.trap_counted
        rows = [
            ("faults injected", ", ".join(f"{k} {self.figures.faults[k]}" for k in kinds)),
            ("faults in all", str(sum(self.figures.faults.values()))),
            ("false downs", str(false_downs)),
            ("missed downs", str(missed)),
            ("lost ledger intervals", str(lost)),
            ("ledger changes lost (metric)", f"{self.figures.lost_changes:.0f}"),
            ("trap datagrams sent / uncounted", f"{self.figures.trap_sent} / {uncounted}"),
            ("ledger overlaps / integrity", f"{overlaps} / {integrity}"),
            ("daemon runs (unclean)", f"{len(runs)} ({sum(not r.clean for r in runs)})"),
            ("peak RSS of the daemon", f"{self.figures.peak_rss_kb / 1024:.0f} MB"),
            ("tracebacks in the log", str(tracebacks)),
        ]
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        bad = false_downs or missed or lost or uncounted or overlaps or integrity != "ok"
        return 1 if bad or tracebacks else 0

    def close(self) -> None:
        self._sampling = False
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait(10)
        for device in self.devices.values():
            device.kill()
        self.broker.stop(signal.SIGKILL)
        for service in self.services.values():
            service.close()
        self.disk.free()
        self.disk.close()


def _overlaps(interval: Interval, start: float, end: float) -> bool:
    return interval.start <= end and (interval.end is None or interval.end >= start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of faults")
    parser.add_argument("--smoke", action="store_true", help="one fault of each kind")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--device", nargs=2, metavar=("PORT", "SITE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device:
        run_device(int(args.device[0]), args.device[1])
        return 0
    work = Path(tempfile.mkdtemp(prefix="districtmon-soak-"))
    soak = Soak(work, args.seed)
    try:
        return soak.run(args.duration, args.smoke)
    finally:
        soak.close()
        if args.keep:
            print(f"work directory: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
