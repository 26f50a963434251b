"""Interval maths: tallies agree with a second-by-second count, however they are cut and joined,
and the hourly encoding gives back exactly what it was given."""

from __future__ import annotations

import itertools
import random

import pytest

from monitor.core.availability import (
    DOWN,
    HOUR_MS,
    UNKNOWN,
    Tally,
    chain,
    decode_hours,
    encode_hour,
    figures,
    group_figures,
    sweep,
)


def random_intervals(rng: random.Random, length: int) -> list[tuple[int, int, int]]:
    """Back-to-back intervals with gaps, biased towards down so that outages join and split."""
    out = []
    t = rng.randrange(0, 5)
    while t < length:
        span = rng.randrange(1, 12)
        if rng.random() < 0.15:
            t += span  # a gap: unknown
            continue
        code = rng.choice([0, 1, 2, 2, 2, 3, 4, 5])
        out.append((code, t, t + span))
        t += span
    return out


def reference(intervals: list[tuple[int, int, int]], start: int, end: int) -> Tally:
    """Second by second: what each second was, then outages counted by hand, as the README
    defines them: drop the unknown seconds, and an outage is a run of down seconds in what is
    left (a monitor gap between two down stretches does not end the outage)."""
    states = [UNKNOWN] * (end - start)
    for code, s, e in intervals:
        for t in range(max(s, start), min(e, end)):
            states[t - start] = code
    ms = [states.count(code) for code in range(5)]
    known = [code for code in states if code != UNKNOWN]
    stretches: list[int] = []  # the down seconds of each outage
    previous = None
    for code in known:
        if code == DOWN:
            if previous == DOWN:
                stretches[-1] += 1
            else:
                stretches.append(1)
        previous = code
    head = stretches[0] if known and known[0] == DOWN else 0
    tail = stretches[-1] if known and known[-1] == DOWN else 0
    longest = max(stretches, default=0)
    n = len(states)
    return Tally(n, (ms[0], ms[1], ms[2], ms[3], ms[4]), len(stretches), head, tail, longest)


@pytest.mark.parametrize("seed", range(40))
def test_a_sweep_matches_a_second_by_second_count(seed: int) -> None:
    rng = random.Random(seed)
    intervals = random_intervals(rng, 200)
    start, end = sorted(rng.sample(range(0, 210), 2))
    assert sweep(intervals, start, end) == reference(intervals, start, end)


@pytest.mark.parametrize("seed", range(40))
def test_tallies_of_consecutive_stretches_chain_to_the_whole(seed: int) -> None:
    rng = random.Random(1000 + seed)
    intervals = random_intervals(rng, 300)
    cuts = sorted({0, 300, *rng.sample(range(1, 300), rng.randrange(1, 30))})
    parts = [sweep(intervals, a, b) for a, b in itertools.pairwise(cuts)]
    assert chain(parts) == sweep(intervals, 0, 300)


def test_an_outage_across_a_cut_is_one_outage_with_its_whole_length() -> None:
    intervals = [(0, 0, 10), (DOWN, 10, 50), (0, 50, 60)]
    left, right = sweep(intervals, 0, 30), sweep(intervals, 30, 60)
    assert (left.runs, left.tail, right.runs, right.head) == (1, 20, 1, 20)
    joined = left.then(right)
    assert (joined.runs, joined.longest, joined.ms[DOWN]) == (1, 40, 40)


def test_another_state_ends_an_outage_but_a_monitor_gap_does_not() -> None:
    # down, a gap (monitor stopped), down again: one outage of 15 s, the gap unknown
    t = sweep([(DOWN, 0, 10), (DOWN, 15, 20), (3, 20, 25), (DOWN, 25, 30)], 0, 30)
    assert (t.runs, t.longest, t.ms[DOWN], t.unknown) == (2, 15, 20, 5)
    # an unknown interval (broker lost, no data yet after a restart) is a gap too
    t = sweep([(DOWN, 0, 10), (UNKNOWN, 10, 12), (DOWN, 14, 20)], 0, 20)
    assert (t.runs, t.longest, t.head, t.tail, t.unknown) == (1, 16, 16, 16, 4)
    # two down intervals back to back (the reason changed) are one outage
    t = sweep([(DOWN, 0, 10), (DOWN, 10, 20)], 0, 20)
    assert (t.runs, t.longest, t.head, t.tail) == (1, 20, 20, 20)
    # down, then a gap, then up: the outage ended with its down time, the gap is unknown
    t = sweep([(DOWN, 0, 10), (0, 15, 20)], 0, 20)
    assert (t.runs, t.longest, t.head, t.tail, t.ms[DOWN]) == (1, 10, 10, 0, 10)
    # maintenance ends it (planned work is not the same outage going on)
    t = sweep([(DOWN, 0, 10), (4, 10, 12), (DOWN, 12, 20)], 0, 20)
    assert t.runs == 2


