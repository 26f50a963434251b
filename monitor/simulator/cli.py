"""`districtmon simulate` and `districtmon simulate ctl`: options, and the two entry points."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.config.load import Config, find_config_dir, load_config
from monitor.config.problems import ConfigError
from monitor.config.settings import parse_listen
from monitor.simulator.actions import SPECS
from monitor.simulator.control import DEFAULT_CONTROL, ctl_path, request

EXAMPLES = """\
examples:
  districtmon simulate -c config --mqtt 127.0.0.1:18831 --broker-relay 127.0.0.1:18830
  districtmon simulate -c config --scenario config/scenarios/power-cut.yaml --speed 60
  districtmon simulate ctl down bts-vtl-thanh-nua-01
  districtmon simulate ctl power-cut muong-phang battery_minutes=5
  districtmon simulate ctl flap gw-ubnd-na-u period=40s duration=10m
  districtmon simulate ctl status bts-vtl-thanh-nua-01
  districtmon simulate ctl restore
"""


def _host_port(text: str) -> tuple[str, int]:
    parsed = parse_listen(text)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT, got {text!r}")
    return parsed.host, parsed.port


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    sim = argparse.ArgumentParser(
        prog="districtmon simulate",
        description="Serve every site of the inventory as a simulated device on its loopback "
        "address: SNMP agents, MQTT publishers for the broadcast sites, scenarios and live "
        "fault injection. See monitor/simulator/README.md.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help="configuration directory (default: ./config, then /etc/districtmon)",
    )
    sim.add_argument("--scenario", metavar="FILE", type=Path, help="a YAML timeline to play")
    sim.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="simulated seconds per real second (60: a minute per second); default 1",
    )
    sim.add_argument(
        "--check", action="store_true", help="check the configuration and scenario, then exit"
    )
    sim.add_argument(
        "--timeline",
        action="store_true",
        help="print what the scenario does when at --speed (local time of the configuration), "
        "then exit",
    )
    sim.add_argument(
        "--start",
        type=float,
        metavar="UNIX_SECONDS",
        help="for --timeline: when the scenario starts (default: now)",
    )
    sim.add_argument(
        "--control",
        type=_host_port,
        default=_host_port(DEFAULT_CONTROL),
        metavar="HOST:PORT",
        help=f"the live control's HTTP address (default {DEFAULT_CONTROL})",
    )
    sim.add_argument("--no-control", action="store_true", help="no live control")
    sim.add_argument(
        "--mqtt", type=_host_port, metavar="HOST:PORT", help="publish to this MQTT broker"
    )
    sim.add_argument(
        "--mqtt-prefix",
        help="topic prefix (default: mqtt.topic_prefix of the configuration, as the daemon)",
    )
    sim.add_argument(
        "--mqtt-interval",
        type=_speed,
        default=60.0,
        metavar="SECONDS",
        help="telemetry period in simulated seconds (default 60)",
    )
    sim.add_argument("--mqtt-keepalive", type=int, default=60, help=argparse.SUPPRESS)
    sim.add_argument(
        "--broker-relay",
        type=_host_port,
        metavar="HOST:PORT",
        help="relay to the --mqtt broker here; a broker-outage cuts it (connect the daemon here)",
    )
    sim.add_argument(
        "--traps",
        type=_host_port,
        metavar="HOST:PORT",
        help="send SNMPv2c traps there, with the trap community of snmp.traps.credentials",
    )
    sim.add_argument(
        "--truth",
        type=Path,
        metavar="FILE",
        help="append the ground truth there, one JSON record a line (also GET /truth)",
    )
    sim.add_argument(
        "--bind",
        choices=["auto", "shared", "endpoint"],
        default="auto",
        help="shared: one socket per port for all 127.x addresses; endpoint: one per address",
    )
    sim.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sim.add_argument("--log-format", default="text", choices=["text", "json"])
    sub = sim.add_subparsers(dest="sim_command", metavar="ctl", required=False)
    ctl = sub.add_parser(
        "ctl",
        help="inject a fault into a running simulator",
        description="Send one action to a running simulator's control. Actions: "
        + ", ".join(SPECS)
        + "; and `status [SITE]`.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ctl.add_argument(
        "--control",
        dest="ctl_control",
        default=DEFAULT_CONTROL,
        metavar="HOST:PORT",
        help=f"the simulator's control address (default {DEFAULT_CONTROL})",
    )
    ctl.add_argument("action", help="an action, or status")
    ctl.add_argument("target", nargs="?", help="the site or commune")
    ctl.add_argument("params", nargs="*", metavar="PARAM=VALUE", help="e.g. battery_minutes=5")
    return sim


def main(argv: Sequence[str]) -> int:
    """`districtmon simulate ARGS`: the command line hands its arguments over unparsed, so
    that the daemon's command line never imports the simulator."""
    args = _parser().parse_args(argv)
    if args.sim_command == "ctl":
        return ctl_main(args)
    try:
        config = load_config(find_config_dir(args.config))
    except ConfigError as exc:
        print(f"districtmon: {exc.refusal('configuration')}", file=sys.stderr)
        return 2
    return simulate_main(args, config)


def ctl_main(args: argparse.Namespace) -> int:
    target, params = args.target, list(args.params)
    if target is not None and "=" in target:
        target, params = None, [target, *params]
    query: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"districtmon: {item!r} is not PARAM=VALUE", file=sys.stderr)
            return 2
        query[key] = value
    if args.action == "status":
        method, path = "GET", (f"/sites/{target}" if target else "/stats")
    else:
        method, path = "POST", ctl_path(args.action, target)
    try:
        status, body = request(args.ctl_control, method, path, query)
    except (OSError, ValueError) as exc:
        print(f"districtmon: no simulator control at {args.ctl_control}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(body, ensure_ascii=False, indent=2))
    return 0 if status == 200 else 1


def simulate_main(args: argparse.Namespace, config: Config) -> int:
    from monitor.core.logsetup import configure_logging
    from monitor.simulator.agent import SimulatorError
    from monitor.simulator.run import SimOptions, run_simulator
    from monitor.simulator.scenario import load_scenario, timeline

    scenario = None
    if args.scenario is not None:
        try:
            scenario = load_scenario(args.scenario, config)
        except ConfigError as exc:
            print(f"districtmon: {exc.refusal('scenario')}", file=sys.stderr)
            return 2
    if args.timeline:
        if scenario is None:
            print("districtmon: --timeline needs --scenario", file=sys.stderr)
            return 2
        zone = ZoneInfo(config.timezone) if config.timezone else None
        start = args.start if args.start is not None else time.time()
        print(timeline(scenario, args.speed, start, zone))
        return 0
    if args.check:
        events = len(scenario.events) if scenario else 0
        print(f"configuration ok: {len(config.sites)} sites; scenario events: {events}")
        return 0
    configure_logging(args.log_level, args.log_format)
    options = SimOptions(
        speed=args.speed,
        scenario=scenario,
        control=None if args.no_control else args.control,
        mqtt=args.mqtt,
        mqtt_prefix=args.mqtt_prefix,
        mqtt_interval=args.mqtt_interval,
        mqtt_keepalive=args.mqtt_keepalive,
        broker_relay=args.broker_relay,
        traps=args.traps,
        bind=args.bind,
        truth=args.truth,
    )
    if options.broker_relay is not None and options.mqtt is None:
        print("districtmon: --broker-relay needs --mqtt (the broker to relay to)", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_simulator(config, options))
    except SimulatorError as exc:
        print(f"districtmon: cannot simulate ({len(exc.problems)} problems):", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    return 0
