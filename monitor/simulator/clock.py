"""Simulated time: the wall clock at start, then `speed` times faster.

Everything the simulated devices report (uptime, counters, battery charge) and every scenario
offset runs on this clock, so `--speed 60` plays an hour-long power cut in a minute. Reply
delays of a slow agent are network behaviour and stay in real seconds.
"""

from __future__ import annotations

import time
from typing import Protocol

DAY = 86400.0
UTC_OFFSET = 7 * 3600.0  # Indochina Time: the broadcast schedule is local


class Clock(Protocol):
    speed: float

    def now(self) -> float:
        """Simulated UTC seconds."""
        ...


class SimClock:
    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._origin = time.time() if start is None else start
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._mono0) * self.speed


class ManualClock:
    """A clock that moves only when told: the scenario engine's tests step it."""

    def __init__(self, start: float = 1_750_000_000.0, speed: float = 1.0) -> None:
        self.t = start
        self.speed = speed

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t
