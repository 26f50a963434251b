"""The SNMP agents: every simulated site answers GET, GETNEXT and GETBULK (v1 and v2c) at its
inventory address, from one process.

Requests are decoded and replies encoded by pysnmp's protocol modules (pyasn1's BER codec);
the agent logic around them is small: find the site by the address the datagram was sent to,
check the community, answer from the site's MIB layout. pysnmp's own agent engine (SNMP
engine, MIB instrumentation, access control) is not used: it costs several times more CPU per
request and needs one engine per site, while one process must carry 20,000 sites.

Sockets: one UDP socket per port answers every 127.x.y.z address. It is bound to the wildcard
address but pinned to the loopback interface (SO_BINDTODEVICE "lo"), so nothing off the
machine can reach it; IP_PKTINFO tells which address each request was sent to, and the reply
leaves from that same address, as a real device's would. This needs a handful of file
descriptors however many sites there are. Where the kernel refuses SO_BINDTODEVICE, each
address gets its own socket instead (the open-file limit is raised to its hard limit for
that). `::1` gets one socket per port. Requests to a site that is down, behind a cut link, or
with the wrong community get no reply at all: a poller sees a timeout, as with a dead device.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import resource
import socket
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api, rfc1905
from pysnmp.proto.error import ProtocolError

from monitor.core.ratelimit import RateLimitedLog
from monitor.simulator.clock import Clock
from monitor.simulator.mib import layout_for
from monitor.simulator.world import SiteSim, World

log = logging.getLogger(__name__)

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value; Python 3.11 lacks the name
_PKTINFO = struct.Struct("=I4s4s")
_ANC_SIZE = socket.CMSG_SPACE(_PKTINFO.size)
RECV_BUFFER_BYTES = 4 * 1024 * 1024
MAX_DATAGRAM = 65507
MAX_REPLY_BYTES = 65000
MAX_BULK_VARBINDS = 2048
# Datagrams answered per wake-up of a socket before the loop runs its other callbacks: every
# simulated device answers from this one loop, and a poll round's burst answered in one go
# (256 at a time, 2-4 ms each) held the portals, publishers and stall watch up for 0.5-2 s,
# timing out probes of devices that were up.
READS_PER_WAKEUP = 16
FD_HEADROOM = 256  # MQTT connections, the control server, log files...

_GET = rfc1905.GetRequestPDU.tagSet
_GETNEXT = rfc1905.GetNextRequestPDU.tagSet
_GETBULK = rfc1905.GetBulkRequestPDU.tagSet
_SET = rfc1905.SetRequestPDU.tagSet
NO_SUCH_NAME = 2  # SNMPv1 errorStatus
NO_ACCESS = 6  # SNMPv2 errorStatus: a read-only community asked to SET

BindMode = Literal["auto", "shared", "endpoint"]


class SimulatorError(Exception):
    """The simulator cannot start as asked; `problems` says why, one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(slots=True)
class AgentStats:
    """What the agents did: answers by PDU type, and requests dropped by reason."""

    answered: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {"answered": dict(self.answered), "dropped": dict(self.dropped)}


