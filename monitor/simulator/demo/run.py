"""`python -m monitor.simulator.demo [SCENARIO [SPEED]]` (what `./dev demo` runs once it has
set up): the shipped district played by the simulator, watched by the daemon, scraped by
Prometheus, paged through Alertmanager, all on loopback; Ctrl-C stops everything.

Order of start, each waited for before the next: the receiver and Alertmanager (so that no
page is lost), mosquitto, the simulator (the scenario's clock starts when it is up), the daemon,
then Prometheus: started after the daemon answers, its first scrape finds it, and the monitor's
own alert (DistrictmonDown, which mutes every site alert) does not fire at start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from monitor.simulator.demo import timers
from monitor.simulator.demo.processes import Child, ChildError
from monitor.simulator.demo.receiver import Receiver

ROOT = Path(__file__).resolve().parents[3]  # the checkout: config/ and var/
SHIPPED = ROOT / "config"
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
MOSQUITTO = "/usr/sbin/mosquitto"

# Loopback only. Prometheus and Alertmanager away from their usual 9090 and 9093, so that a
# Prometheus of the machine's own keeps its ports; the daemon's listener, its trap port and
# its broker (the simulator's relay) are those of config/districtmon.yaml.
CONTROL = ("127.0.0.1", 9878)
BROKER = ("127.0.0.1", 18831)  # mosquitto; the relay in front of it is what a broker outage cuts
PROMETHEUS_AT = ("127.0.0.1", 19090)
ALERTMANAGER_AT = ("127.0.0.1", 19093)
RECEIVER_AT = ("127.0.0.1", 19095)
DEFAULT_SPEED = 10.0


@dataclass(frozen=True)
class Plan:
    """Where everything of one demo goes."""

    scenario: Path
    speed: float
    var: Path  # var/: the ledger; var/demo/: everything else, emptied at start

    @property
    def run(self) -> Path:
        return self.var / "demo"

    def shown(self, path: Path) -> str:
        """`path` as a person at the checkout types it."""
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)


@dataclass(frozen=True)
class Daemon:
    """What the daemon's configuration says about where it listens and how fast it decides."""

    http: tuple[str, int]
    relay: tuple[str, int]
    traps: tuple[str, int]
    poll: float
    down_after: int
    heartbeat: float
    zone: ZoneInfo

    @classmethod
    def read(cls, config: Path) -> Daemon:
        settings: dict[str, Any] = timers.load_yaml(config / "districtmon.yaml") or {}
        mqtt = settings.get("mqtt") or {}
        traps = ((settings.get("snmp") or {}).get("traps") or {}).get("listen", "127.0.0.1:1162")
        return cls(
            http=_host_port(settings.get("http", {}).get("listen", "127.0.0.1:9877")),
            relay=(str(mqtt.get("host", "127.0.0.1")), int(mqtt.get("port", 1883))),
            traps=_host_port(traps),
            poll=float(settings.get("poll", {}).get("interval_seconds", 60)),
            down_after=int(settings.get("state", {}).get("down_after", 3)),
            heartbeat=float(mqtt.get("heartbeat_timeout_seconds", 180)),
            zone=ZoneInfo(str(settings.get("timezone", "UTC"))),
        )


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _address(at: tuple[str, int]) -> str:
    return f"{at[0]}:{at[1]}"


def _seconds(value: float) -> str:
    """A duration as a person reads it: 18 s, 1m30s, 2h."""
    whole = round(value)
    if value < 60:
        return f"{value:.2g} s" if value < 10 and whole != value else f"{whole} s"
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{seconds}s" if seconds else "")


class Interrupted(Exception):
    """Ctrl-C, or SIGTERM/SIGHUP: stop everything."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _taken(addresses: list[tuple[str, int]]) -> list[str]:
    """The TCP addresses of the list something already listens on."""
    taken = []
    for host, port in addresses:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                taken.append(f"{host}:{port}")
    return taken


def _wait_tcp(child: Child, at: tuple[str, int], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not child.running():
            raise child.failure(f"exited with status {child.proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(at, timeout=1):
            return
        time.sleep(0.1)
    raise child.failure(f"did not listen on {_address(at)} within {limit:g} s")


def _start_wall(truth: Path, limit: float = 10.0) -> float:
    """When the simulator's clock started (its truth's start record), the scenario's zero."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            first = truth.read_text(encoding="utf-8").split("\n", 1)[0]
            if first:
                return float(json.loads(first)["wall"])
        time.sleep(0.1)
    return time.time()


