"""The state machine: when a site is declared down or up, and how the change is dated."""

import pytest

from monitor.core.model import Observation, State, Transition
from monitor.state.evaluator import Evaluator


def obs(t: float, ok: bool, site: str = "s") -> Observation:
    if ok:
        return Observation(site, t, ok)
    return Observation(site, t, ok, error="snmp timeout: no answer", error_reason="timeout")


def feed(ev: Evaluator, pattern: str, start: float = 100.0, step: float = 60.0) -> list[Transition]:
    """Feed '+' (answer) and '-' (failure) observations; return the transitions produced."""
    out: list[Transition] = []
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


def chain_evaluator() -> Evaluator:
    """gw <- bts <- spk: a gateway, a base station behind it, a loudspeaker behind that."""
    ev = Evaluator(down_after=2, up_after=2, parents={"bts": "gw", "spk": "bts"})
    for site in ("gw", "bts", "spk"):
        ev.start(site, 0.0)
        ev.step(obs(1.0, True, site))
    return ev


def test_a_child_failing_behind_a_down_parent_is_unreachable_from_its_first_failure() -> None:
    ev = chain_evaluator()
    ev.step(obs(10.0, False, "gw"))
    [gw_down] = ev.step(obs(20.0, False, "gw"))
    assert (gw_down.state, gw_down.since) == (State.DOWN, 10.0)
    ev.step(obs(12.0, False, "bts"))
    [bts] = ev.step(obs(22.0, False, "bts"))
    assert (bts.state, bts.since, bts.reason) == (State.UNREACHABLE, 12.0, "behind gw")
    # transitively: the loudspeaker behind the unreachable base station
    ev.step(obs(13.0, False, "spk"))
    [spk] = ev.step(obs(23.0, False, "spk"))
    assert (spk.state, spk.since) == (State.UNREACHABLE, 13.0)


def test_a_child_failing_after_its_parents_last_answer_is_never_down() -> None:
    """The child is polled 3 s before its parent: it sees the cut first and is confirmed down
    first. Its failures began after the parent's last answer (1.0), so when the parent is
    confirmed the whole stretch is the parent's: unreachable from the child's own first
    failure, the down interval left with no length."""
    ev = chain_evaluator()
    ev.step(obs(5.0, False, "bts"))
    [bts] = ev.step(obs(15.0, False, "bts"))
    assert (bts.state, bts.since) == (State.DOWN, 5.0)
    ev.step(obs(8.0, False, "gw"))
    changes = ev.step(obs(18.0, False, "gw"))
    assert [(t.site, t.state, t.since, t.codes) for t in changes] == [
        ("gw", State.DOWN, 8.0, ("timeout",)),
        ("bts", State.UNREACHABLE, 5.0, ("behind_parent",)),
    ]


def test_a_child_confirmed_after_its_parent_is_unreachable_from_its_first_failure() -> None:
    ev = chain_evaluator()
    ev.step(obs(8.0, False, "gw"))
    ev.step(obs(5.0, False, "bts"))  # polled before the gateway, after its last answer
    [gw] = ev.step(obs(18.0, False, "gw"))
    assert (gw.state, gw.since) == (State.DOWN, 8.0)
    [bts] = ev.step(obs(15.0, False, "bts"))
    assert (bts.state, bts.since, bts.previous) == (State.UNREACHABLE, 5.0, State.UP)


def test_a_child_whose_failures_began_while_the_parent_answered_is_down_then_unreachable() -> None:
    ev = chain_evaluator()
    ev.step(obs(4.0, False, "bts"))  # its first failure: the gateway still answers at 6.0
    ev.step(obs(6.0, True, "gw"))
    ev.step(obs(10.0, False, "gw"))
    ev.step(obs(20.0, False, "gw"))
    changes = ev.step(obs(24.0, False, "bts"))
    assert [(t.state, t.since) for t in changes] == [
        (State.DOWN, 4.0),
        (State.UNREACHABLE, 10.0),
    ]
    # and the same when the child was confirmed first: its own seconds stay down
    ev = chain_evaluator()
    ev.step(obs(4.0, False, "bts"))
    ev.step(obs(6.0, True, "gw"))
    [down] = ev.step(obs(14.0, False, "bts"))
    assert (down.state, down.since) == (State.DOWN, 4.0)
    ev.step(obs(10.0, False, "gw"))
    changes = ev.step(obs(20.0, False, "gw"))
    assert [(t.site, t.state, t.since) for t in changes] == [
        ("gw", State.DOWN, 10.0),
        ("bts", State.UNREACHABLE, 10.0),
    ]


