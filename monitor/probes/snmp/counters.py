"""What the poller remembers of each device between polls: its uptime, how often it rebooted,
and its counters, so that counters are exported as totals that only ever go up.

Counters (RFC 2578): a Counter32 wraps at 2^32 (a busy gigabit port does so in 34 s), a
Counter64 practically never. Between two polls of the same device:
- the device rebooted (sysUpTime went backwards): every counter restarted from zero, so the
  increase is the new raw value;
- a Counter32 went backwards without a reboot: it wrapped once (a poll interval shorter than
  the wrap time is the operator's part of the bargain);
- a Counter64 went backwards without a reboot: a discontinuity (counters cleared, interface
  re-created): the increase is the new raw value.
The exported total starts at the device's own raw value the first time a counter is seen, so
that a 64-bit counter reads the same on /metrics as on the device until something happens.

sysUpTime is a TimeTicks, hundredths of a second in 32 bits: it wraps after 497 days. A value
lower than the last one is a reboot unless it is where a wrap would have put it.

Across restarts of the monitor the last uptime reading is gone, but the device's boot time
(poll time minus uptime, kept in the ledger and handed back at start as `known_boot`) is not:
a first reading whose boot time is later than the known one by more than BOOT_TOLERANCE_SECONDS
(poll latency, clock jitter, a device clock that runs slow) is a reboot while the monitor was
stopped, unless it is a whole number of uptime wraps later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.core.model import BOOT_TOLERANCE_SECONDS

TICKS_WRAP = 1 << 32
WRAP_SECONDS = TICKS_WRAP / 100
_WRAP_SLACK_TICKS = 60 * 100  # a minute of clock disagreement around an expected wrap


@dataclass(slots=True)
class _Counter:
    raw: int
    total: float


CounterKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class DeviceState:
    uptime_ticks: int | None = None
    seen_at: float = 0.0  # monotonic time of the last uptime reading
    reboots: int = 0
    counters: dict[CounterKey, _Counter] = field(default_factory=dict)
    known_boot: float | None = None  # boot time (UTC) the ledger kept from an earlier run

    def observe_uptime(self, ticks: int, now: float, wall: float | None = None) -> bool:
        """Take a sysUpTime reading (at monotonic `now`, wall-clock `wall`); True when it shows
        the device rebooted since the last reading, or, for the first reading of this run,
        since the boot time kept from an earlier run."""
        last, self.uptime_ticks = self.uptime_ticks, ticks
        elapsed, self.seen_at = now - self.seen_at, now
        if last is None:
            known, self.known_boot = self.known_boot, None
            if known is None or wall is None:
                return False
            later = wall - ticks / 100 - known
            if later <= BOOT_TOLERANCE_SECONDS:
                return False
            wraps = round(later / WRAP_SECONDS)
            if wraps and abs(later - wraps * WRAP_SECONDS) <= BOOT_TOLERANCE_SECONDS:
                return False  # the same boot, its uptime wrapped while we were away
            self.reboots += 1
            return True
        if ticks >= last:
            return False
        expected = last + int(elapsed * 100)
        if expected >= TICKS_WRAP and abs(expected - TICKS_WRAP - ticks) <= max(
            _WRAP_SLACK_TICKS, int(elapsed * 50)
        ):
            return False  # the 497-day wrap, not a reboot
        self.reboots += 1
        return True

    def counter(self, key: CounterKey, raw: int, bits: int, rebooted: bool) -> float:
        """The running total of a counter after a new raw reading."""
        state = self.counters.get(key)
        if state is None:
            self.counters[key] = _Counter(raw, float(raw))
            return float(raw)
        if raw >= state.raw and not rebooted:
            state.total += raw - state.raw
        elif rebooted or bits == 64:
            state.total += raw
        else:
            state.total += raw + (1 << bits) - state.raw
        state.raw = raw
        return state.total

    def keep_counters(self, keys: set[CounterKey]) -> None:
        """Forget counters not read this time (a removed interface): state stays bounded."""
        if len(keys) != len(self.counters):
            for key in [key for key in self.counters if key not in keys]:
                del self.counters[key]
