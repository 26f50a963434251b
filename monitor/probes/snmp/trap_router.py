"""Trap events to sites: the source address picks the sites, each site's profile says what the
trap OID means.

A mapped trap becomes an observation marked `confirmed` (the device's own word, applied at
once: an outage is recorded when it happens, not at the next poll), and asks for a poll of the
site now, so that the values behind the trap are read. A trap `poll` entry only asks for the
poll (linkDown, coldStart: the poll will say what the device looks like now), and that poll,
if answered, is applied at once too: trap and reading agree, no run of polls is needed.

Sites are found by the literal IP address of their SNMP probe (IPv4-mapped IPv6 sources are
taken as IPv4); a site polled by host name is not found by its traps. When several sites share
an address (a power system and a router behind one NAT), each one whose profile knows the trap
gets it. Traps from no known site, or that no profile knows, are counted and logged with a
rate limit.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable

from monitor.config.profiles import Profile
from monitor.core.model import Observation, Site, SnmpProbe
from monitor.core.ratelimit import RateLimitedLog
from monitor.core.reasons import derive_code
from monitor.probes.snmp.trap_receiver import TrapEvent

log = logging.getLogger(__name__)


def normal_address(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return address.compressed


class TrapRouter:
    def __init__(
        self,
        on_observation: Callable[[Observation], None],
        request_poll: Callable[[str, bool], None],
        profile_of: Callable[[Site], Profile],
    ) -> None:
        self._on_observation = on_observation
        self._request_poll = request_poll
        self._profile_of = profile_of
        self._by_address: dict[str, list[Site]] = {}
        self._log = RateLimitedLog(log, period=60.0, burst=5)
        self.counts: Counter[str] = Counter()

    def update_sites(self, sites: Iterable[Site]) -> None:
        index: dict[str, list[Site]] = {}
        for site in sites:
            if isinstance(site.probe, SnmpProbe):
                address = normal_address(site.probe.address)
                if address is not None:
                    index.setdefault(address, []).append(site)
        self._by_address = index

    def handle(self, event: TrapEvent) -> None:
        address = normal_address(event.address) or event.address
        sites = self._by_address.get(address)
        if not sites:
            self.counts["unknown_source"] += 1
            self._log.log(
                logging.WARNING,
                f"source:{address}",
                "trap %s from %s: no site has that address",
                event.trap_oid or "(no trap OID)",
                address,
            )
            return
        mapped = False
        for site in sites:
            action = self._profile_of(site).traps.get(event.trap_oid)
            if action is None:
                continue
            mapped = True
            log.info("site=%s trap %s: %s", site.id, event.trap_oid, action.reason or "poll")
            if action.action == "degraded":
                self._on_observation(
                    Observation(
                        site.id,
                        time.time(),
                        True,
                        probe="snmp_trap",
                        degraded_reason=action.reason,
                        confirmed=True,
                        codes=(action.code or derive_code(action.reason),),
                    )
                )
            elif action.action == "down":
                self._on_observation(
                    Observation(
                        site.id,
                        time.time(),
                        False,
                        error=f"trap: {action.reason}",
                        error_reason="trap",
                        probe="snmp_trap",
                        confirmed=True,
                        codes=(action.code or derive_code(action.reason),),
                    )
                )
            self._request_poll(site.id, action.action == "poll")
        if mapped:
            self.counts["mapped"] += 1
            return
        self.counts["unmapped"] += 1
        self._log.log(
            logging.WARNING,
            f"trap:{event.trap_oid}",
            "site=%s trap %s is not in its profile; ignored",
            ",".join(site.id for site in sites),
            event.trap_oid or "(no trap OID)",
        )