def test_after_a_restart_the_start_counts_as_the_parents_last_answer() -> None:
    """A restart while the gateway is down: neither site has answered since. The base station,
    polled a few seconds before the gateway, is confirmed down first; once the gateway is
    down too, the base station's outage is the gateway's from its first failed poll."""
    ev = Evaluator(down_after=3, up_after=2, parents={"bts": "gw"})
    for site in ("gw", "bts"):
        ev.start(site, 1000.0)
    out: list[Transition] = []
    for k in range(3):
        out += ev.step(obs(1001.0 + 10 * k, False, "bts"))
        out += ev.step(obs(1004.0 + 10 * k, False, "gw"))
    assert [(t.site, t.state, t.since) for t in out] == [
        ("bts", State.DOWN, 1001.0),
        ("gw", State.DOWN, 1004.0),
        ("bts", State.UNREACHABLE, 1001.0),
    ]
    # once the gateway has answered, a new failure of the child is judged against that answer
    ev.step(obs(1034.0, True, "gw"))
    [gw_up] = ev.step(obs(1044.0, True, "gw"))
    assert gw_up.state is State.UP
    ev.step(obs(1041.0, True, "bts"))
    ev.step(obs(1051.0, True, "bts"))
    for k in range(3):  # the child fails alone: its own outage
        ev.step(obs(1061.0 + 10 * k, False, "bts"))
    assert ev.sites["bts"].state is State.DOWN


def test_when_the_parent_recovers_the_child_is_decided_by_its_own_polls() -> None:
    ev = chain_evaluator()
    for t in (10.0, 20.0):
        ev.step(obs(t, False, "gw"))
        ev.step(obs(t + 2, False, "bts"))
    assert ev.sites["bts"].state is State.UNREACHABLE
    ev.step(obs(30.0, True, "gw"))
    [gw_up] = ev.step(obs(40.0, True, "gw"))
    assert (gw_up.state, gw_up.since) == (State.UP, 30.0)
    assert ev.sites["bts"].state is State.UNREACHABLE  # nothing decided without its own poll
    [bts_down] = ev.step(obs(42.0, False, "bts"))  # still failing: its own outage from here
    assert (bts_down.state, bts_down.since) == (State.DOWN, 42.0)
    ev.step(obs(52.0, True, "bts"))
    [bts_up] = ev.step(obs(62.0, True, "bts"))
    assert (bts_up.state, bts_up.since) == (State.UP, 52.0)


def test_an_unreachable_child_that_answers_recovers_after_m_answers() -> None:
    ev = chain_evaluator()
    for t in (10.0, 20.0):
        ev.step(obs(t, False, "gw"))
        ev.step(obs(t + 2, False, "bts"))
    ev.step(obs(30.0, True, "gw"))
    ev.step(obs(40.0, True, "gw"))
    assert ev.step(obs(32.0, True, "bts")) == []
    [up] = ev.step(obs(42.0, True, "bts"))
    assert (up.state, up.previous, up.since) == (State.UP, State.UNREACHABLE, 32.0)


def test_a_child_that_answers_while_its_parent_is_down_is_up() -> None:
    ev = chain_evaluator()
    ev.step(obs(10.0, False, "gw"))
    ev.step(obs(20.0, False, "gw"))
    assert ev.step(obs(22.0, True, "bts")) == []
    assert ev.sites["bts"].state is State.UP


def test_blind_sites_are_unknown_ignore_observations_and_start_afresh_on_restore() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    ev.step(obs(1.0, True))
    ev.step(obs(2.0, False))
    [t] = ev.blind("s", 3.0, "broker lost")
    assert (t.state, t.since, t.reason, t.previous) == (State.UNKNOWN, 3.0, "broker lost", State.UP)
    assert ev.step(obs(4.0, True)) == []  # a stale message while blind
    assert ev.sites["s"].state is State.UNKNOWN
    ev.restore("s")
    assert ev.sites["s"].state is State.UNKNOWN
    assert ev.step(obs(5.0, False)) == []  # the failure before blindness does not count
    ev.step(obs(6.0, False))
    [down] = ev.step(obs(7.0, False))
    assert (down.state, down.since) == (State.DOWN, 5.0)


