"""Answers that carry a degraded reason: `degraded` with the same N/M confirmation as down/up,
dated at the first observation of the confirming run."""

from monitor.core.model import Observation, State, Transition
from monitor.state.evaluator import Evaluator

SLOW = "http response 2.50 s > 1 s"


def obs(t: float, kind: str, site: str = "s") -> Observation:
    """'+' healthy answer, '~' answer with a degraded reason, '-' failure."""
    if kind == "-":
        return Observation(site, t, False, error="icmp timeout: no reply")
    return Observation(site, t, True, degraded_reason=SLOW if kind == "~" else None)


def feed(ev: Evaluator, pattern: str, start: float = 100.0, step: float = 60.0) -> list[Transition]:
    out = []
    for i, ch in enumerate(pattern):
        t = ev.observe(obs(start + i * step, ch))
        if t is not None:
            out.append(t)
    return out


def started(down_after: int = 3, up_after: int = 2) -> Evaluator:
    ev = Evaluator(down_after=down_after, up_after=up_after)
    ev.start("s", 0.0)
    return ev


def test_a_first_answer_that_is_degraded_says_degraded_at_once() -> None:
    [t] = feed(started(), "~")
    assert (t.state, t.previous, t.since, t.reason) == (State.DEGRADED, State.UNKNOWN, 100.0, SLOW)


def test_up_turns_degraded_after_n_degraded_answers_dated_at_the_first() -> None:
    transitions = feed(started(down_after=3), "++~~~")
    assert [t.state for t in transitions] == [State.UP, State.DEGRADED]
    assert transitions[1].since == 100.0 + 2 * 60.0
    assert transitions[1].reason == SLOW


def test_isolated_degraded_answers_never_leave_up() -> None:
    ev = started(down_after=3)
    assert [t.state for t in feed(ev, "+~+~~+~~+")] == [State.UP]
    assert ev.sites["s"].state is State.UP


def test_degraded_recovers_after_m_healthy_answers_dated_at_the_first() -> None:
    transitions = feed(started(down_after=2, up_after=3), "~~+~+++")
    assert [t.state for t in transitions] == [State.DEGRADED, State.UP]
    assert transitions[1].since == 100.0 + 4 * 60.0
    assert transitions[1].reason == ""


def test_a_degraded_site_still_goes_down_after_n_failures() -> None:
    transitions = feed(started(down_after=3), "~--~---")
    assert [t.state for t in transitions] == [State.DEGRADED, State.DOWN]
    assert transitions[1].since == 100.0 + 4 * 60.0


def test_a_down_site_comes_back_degraded_after_m_answers_of_any_health() -> None:
    transitions = feed(started(down_after=2, up_after=2), "+--+~")
    assert [t.state for t in transitions] == [State.UP, State.DOWN, State.DEGRADED]
    back = transitions[2]
    # the outage ended at the first answer, healthy or not
    assert (back.since, back.previous, back.reason) == (100.0 + 3 * 60.0, State.DOWN, SLOW)


def test_failures_break_a_run_of_degraded_answers() -> None:
    ev = started(down_after=3)
    assert [t.state for t in feed(ev, "+~~-~~+")] == [State.UP]


def test_the_latest_degraded_reason_is_kept_while_degraded() -> None:
    ev = started()
    feed(ev, "~")
    ev.observe(Observation("s", 500.0, True, degraded_reason="icmp loss 67% > 20%"))
    assert ev.sites["s"].state is State.DEGRADED
    assert ev.sites["s"].reason == "icmp loss 67% > 20%"
    assert ev.sites["s"].since == 100.0
