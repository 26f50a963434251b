"""SNMP reachability probe on pysnmp's asyncio API.

One SnmpEngine serves every site: all replies come back on one UDP socket, so that socket's
receive buffer is enlarged (a burst of replies would otherwise be dropped by the kernel and
turn live sites into false timeouts) and the number of requests in flight is bounded by the
caller's semaphore. MIB lookups are off: var-binds come back as plain (oid, value) pairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
)
from pysnmp.proto import errind
from pysnmp.proto.rfc1902 import TimeTicks
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from monitor.credentials import SnmpCredential
from monitor.model import Observation, Site, SnmpProbe

log = logging.getLogger(__name__)

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
RECV_BUFFER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SnmpReply:
    ok: bool
    values: dict[str, object]
    error_reason: str | None = None
    error_detail: str | None = None


class SnmpClient:
    """A shared pysnmp engine plus the per-request plumbing (credentials, targets, timeouts)."""

    def __init__(self, recv_buffer_bytes: int = RECV_BUFFER_BYTES) -> None:
        self._engine = SnmpEngine()
        self._recv_buffer_bytes = recv_buffer_bytes
        self._socket_tuned = False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._engine.close_dispatcher()

    async def get(
        self,
        address: str,
        port: int,
        credential: SnmpCredential,
        oids: Sequence[str],
        timeout_seconds: float,
        retries: int,
    ) -> SnmpReply:
        auth = CommunityData(
            credential.community.reveal(), mpModel=0 if credential.version == "1" else 1
        )
        try:
            target = await UdpTransportTarget.create(
                (address, port), timeout=timeout_seconds, retries=retries
            )
        except Exception as exc:  # name resolution failed: pysnmp raises its own error type
            return SnmpReply(False, {}, "resolve", type(exc).__name__)
        error_indication, error_status, _index, var_binds = await get_cmd(
            self._engine,
            auth,
            target,
            ContextData(),
            *(ObjectType(ObjectIdentity(oid)) for oid in oids),
            lookupMib=False,
        )
        self._tune_socket()
        if error_indication:
            return SnmpReply(False, {}, _reason(error_indication), str(error_indication))
        if error_status:
            return SnmpReply(False, {}, "error_status", error_status.prettyPrint())
        values: dict[str, object] = {}
        for oid, value in var_binds:
            if isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView):
                continue  # a missing value is not a failed poll
            values[str(oid)] = value
        return SnmpReply(True, values)

    def _tune_socket(self) -> None:
        """Enlarge the receive buffer of the engine's UDP socket once it exists."""
        if self._socket_tuned:
            return
        dispatcher = self._engine.transport_dispatcher
        transport = dispatcher.get_transport(udp.DOMAIN_NAME) if dispatcher else None
        dgram = getattr(transport, "transport", None)
        sock = dgram.get_extra_info("socket") if dgram is not None else None
        if sock is None:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._recv_buffer_bytes)
        except OSError as exc:  # pragma: no cover - kernel refused: keep the default
            log.warning("could not enlarge SNMP receive buffer: %s", exc)
        self._socket_tuned = True


def _reason(indication: object) -> str:
    """A short, fixed word for a pysnmp error indication (a metric label, not free text)."""
    if isinstance(indication, errind.RequestTimedOut):
        return "timeout"
    if isinstance(indication, errind.DeserializationError | errind.SerializationError):
        return "malformed"
    if isinstance(indication, errind.UnknownUserName | errind.UnknownSecurityName):
        return "auth"
    if isinstance(indication, errind.WrongDigest | errind.AuthenticationFailure):
        return "auth"
    return "request"


class SnmpPoller:
    """Asks a site for sysUpTime and sysName: an answer means the device's agent is alive."""

    def __init__(
        self,
        client: SnmpClient,
        credentials: dict[str, SnmpCredential],
        default_timeout: float,
        default_retries: int,
    ) -> None:
        self._client = client
        self.configure(credentials, default_timeout, default_retries)

    def configure(
        self, credentials: dict[str, SnmpCredential], default_timeout: float, default_retries: int
    ) -> None:
        """Take new credentials and defaults (a reload); polls in flight finish with the old."""
        self._credentials = credentials
        self._timeout = default_timeout
        self._retries = default_retries

    async def poll(self, site: Site) -> Observation:
        probe = site.probe
        if not isinstance(probe, SnmpProbe):
            raise TypeError(f"site {site.id} has no SNMP probe")  # the router sends only these
        timeout = probe.timeout_seconds if probe.timeout_seconds is not None else self._timeout
        retries = probe.retries if probe.retries is not None else self._retries
        started = time.monotonic()
        wall = time.time()
        try:
            reply = await self._client.get(
                probe.address,
                probe.port,
                self._credentials[probe.credential],
                (SYS_UPTIME, SYS_NAME),
                timeout,
                retries,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a library fault must cost one poll, not the daemon
            log.exception("site=%s SNMP probe raised", site.id)
            reply = SnmpReply(False, {}, "internal", type(exc).__name__)
        duration = time.monotonic() - started
        if not reply.ok:
            return Observation(
                site.id,
                wall,
                False,
                duration,
                error=f"snmp {reply.error_reason}: {reply.error_detail}",
                error_reason=reply.error_reason,
            )
        values: dict[str, float | str] = {}
        uptime = reply.values.get(SYS_UPTIME)
        if isinstance(uptime, TimeTicks):
            values["device_uptime_seconds"] = int(uptime) / 100.0
        name = reply.values.get(SYS_NAME)
        if name is not None:
            values["sys_name"] = str(name)
        return Observation(site.id, wall, True, duration, values)