def test_a_health_rule_makes_an_answering_site_degraded_once_confirmed() -> None:
    """A health rule's verdict needs the same confirmation as a probe's: down_after unhealthy
    answers to leave up, up_after healthy ones to come back, each dated at the run's first."""

    def on_battery(o: Observation) -> str | None:
        return "on battery" if o.values.get("on_battery") else None

    ev = Evaluator(down_after=2, up_after=2, degraded_by=on_battery)
    ev.start("s", 0.0)
    [up] = ev.step(Observation("s", 1.0, True))
    assert up.state is State.UP
    assert ev.step(Observation("s", 2.0, True, values={"on_battery": 1})) == []
    [deg] = ev.step(Observation("s", 3.0, True, values={"on_battery": 1}))
    assert (deg.state, deg.since, deg.reason) == (State.DEGRADED, 2.0, "on battery")
    assert ev.step(Observation("s", 4.0, True)) == []
    [back] = ev.step(Observation("s", 5.0, True))
    assert (back.state, back.since) == (State.UP, 4.0)


def test_a_change_is_never_dated_before_the_current_state_began() -> None:
    ev = Evaluator(down_after=1, up_after=1)
    ev.start("s", 100.0)
    [t] = ev.step(obs(90.0, True))  # an observation timed before the site was watched
    assert t.since == 100.0


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


def answer(t: float, reason: str | None = None, confirmed: bool = False) -> Observation:
    return Observation("s", t, True, degraded_reason=reason, confirmed=confirmed)


def feed3(
    ev: Evaluator, pattern: str, start: float = 100.0, step: float = 60.0
) -> list[Transition]:
    """'+' healthy answer, 'd' degraded answer, '-' failure."""
    out: list[Transition] = []
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


def test_up_to_degraded_needs_down_after_degraded_answers_dated_at_the_first() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    transitions = feed3(ev, "+d+dd")
    assert [t.state for t in transitions] == [State.UP]
    transitions = feed3(ev, "d", start=400.0)
    assert [t.state for t in transitions] == [State.DEGRADED]
    assert transitions[0].since == 100.0 + 3 * 60.0
    assert transitions[0].reason == "on battery"


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


def test_the_monitors_own_failures_make_a_site_unknown_never_down() -> None:
    """A wrong SNMPv3 key, no ICMP socket, a fault of ours: the site answered or may have. A
    confirmed run of such failures makes it unknown, with a reason that says so."""
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    feed(ev, "+")
    auth = [
        Observation("s", t, False, error="snmp auth: wrong digest", error_reason="auth")
        for t in (160.0, 220.0, 280.0)
    ]
    assert ev.observe(auth[0]) is None and ev.observe(auth[1]) is None
    t = ev.observe(auth[2])
    assert t is not None and (t.state, t.since, t.codes) == (State.UNKNOWN, 160.0, ("auth",))
    assert "monitor" in t.reason and "snmp auth: wrong digest" in t.reason
    for later in (340.0, 400.0, 460.0):  # more of the same changes nothing
        assert ev.observe(Observation("s", later, False, error_reason="auth")) is None
    # the credential is fixed: one answer says up, as after a start
    back = ev.observe(Observation("s", 520.0, True))
    assert back is not None and (back.state, back.since, back.codes) == (State.UP, 520.0, ())


def test_the_monitors_failures_and_the_sites_own_are_separate_runs() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 0.0)
    feed(ev, "+")
    for t, reason in ((160.0, "timeout"), (220.0, "timeout"), (280.0, "permission")):
        assert ev.observe(Observation("s", t, False, error_reason=reason)) is None
    for t in (340.0, 400.0):
        ev.observe(Observation("s", t, False, error_reason="permission"))
    assert (ev.sites["s"].state, ev.sites["s"].since) == (State.UNKNOWN, 280.0)
    out = [ev.observe(Observation("s", t, False, error_reason="timeout")) for t in (460.0, 520.0)]
    assert out == [None, None]
    down = ev.observe(Observation("s", 580.0, False, error="tcp timeout", error_reason="timeout"))
    assert down is not None
    assert (down.state, down.since, down.codes) == (State.DOWN, 460.0, ("timeout",))


