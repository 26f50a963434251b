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

from monitor.config.settings import PollSettings
from monitor.core.model import IcmpProbe, Observation, Site
from monitor.core.reasons import Finding
from monitor.probes.measure import Poll, ProbeFailed, ProbePoller, resolve

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


class IcmpPoller(ProbePoller[IcmpProbe]):
    def __init__(self, settings: PollSettings) -> None:
        super().__init__(IcmpProbe, "icmp", settings)
        # None until a socket was opened: True raw, False datagram
        self.privileged: bool | None = None
        self._warned = False

    async def measure(self, site: Site, probe: IcmpProbe, poll: Poll) -> Observation:
        try:
            address = await resolve(probe.address, socket.SOCK_RAW)
            burst = await self._burst(address, probe, poll.timeout)
        except socket.gaierror as exc:
            raise ProbeFailed("resolve", exc.strerror or str(exc)) from None
        except SocketPermissionError:
            self._warn_permission()
            raise ProbeFailed("permission", "no ICMP socket allowed") from None
        duration = poll.elapsed()
        poll.values["loss_ratio"] = burst.loss_ratio
        if not burst.rtts:
            reason = burst.error_reason or "timeout"
            detail = burst.error_detail or f"no reply to {probe.count} echo requests"
            raise ProbeFailed(reason, detail)
        rtt = sum(burst.rtts) / len(burst.rtts)
        poll.values["rtt_seconds"] = rtt
        return poll.answered(findings=_degraded(probe, burst.loss_ratio, rtt), duration=duration)

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


async def _send_burst(
    address: str, probe: IcmpProbe, timeout_seconds: float, privileged: bool
) -> Burst:
    """Echo requests every `packet_interval_seconds`, as ping sends them, whether or not the
    earlier ones were answered, and the replies gathered as they come, until each request is
    answered or the last one has waited `timeout_seconds`. A silent host so costs one timeout
    per poll, not one per request: five requests to a dead host with a 2 s timeout end after
    2.8 s, not 11 s, and a poll interval shorter than that is not skipped."""
    family = ICMPv6Socket if ":" in address else ICMPv4Socket
    ident = unique_identifier()
    burst = Burst(probe.count)
    sent: dict[int, float] = {}
    answered: set[int] = set()
    deadline = time.monotonic() + (probe.count - 1) * probe.packet_interval_seconds
    deadline += timeout_seconds
    with AsyncSocket(family(None, privileged)) as sock:

        async def send_all() -> None:
            for sequence in range(probe.count):
                if sequence:
                    await asyncio.sleep(probe.packet_interval_seconds)
                request = ICMPRequest(destination=address, id=ident, sequence=sequence)
                try:
                    sock.send(request)
                except ICMPLibError as exc:  # the kernel refused: no route, blackhole...
                    burst.error_reason, burst.error_detail = "unreachable", f"send: {exc}"
                    continue
                sent[sequence] = time.monotonic()

        async with asyncio.TaskGroup() as tasks:
            sender = tasks.create_task(send_all())
            await asyncio.sleep(0)  # the first request goes out before we listen
            while not (sender.done() and answered >= sent.keys()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    reply = await sock.receive(None, remaining)
                except TimeoutExceeded:
                    break
                except ICMPSocketError as exc:
                    burst.error_reason, burst.error_detail = "unreachable", f"receive: {exc}"
                    break
                # a raw socket sees every ICMP packet of the host; a datagram socket only
                # its own, the kernel choosing the identifier
                if privileged and reply.id != ident:
                    continue
                if reply.sequence not in sent or reply.sequence in answered:
                    continue
                answered.add(reply.sequence)
                try:
                    reply.raise_for_status()
                except ICMPError as exc:  # destination unreachable, TTL exceeded, from a router
                    burst.error_reason, burst.error_detail = "unreachable", str(exc)
                    continue
                burst.rtts.append(time.monotonic() - sent[reply.sequence])
            sender.cancel()
    return burst


def _degraded(probe: IcmpProbe, loss: float, rtt: float) -> list[Finding]:
    if probe.max_loss_ratio is not None and loss > probe.max_loss_ratio:
        return [Finding("loss", f"icmp loss {loss:.0%} > {probe.max_loss_ratio:.0%}")]
    if probe.slow_seconds is not None and rtt > probe.slow_seconds:
        text = f"icmp round trip {rtt * 1000:.1f} ms > {probe.slow_seconds * 1000:.1f} ms"
        return [Finding("slow", text)]
    return []
