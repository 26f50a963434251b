"""The state machine: when a site is declared down or up, and how the change is dated."""

import pytest

from monitor.evaluator import Evaluator
from monitor.model import Observation, State


def obs(t: float, ok: bool, site: str = "s") -> Observation:
    return Observation(site, t, ok, error=None if ok else "snmp timeout: no answer")


def feed(ev: Evaluator, pattern: str, start: float = 100.0, step: float = 60.0) -> list:
    """Feed '+' (answer) and '-' (failure) observations; return the transitions produced."""
    out = []
    for i, ch in enumerate(pattern):
        t = ev.observe(obs(start + i * step, ch == "+"))
        if t is not None:
            out.append(t)
    return out


def test_site_starts_unknown_and_one_answer_makes_it_up() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    start = ev.start("s", 50.0)
    assert start.state is State.UNKNOWN and start.since == 50.0
    [t] = feed(ev, "+")
    assert (t.state, t.previous, t.since) == (State.UP, State.UNKNOWN, 100.0)


def test_down_needs_n_consecutive_failures_and_is_dated_at_the_first() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    transitions = feed(ev, "+--+---")
    assert [t.state for t in transitions] == [State.UP, State.DOWN]
    down = transitions[1]
    assert down.since == 100.0 + 4 * 60.0  # the first failure of the run of three
    assert "timeout" in down.reason


def test_isolated_failures_never_make_an_outage() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    transitions = feed(ev, "+-+--+-+--+")
    assert [t.state for t in transitions] == [State.UP]
    assert ev.sites["s"].state is State.UP


def test_recovery_needs_m_successes_dated_at_the_first() -> None:
    ev = Evaluator(down_after=2, up_after=3)
    ev.start("s", 0.0)
    transitions = feed(ev, "+--++-+++")
    assert [t.state for t in transitions] == [State.UP, State.DOWN, State.UP]
    assert transitions[2].since == 100.0 + 6 * 60.0
    assert transitions[2].previous is State.DOWN


def test_a_site_failing_from_the_start_goes_from_unknown_to_down() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    assert feed(ev, "--") == []
    [t] = feed(ev, "-", start=220.0)
    assert (t.state, t.previous, t.since) == (State.DOWN, State.UNKNOWN, 100.0)


def test_sites_are_independent() -> None:
    ev = Evaluator(down_after=1, up_after=1)
    ev.start("a", 0.0)
    ev.start("b", 0.0)
    ev.observe(obs(1.0, False, "a"))
    ev.observe(obs(1.0, True, "b"))
    assert ev.sites["a"].state is State.DOWN
    assert ev.sites["b"].state is State.UP


def test_thresholds_below_one_are_refused() -> None:
    with pytest.raises(ValueError):
        Evaluator(down_after=0)


def test_a_decisive_failure_takes_a_site_down_at_once_dated_at_the_run_start() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    feed(ev, "+")
    will = Observation("s", 130.0, False, error="last will", decisive=True)
    t = ev.observe(will)
    assert t is not None and (t.state, t.since, t.previous) == (State.DOWN, 130.0, State.UP)
    # after ordinary failures, the decisive one confirms the run they started
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    feed(ev, "+-", start=100.0)  # failure at 160
    t = ev.observe(Observation("s", 170.0, False, decisive=True))
    assert t is not None and (t.state, t.since) == (State.DOWN, 160.0)


def test_blindness_makes_a_site_unknown_at_once_and_fresh_data_decides_again() -> None:
    ev = Evaluator(down_after=2, up_after=3)
    ev.start("s", 0.0)
    feed(ev, "+--")  # up, then down
    assert ev.sites["s"].state is State.DOWN
    t = ev.blind("s", 500.0, "monitor blind: broker lost")
    assert t is not None and (t.state, t.since, t.previous) == (State.UNKNOWN, 500.0, State.DOWN)
    assert t.reason == "monitor blind: broker lost"
    assert ev.blind("s", 510.0, "monitor blind: broker lost") is None  # already unknown
    # one answer says up from unknown; the failures before the blindness no longer count
    [up] = feed(ev, "+", start=600.0)
    assert (up.state, up.since, up.previous) == (State.UP, 600.0, State.UNKNOWN)
    ev.blind("s", 700.0, "monitor blind: broker lost")
    assert feed(ev, "-", start=800.0) == []  # one failure after blindness: not yet down
    assert ev.blind("absent", 1.0, "x") is None
