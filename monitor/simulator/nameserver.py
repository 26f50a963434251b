"""The `dns` sites of the inventory: a name server on each site's server address and port that
answers the site's name while the world says the site answers, and is silent while it does not.

A `dns` site is a name server asked one name. Here one UDP socket per server address and port
answers every site on it: a query for a site's name and type gets NOERROR with the records the
probe `expect`s (A and AAAA without `expect` get 192.0.2.1 and 2001:db8::1, addresses for
documentation; other types without `expect` an empty answer), a query for a name no site has
gets NXDOMAIN, and a query for a site that does not answer gets no reply at all: a timeout,
as with a dead server. Answers are small, so there is no TCP. Packets are read and written
with dnspython, which the daemon's own probe uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from monitor.core.model import DnsProbe
from monitor.simulator.agent import SimulatorError
from monitor.simulator.world import SiteSim, World

log = logging.getLogger(__name__)

TTL = 60
DEFAULTS = {"A": "192.0.2.1", "AAAA": "2001:db8::1"}
MAX_QUERY = 4096

Key = tuple[dns.name.Name, str]  # (name, type)
Entry = tuple[SiteSim, dns.rrset.RRset | None]  # the site, and the records it answers


class NameServers:
    def __init__(self, world: World) -> None:
        self.world = world
        self._zones: dict[tuple[str, int], dict[Key, Entry]] = {}
        self._sockets: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.answered = 0
        problems = []
        for sim in world.sites.values():
            probe = sim.site.probe
            if not isinstance(probe, DnsProbe):
                continue
            try:
                address = ipaddress.ip_address(probe.server)
            except ValueError:
                problems.append(f"site '{sim.id}': server {probe.server!r} is not an IP literal")
                continue
            if not address.is_loopback:
                problems.append(
                    f"site '{sim.id}': server {address} is not a loopback address; the simulator "
                    "serves 127.x.y.z and ::1 only, so that it sends nothing off the machine"
                )
                continue
            name, kind = dns.name.from_text(probe.name), probe.type.upper()
            texts = list(probe.expect) or ([DEFAULTS[kind]] if kind in DEFAULTS else [])
            try:
                rdtype = dns.rdatatype.from_text(kind)
                rdatas = [dns.rdata.from_text(dns.rdataclass.IN, rdtype, t) for t in texts]
            except (dns.exception.DNSException, ValueError) as exc:
                problems.append(f"site '{sim.id}': cannot serve {kind} {texts}: {exc}")
                continue
            records = dns.rrset.from_rdata_list(name, TTL, rdatas) if rdatas else None
            zone = self._zones.setdefault((str(address), probe.port), {})
            if (name, kind) in zone:
                problems.append(
                    f"site '{sim.id}': {probe.name} {probe.type} on {address}:{probe.port} is "
                    f"already site '{zone[name, kind][0].id}'"
                )
                continue
            zone[name, kind] = (sim, records)
        if problems:
            raise SimulatorError(problems)

    def start(self) -> None:
        """Bind every server address; SimulatorError (nothing left bound) if one cannot be."""
        self._loop = asyncio.get_running_loop()
        problems = []
        for (host, port), zone in self._zones.items():
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                names = ", ".join(f"'{sim.id}'" for sim, _ in zone.values())
                hint = " (ports below 1024 need root)" if port < 1024 else ""
                problems.append(
                    f"site {names}: cannot serve DNS on {host}:{port}: {exc.strerror or exc}{hint}"
                )
                continue
            sock.setblocking(False)
            self._sockets.append(sock)
            self._loop.add_reader(sock.fileno(), self._read, sock, zone)
        if problems:
            self.close()
            raise SimulatorError(problems)

    def close(self) -> None:
        for sock in self._sockets:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()

    def _read(self, sock: socket.socket, zone: dict[Key, Entry]) -> None:
        while True:
            try:
                data, peer = sock.recvfrom(MAX_QUERY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("dns recvfrom: %s", exc)
                return
            found = self.answer(data, zone)
            if found is None:
                continue
            reply, delay = found
            if delay > 0 and self._loop is not None:
                self._loop.call_later(delay, _send, sock, reply, peer)
            else:
                _send(sock, reply, peer)

    def answer(self, data: bytes, zone: dict[Key, Entry]) -> tuple[bytes, float] | None:
        """The reply to one query and how long to hold it (a slow site), or None for no
        reply (a site that does not answer, or not a DNS query)."""
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire(), 0.0
        question = query.question[0]
        entry = zone.get((question.name, dns.rdatatype.to_text(question.rdtype)))
        if entry is None:
            named = any(name == question.name for name, _ in zone)
            response.set_rcode(dns.rcode.NOERROR if named else dns.rcode.NXDOMAIN)
            return response.to_wire(), 0.0
        sim, records = entry
        if not sim.reachable:
            return None
        if records is not None:
            response.answer.append(records)
        self.answered += 1
        return response.to_wire(), sim.slow_delay


def _send(sock: socket.socket, reply: bytes, peer: tuple[str, int]) -> None:
    if sock.fileno() >= 0:
        with contextlib.suppress(OSError):
            sock.sendto(reply, peer)
