"""Rate-limited logging: a flood of bad packets or a flapping agent must not flood the log.

Each key (a reason, a source) may log `burst` lines per `period`; beyond that lines are
counted, and the next line allowed for that key says how many were held back. The one rate
limiter of the daemon and the simulator: bad packets, hostile payloads, a flapping agent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        period: float = 60.0,
        burst: int = 5,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self._log = logger
        self._period = period
        self._burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._windows: dict[str, tuple[float, int, int]] = {}  # key -> (start, logged, dropped)

    def log(self, level: int, key: str, message: str, *args: object, **kwargs: Any) -> bool:
        """Log unless `key` used up its burst in this period; True when a line was written."""
        now = self._clock()
        start, logged, dropped = self._windows.get(key, (now, 0, 0))
        if now - start >= self._period:
            start, logged = now, 0
        if logged >= self._burst:
            self._windows[key] = (start, logged, dropped + 1)
            return False
        if dropped:
            message += f" ({dropped} more like it held back)"
        if len(self._windows) >= self._max_keys and key not in self._windows:
            self._windows.clear()  # bounded memory under a spray of distinct keys
        self._windows[key] = (start, logged + 1, 0)
        self._log.log(level, message, *args, **kwargs)
        return True

    def warning(self, key: str, message: str, *args: object, **kwargs: Any) -> bool:
        return self.log(logging.WARNING, key, message, *args, **kwargs)
