"""SNMP trap and inform receiver on pysnmp: v1, v2c and v3 notifications on one UDP port.

pysnmp does the protocol: decoding, community and USM checks (v3 authNoPriv/authPriv), and
the response an inform needs. What it drops (unparsable datagrams, unknown communities, bad
digests) never reaches us, and about 6% of random or truncated datagrams make pyasn1 raise
inside pysnmp instead, which asyncio would log with a full traceback each. So every datagram
is handed to pysnmp by our own transport, synchronously and inside a `try`, and given exactly
one result: `accepted` (handed on), or a refusal read from which of pysnmp's own MIB counters
(snmpInASNParseErrs, snmpInBadCommunityNames, usmStats*, ...) moved while it was handled,
`malformed` when pysnmp raised, `other` when pysnmp dropped it without a word. The counts add
up to the datagrams received (`datagrams`); refusals are logged at most 5 lines per reason a
minute, never with a traceback: a spray of garbage costs a counter increment each.

A notification that passes is handed on as a `TrapEvent` (source address, trap OID, values):
what it means for a site is `monitor.probes.snmp.trap_router`'s job.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config as snmp_config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import ntfrcv

from monitor.config.credentials import SnmpCredential
from monitor.config.settings import TrapSettings
from monitor.core.ratelimit import RateLimitedLog
from monitor.probes.snmp.engine import SnmpValue
from monitor.probes.snmp.pysnmp_engine import AUTH_PROTOCOLS, PRIV_PROTOCOLS, plain_value

log = logging.getLogger(__name__)

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
RECV_BUFFER_BYTES = 4 * 1024 * 1024

#: pysnmp's MIB counters of notifications it refused, by our reason label (the first that
#: moved while a datagram was handled is its result).
_REJECT_COUNTERS: dict[str, tuple[tuple[str, str], ...]] = {
    "malformed": (("__SNMPv2-MIB", "snmpInASNParseErrs"), ("__SNMP-MPD-MIB", "snmpInvalidMsgs")),
    "bad_version": (("__SNMPv2-MIB", "snmpInBadVersions"),),
    "bad_community": (("__SNMPv2-MIB", "snmpInBadCommunityNames"),),
    "auth": (
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels"),
    ),
    # well formed, but nothing a notification receiver takes (a GetRequest, a Response)
    "unsupported": (
        ("__SNMP-MPD-MIB", "snmpUnknownPDUHandlers"),
        ("__SNMP-MPD-MIB", "snmpUnknownSecurityModels"),
        ("__SNMPv2-MIB", "snmpSilentDrops"),
    ),
}
#: Every result a refused datagram can have: the reasons above, `other` (dropped by pysnmp
#: without a counter) and `internal` (a fault of ours while handing it on). Accepted
#: datagrams are counted by what they meant (trap_router).
REFUSED = (*_REJECT_COUNTERS, "other", "internal")


class _Counting:
    """A pysnmp UDP transport that hands each datagram to `on_datagram` at once, instead of
    scheduling pysnmp's callback (where an exception escapes to asyncio's log)."""

    on_datagram: Callable[[Callable[..., None], object, object, bytes], None]
    _callback_function: Callable[..., None] | None

    def datagram_received(self, datagram: bytes, address: object) -> None:
        callback = self._callback_function
        if callback is not None:
            self.on_datagram(callback, self, address, datagram)


class _Udp(_Counting, udp.UdpAsyncioTransport):  # type: ignore[misc]
    pass


class _Udp6(_Counting, udp6.Udp6AsyncioTransport):  # type: ignore[misc]
    pass


@dataclass(frozen=True, slots=True)
class TrapEvent:
    """One accepted notification. `values` holds its var-binds by OID (plain values)."""

    address: str
    port: int
    trap_oid: str
    values: dict[str, SnmpValue] = field(default_factory=dict)
    inform: bool = False


class TrapReceiver:
    """Listens on `settings.host:port`; calls `on_trap` in the event loop for each event."""

    def __init__(
        self,
        settings: TrapSettings,
        credentials: dict[str, SnmpCredential],
        on_trap: Callable[[TrapEvent], None],
    ) -> None:
        self.settings = settings
        self._on_trap = on_trap
        self._engine = SnmpEngine()
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self._refused: dict[str, int] = dict.fromkeys(REFUSED, 0)
        self._counters: list[tuple[str, Any]] | None = None  # (reason, pysnmp MIB instance)
        self._delivered = False
        self.datagrams = 0  # every datagram that reached the port
        self._log = RateLimitedLog(log, period=60.0, burst=5)
        self.port = settings.port
        for name in settings.credentials:
            credential = credentials.get(name)
            if credential is not None:
                self._add_credential(credential)

    def _add_credential(self, credential: SnmpCredential) -> None:
        if credential.version != "3":
            community = credential.community.reveal() if credential.community else ""
            snmp_config.add_v1_system(self._engine, credential.name, community)
            return
        kwargs: dict[str, Any] = {}
        if credential.auth_protocol is not None and credential.auth_key is not None:
            kwargs["authProtocol"] = AUTH_PROTOCOLS[credential.auth_protocol]
            kwargs["authKey"] = credential.auth_key.reveal()
            if credential.priv_protocol is not None and credential.priv_key is not None:
                kwargs["privProtocol"] = PRIV_PROTOCOLS[credential.priv_protocol]
                kwargs["privKey"] = credential.priv_key.reveal()
        # Informs: this receiver is the authoritative engine, its own engine id applies.
        snmp_config.add_v3_user(self._engine, credential.user, **kwargs)
        if credential.engine_id is not None:  # traps: keys localized to the sender's engine
            snmp_config.add_v3_user(
                self._engine, credential.user, securityEngineId=credential.engine_id, **kwargs
            )

    def start(self) -> None:
        """Bind now, so that a port in use fails the start with a clear error."""
        family = socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER_BYTES)
            sock.bind((self.settings.host, self.settings.port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        transport = (_Udp6 if family == socket.AF_INET6 else _Udp)()
        transport.on_datagram = self._datagram
        domain = udp6.DOMAIN_NAME if family == socket.AF_INET6 else udp.DOMAIN_NAME
        snmp_config.add_transport(self._engine, domain, transport.open_server_mode(sock=sock))
        self._receiver = ntfrcv.NotificationReceiver(self._engine, self._received)
        log.info("trap receiver listening on %s:%d", self.settings.host, self.port)

    def close(self) -> None:
        if self._receiver is not None:
            self._receiver.close(self._engine)
            self._receiver = None
        with contextlib.suppress(Exception):
            self._engine.close_dispatcher()

    def rejected(self) -> dict[str, int]:
        """Datagrams refused since start, by reason: with the accepted ones (counted by the
        trap router), they add up to `datagrams`."""
        return dict(self._refused)

    def _marks(self) -> list[int]:
        if self._counters is None:
            builder = self._engine.get_mib_builder()
            found: list[tuple[str, Any]] = []
            for reason, symbols in _REJECT_COUNTERS.items():
                for module, symbol in symbols:
                    with contextlib.suppress(Exception):  # a MIB pysnmp did not load: unused
                        found.append((reason, builder.import_symbols(module, symbol)[0]))
            self._counters = found
        return [int(counter.syntax) for _reason, counter in self._counters]

    def _datagram(
        self, deliver: Callable[..., None], transport: object, address: object, datagram: bytes
    ) -> None:
        """One datagram from the port, one result; nothing escapes to the event loop."""
        self.datagrams += 1
        self._delivered = False
        before = self._marks()
        try:
            deliver(transport, address, datagram)
        except Exception as exc:  # pyasn1 and pysnmp raise many kinds on garbage
            if not self._delivered:
                self._refuse("malformed", address, datagram, type(exc).__name__)
            return
        if self._delivered:
            return
        assert self._counters is not None
        for (reason, _counter), was, now in zip(self._counters, before, self._marks(), strict=True):
            if now != was:
                self._refuse(reason, address, datagram, "")
                return
        self._refuse("other", address, datagram, "")

    def _refuse(self, reason: str, address: object, datagram: bytes, detail: str) -> None:
        self._refused[reason] += 1
        source = address[0] if isinstance(address, tuple) and address else address
        self._log.log(
            logging.WARNING,
            reason,
            "trap receiver refused a datagram from %s (%d bytes): %s%s",
            source,
            len(datagram),
            reason.replace("_", " "),
            f" ({detail})" if detail else "",
        )

    def _received(
        self,
        engine: SnmpEngine,
        _state_reference: object,
        _context_engine_id: object,
        _context_name: object,
        var_binds: list[tuple[object, object]],
        _cb_ctx: object,
    ) -> None:
        self._delivered = True
        try:
            context = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
            address = context["transportAddress"]
            values: dict[str, SnmpValue] = {}
            for oid, value in var_binds:
                plain = plain_value(value)
                if plain is not None:
                    values[str(oid)] = plain
            trap_oid = values.pop(SNMP_TRAP_OID, "")
            pdu = context.get("pdu")
            inform = pdu is not None and "Inform" in type(pdu).__name__
            event = TrapEvent(
                str(address[0]), int(address[1]), str(trap_oid), values, inform=inform
            )
            self._on_trap(event)
        except Exception:  # a bug here must cost one notification, never the receiver
            self._refused["internal"] += 1
            self._log.log(logging.ERROR, "internal", "trap handling failed", exc_info=True)
