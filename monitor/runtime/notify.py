"""The systemd notify protocol without libsystemd: datagrams to $NOTIFY_SOCKET.

READY=1 is sent only once the config is loaded, the ledger open and the listener bound, so
`systemctl start` returns when the daemon really works. Watchdog keep-alives are sent by a
task of the event loop itself: if the loop is stuck, they stop and systemd restarts us.
Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if address.startswith("@"):  # abstract namespace socket
            self._address = b"\0" + address[1:].encode()
        elif address.startswith("/"):
            self._address = address
        self._sock: socket.socket | None = None
        if self._address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_seconds = _watchdog_seconds(env)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> None:
        """Send one notification (several KEY=VALUE fields); never raises."""
        if self._sock is None or self._address is None:
            return
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:  # systemd gone or socket full: not worth dying for
            log.debug("sd_notify failed: %s", exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading configuration")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    async def keep_alive(self, status: Callable[[], str] | None = None) -> None:
        """Send WATCHDOG=1 at half the watchdog period, from the event loop."""
        if self.watchdog_seconds is None:
            return
        period = self.watchdog_seconds / 2
        while True:
            fields = ["WATCHDOG=1"]
            if status is not None:
                fields.append(f"STATUS={status()}")
            self.send(*fields)
            await asyncio.sleep(period)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """WATCHDOG_USEC applies to us only if WATCHDOG_PID is unset or is our pid."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC")
        return None
    return value / 1_000_000 if value > 0 else None
