"""SNMP trap and inform receiver on pysnmp: v1, v2c and v3 notifications on one UDP port.

pysnmp does the protocol: decoding, community and USM checks (v3 authNoPriv/authPriv), and
the response an inform needs. What it drops (undecodable datagrams, unknown communities, bad
digests) never reaches us, so those are read from pysnmp's own MIB counters (snmpInASNParseErrs,
snmpInBadCommunityNames, usmStats*) and reported as counts, with a rate-limited log line: a
spray of garbage at the trap port costs a counter increment each, never a crash.

A notification that passes is handed on as a `TrapEvent` (source address, trap OID, values):
what it means for a site is `monitor.probes.snmp.trap_router`'s job.
"""

from __future__ import annotations

import asyncio
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
_CHECK_SECONDS = 10.0

#: pysnmp's MIB counters of notifications it refused, by our reason label.
_REJECT_COUNTERS: dict[str, tuple[tuple[str, str], ...]] = {
    "malformed": (("__SNMPv2-MIB", "snmpInASNParseErrs"),),
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
}


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
        self._rejected_seen: dict[str, int] = dict.fromkeys(_REJECT_COUNTERS, 0)
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
        transport = (
            udp6.Udp6AsyncioTransport if family == socket.AF_INET6 else udp.UdpAsyncioTransport
        )()
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

    async def watch(self) -> None:
        """Log what pysnmp refused, every few seconds (rate limited); runs until cancelled."""
        while True:
            await asyncio.sleep(_CHECK_SECONDS)
            self.check_rejected()

    def rejected(self) -> dict[str, int]:
        """Notifications refused since start, by reason (read from pysnmp's MIB counters)."""
        builder = self._engine.get_mib_builder()
        counts: dict[str, int] = {}
        for reason, symbols in _REJECT_COUNTERS.items():
            total = 0
            for module, symbol in symbols:
                with contextlib.suppress(Exception):
                    (counter,) = builder.import_symbols(module, symbol)
                    total += int(counter.syntax)
            counts[reason] = total
        return counts

    def check_rejected(self) -> None:
        for reason, total in self.rejected().items():
            new = total - self._rejected_seen[reason]
            if new > 0:
                self._rejected_seen[reason] = total
                self._log.log(
                    logging.WARNING,
                    reason,
                    "trap receiver refused %d datagrams: %s",
                    new,
                    reason.replace("_", " "),
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
            self._log.log(logging.ERROR, "internal", "trap handling failed", exc_info=True)