def test_an_outage_through_a_restart_is_one_across_any_cut() -> None:
    """Down before a crash, the gap, 'no data yet' after the restart, down again: one outage,
    whether the cut falls before, inside or after the gap."""
    intervals = [
        (0, 0, 100),
        (DOWN, 100, 160),
        (UNKNOWN, 200, 205),
        (DOWN, 205, 260),
        (0, 260, 300),
    ]
    whole = sweep(intervals, 0, 300)
    assert (whole.runs, whole.longest, whole.ms[DOWN], whole.unknown) == (1, 115, 115, 45)
    for cut in (130, 160, 180, 200, 203, 205, 230):
        assert sweep(intervals, 0, cut).then(sweep(intervals, cut, 300)) == whole, cut


def test_overlapping_intervals_never_count_a_second_twice() -> None:
    t = sweep([(0, 0, 10), (DOWN, 5, 15)], 0, 20)
    assert t.ms[0] + t.ms[DOWN] == 15 and t.unknown == 5


@pytest.mark.parametrize("seed", range(30))
def test_an_hour_record_decodes_to_the_tally_it_encodes(seed: int) -> None:
    rng = random.Random(seed)
    scale = HOUR_MS // 300
    intervals = [(c, s * scale, e * scale) for c, s, e in random_intervals(rng, 300)]
    hour = sweep(intervals, 0, HOUR_MS)
    [decoded] = list(decode_hours(encode_hour(hour)))
    assert decoded == hour


def test_a_uniform_hour_is_one_byte() -> None:
    assert encode_hour(Tally.of(0, HOUR_MS)) == b"\x00"
    assert encode_hour(Tally(HOUR_MS)) == bytes((UNKNOWN,))
    assert list(decode_hours(b"\x02\x00")) == [Tally.of(DOWN, HOUR_MS), Tally.of(0, HOUR_MS)]


def test_figures_follow_the_documented_formulas() -> None:
    # 100 s window: 50 up, 10 degraded, 20 down in two outages, 5 unreachable, 10 maintenance,
    # 5 unknown
    intervals = [
        (0, 0, 30),
        (DOWN, 30, 45),
        (1, 45, 55),
        (DOWN, 55, 60),
        (0, 60, 80),
        (3, 80, 85),
        (4, 85, 95),
    ]
    f = figures(sweep([(c, s * 1000, e * 1000) for c, s, e in intervals], 0, 100_000))
    assert (f.up, f.degraded, f.down, f.unreachable, f.maintenance, f.unknown) == (
        50,
        10,
        20,
        5,
        10,
        5,
    )
    assert f.availability == pytest.approx(60 / (100 - 5 - 10 - 5))
    assert (f.outages, f.longest_outage, f.mttr, f.mtbf) == (2, 15, 10, 30)


def test_a_window_with_nothing_counted_has_no_availability() -> None:
    f = figures(Tally(10_000))
    assert f.availability is None and f.mttr is None and f.mtbf is None


def test_group_figures_weigh_sites_by_time_not_by_count() -> None:
    a = Tally.of(0, 90_000).then(Tally.of(DOWN, 10_000))  # 90 % over 100 s
    b = Tally.of(0, 1_000).then(Tally(99_000))  # 100 % over 1 s counted
    g = group_figures([a, b])
    assert g.availability == pytest.approx(91 / 101)
    assert (g.outages, g.longest_outage, g.window) == (1, 10, 200)
