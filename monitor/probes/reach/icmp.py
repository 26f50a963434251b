"""ICMP echo probe on icmplib: loss and round-trip time over a short burst.

icmplib forges the packets and owns the sockets; the burst loop is ours so that each way of
failing keeps its own name (a send refused by the kernel, an ICMP error from a router, plain
silence), which `icmplib.async_ping` folds into "lost". Round trips are timed on the monotonic
clock.

Sockets: unprivileged ICMP datagram sockets where `net.ipv4.ping_group_range` admits our group,
raw sockets (CAP_NET_RAW) otherwise. The first poll finds out which one works and the poller
keeps to it; when neither is allowed every poll fails with reason `permission` and one warning
says what to change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass, field

from icmplib import (
    AsyncSocket,
    ICMPError,
    ICMPLibError,
    ICMPRequest,
    ICMPSocketError,
    ICMPv4Socket,
    ICMPv6Socket,
    SocketPermissionError,
    TimeoutExceeded,
)
from icmplib.utils import unique_identifier

from monitor.core.model import IcmpProbe, Observation, Site

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Burst:
    """What came back from one burst of echo requests."""

    count: int
    rtts: list[float] = field(default_factory=list)
    error_reason: str | None = None  # the last way a packet failed other than silence
    error_detail: str | None = None

    @property
    def loss_ratio(self) -> float:
        return 1.0 - len(self.rtts) / self.count


class IcmpPoller:
    def __init__(self, default_timeout: float) -> None:
        self.configure(default_timeout)
        # None until a socket was opened: True raw, False datagram
        self.privileged: bool | None = None
        self._warned = False

    def configure(self, default_timeout: float) -> None:
        self._timeout = default_timeout

    async def poll(self, site: Site) -> Observation:
        probe = site.probe
        if not isinstance(probe, IcmpProbe):
            raise TypeError(f"site {site.id}: not an ICMP probe")
        timeout = probe.timeout_seconds or self._timeout
        started = time.monotonic()
        wall = time.time()
        try:
            address = await _resolve(probe.address)
            burst = await self._burst(address, probe, timeout)
        except socket.gaierror as exc:
            return _failed(site, wall, started, "resolve", exc.strerror or str(exc))
        except SocketPermissionError:
            self._warn_permission()
            return _failed(site, wall, started, "permission", "no ICMP socket allowed")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a library fault must cost one poll, not the daemon
            log.exception("site=%s ICMP probe raised", site.id)
            return _failed(site, wall, started, "internal", type(exc).__name__)
        duration = time.monotonic() - started
        values: dict[str, float | str] = {"loss_ratio": burst.loss_ratio}
        if not burst.rtts:
            reason = burst.error_reason or "timeout"
            detail = burst.error_detail or f"no reply to {probe.count} echo requests"
            return Observation(
                site.id,
                wall,
                False,
                duration,
                values,
                error=f"icmp {reason}: {detail}",
                error_reason=reason,
                probe="icmp",
            )
        rtt = sum(burst.rtts) / len(burst.rtts)
        values["rtt_seconds"] = rtt
        return Observation(
            site.id,
            wall,
            True,
            duration,
            values,
            probe="icmp",
            degraded_reason=_degraded(probe, burst.loss_ratio, rtt),
        )

    async def _burst(self, address: str, probe: IcmpProbe, timeout_seconds: float) -> Burst:
        if self.privileged is None:
            try:
                burst = await _send_burst(address, probe, timeout_seconds, privileged=False)
                found = False
            except SocketPermissionError:
                burst = await _send_burst(address, probe, timeout_seconds, privileged=True)
                found = True
            if self.privileged is None:  # the first of the polls that found out says so
                self.privileged = found
                log.info("ICMP probes use %s sockets", "raw" if found else "datagram")
            return burst
        return await _send_burst(address, probe, timeout_seconds, privileged=self.privileged)

    def _warn_permission(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "ICMP probes cannot open a socket: allow our group in "
                "net.ipv4.ping_group_range or grant CAP_NET_RAW"
            )


async def _resolve(address: str) -> str:
    """An address literal as is; a host name through the loop's resolver (never blocking)."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        return address
    infos = await asyncio.get_running_loop().getaddrinfo(address, None, type=socket.SOCK_RAW)
    return str(infos[0][4][0])


async def _send_burst(
    address: str, probe: IcmpProbe, timeout_seconds: float, privileged: bool
) -> Burst:
    family = ICMPv6Socket if ":" in address else ICMPv4Socket
    ident = unique_identifier()
    burst = Burst(probe.count)
    with AsyncSocket(family(None, privileged)) as sock:
        for sequence in range(probe.count):
            if sequence:
                await asyncio.sleep(probe.packet_interval_seconds)
            request = ICMPRequest(destination=address, id=ident, sequence=sequence)
            sent = time.monotonic()
            try:
                sock.send(request)
            except ICMPLibError as exc:  # the kernel refused: no route, blackhole...
                burst.error_reason, burst.error_detail = "unreachable", f"send: {exc}"
                continue
            try:
                reply = await sock.receive(request, timeout_seconds)
                reply.raise_for_status()
            except TimeoutExceeded:
                continue
            except ICMPError as exc:  # destination unreachable, TTL exceeded, from a router
                burst.error_reason, burst.error_detail = "unreachable", str(exc)
                continue
            except ICMPSocketError as exc:
                burst.error_reason, burst.error_detail = "unreachable", f"receive: {exc}"
                continue
            burst.rtts.append(time.monotonic() - sent)
    return burst


def _degraded(probe: IcmpProbe, loss: float, rtt: float) -> str | None:
    if probe.max_loss_ratio is not None and loss > probe.max_loss_ratio:
        return f"icmp loss {loss:.0%} > {probe.max_loss_ratio:.0%}"
    if probe.slow_seconds is not None and rtt > probe.slow_seconds:
        return f"icmp round trip {rtt * 1000:.1f} ms > {probe.slow_seconds * 1000:.1f} ms"
    return None


def _failed(site: Site, wall: float, started: float, reason: str, detail: str) -> Observation:
    return Observation(
        site.id,
        wall,
        False,
        time.monotonic() - started,
        error=f"icmp {reason}: {detail}",
        error_reason=reason,
        probe="icmp",
    )
