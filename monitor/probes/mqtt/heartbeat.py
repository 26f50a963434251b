"""Heartbeat staleness: turning a site's silence into failed observations.

A pushed site is never polled, so nothing fails when it dies: only its silence says so. The
watch splits each site's heartbeat timeout T into `down_after` checks, T / down_after apart,
counted from the last message heard. Each check that finds the site still silent is one failed
observation, so the evaluator's ordinary rule applies unchanged: the site is down exactly when
T of silence has passed (the `down_after`-th check), and the outage is dated at the first
check, the first moment a heartbeat was overdue (for a device that reports every
T / down_after seconds, the heartbeat it missed). A down site keeps failing one check per
period, as a dead SNMP agent keeps failing its polls.

Silence is only counted while the daemon sees the broker: after a (re)connection every site's
clock starts again at the moment of connection (`restart`), and the caller asks for the checks
due only up to the last moment it knows its subscription delivered (`due(limit, ...)`).

The message path only writes one float into `heard`; the checks keep one heap entry per
site and revise it lazily when it comes due, so a flood of messages costs no heap work.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Overdue:
    site: str
    silence: float  # seconds from the last message (or the connection) to the check
    timeout: float
    at: float  # when the check was due (monotonic): the failed observation's moment


class HeartbeatWatch:
    def __init__(self) -> None:
        # site -> monotonic time of the last message; written by the message path
        self.heard: dict[str, float] = {}
        self._timeout: dict[str, float] = {}
        self._base: dict[str, float] = {}  # the `heard` value the missed count refers to
        self._missed: dict[str, int] = {}
        self._queue: list[tuple[float, str]] = []

    def watch(self, timeouts: Mapping[str, float], now: float) -> None:
        """Watch exactly these sites (site -> heartbeat timeout): new ones from `now`,
        kept ones with their history, the others no more."""
        for site in list(self.heard):
            if site not in timeouts:
                del self.heard[site], self._timeout[site], self._base[site], self._missed[site]
        for site, timeout in timeouts.items():
            if site not in self.heard:
                self.heard[site] = self._base[site] = now
                self._missed[site] = 0
            self._timeout[site] = timeout
        self._rebuild()

    def restart(self, now: float) -> None:
        """The daemon sees the broker again from `now`: silence before it is not counted."""
        for site, heard in self.heard.items():
            if heard < now:
                self.heard[site] = now
            self._base[site] = self.heard[site]
            self._missed[site] = 0
        self._rebuild()

    def _rebuild(self) -> None:
        self._queue = [(self.heard[site], site) for site in self.heard]
        heapq.heapify(self._queue)  # entries at `heard` come due at once and are revised

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def due(self, now: float, checks: int) -> list[Overdue]:
        """The checks that came due by `now`, each one a failed observation to make, dated
        when it was due (a late caller does not move the outage)."""
        overdue: list[Overdue] = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, site = heapq.heappop(queue)
            heard = self.heard.get(site)
            if heard is None:
                continue  # no longer watched
            if heard != self._base[site]:
                self._base[site] = heard
                self._missed[site] = 0
            timeout = self._timeout[site]
            period = timeout / checks
            missed = self._missed[site]
            check = heard + (missed + 1) * period
            if check <= now:
                missed += 1
                self._missed[site] = missed
                overdue.append(Overdue(site, check - heard, timeout, check))
                check = heard + (missed + 1) * period
            heapq.heappush(queue, (check, site))
        return overdue