def expectations(plan: Plan, daemon: Daemon, alertmanager: Path) -> str:
    """What an operator should see, and when: from the (divided) timers the demo runs with."""
    speed = plan.speed
    rules = timers.load_yaml(SHIPPED / "prometheus" / "alerts.yml")
    delays: dict[str, float] = {}
    keep = 0.0
    for group in rules["groups"]:
        for rule in group["rules"]:
            labels = rule.get("labels", {})
            if "alert" not in rule or labels.get("scope") not in ("site", "commune", "operator"):
                continue
            if labels.get("severity") not in ("critical", "warning"):
                continue
            delays.setdefault(rule["alert"], timers.parse_duration(rule.get("for", "0s")) / speed)
            if labels["scope"] == "site":
                keep = max(keep, timers.parse_duration(rule.get("keep_firing_for", "0s")) / speed)
    route = timers.load_yaml(alertmanager)["route"]
    wait = timers.parse_duration(route["group_wait"])
    interval = timers.parse_duration(route["group_interval"])
    receivers = [
        r["name"] for r in timers.load_yaml(alertmanager)["receivers"] if "webhook_configs" in r
    ]
    confirm = daemon.down_after * daemon.poll
    fors = ", ".join(f"{name} {_seconds(s)}" for name, s in delays.items())
    if speed == 1:
        divided = "Every timer is the shipped one: the pages come as they would in life."
    else:
        divided = (
            f"Every timer of the daemon, of Prometheus (the rules' for: included; the scrape"
            f" interval down to 1 s) and of Alertmanager is divided by {speed:g}, like the"
            f" scenario's clock: the pages come as they would in life, {speed:g} times sooner"
            f" (copies of the shipped files in {plan.shown(plan.run)}/)."
        )
    points = [
        f"a site that stops answering is down after {daemon.down_after} failed polls in a row,"
        f" at most {_seconds(confirm)} after the fault (an MQTT loudspeaker cluster:"
        f" {_seconds(daemon.heartbeat)} of silence), dated at the first;",
        f"its alert fires once that state has lasted the rule's for: {fors};",
        f"Alertmanager sends it {_seconds(wait)} later (group_wait) to its owner's receiver"
        f" ({', '.join(receivers)}: config/alertmanager/, each a webhook to the demo's"
        f" receiver), and news of a commune that was paged already within {_seconds(interval)}"
        " (group_interval); a site behind a broken one, or in a commune cut off, is muted:"
        " one page for the cause;",
        f'a site\'s "resolved" follows {_seconds(keep)} (keep_firing_for) to'
        f" {_seconds(keep + interval)} after the repair.",
    ]
    lines = [_wrap(f"What to expect, and when. {divided}", "  ", "  ")]
    lines += [_wrap(point, "    - ", "      ") for point in points]
    closing = (
        "Every page is printed below as it arrives and written to"
        f" {plan.shown(plan.run / 'notifications.jsonl')}."
        + _first_page(plan, daemon, delays, wait)
    )
    lines.append(_wrap(closing, "  ", "  "))
    return "\n".join(lines) + "\n"


def _wrap(text: str, first: str, rest: str) -> str:
    return textwrap.fill(
        text, width=96, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )


def _first_page(plan: Plan, daemon: Daemon, delays: dict[str, float], wait: float) -> str:
    """When the scenario's first lone BTS outage should page, if it has one (the day does)."""
    scenario = timers.load_yaml(plan.scenario)
    for event in scenario.get("events", []):
        site = str(event.get("site", ""))
        if event.get("do") == "down" and site.startswith("bts-") and "BtsDown" in delays:
            at = timers.parse_duration(str(event["at"])) / plan.speed
            page = at + daemon.down_after * daemon.poll + delays["BtsDown"] + wait
            return (
                f" The first: {site} dies at t+{event['at']} ({_seconds(at)} after the start);"
                f" BtsDown should reach its operator about {_seconds(page)} after the start,"
                " give or take a poll."
            )
    return ""


