"""TCP connect probe: the service's port accepts a connection, and how long that took.

Plain asyncio: a connect, then a close. Nothing is sent, so the probe speaks no protocol and
costs the service one accepted connection. The time includes resolving a host name.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time

from monitor.core.model import Observation, Site, TcpProbe

log = logging.getLogger(__name__)

CLOSE_SECONDS = 1.0
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.EINVAL}


class TcpPoller:
    def __init__(self, default_timeout: float) -> None:
        self.configure(default_timeout)

    def configure(self, default_timeout: float) -> None:
        self._timeout = default_timeout

    async def poll(self, site: Site) -> Observation:
        probe = site.probe
        if not isinstance(probe, TcpProbe):
            raise TypeError(f"site {site.id}: not a TCP probe")
        timeout = probe.timeout_seconds or self._timeout
        started = time.monotonic()
        wall = time.time()
        reason: str | None = None
        try:
            async with asyncio.timeout(timeout):
                _reader, writer = await asyncio.open_connection(probe.address, probe.port)
        except TimeoutError:
            reason, detail = "timeout", f"no answer within {timeout:g} s"
        except socket.gaierror as exc:
            reason, detail = "resolve", exc.strerror or str(exc)
        except ConnectionRefusedError:
            reason, detail = "refused", "connection refused"
        except OSError as exc:
            reason = "unreachable" if exc.errno in _UNREACHABLE else "connect"
            detail = exc.strerror or str(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must cost one poll, not the daemon
            log.exception("site=%s TCP probe raised", site.id)
            reason, detail = "internal", type(exc).__name__
        connect = time.monotonic() - started
        if reason is not None:
            return Observation(
                site.id,
                wall,
                False,
                connect,
                error=f"tcp {reason}: {detail} ({probe.address}:{probe.port})",
                error_reason=reason,
                probe="tcp",
            )
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                await writer.wait_closed()
        degraded = None
        if probe.slow_seconds is not None and connect > probe.slow_seconds:
            degraded = f"tcp connect {connect * 1000:.1f} ms > {probe.slow_seconds * 1000:.1f} ms"
        return Observation(
            site.id,
            wall,
            True,
            connect,
            {"connect_seconds": connect},
            probe="tcp",
            degraded_reason=degraded,
        )