def test_each_state_carries_its_reason_codes() -> None:
    ev = Evaluator(down_after=1, up_after=1, parents={"bts": "gw"})
    assert ev.start("gw", 0.0).codes == ("no_data",)
    ev.start("bts", 0.0)
    [deg] = ev.step(Observation("gw", 1.0, True, degraded_reason="x; y", codes=("a", "b")))
    assert (deg.state, deg.codes) == (State.DEGRADED, ("a", "b"))
    [plain] = ev.step(Observation("bts", 1.0, True, degraded_reason="unhealthy"))
    assert plain.codes == ("unhealthy",)
    [bts_down] = ev.step(Observation("bts", 2.0, False, error_reason="timeout"))
    assert bts_down.codes == ("timeout",)
    [down, behind] = ev.step(Observation("gw", 2.0, False, error_reason="refused"))
    assert (down.codes, behind.site) == (("refused",), "bts")
    assert (behind.state, behind.codes) == (State.UNREACHABLE, ("behind_parent",))
    [t] = ev.blind("gw", 3.0, "monitor blind: subscription lost", "subscription_lost")
    assert (t.state, t.codes) == (State.UNKNOWN, ("subscription_lost",))
    ev = Evaluator(down_after=1, up_after=1)
    ev.start("s", 0.0)
    [odd] = ev.step(Observation("s", 1.0, False, error_reason="no such word"))
    assert odd.codes == ("failed",)  # a word from elsewhere never reaches a label


def test_a_site_down_when_the_daemon_stopped_is_down_again_at_its_first_failure() -> None:
    """A restart in the middle of an outage continues it: the first failed poll confirms it,
    instead of an unknown gap of `down_after` polls followed by a new outage (a second page)."""
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 1000.0, State.DOWN)
    [t] = feed(ev, "-", start=1001.0)
    assert (t.state, t.previous, t.since) == (State.DOWN, State.UNKNOWN, 1001.0)


def test_a_carried_outage_needs_no_answers_to_end_and_is_forgotten_by_any_answer() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 1000.0, State.DOWN)
    transitions = feed(ev, "+--", start=1001.0)
    # the first answer decides as for any start; later failures are a new run to confirm
    assert [t.state for t in transitions] == [State.UP]
    assert ev.sites["s"].state is State.UP


def test_a_site_up_when_the_daemon_stopped_still_needs_n_failures() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 1000.0, State.UP)
    assert feed(ev, "--", start=1001.0) == []
    [t] = feed(ev, "-", start=1121.0)
    assert (t.state, t.since) == (State.DOWN, 1001.0)


def test_a_carried_outage_does_not_turn_the_monitors_own_failure_into_down() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("s", 1000.0, State.DOWN)
    own = Observation("s", 1001.0, False, error="authentication failed", error_reason="auth")
    assert ev.observe(own) is None  # the monitor's fault still needs confirming, then unknown
    assert ev.sites["s"].state is State.UNKNOWN


def test_a_child_unreachable_when_the_daemon_stopped_is_unreachable_again_behind_its_parent() -> (
    None
):
    ev = Evaluator(down_after=3, up_after=2, parents={"bts": "gw"})
    ev.start("gw", 1000.0, State.DOWN)
    ev.start("bts", 1000.0, State.UNREACHABLE)
    out = ev.step(obs(1001.0, False, "gw")) + ev.step(obs(1002.0, False, "bts"))
    assert [(t.site, t.state, t.since) for t in out] == [
        ("gw", State.DOWN, 1001.0),
        ("bts", State.UNREACHABLE, 1002.0),
    ]


def test_a_carried_unreachable_child_polled_before_its_parent_waits_for_the_parent() -> None:
    ev = Evaluator(down_after=3, up_after=2, parents={"bts": "gw"})
    ev.start("gw", 1000.0, State.DOWN)
    ev.start("bts", 1000.0, State.UNREACHABLE)
    out = ev.step(obs(1001.0, False, "bts"))
    out += ev.step(obs(1002.0, False, "gw"))
    out += ev.step(obs(1011.0, False, "bts"))
    assert [(t.site, t.state, t.since) for t in out] == [
        ("gw", State.DOWN, 1002.0),
        ("bts", State.UNREACHABLE, 1001.0),
    ]


def test_a_carried_unreachable_child_whose_parent_is_back_confirms_its_own_failures() -> None:
    ev = Evaluator(down_after=3, up_after=2, parents={"bts": "gw"})
    ev.start("gw", 1000.0, State.DOWN)
    ev.start("bts", 1000.0, State.UNREACHABLE)
    ev.step(obs(1001.0, True, "gw"))
    assert ev.step(obs(1002.0, False, "bts")) + ev.step(obs(1012.0, False, "bts")) == []
    [down] = ev.step(obs(1022.0, False, "bts"))
    assert (down.site, down.state, down.since) == ("bts", State.DOWN, 1002.0)
