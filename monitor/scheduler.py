"""Poll scheduling: every site once per interval, spread evenly, never more than N in flight.

Each site has a fixed phase inside its interval (a stable hash of its id), so a restart keeps
the same rhythm and 20,000 sites never fire in the same second. Time runs on the monotonic
clock. Dead sites hold a slot for at most timeout x (retries + 1); when every slot is taken
the scheduler waits for one instead of piling up requests, and the lag it accumulates is
measured.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from monitor.model import Observation, Site

PollFn = Callable[[Site], Awaitable[Observation]]


@dataclass(slots=True)
class SchedulerHooks:
    """What the scheduler reports to the rest of the daemon (all called in the loop)."""

    on_observation: Callable[[Observation], None]
    on_lag: Callable[[float], None] = lambda _lag: None
    on_skip: Callable[[str], None] = lambda _site: None


def phase(site_id: str, interval: float) -> float:
    """A stable offset in [0, interval) for a site (same on every run and machine)."""
    digest = hashlib.blake2b(site_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


class Scheduler:
    def __init__(
        self,
        sites: Iterable[Site],
        interval_of: Callable[[Site], float],
        poll: PollFn,
        max_in_flight: int,
        hooks: SchedulerHooks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sites = {site.id: site for site in sites}
        self._interval_of = interval_of
        self._poll = poll
        self._slots = asyncio.Semaphore(max_in_flight)
        self._hooks = hooks
        self._clock = clock
        self._running: set[str] = set()

    async def run(self) -> None:
        start = self._clock()
        queue: list[tuple[float, str]] = [
            (start + phase(site.id, self._interval_of(site)), site.id)
            for site in self._sites.values()
        ]
        heapq.heapify(queue)
        async with asyncio.TaskGroup() as polls:
            while queue:
                due, site_id = queue[0]
                delay = due - self._clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                heapq.heappop(queue)
                site = self._sites[site_id]
                interval = self._interval_of(site)
                heapq.heappush(queue, (self._next_due(due, interval), site_id))
                if site_id in self._running:
                    self._hooks.on_skip(site_id)
                    continue
                await self._slots.acquire()
                self._hooks.on_lag(max(0.0, self._clock() - due))
                self._running.add(site_id)
                polls.create_task(self._poll_one(site), name=f"poll:{site_id}")

    def _next_due(self, due: float, interval: float) -> float:
        """Keep the phase; if a whole interval was missed, skip ahead rather than burst."""
        next_due = due + interval
        now = self._clock()
        if next_due < now:
            missed = int((now - next_due) // interval) + 1
            next_due += missed * interval
            for _ in range(missed):
                self._hooks.on_skip("")
        return next_due

    async def _poll_one(self, site: Site) -> None:
        try:
            observation = await self._poll(site)
        finally:
            self._slots.release()
            self._running.discard(site.id)
        self._hooks.on_observation(observation)
