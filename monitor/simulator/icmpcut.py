"""Echo requests to a site that does not answer are dropped, with an nftables table of our own.

The kernel answers pings to every 127.x.y.z address by itself, so an `icmp` site would keep
answering through any outage the world plays. While a site does not answer, its address sits
in a set of the table `inet districtmon_sim_<pid>`, whose input chain drops echo requests to
the addresses of the set; when it answers again, the address leaves the set. Nothing else is
touched: other traffic to the address, other addresses, other tables.

The table is made at start and deleted at exit; a table left by a simulator that was killed
(its process is gone) is deleted at the next start. Changes are applied by one `nft -f -` per
batch, off the event loop's path (an asyncio subprocess), the latest wish winning.

Without nft, or without the right to use it (CAP_NET_ADMIN; the demo and the tests run as
root), ICMP sites cannot be cut: the simulator says so once in its log and in the truth's start
record (`"icmp_cut": false`) instead of recording outages that a ping would not see.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence

from monitor.core.model import IcmpProbe
from monitor.simulator.agent import SimulatorError
from monitor.simulator.world import SiteSim, World

log = logging.getLogger(__name__)

TABLE_PREFIX = "districtmon_sim_"
NFT_TIMEOUT = 10.0


class IcmpCut:
    def __init__(self, world: World, nft: str | None = None) -> None:
        self.world = world
        self.nft = nft or shutil.which("nft") or "/usr/sbin/nft"
        self.table = f"{TABLE_PREFIX}{os.getpid()}"
        self.enabled = False
        self.why_not = ""
        self.by_address: dict[str, list[SiteSim]] = {}
        self._applied: set[str] = set()  # addresses in the drop sets now
        self._dirty = asyncio.Event()
        problems = []
        for sim in world.sites.values():
            probe = sim.site.probe
            if not isinstance(probe, IcmpProbe):
                continue
            try:
                address = ipaddress.ip_address(probe.address)
            except ValueError:
                problems.append(
                    f"site '{sim.id}': address {probe.address!r} is a host name; the simulator "
                    "serves loopback IP literals only (127.x.y.z or ::1)"
                )
                continue
            if not address.is_loopback:
                problems.append(
                    f"site '{sim.id}': address {address} is not a loopback address; the "
                    "simulator serves 127.x.y.z and ::1 only, so that it sends nothing off the "
                    "machine"
                )
                continue
            self.by_address.setdefault(str(address), []).append(sim)
        if problems:
            raise SimulatorError(problems)
        world.change_listeners.append(self._on_change)

    def start(self) -> bool:
        """Make the table (after deleting stale ones); False, said once, if nft cannot."""
        if not self.by_address:
            self.enabled = True  # nothing to cut: nothing untrue
            return True
        try:
            tables = self._run(["list", "tables"])
            for stale in stale_tables(tables, self.table):
                log.info("deleting nftables table %s of a simulator that is gone", stale)
                self._run(["delete", "table", "inet", stale])
            self._run(["-f", "-"], self._ruleset(self.wanted()))
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            self.why_not = str(exc)
            log.warning(
                "ICMP sites cannot be cut (%s): they answer pings whatever the world says; "
                "the truth's start record says icmp_cut false",
                self.why_not,
            )
            return False
        self.enabled = True
        self._applied = self.wanted()
        log.info("nftables table inet %s drops pings to sites that do not answer", self.table)
        return True

    def close(self) -> None:
        if not self.enabled or not self.by_address:
            return
        self.enabled = False
        try:
            self._run(["delete", "table", "inet", self.table])
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            log.warning("nftables table %s not deleted: %s", self.table, exc)

    def wanted(self) -> set[str]:
        """Addresses none of whose sites answers."""
        return {
            address
            for address, sims in self.by_address.items()
            if not any(sim.reachable for sim in sims)
        }

    def _on_change(self, sim: SiteSim) -> None:
        if self.enabled and isinstance(sim.site.probe, IcmpProbe):
            self._dirty.set()

    async def run(self) -> None:
        """Apply the world's changes, one nft call per batch."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            wanted = self.wanted()
            if not self.enabled or wanted == self._applied:
                continue
            script = self._changes(wanted - self._applied, self._applied - wanted)
            proc = await asyncio.create_subprocess_exec(
                self.nft, "-f", "-",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await proc.communicate(script.encode())
            if proc.returncode != 0:
                log.error("nft refused a change, pings may not follow the world: %s", err.decode())
                continue
            self._applied = wanted

    def _ruleset(self, cut: set[str]) -> str:
        four, six = _split(cut)
        return f"""table inet {self.table} {{
  set cut4 {{ type ipv4_addr; {_elements(four)} }}
  set cut6 {{ type ipv6_addr; {_elements(six)} }}
  chain input {{
    type filter hook input priority -10; policy accept;
    ip daddr @cut4 icmp type echo-request drop
    ip6 daddr @cut6 icmpv6 type echo-request drop
  }}
}}
"""

    def _changes(self, add: set[str], remove: set[str]) -> str:
        lines = []
        for verb, addresses in (("delete", remove), ("add", add)):
            four, six = _split(addresses)
            for name, group in (("cut4", four), ("cut6", six)):
                if group:
                    lines.append(
                        f"{verb} element inet {self.table} {name} {{ {', '.join(group)} }}"
                    )
        return "\n".join(lines) + "\n"

    def _run(self, args: Sequence[str], stdin: str | None = None) -> str:
        proc = subprocess.run(
            [self.nft, *args], input=stdin, capture_output=True, text=True,
            timeout=NFT_TIMEOUT, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"nft {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
        return proc.stdout


def stale_tables(listing: str, own: str) -> list[str]:
    """Our tables in `nft list tables` whose simulator process no longer runs, and `own` if a
    previous start in this process left it."""
    found = re.findall(rf"^table inet ({TABLE_PREFIX}(\d+))$", listing, re.MULTILINE)
    return [name for name, pid in found if name == own or not os.path.exists(f"/proc/{pid}")]


def _split(addresses: set[str]) -> tuple[list[str], list[str]]:
    ordered = sorted(addresses)
    return [a for a in ordered if ":" not in a], [a for a in ordered if ":" in a]


def _elements(addresses: list[str]) -> str:
    return f"elements = {{ {', '.join(addresses)} }};" if addresses else ""
