"""Poll scheduling: every site once per interval, spread evenly, never more than N in flight.

Each site has a fixed phase inside its interval (a stable hash of its id), so a restart keeps
the same rhythm and 20,000 sites never fire in the same second. Time runs on the monotonic
clock (`clock` must be the event loop's clock: delays computed on it are slept on the loop).
Dead sites hold a slot for at most timeout x (retries + 1); when every slot is taken
the scheduler waits for one instead of piling up requests, and the lag it accumulates is
measured.

Sites whose last poll failed ("suspect": likely dead) are polled from a pool of their own, a
quarter of the slots: a thousand dead sites each holding a slot for timeout x tries must not
delay the polls of the live ones. A poll can also be asked for now (`request_poll`, e.g. after
a trap); it runs at once unless that site's poll is already running.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import heapq
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from monitor.core.model import Observation, Site

PollFn = Callable[[Site], Awaitable[Observation]]


@dataclass(slots=True)
class SchedulerHooks:
    """What the scheduler reports to the rest of the daemon (all called in the loop)."""

    on_observation: Callable[[Observation], None]
    on_lag: Callable[[float], None] = lambda _lag: None
    on_skip: Callable[[str], None] = lambda _site: None
    is_suspect: Callable[[str], bool] = lambda _site: False


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
        self._suspect_slots = asyncio.Semaphore(max(1, max_in_flight // 4))
        self._urgent: collections.deque[str] = collections.deque()
        self._hooks = hooks
        self._clock = clock
        self._running: set[str] = set()
        # Heap entries carry a token: an entry left behind by a removed site never polls, even
        # if the site comes back in a later reload with an entry of its own.
        self._queue: list[tuple[float, str, int]] = []
        self._tokens: dict[str, int] = {}
        self._wake = asyncio.Event()

    def update_sites(self, sites: Iterable[Site]) -> None:
        """Take a new inventory: removed sites are dropped when their turn comes, added ones
        are scheduled at their own phase, changed ones keep their place in the rhythm."""
        new = {site.id: site for site in sites}
        added = new.keys() - self._sites.keys()
        self._sites = new
        now = self._clock()
        for site_id in added:
            self._schedule_first(new[site_id], now)
        self._wake.set()

    def request_poll(self, site_id: str) -> None:
        """Poll this site as soon as a slot is free, outside its rhythm (which stays)."""
        if site_id in self._sites and site_id not in self._urgent:
            self._urgent.append(site_id)
            self._wake.set()

    def _schedule_first(self, site: Site, now: float) -> None:
        interval = self._interval_of(site)
        self._tokens[site.id] = token = self._tokens.get(site.id, 0) + 1
        heapq.heappush(
            self._queue, (now + (phase(site.id, interval) - now) % interval, site.id, token)
        )

    async def run(self) -> None:
        now = self._clock()
        for each in self._sites.values():
            self._schedule_first(each, now)
        queue = self._queue
        async with asyncio.TaskGroup() as polls:
            while True:
                if self._urgent:
                    urgent = self._sites.get(self._urgent.popleft())
                    if urgent is not None and urgent.id not in self._running:
                        await self._start(urgent, self._clock(), polls)
                    continue
                if not queue:
                    await self._sleep(None)
                    continue
                due, site_id, token = queue[0]
                delay = due - self._clock()
                if delay > 0:
                    await self._sleep(delay)
                    continue
                heapq.heappop(queue)
                site = self._sites.get(site_id)
                if site is None or self._tokens.get(site_id) != token:
                    continue  # left the inventory (or came back with a fresh entry)
                interval = self._interval_of(site)
                heapq.heappush(queue, (self._next_due(due, interval), site_id, token))
                if site_id in self._running:
                    self._hooks.on_skip(site_id)
                    continue
                await self._start(site, due, polls)

    async def _start(self, site: Site, due: float, polls: asyncio.TaskGroup) -> None:
        """Take a slot and launch the poll. A suspect site waits for a slot of its own pool
        in its task, so that the loop goes on launching the polls of live sites."""
        self._running.add(site.id)
        if self._hooks.is_suspect(site.id):
            polls.create_task(self._poll_suspect(site, due), name=f"poll:{site.id}")
            return
        await self._slots.acquire()
        self._hooks.on_lag(max(0.0, self._clock() - due))
        polls.create_task(self._poll_one(site, self._slots), name=f"poll:{site.id}")

    async def _poll_suspect(self, site: Site, due: float) -> None:
        try:
            await self._suspect_slots.acquire()
        except BaseException:
            self._running.discard(site.id)
            raise
        self._hooks.on_lag(max(0.0, self._clock() - due))
        await self._poll_one(site, self._suspect_slots)

    async def _sleep(self, delay: float | None) -> None:
        """Sleep until the next due poll, or until the inventory changes.

        `asyncio.timeout`, not `wait_for`: Python 3.11's wait_for returns the result when the
        awaited thing finishes in the same instant as the task is cancelled, and the
        cancellation is lost; in a loop such as this one the task then never ends, and the
        daemon's stop waits for it forever. The MQTT self-check met it (its echo arrives
        while the session is being cancelled)."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

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

    async def _poll_one(self, site: Site, slots: asyncio.Semaphore) -> None:
        try:
            observation = await self._poll(site)
        finally:
            slots.release()
            self._running.discard(site.id)
        self._hooks.on_observation(observation)