class Demo:
    """The running demo: its children in start order, and the receiver."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.children: list[Child] = []
        self.receiver: Receiver | None = None

    def child(self, name: str, command: list[str]) -> Child:
        started = Child(name, command, self.plan.run / f"{name}.log", ROOT)
        self.children.append(started)
        return started

    def watch(self) -> None:
        """Until a child stops by itself (an error) or a signal interrupts."""
        while True:
            for child in self.children:
                if not child.running():
                    raise child.failure(f"stopped by itself (status {child.proc.returncode})")
            time.sleep(0.5)

    def stop(self) -> None:
        """Prometheus first, so that the demo's own end pages nobody (the daemon gone would
        fire DistrictmonDown); then the daemon, so that it records its stop while the devices
        still answer (one that outlived the simulator would record a district-wide outage);
        then the rest, together."""
        by_name = {c.name: c for c in self.children}
        for first in ("prometheus", "daemon"):
            if first in by_name:
                by_name[first].stop()
        rest = [c for c in reversed(self.children) if c.name not in ("prometheus", "daemon")]
        # the simulator removes its nftables table as it stops: on a loaded machine that
        # takes a while, and killed it would leave the table behind
        stoppers = [
            threading.Thread(target=c.stop, args=(60.0 if c.name == "simulator" else 30.0,))
            for c in rest
        ]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        if self.receiver is not None:
            self.receiver.close()


def start(demo: Demo, config: Path, daemon: Daemon) -> float:
    """Starts everything in order; returns the scenario's zero (Unix seconds)."""
    plan = demo.plan
    run = plan.run
    python = [sys.executable, "-m", "monitor"]
    demo.receiver = Receiver(*RECEIVER_AT, run / "notifications.jsonl", daemon.zone)
    am_dir = run / "alertmanager"
    am_config = timers.alertmanager_config(
        SHIPPED / "alertmanager" / "alertmanager.yml",
        am_dir / "alertmanager.yml",
        plan.speed,
        demo.receiver.url,
    )
    alertmanager = demo.child(
        "alertmanager",
        [
            ALERTMANAGER,
            f"--config.file={am_config}",
            f"--storage.path={am_dir / 'data'}",
            f"--web.listen-address={_address(ALERTMANAGER_AT)}",
            "--cluster.listen-address=",  # a lone instance on loopback: no gossip port
        ],
    )
    (run / "mosquitto.conf").write_text(
        f"listener {BROKER[1]} {BROKER[0]}\nallow_anonymous true\npersistence false\n",
        encoding="utf-8",
    )
    broker = demo.child("mosquitto", [MOSQUITTO, "-c", str(run / "mosquitto.conf")])
    alertmanager.wait_http(f"http://{_address(ALERTMANAGER_AT)}/-/ready", 30)
    _wait_tcp(broker, BROKER, 15)
    truth = run / "truth.jsonl"
    simulator = demo.child(
        "simulator",
        [
            *python, "simulate", "-c", str(config), "--scenario", str(plan.scenario),
            "--speed", f"{plan.speed:g}", "--control", _address(CONTROL),
            "--mqtt", _address(BROKER), "--broker-relay", _address(daemon.relay),
            "--traps", _address(daemon.traps), "--truth", str(truth),
            # one socket per address rather than one per port: the demo's 269 agents then
            # share port 1161 with whatever else listens on it at other loopback addresses
            # (a test's snmpsim, another district)
            "--bind", "endpoint",
        ],
    )  # fmt: skip
    simulator.wait_http(f"http://{_address(CONTROL)}/healthz", 60)
    zero = _start_wall(truth)
    # the daemon's trap receiver listens long before the first fault
    monitor = demo.child("daemon", [*python, "run", "-c", str(config)])
    monitor.wait_http(f"http://{_address(daemon.http)}/healthz", 60)
    prom_dir = run / "prometheus"
    prom_config, flags = timers.prometheus_config(
        SHIPPED / "prometheus" / "prometheus.yml",
        prom_dir,
        plan.speed,
        _address(daemon.http),
        _address(ALERTMANAGER_AT),
    )
    prometheus = demo.child(
        "prometheus",
        [
            PROMETHEUS,
            f"--config.file={prom_config}",
            f"--storage.tsdb.path={prom_dir / 'data'}",
            f"--web.listen-address={_address(PROMETHEUS_AT)}",
            *flags,
        ],
    )
    prometheus.wait_http(f"http://{_address(PROMETHEUS_AT)}/-/ready", 60)
    return zero


def _intro(plan: Plan) -> str:
    speed = plan.speed
    return f"""
  districtmon is watching the simulated Điện Biên district, brought to life by
  `districtmon simulate`: 269 SNMP agents on 127.x.y.z:1161 (BTS, gateways, radio stations),
  71 loudspeaker clusters publishing over MQTT, 41 video endpoints and post points answering
  pings on 127.4.x.y, the web portals and the mail server. Every site has a real state within
  a minute or two. Times below are this machine's clock in the district's time zone; at x{speed:g}
  every timer is divided by {speed:g}, and what the daemon records (the ledger, "since") is in
  real seconds: a 15-minute outage of the scenario lasts {_seconds(900 / speed)}.
"""


