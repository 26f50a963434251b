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


def answer(t: float, reason: str | None = None, confirmed: bool = False) -> Observation:
    return Observation("s", t, True, degraded_reason=reason, confirmed=confirmed)


def feed3(ev: Evaluator, pattern: str, start: float = 100.0, step: float = 60.0) -> list:
    """'+' healthy answer, 'd' degraded answer, '-' failure."""
    out = []
    for i, ch in enumerate(pattern):
        t = start + i * step
        o = obs(t, False) if ch == "-" else answer(t, "on battery" if ch == "d" else None)
        if (transition := ev.observe(o)) is not None:
            out.append(transition)
    return out


def test_first_answer_degraded_makes_the_site_degraded_with_its_reason() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    [t] = feed3(ev, "d")
    assert (t.state, t.previous, t.since, t.reason) == (
        State.DEGRADED,
        State.UNKNOWN,
        100.0,
        "on battery",
    )


def test_up_to_degraded_needs_up_after_degraded_answers_dated_at_the_first() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    transitions = feed3(ev, "+d+dd")
    assert [t.state for t in transitions] == [State.UP, State.DEGRADED]
    assert transitions[1].since == 100.0 + 3 * 60.0
    assert transitions[1].reason == "on battery"


def test_degraded_back_to_up_needs_up_after_healthy_answers() -> None:
    ev = Evaluator(down_after=3, up_after=3)
    ev.start("s", 0.0)
    transitions = feed3(ev, "d++d+++")
    assert [t.state for t in transitions] == [State.DEGRADED, State.UP]
    assert transitions[1].since == 100.0 + 4 * 60.0


def test_a_degraded_site_that_stops_answering_goes_down() -> None:
    ev = Evaluator(down_after=2, up_after=2)
    ev.start("s", 0.0)
    transitions = feed3(ev, "d--")
    assert [t.state for t in transitions] == [State.DEGRADED, State.DOWN]
    assert transitions[1].since == 160.0


def test_out_of_down_any_answers_count_and_the_last_kind_decides() -> None:
    ev = Evaluator(down_after=1, up_after=2)
    ev.start("s", 0.0)
    transitions = feed3(ev, "+-+d")
    assert [t.state for t in transitions] == [State.UP, State.DOWN, State.DEGRADED]
    assert transitions[2].since == 100.0 + 2 * 60.0  # the first answer of the recovery
    transitions = feed3(ev, "-d+", start=1000.0)
    assert [t.state for t in transitions] == [State.DOWN, State.UP]
    assert transitions[1].since == 1060.0


def test_a_confirmed_observation_applies_at_once() -> None:
    ev = Evaluator(down_after=3, up_after=3)
    ev.start("s", 0.0)
    feed3(ev, "+")
    t = ev.observe(answer(130.0, "mains failure (trap)", confirmed=True))
    assert t is not None and (t.state, t.since, t.reason) == (
        State.DEGRADED,
        130.0,
        "mains failure (trap)",
    )
    # one healthy poll does not undo the device's own word; up_after of them do
    assert feed3(ev, "++", start=160.0) == []
    [back] = feed3(ev, "+", start=280.0)
    assert (back.state, back.since) == (State.UP, 160.0)


def test_a_new_reason_while_degraded_is_kept_without_a_transition() -> None:
    ev = Evaluator(down_after=3, up_after=1)
    ev.start("s", 0.0)
    ev.observe(answer(1.0, "on battery"))
    assert ev.observe(answer(2.0, "on battery; battery low")) is None
    assert ev.sites["s"].reason == "on battery; battery low"
