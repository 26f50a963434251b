"""TCP connect probe: the service's port accepts a connection, and how long that took.

Plain asyncio: a connect, then a close. Nothing is sent, so the probe speaks no protocol and
costs the service one accepted connection. The time includes resolving a host name.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time

from monitor.config.settings import PollSettings
from monitor.core.model import Observation, Site, TcpProbe
from monitor.core.reasons import Finding
from monitor.probes.measure import Poll, ProbeFailed, ProbePoller

CLOSE_SECONDS = 1.0
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.EINVAL}


class TcpPoller(ProbePoller[TcpProbe]):
    def __init__(self, settings: PollSettings) -> None:
        super().__init__(TcpProbe, "tcp", settings)

    async def measure(self, site: Site, probe: TcpProbe, poll: Poll) -> Observation:
        where = f"({probe.address}:{probe.port})"
        try:
            async with asyncio.timeout(poll.timeout):
                _reader, writer = await asyncio.open_connection(probe.address, probe.port)
        except TimeoutError:
            raise ProbeFailed("timeout", f"no answer within {poll.timeout:g} s {where}") from None
        except socket.gaierror as exc:
            raise ProbeFailed("resolve", f"{exc.strerror or exc} {where}") from None
        except ConnectionRefusedError:
            raise ProbeFailed("refused", f"connection refused {where}") from None
        except OSError as exc:
            reason = "unreachable" if exc.errno in _UNREACHABLE else "connect"
            raise ProbeFailed(reason, f"{exc.strerror or exc} {where}") from None
        connect = time.monotonic() - poll.started
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                await writer.wait_closed()
        findings = []
        if probe.slow_seconds is not None and connect > probe.slow_seconds:
            text = f"tcp connect {connect * 1000:.1f} ms > {probe.slow_seconds * 1000:.1f} ms"
            findings.append(Finding("slow", text))
        poll.values["connect_seconds"] = connect
        return poll.answered(findings=findings, duration=connect)
