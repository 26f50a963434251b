"""Heartbeat staleness: silence becomes `down_after` failed checks spread over the timeout."""

from __future__ import annotations

from monitor.core.model import Observation, State
from monitor.probes.mqtt.heartbeat import HeartbeatWatch
from monitor.state.evaluator import Evaluator


def run_checks(
    watch: HeartbeatWatch, until: float, step: float, checks: int
) -> list[tuple[float, str]]:
    """Ask for due checks every `step` seconds up to `until`; (time, site) of each."""
    seen: list[tuple[float, str]] = []
    t = 0.0
    while t <= until + 1e-9:
        seen += [(round(t, 6), overdue.site) for overdue in watch.due(t, checks)]
        t += step
    return seen


def test_silence_fails_one_check_per_period_from_the_last_message() -> None:
    watch = HeartbeatWatch()
    watch.watch({"a": 90.0}, now=0.0)
    assert run_checks(watch, 100.0, 1.0, checks=3) == [(30.0, "a"), (60.0, "a"), (90.0, "a")]
    assert [o.silence for o in watch.due(120.0, 3)] == [120.0]  # a down site keeps failing


def test_a_message_restarts_the_count() -> None:
    watch = HeartbeatWatch()
    watch.watch({"a": 90.0, "b": 90.0}, now=0.0)
    assert [o.site for o in watch.due(31.0, 3)] == ["a", "b"]
    watch.heard["a"] = 50.0  # what the message path does
    assert [o.site for o in watch.due(61.0, 3)] == ["b"]
    assert [o.site for o in watch.due(79.0, 3)] == []
    assert [o.site for o in watch.due(80.0, 3)] == ["a"]  # 30 s after its message
    assert [(o.site, o.silence, o.at) for o in watch.due(91.0, 3)] == [("b", 90.0, 90.0)]


def test_silence_is_counted_from_the_reconnection_only() -> None:
    watch = HeartbeatWatch()
    watch.watch({"a": 90.0}, now=0.0)
    assert len(watch.due(61.0, 3)) == 2
    watch.restart(now=200.0)  # blind from ~61 to 200
    assert watch.due(229.0, 3) == []
    assert [o.silence for o in watch.due(230.0, 3)] == [30.0]


def test_sites_come_and_go_with_the_inventory() -> None:
    watch = HeartbeatWatch()
    watch.watch({"a": 90.0}, now=0.0)
    watch.watch({"b": 30.0}, now=10.0)
    assert [(o.site, o.timeout) for o in watch.due(20.0, 3)] == [("b", 30.0)]
    assert "a" not in watch.heard
    # a check missed by a stalled loop is not lost: each overdue period fails once
    assert [o.site for o in watch.due(50.0, 3)] == ["b", "b", "b"]


def test_the_evaluator_takes_a_silent_site_down_at_the_timeout_dated_at_the_first_check() -> None:
    ev = Evaluator(down_after=3, up_after=2)
    ev.start("a", 0.0)
    ev.observe(Observation("a", 0.0, True))
    watch = HeartbeatWatch()
    watch.watch({"a": 90.0}, now=0.0)
    transitions = []
    for t in range(0, 121):
        for overdue in watch.due(float(t), ev.down_after):
            change = ev.observe(Observation(overdue.site, float(t), False, error="silent"))
            if change is not None:
                transitions.append((t, change))
    [(confirmed_at, down)] = transitions
    assert down.state is State.DOWN
    assert confirmed_at == 90  # the timeout
    assert down.since == 30.0  # the first overdue heartbeat