class Responder:
    """One request in, one reply out (or None: no reply)."""

    def __init__(self, clock: Clock, stats: AgentStats | None = None) -> None:
        self.clock = clock
        self.stats = stats or AgentStats()
        self._log = RateLimitedLog(log, period=10.0, burst=1)

    def handle(self, sim: SiteSim, data: bytes, peer: object) -> bytes | None:
        try:
            version = int(api.decodeMessageVersion(data))
            module: Any = api.PROTOCOL_MODULES[version]
            request, _ = decoder.decode(data, asn1Spec=module.Message())
            community = bytes(module.apiMessage.get_community(request))
            pdu = module.apiMessage.get_pdu(request)
            names = [name for name, _ in module.apiPDU.get_varbinds(pdu)]
        except (PyAsn1Error, ProtocolError, KeyError, ValueError, TypeError) as exc:
            self.stats.dropped["malformed"] += 1
            self._log.warning(
                "malformed", "site=%s: malformed SNMP request from %s: %s", sim.id, peer, exc
            )
            return None
        if community != sim.community:
            self.stats.dropped["community"] += 1
            self._log.warning("community", "site=%s: request with a wrong community", sim.id)
            return None
        v1 = version == api.SNMP_VERSION_1
        tag = pdu.tagSet
        now = self.clock.now()
        if tag == _GET:
            kind = "get"
            varbinds, status, index = self._get(sim, names, now, v1)
        elif tag == _GETNEXT:
            kind = "getnext"
            varbinds, status, index = self._getnext(sim, names, now, v1)
        elif tag == _GETBULK and not v1:
            kind = "getbulk"
            non_repeaters = int(module.apiBulkPDU.get_non_repeaters(pdu))
            repetitions = int(module.apiBulkPDU.get_max_repetitions(pdu))
            varbinds = self._getbulk(sim, names, now, non_repeaters, repetitions)
            status = index = 0
        elif tag == _SET:
            kind = "set"
            varbinds = list(module.apiPDU.get_varbinds(pdu))
            status, index = (NO_SUCH_NAME if v1 else NO_ACCESS), 1
        else:
            self.stats.dropped["unexpected-pdu"] += 1
            return None
        if status:  # an error reply carries the request's var-binds unchanged
            varbinds = list(module.apiPDU.get_varbinds(pdu))
        reply = self._encode(module, request, varbinds, status, index)
        self.stats.answered[kind] += 1
        return reply

    def _encode(
        self, module: Any, request: Any, varbinds: list[Any], status: int, index: int
    ) -> bytes:
        while True:
            response = module.apiMessage.get_response(request)
            pdu = module.apiMessage.get_pdu(response)
            module.apiPDU.set_varbinds(pdu, varbinds)
            if status:
                module.apiPDU.set_error_status(pdu, status)
                module.apiPDU.set_error_index(pdu, index)
            data: bytes = encoder.encode(response)
            if len(data) <= MAX_REPLY_BYTES or len(varbinds) <= 1:
                return data
            varbinds = varbinds[: len(varbinds) // 2]  # a bulk reply may be cut short

    def _get(
        self, sim: SiteSim, names: list[Any], now: float, v1: bool
    ) -> tuple[list[Any], int, int]:
        layout = layout_for(sim)
        out = []
        for position, name in enumerate(names, 1):
            oid = name.asTuple()
            entry = layout.get(oid)
            if entry is not None and entry.exists(sim, now) and not (v1 and entry.counter64):
                out.append((entry.name, entry.value(sim, now)))
            elif v1:
                return [], NO_SUCH_NAME, position
            elif layout.is_object(oid):
                out.append((name, rfc1905.noSuchInstance))
            else:
                out.append((name, rfc1905.noSuchObject))
        return out, 0, 0

    def _getnext(
        self, sim: SiteSim, names: list[Any], now: float, v1: bool
    ) -> tuple[list[Any], int, int]:
        layout = layout_for(sim)
        out = []
        for position, name in enumerate(names, 1):
            entry = layout.next_after(name.asTuple(), sim, now, v1)
            if entry is not None:
                out.append((entry.name, entry.value(sim, now)))
            elif v1:
                return [], NO_SUCH_NAME, position
            else:
                out.append((name, rfc1905.endOfMibView))
        return out, 0, 0

    def _getbulk(
        self, sim: SiteSim, names: list[Any], now: float, non_repeaters: int, repetitions: int
    ) -> list[Any]:
        """RFC 3416 section 4.2.3: N non-repeaters once, then M rounds over the others."""
        layout = layout_for(sim)
        split = min(max(non_repeaters, 0), len(names))
        out, _, _ = self._getnext(sim, names[:split], now, False)
        cursors: list[tuple[Any, tuple[int, ...] | None]] = [
            (name, name.asTuple()) for name in names[split:]
        ]
        for _ in range(max(repetitions, 0)):
            if not cursors or len(out) + len(cursors) > MAX_BULK_VARBINDS:
                break
            ended = 0
            for position, (name, oid) in enumerate(cursors):
                entry = None if oid is None else layout.next_after(oid, sim, now, False)
                if entry is None:
                    out.append((name, rfc1905.endOfMibView))
                    cursors[position] = (name, None)
                    ended += 1
                else:
                    out.append((entry.name, entry.value(sim, now)))
                    cursors[position] = (entry.name, entry.oid)
            if ended == len(cursors):
                break
        return out


@dataclass(frozen=True, slots=True)
class Endpoint:
    family: socket.AddressFamily
    address: str
    port: int


def endpoints_of(world: World) -> dict[Endpoint, SiteSim]:
    """Each site's address and port, checked: loopback literals only, no two sites on one."""
    problems: list[str] = []
    found: dict[Endpoint, SiteSim] = {}
    for sim in world.sites.values():
        probe = sim.probe
        if probe is None:
            continue  # no SNMP agent on this device
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
                f"site '{sim.id}': address {address} is not a loopback address; the simulator "
                "serves 127.x.y.z and ::1 only, so that it sends nothing off the machine"
            )
            continue
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        endpoint = Endpoint(family, str(address), probe.port)
        if endpoint in found:
            problems.append(
                f"site '{sim.id}': {address} port {probe.port} is already the address of "
                f"site '{found[endpoint].id}'"
            )
            continue
        found[endpoint] = sim
    if problems:
        raise SimulatorError(problems)
    return found


