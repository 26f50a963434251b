"""The scheduler: spread polls, bounded concurrency, slow sites do not starve the others.

Every test runs on a virtual clock (tests/virtualtime.py): the scheduler is given the loop's
time as its clock, its sleeps and the polls' own durations are timers of that loop, and the
loop jumps from one timer to the next. So the assertions are exact, about when each poll
happened on that clock, and hold however fast or loaded the machine is."""

import asyncio
from collections import Counter, defaultdict

import pytest
from virtualtime import run_virtual

from monitor.core.model import Observation, Site, SnmpProbe
from monitor.state.scheduler import Scheduler, SchedulerHooks, phase

START = 5000.0  # where the virtual clock starts: any time will do, phases are taken modulo


def make_site(i: int) -> Site:
    return Site(f"s{i}", "bts", f"S{i}", "c", "o", 0.0, 0.0, SnmpProbe("127.0.0.1"))


def due_times(site_id: str, interval: float, start: float, end: float) -> list[float]:
    """When a site's polls are due in [start, end): at its phase, then once per interval."""
    times: list[float] = []
    due = start + (phase(site_id, interval) - start) % interval
    while due < end:
        times.append(due)
        due += interval
    return times


def on_time(times: list[float]) -> object:
    """What a list of poll times equals when each poll happened when it was due."""
    return pytest.approx(times, abs=1e-9)


def test_phases_are_stable_and_spread_over_the_interval() -> None:
    phases = [phase(f"bts-{i}", 60.0) for i in range(6000)]
    assert phases == [phase(f"bts-{i}", 60.0) for i in range(6000)]
    assert all(0 <= p < 60.0 for p in phases)
    per_second = Counter(int(p) for p in phases)
    assert len(per_second) == 60
    assert max(per_second.values()) < 2 * 6000 / 60  # no second gets twice its share


def test_the_virtual_clock_jumps_to_each_timer_in_turn() -> None:
    """What the tests below stand on: timers fire in order, each at its own time."""

    async def scenario() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []
        loop.call_later(2.0, lambda: fired.append(("second", loop.time())))
        loop.call_later(1.0, lambda: fired.append(("first", loop.time())))
        await asyncio.sleep(3600.0)
        return [*fired, ("an hour later", loop.time())]

    assert run_virtual(scenario, 100.0) == [
        ("first", 101.0),
        ("second", 102.0),
        ("an hour later", 3700.0),
    ]


def test_the_virtual_clock_refuses_to_wait_for_what_can_never_come() -> None:
    async def scenario() -> None:
        await asyncio.Event().wait()  # no timer, no I/O: nothing can ever set it

    with pytest.raises(RuntimeError, match="deadlock"):
        run_virtual(scenario)


async def run_for(scheduler: Scheduler, seconds: float) -> None:
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_every_site_is_polled_once_per_interval() -> None:
    sites = [make_site(i) for i in range(50)]
    seen: Counter[str] = Counter()
    polled: defaultdict[str, list[float]] = defaultdict(list)

    async def scenario() -> None:
        clock = asyncio.get_running_loop().time

        async def poll(site: Site) -> Observation:
            polled[site.id].append(clock())
            return Observation(site.id, clock(), True)

        hooks = SchedulerHooks(on_observation=lambda o: seen.update([o.site]))
        await run_for(Scheduler(sites, lambda s: 0.2, poll, 10, hooks, clock), 1.05)

    run_virtual(scenario, START)
    assert set(seen) == {s.id for s in sites}
    for s in sites:
        expected = due_times(s.id, 0.2, START, START + 1.05)
        assert len(expected) in (5, 6)  # 1.05 s of 0.2 s intervals
        assert polled[s.id] == on_time(expected), s.id
        assert seen[s.id] == len(expected), s.id


def test_requests_in_flight_never_exceed_the_bound() -> None:
    sites = [make_site(i) for i in range(40)]
    in_flight = 0
    peak = 0

    async def poll(site: Site) -> Observation:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return Observation(site.id, 0.0, True)

    async def scenario() -> None:
        clock = asyncio.get_running_loop().time
        hooks = SchedulerHooks(lambda o: None)
        await run_for(Scheduler(sites, lambda s: 0.1, poll, 5, hooks, clock), 0.6)

    run_virtual(scenario, START)
    assert peak == 5


