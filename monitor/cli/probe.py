"""`districtmon probe ADDRESS --credential NAME`: what a device is and what its profile reads.

The walk-through for the engineer adding a device: before a site is written into the
inventory, one command asks the device what `profile: auto` would ask (sysObjectID,
sysDescr, the vendor OIDs of the profiles' `detect` sections), says which profile it would
choose and why, which others matched, then polls once with that profile (or the one given
with `--profile`) and prints every value of it: its reading in base units, or why there is
none (not answered, the device says not available, not walked). The configuration gives the
credentials, the profiles and the SNMP engine; nothing is written anywhere.

Exit code: 0 the device answered, 1 it did not, 2 the command or the configuration is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import replace
from typing import TextIO

from monitor.cli.common import CONFIG_HELP, fail
from monitor.config.load import Config, find_config_dir, load_config
from monitor.config.problems import ConfigError
from monitor.config.profiles import AUTO, Profile, describe_detection
from monitor.config.settings import PollSettings
from monitor.config.suggest import did_you_mean
from monitor.core.model import Observation, Site, SnmpProbe
from monitor.probes.measure import ProbeFailed
from monitor.probes.snmp.detect import Detected
from monitor.probes.snmp.engines import create_engine
from monitor.probes.snmp.poller import SnmpPoller

ANSWERED, SILENT, WRONG = 0, 1, 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "probe",
        help="ask a device what it is, which profile auto picks, and what every value reads",
        description="Asks an SNMP device its sysObjectID and sysDescr, says which profile "
        "`profile: auto` picks and why, then polls it once and prints every value of that "
        "profile. Exit code: 0 the device answered, 1 it did not, 2 a wrong argument or "
        "configuration.",
    )
    parser.add_argument("address", metavar="ADDRESS", help="the device's address or host name")
    parser.add_argument(
        "--credential", required=True, metavar="NAME", help="an SNMP credential of credentials.yaml"
    )
    parser.add_argument("--port", type=int, default=161, help="UDP port (default 161)")
    parser.add_argument(
        "--profile", metavar="NAME", default=AUTO, help="poll with this profile (default: auto)"
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request (2)")
    parser.add_argument("-c", "--config", metavar="PATH", help=CONFIG_HELP)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        config = load_config(find_config_dir(args.config))
    except ConfigError as exc:
        return fail(exc.refusal("configuration"))
    if args.credential not in config.credentials:
        hint = did_you_mean(args.credential, config.credentials)
        return fail(f"no SNMP credential '{args.credential}' in credentials.yaml{hint}")
    if args.profile != AUTO and args.profile not in config.profiles:
        hint = did_you_mean(args.profile, config.profiles)
        return fail(f"no profile '{args.profile}'{hint}")
    if not 0 < args.port < 65536 or args.timeout <= 0:
        return fail("--port must be 1..65535 and --timeout above 0")
    logging.basicConfig(level=logging.WARNING, format="districtmon: %(message)s")
    return asyncio.run(_probe(args, config, out))


async def _probe(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    engine = create_engine(config.snmp.engine)
    settings = PollSettings(timeout_seconds=args.timeout, retries=1)
    poller = SnmpPoller(engine, settings, config.credentials, config.profiles)
    probe = SnmpProbe(args.address, args.port, args.credential, profile=AUTO)
    site = Site("probe", "gateway", args.address, "-", "-", 0.0, 0.0, probe)
    credential = config.credentials[args.credential]
    print(f"device: {args.address}:{args.port} (credential {credential.name}, "
          f"SNMP v{credential.version})", file=out)  # fmt: skip
    try:
        try:
            detected = await poller.detect(site)
        except ProbeFailed as failure:
            print(f"no answer: {failure}", file=out)
            return SILENT
        _print_detection(detected, out)
        if args.profile != AUTO:
            site = replace(site, probe=replace(probe, profile=args.profile))
            print(f"polled with: {args.profile} (--profile)", file=out)
        obs = await poller.poll(site)
    finally:
        await engine.close()
    profile = poller.profile_of(site)
    if not obs.ok:
        print(f"poll failed: {obs.error}", file=out)
        return SILENT
    _print_values(profile, obs, poller.problems_of(site.id), out)
    return ANSWERED


def _print_detection(detected: Detected, out: TextIO) -> None:
    print(f"sysObjectID: {detected.object_id or '(none)'}", file=out)
    print(f"sysDescr: {detected.descr or '(none)'}", file=out)
    profile = detected.profile
    vendor = f" ({profile.vendor})" if profile.vendor else ""
    print(f"profile auto picks: {profile.id}{vendor}: {detected.why}", file=out)
    for other in detected.others:
        print(f"  also matched: {other.id}: {describe_detection(other)}", file=out)


def _print_values(profile: Profile, obs: Observation, problems: str, out: TextIO) -> None:
    print(f"profile: {profile.id} - {profile.description}", file=out)
    values = obs.values
    print(f"  uptime_seconds = {_shown(values.get('uptime_seconds'))}", file=out)
    print(f"  sys_name = {_shown(values.get('sys_name'))}", file=out)
    for spec in profile.scalars:
        hidden = "" if spec.export else "  (not exported)"
        print(f"  {spec.name} = {_shown(values.get(spec.name))}{hidden}", file=out)
    for table in profile.tables:
        names = {column.name for column in table.columns if column.export}
        found = [s for s in obs.samples if s.name in names]
        rows = {s.labels for s in found}
        print(f"  table {table.name}: {len(rows)} rows", file=out)
        for sample in found:
            labels = ", ".join(f'{k}="{v}"' for k, v in sample.labels)
            print(f"    {sample.name}{{{labels}}} = {_shown(sample.value)}", file=out)
        for column in table.columns:
            if column.export and not any(s.name == column.name for s in found):
                print(f"    {column.name}: no row has a value", file=out)
    if problems:
        print(f"problems: {problems}", file=out)
    if obs.degraded_reason:
        codes = f" [{', '.join(obs.codes)}]" if obs.codes else ""
        print(f"state: degraded{codes}: {obs.degraded_reason}", file=out)
    else:
        print("state: up", file=out)


def _shown(value: float | str | None) -> str:
    if value is None:
        return "- (none: see problems)"
    if isinstance(value, str):
        return repr(value)
    return f"{value:.12g}"
