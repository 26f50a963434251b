"""The scheduler: spread polls, bounded concurrency, slow sites do not starve the others."""

import asyncio
import time
from collections import Counter

from monitor.core.model import Observation, Site, SnmpProbe
from monitor.state.scheduler import Scheduler, SchedulerHooks, phase


def make_site(i: int) -> Site:
    return Site(f"s{i}", "bts", f"S{i}", "c", "o", 0.0, 0.0, SnmpProbe("127.0.0.1"))


def test_phases_are_stable_and_spread_over_the_interval() -> None:
    phases = [phase(f"bts-{i}", 60.0) for i in range(6000)]
    assert phases == [phase(f"bts-{i}", 60.0) for i in range(6000)]
    assert all(0 <= p < 60.0 for p in phases)
    per_second = Counter(int(p) for p in phases)
    assert len(per_second) == 60
    assert max(per_second.values()) < 2 * 6000 / 60  # no second gets twice its share


async def run_for(scheduler: Scheduler, seconds: float) -> None:
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_every_site_is_polled_once_per_interval() -> None:
    sites = [make_site(i) for i in range(50)]
    seen: Counter[str] = Counter()

    async def poll(site: Site) -> Observation:
        return Observation(site.id, time.time(), True)

    hooks = SchedulerHooks(on_observation=lambda o: seen.update([o.site]))
    await run_for(Scheduler(sites, lambda s: 0.2, poll, 10, hooks), 1.05)
    assert set(seen) == {s.id for s in sites}
    assert all(4 <= n <= 6 for n in seen.values()), seen


async def test_requests_in_flight_never_exceed_the_bound() -> None:
    sites = [make_site(i) for i in range(40)]
    in_flight = 0
    peak = 0

    async def poll(site: Site) -> Observation:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return Observation(site.id, time.time(), True)

    await run_for(Scheduler(sites, lambda s: 0.1, poll, 5, SchedulerHooks(lambda o: None)), 0.6)
    assert peak == 5


async def test_dead_sites_do_not_starve_live_ones() -> None:
    dead = [make_site(i) for i in range(10)]
    live = [make_site(i) for i in range(10, 20)]
    dead_ids = {s.id for s in dead}
    answered: Counter[str] = Counter()
    skipped: list[str] = []

    async def poll(site: Site) -> Observation:
        if site.id in dead_ids:
            await asyncio.sleep(0.5)  # a timeout longer than the interval
            return Observation(site.id, time.time(), False, error="timeout")
        return Observation(site.id, time.time(), True)

    hooks = SchedulerHooks(
        on_observation=lambda o: answered.update([o.site] if o.ok else []),
        on_skip=skipped.append,
    )
    await run_for(Scheduler(dead + live, lambda s: 0.2, poll, 15, hooks), 1.1)
    assert all(answered[s.id] >= 4 for s in live), answered
    assert set(skipped) & dead_ids  # a dead site's next round is skipped, not stacked


async def test_suspect_sites_poll_from_their_own_pool_so_many_dead_cannot_take_every_slot() -> None:
    """More dead sites than slots: without a pool of their own they would hold every slot
    for their whole timeout and the live sites would wait behind them."""
    dead = [make_site(i) for i in range(40)]
    live = [make_site(i) for i in range(40, 50)]
    dead_ids = {s.id for s in dead}
    answered: Counter[str] = Counter()
    dead_in_flight = peak_dead = 0
    lags: list[float] = []

    async def poll(site: Site) -> Observation:
        nonlocal dead_in_flight, peak_dead
        if site.id in dead_ids:
            dead_in_flight += 1
            peak_dead = max(peak_dead, dead_in_flight)
            await asyncio.sleep(0.5)
            dead_in_flight -= 1
            return Observation(site.id, time.time(), False, error="timeout")
        return Observation(site.id, time.time(), True)

    hooks = SchedulerHooks(
        on_observation=lambda o: answered.update([o.site] if o.ok else []),
        on_lag=lags.append,
        is_suspect=lambda site_id: site_id in dead_ids,
    )
    await run_for(Scheduler(dead + live, lambda s: 0.2, poll, 8, hooks), 1.1)
    assert peak_dead == 2  # a quarter of 8 slots
    assert all(answered[s.id] >= 4 for s in live), answered


async def test_a_requested_poll_runs_at_once_and_keeps_the_rhythm() -> None:
    polled: list[tuple[str, float]] = []

    async def poll(site: Site) -> Observation:
        polled.append((site.id, time.monotonic()))
        return Observation(site.id, time.time(), True)

    # a clock shifted so that the site's own turn is half an interval away: only the
    # requested poll can happen during the test
    shift = (phase("s1", 60.0) - time.monotonic() - 30.0) % 60.0
    scheduler = Scheduler(
        [make_site(1)],
        lambda s: 60.0,
        poll,
        4,
        SchedulerHooks(lambda o: None),
        clock=lambda: time.monotonic() + shift,
    )
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0.05)
    before = len(polled)
    asked = time.monotonic()
    scheduler.request_poll("s1")
    scheduler.request_poll("unknown-site")  # not in the inventory: ignored
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(polled) == before + 1
    assert polled[-1][0] == "s1" and polled[-1][1] - asked < 0.05