def _urls(plan: Plan, daemon: Daemon) -> str:
    http, prom, am = _address(daemon.http), _address(PROMETHEUS_AT), _address(ALERTMANAGER_AT)
    control, relay = _address(CONTROL), daemon.relay[1]
    return f"""
    status page:   http://{http}/   (what is wrong now, the communes, the monitor; a browser)
    report:        http://{http}/report   (the month so far, as the office prints it)
    metrics:       http://{http}/metrics
    sites:         http://{http}/api/v1/sites   (JSON: state, reason, since; ?state=down)
    Prometheus:    http://{prom}/alerts   (the rules, pending and firing; /graph to query,
                   e.g. districtmon_site_state{{state="down"}} == 1)
    Alertmanager:  http://{am}   (what fires, grouped per receiver; what is muted)
    pages:         {plan.shown(plan.run / "notifications.jsonl")}   (every notification sent)
    truth:         http://{control}/truth   (what the simulator did: compare; also \
{plan.shown(plan.run / "truth.jsonl")})
    device:        http://{control}/sites/gw-district-core   (the simulator's view of a site)
    faults:        .venv/bin/districtmon simulate ctl power-cut muong-phang battery_minutes=3
                   .venv/bin/districtmon simulate ctl down bts-vtl-thanh-nua-01   (and: ctl restore)
    SNMP:          snmpwalk -v2c -c sim-viettel 127.1.0.1:1161 1.3.6.1.2.1.33
    MQTT:          mosquitto_sub -h 127.0.0.1 -p {relay} -t 'dienbien/#' -v
    logs:          {plan.shown(plan.run)}/ (daemon, simulator, prometheus, alertmanager, mosquitto)
    Grafana:       add http://{prom} as a Prometheus data source, then dashboards/provisioning/
  Other scenarios: ./dev demo power-cut 10, fibre-cut, amplifier-fault, flapping-link,
  slow-agent, broker-outage, demo; ./dev demo day 1 plays the day in real time. Ctrl-C stops all.
"""


def _scenario(text: str) -> Path:
    path = Path(text)
    if not path.is_file() and (SHIPPED / "scenarios" / f"{text}.yaml").is_file():
        path = SHIPPED / "scenarios" / f"{text}.yaml"  # ./dev demo power-cut
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in (SHIPPED / "scenarios").glob("*.yaml")))
        raise argparse.ArgumentTypeError(f"no scenario {text!r} (a file, or one of: {names})")
    return path.resolve()


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"must be a number above 0, at most 1000: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./dev demo",
        description="The shipped district, simulated, watched by the daemon, Prometheus and "
        "Alertmanager on loopback. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "scenario",
        nargs="?",
        default="day",
        type=_scenario,
        help="a scenario file, or a name of config/scenarios/ (default: day)",
    )
    parser.add_argument(
        "speed",
        nargs="?",
        default=DEFAULT_SPEED,
        type=_speed,
        help="simulated seconds per real second; every timer is divided by it (default: 10)",
    )
    parser.add_argument(
        "--var",
        type=Path,
        default=ROOT / "var",
        help="where the ledger (ledger.sqlite) and demo/ go (default: var/ of the checkout)",
    )
    return parser


_STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _signals(handler: Any) -> None:
    for signum in _STOPPING:
        signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = Plan(args.scenario, args.speed, args.var.resolve())
    daemon_shipped = Daemon.read(SHIPPED)
    ours = [daemon_shipped.http, CONTROL, BROKER, daemon_shipped.relay]
    taken = _taken([*ours, PROMETHEUS_AT, ALERTMANAGER_AT, RECEIVER_AT])
    if taken:
        print(
            f"demo: already in use: {', '.join(taken)} (a demo still running?); stop it first",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(plan.run, ignore_errors=True)
    (plan.run / "alertmanager").mkdir(parents=True)
    (plan.run / "prometheus").mkdir()
    config = timers.daemon_config(
        SHIPPED, plan.run / "config", plan.speed, plan.var / "ledger.sqlite"
    )
    daemon = Daemon.read(config)
    simulate = [sys.executable, "-m", "monitor", "simulate", "-c", str(config)]
    check = subprocess.run(
        [*simulate, "--scenario", str(plan.scenario), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:  # a broken scenario is refused before anything starts
        sys.stderr.write(check.stderr)
        return 1
    demo = Demo(plan)
    status = 0
    # Ctrl-C, SIGTERM and SIGHUP raise Interrupted; while the demo stops they are ignored, so
    # that a second Ctrl-C does not cut the stopping short (each stop is bounded)
    _signals(_interrupt)
    try:
        zero = start(demo, config, daemon)
        print(_intro(plan), flush=True)
        scenario = ["--scenario", str(plan.scenario), "--speed", f"{plan.speed:g}"]
        subprocess.run([*simulate, *scenario, "--timeline", "--start", f"{zero:.3f}"], check=False)
        print(_urls(plan, daemon), flush=True)
        print(expectations(plan, daemon, plan.run / "alertmanager" / "alertmanager.yml"))
        print("  Pages:", flush=True)
        demo.watch()
    except Interrupted:
        pass
    except ChildError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        status = 1
    finally:
        _signals(signal.SIG_IGN)
        print("\nstopping the demo...", flush=True)
        demo.stop()
    print(
        f"stopped; the ledger is in {plan.shown(plan.var / 'ledger.sqlite')}, the truth in "
        f"{plan.shown(plan.run / 'truth.jsonl')}, the pages in "
        f"{plan.shown(plan.run / 'notifications.jsonl')}, logs in {plan.shown(plan.run)}/",
        flush=True,
    )
    return status