class AgentServer:
    """The UDP side: sockets, reads, replies (delayed for a slow site)."""

    def __init__(self, world: World, responder: Responder, mode: BindMode = "auto") -> None:
        self.world = world
        self.responder = responder
        self.stats = responder.stats
        self.mode = mode
        self.sockets: list[socket.socket] = []
        self._by_v4: dict[tuple[bytes, int], SiteSim] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Bind every endpoint; raise SimulatorError (and bind nothing) if one is taken."""
        self._loop = asyncio.get_running_loop()
        endpoints = endpoints_of(self.world)
        try:
            v4 = {e: s for e, s in endpoints.items() if e.family == socket.AF_INET}
            for endpoint, sim in v4.items():
                self._by_v4[(socket.inet_aton(endpoint.address), endpoint.port)] = sim
            ports = sorted({e.port for e in v4})
            mode = self.mode
            if mode == "auto":
                mode = "shared" if ports and _can_pin_to_loopback() else "endpoint"
            self.mode = mode
            if mode == "shared":
                for port in ports:
                    self._open_shared(port)
            else:
                needed = len(v4) + FD_HEADROOM
                if raise_fd_limit() < needed:
                    raise SimulatorError(
                        [
                            f"one socket per address needs about {needed} open files, the "
                            f"limit is {raise_fd_limit()}: raise the hard limit (ulimit -Hn)"
                        ]
                    )
                for endpoint, sim in v4.items():
                    self._open_single(endpoint, sim)
            for endpoint, sim in endpoints.items():
                if endpoint.family == socket.AF_INET6:
                    self._open_single(endpoint, sim)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for sock in self.sockets:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets.clear()

    def _bind(self, sock: socket.socket, address: tuple[str, int], what: str) -> None:
        try:
            sock.bind(address)
        except OSError as exc:
            sock.close()
            raise SimulatorError([f"cannot bind UDP {what}: {exc.strerror or exc}"]) from None

    def _open_shared(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        _enlarge_buffers(sock)
        self._bind(sock, ("0.0.0.0", port), f"port {port} on the loopback interface")
        sock.setblocking(False)
        self.sockets.append(sock)
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._read_shared, sock, port)

    def _open_single(self, endpoint: Endpoint, sim: SiteSim) -> None:
        sock = socket.socket(endpoint.family, socket.SOCK_DGRAM)
        if len(self.sockets) < 64:  # a few big buffers; thousands would pin memory
            _enlarge_buffers(sock)
        self._bind(sock, (endpoint.address, endpoint.port), f"{endpoint.address}:{endpoint.port}")
        sock.setblocking(False)
        self.sockets.append(sock)
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._read_single, sock, sim)

    def _read_shared(self, sock: socket.socket, port: int) -> None:
        for _ in range(READS_PER_WAKEUP):
            try:
                data, ancillary, _flags, peer = sock.recvmsg(MAX_DATAGRAM, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket
                self.stats.dropped["socket-error"] += 1
                log.debug("recvmsg on port %d: %s", port, exc)
                return
            destination = _destination(ancillary)
            sim = self._by_v4.get((destination, port)) if destination else None
            if sim is None:
                self.stats.dropped["no-site"] += 1
                continue
            self._answer(sim, data, peer, sock, destination)

    def _read_single(self, sock: socket.socket, sim: SiteSim) -> None:
        for _ in range(READS_PER_WAKEUP):
            try:
                data, peer = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.stats.dropped["socket-error"] += 1
                log.debug("recvfrom for %s: %s", sim.id, exc)
                return
            self._answer(sim, data, peer, sock, None)

    def _answer(
        self,
        sim: SiteSim,
        data: bytes,
        peer: Any,
        sock: socket.socket,
        source: bytes | None,
    ) -> None:
        if not sim.reachable:
            self.stats.dropped["site-down"] += 1
            return
        reply = self.responder.handle(sim, data, peer)
        if reply is None:
            return
        if sim.slow_delay > 0 and self._loop is not None:
            self._loop.call_later(sim.slow_delay, self._send, sock, reply, peer, source)
        else:
            self._send(sock, reply, peer, source)

    def _send(self, sock: socket.socket, reply: bytes, peer: Any, source: bytes | None) -> None:
        if sock.fileno() < 0:
            return  # closed while a slow reply waited
        try:
            if source is None:
                sock.sendto(reply, peer)
            else:
                info = _PKTINFO.pack(0, source, b"\0\0\0\0")
                sock.sendmsg([reply], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, peer)
        except OSError as exc:
            self.stats.dropped["send-error"] += 1
            log.debug("send to %s: %s", peer, exc)


def _destination(ancillary: list[tuple[int, int, bytes]]) -> bytes | None:
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= _PKTINFO.size:
            destination: bytes = _PKTINFO.unpack_from(data)[2]
            return destination
    return None


def _enlarge_buffers(sock: socket.socket) -> None:
    """Thousands of pollers' requests can arrive in one burst: keep them, don't drop them."""
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, RECV_BUFFER_BYTES)


def _can_pin_to_loopback() -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
        probe.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    except OSError as exc:
        log.info("one socket per address: cannot pin a socket to loopback (%s)", exc)
        return False
    finally:
        probe.close()
    return True


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one (sockets, MQTT connections); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 30
