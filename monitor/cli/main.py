"""Command line: `districtmon run` (the daemon), `check-config`, `status`, `report`,
`maintenance`, `init`, `probe` and `simulate` (the simulated district, monitor/simulator/, imported
only when that command runs)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from monitor import __version__
from monitor.cli import init as initcli
from monitor.cli import maintenance as maintenancecli
from monitor.cli import probe as probecli
from monitor.cli import report as reportcli
from monitor.cli import status as statuscli
from monitor.cli.common import CONFIG_HELP
from monitor.cli.summary import summarize
from monitor.config.load import Config, find_config_dir
from monitor.config.problems import ConfigError
from monitor.config.shards import Shard, load_shard
from monitor.core.logsetup import configure_logging
from monitor.ledger.schema import LedgerError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="districtmon",
        description="Watches a district's base stations, broadcast sites and agency networks.",
    )
    parser.add_argument("--version", action="version", version=f"districtmon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("-c", "--config", metavar="PATH", help=CONFIG_HELP)
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="one line per event on stderr: text (journald-friendly) or JSON",
    )
    run.add_argument(
        "--shard",
        metavar="i/N",
        type=_shard,
        help="watch only shard i of N of the inventory (1-based, e.g. 2/3): several daemons "
        "split a province, every site watched by exactly one",
    )

    check = commands.add_parser("check-config", help="validate the configuration and summarise it")
    check.add_argument("-c", "--config", metavar="PATH", help=CONFIG_HELP)
    commands.add_parser(
        "simulate",
        help="bring the inventory to life on loopback (SNMP agents, MQTT publishers, faults); "
        "districtmon simulate --help for its options",
        add_help=False,
    )

    # Commands with their own handler read the configuration themselves (it is optional for
    # them: a report can read ledger files alone).
    statuscli.add_parser(commands)
    reportcli.add_parser(commands)
    maintenancecli.add_parser(commands)
    initcli.add_parser(commands)
    probecli.add_parser(commands)
    return parser


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _load(path: str | None, shard: Shard | None, *, cache: bool) -> Config:
    return load_shard(find_config_dir(path), shard, cache=cache)


def _run(args: argparse.Namespace, config: Config) -> int:
    configure_logging(args.log_level, args.log_format)
    from monitor.runtime.daemon import run_daemon

    directory = config.directory
    shard: Shard | None = args.shard
    try:
        asyncio.run(
            run_daemon(
                config,
                reload_config=lambda: load_shard(directory, shard, cache=True),
            )
        )
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    except LedgerError as exc:  # a ledger that cannot be opened: what and why, no traceback
        print(f"districtmon: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["simulate"]:
        from monitor.simulator.cli import main as simulate

        return simulate(arguments[1:])
    args = _parser().parse_args(arguments)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    try:
        # the daemon keeps its readings of the inventory (reading_cache.py); a check reads anew
        config = _load(args.config, getattr(args, "shard", None), cache=args.command == "run")
    except ConfigError as exc:
        print(f"districtmon: {exc.refusal('configuration')}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        for warning in config.warnings:
            print(f"districtmon: warning: {warning}", file=sys.stderr)
        print(summarize(config))
        return 0  # `run` logs its warnings, in the log's own format
    return _run(args, config)
