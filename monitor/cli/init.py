"""`districtmon init DIR`: a commented starter configuration to begin a district from.

A new district starts from something that already passes `check-config` and runs: one
commune, one site of each kind on loopback addresses, the device profiles and telemetry
mappings they use. The files are the package's own data (monitor/examples/), so an installed
package writes the same starter as a checkout. Nothing is ever written over an existing file:
an operator's configuration is not a starter's to replace.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from monitor.cli.common import fail

#: The starter's own files, then what it takes from the shipped example district.
STARTER = "starter"
EXAMPLE = "dienbien"
FROM_EXAMPLE = ("profiles", "mqtt")
#: Files that hold secrets are written for their owner only.
PRIVATE = frozenset({"credentials.yaml"})


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "init",
        help="write a commented starter configuration (one commune, a site of each kind)",
        description="Writes a starter configuration into DIR (new, or empty): "
        "districtmon.yaml, credentials.yaml, inventory/, profiles/ and mqtt/. It passes "
        "check-config and runs as it is, on loopback addresses.",
    )
    parser.add_argument("directory", metavar="DIR", type=Path)
    parser.set_defaults(handler=run_init)


def starter_files() -> list[tuple[PurePosixPath, Traversable]]:
    """(path in the new directory, packaged file), in the order they are written."""
    root = resources.files("monitor") / "examples"
    files = list(_walk(root / STARTER, PurePosixPath()))
    example = root / EXAMPLE
    for part in FROM_EXAMPLE:
        files += [
            (path, item)
            for path, item in _walk(example / part, PurePosixPath(part))
            if path.suffix in (".yaml", ".md")
        ]
    return files


def _walk(node: Traversable, path: PurePosixPath) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for item in sorted(node.iterdir(), key=lambda i: i.name):
        if item.name.startswith((".", "__")):
            continue
        if item.is_dir():
            yield from _walk(item, path / item.name)
        else:
            yield path / item.name, item


def run_init(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    files = starter_files()
    if not files:
        return fail("the starter configuration is missing from this installation")
    if directory.exists() and not directory.is_dir():
        return fail(f"{directory}: not a directory")
    if directory.exists() and any(directory.iterdir()):
        return fail(
            f"{directory} is not empty: init writes only into a new or empty directory, never "
            "beside or over a configuration"
        )
    for path, item in files:
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if path.name in PRIVATE else 0o644
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "wb") as out:
            out.write(item.read_bytes())
    shown = str(directory)
    sys.stdout.write(
        f"wrote a starter configuration to {shown}/ ({len(files)} files):\n"
        "  districtmon.yaml   daemon settings (listener, ledger, polls, broker)\n"
        "  credentials.yaml   SNMP communities (placeholders: replace them)\n"
        "  inventory/         one commune, its owners, one site of each kind (loopback)\n"
        "  profiles/          what to read over SNMP from each kind of device\n"
        "  mqtt/              which field of a device's report is which value\n"
        "next:\n"
        f"  districtmon check-config -c {shown}\n"
        f"  districtmon run -c {shown}          # then http://127.0.0.1:9877/metrics\n"
        f"  districtmon simulate -c {shown}     # elsewhere: its SNMP sites come to life\n"
        f"  districtmon status -c {shown}\n"
    )
    return 0