def test_dead_sites_do_not_starve_live_ones() -> None:
    dead = [make_site(i) for i in range(10)]
    live = [make_site(i) for i in range(10, 20)]
    dead_ids = {s.id for s in dead}
    answered: defaultdict[str, list[float]] = defaultdict(list)
    skipped: list[str] = []

    async def scenario() -> None:
        clock = asyncio.get_running_loop().time

        async def poll(site: Site) -> Observation:
            if site.id in dead_ids:
                await asyncio.sleep(0.5)  # a timeout longer than the interval
                return Observation(site.id, clock(), False, error="timeout")
            return Observation(site.id, clock(), True)

        hooks = SchedulerHooks(
            on_observation=lambda o: answered[o.site].append(o.time) if o.ok else None,
            on_skip=skipped.append,
        )
        await run_for(Scheduler(dead + live, lambda s: 0.2, poll, 15, hooks, clock), 1.1)

    run_virtual(scenario, START)
    for s in live:  # every round of every live site, each when it was due
        expected = due_times(s.id, 0.2, START, START + 1.1)
        assert len(expected) >= 5
        assert answered[s.id] == on_time(expected), s.id
    assert set(skipped) == dead_ids  # a dead site's next round is skipped, not stacked


def test_suspect_sites_poll_from_their_own_pool_so_many_dead_cannot_take_every_slot() -> None:
    """More dead sites than slots: without a pool of their own they would hold every slot
    for their whole timeout and the live sites would wait behind them."""
    dead = [make_site(i) for i in range(40)]
    live = [make_site(i) for i in range(40, 50)]
    dead_ids = {s.id for s in dead}
    answered: defaultdict[str, list[float]] = defaultdict(list)
    dead_in_flight = peak_dead = 0
    lags: list[float] = []

    async def scenario() -> None:
        clock = asyncio.get_running_loop().time

        async def poll(site: Site) -> Observation:
            nonlocal dead_in_flight, peak_dead
            if site.id in dead_ids:
                dead_in_flight += 1
                peak_dead = max(peak_dead, dead_in_flight)
                await asyncio.sleep(0.5)
                dead_in_flight -= 1
                return Observation(site.id, clock(), False, error="timeout")
            return Observation(site.id, clock(), True)

        hooks = SchedulerHooks(
            on_observation=lambda o: answered[o.site].append(o.time) if o.ok else None,
            on_lag=lags.append,
            is_suspect=lambda site_id: site_id in dead_ids,
        )
        await run_for(Scheduler(dead + live, lambda s: 0.2, poll, 8, hooks, clock), 1.1)

    run_virtual(scenario, START)
    assert peak_dead == 2  # a quarter of 8 slots
    for s in live:  # never behind the dead: every round, each when it was due
        expected = due_times(s.id, 0.2, START, START + 1.1)
        assert len(expected) >= 5
        assert answered[s.id] == on_time(expected), s.id


def test_a_requested_poll_runs_at_once_and_keeps_the_rhythm() -> None:
    polled: list[tuple[str, float]] = []
    asked: list[float] = []
    # start the clock half an interval before the site's own turn: until then, only the
    # requested poll can happen
    start = 100 * 60.0 + phase("s1", 60.0) - 30.0
    own_turn = due_times("s1", 60.0, start, start + 60.0)

    async def scenario() -> None:
        clock = asyncio.get_running_loop().time

        async def poll(site: Site) -> Observation:
            polled.append((site.id, clock()))
            return Observation(site.id, clock(), True)

        scheduler = Scheduler(
            [make_site(1)], lambda s: 60.0, poll, 4, SchedulerHooks(lambda o: None), clock
        )
        task = asyncio.create_task(scheduler.run())
        await asyncio.sleep(0.05)
        assert polled == []
        asked.append(clock())
        scheduler.request_poll("s1")
        scheduler.request_poll("unknown-site")  # not in the inventory: ignored
        await asyncio.sleep(0.1)
        assert polled == [("s1", asked[0])]  # at once: not a moment of the clock later
        await asyncio.sleep(40.0)  # past the site's own turn
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run_virtual(scenario, start)
    assert own_turn == on_time([start + 30.0])
    # the rhythm is kept: its own turn still comes at its phase, neither moved nor doubled
    assert [site for site, _ in polled] == ["s1", "s1"]
    assert [at for _, at in polled] == on_time([asked[0], *own_turn])
