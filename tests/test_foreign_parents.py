"""A shard follows the parents of its sites that another shard watches ("foreign parents"), so
that a child cut off by its parent's outage is `unreachable`, charged to the parent, as one
daemon would say, and not `down`; and it never reports those parents, whose own shard does
(else the sharded job would count them twice).

The reference is the rule as the README's States section writes it, and one pipeline that
watches both sites, as one daemon does: the shard's child must read the same."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from monitor.core.model import (
    DeviceBoot,
    Observation,
    Site,
    SiteRetired,
    SnmpProbe,
    State,
    Transition,
)
from monitor.state.evaluator import Evaluator
from monitor.state.live import LiveState
from monitor.state.pipeline import Pipeline

PARENT, CHILD = "gw-ubnd-thanh-nua", "vc-thanh-nua"
DOWN_AFTER, UP_AFTER = 3, 2
SITES = {
    PARENT: Site(PARENT, "gateway", "Cổng UBND xã", "thanh-nua", "district-it", 21.4, 103.0,
                 SnmpProbe(address="127.3.0.30")),
    CHILD: Site(CHILD, "video_endpoint", "Điểm cầu xã", "thanh-nua", "van-phong-ubnd", 21.4,
                103.0, SnmpProbe(address="127.4.1.30"), parent=PARENT),
}  # fmt: skip

Entry = Transition | SiteRetired | DeviceBoot


@dataclass
class Ledger:
    entries: list[Entry] = field(default_factory=list)

    def record(self, entry: Entry) -> None:
        self.entries.append(entry)

    @property
    def pending(self) -> int:
        return len(self.entries)


@dataclass
class Meter:
    polls: list[str] = field(default_factory=list)
    states: list[State] = field(default_factory=list)

    def polled(self, obs: Observation) -> None:
        self.polls.append(obs.site)

    def transition(self, state: State) -> None:
        self.states.append(state)

    def queued(self, pending: int) -> None:
        pass


@dataclass
class Watcher:
    """A pipeline as a daemon wires it, with what it records and shows."""

    pipeline: Pipeline
    ledger: Ledger
    live: LiveState
    meter: Meter

    def child(self) -> list[tuple[State, float, tuple[str, ...]]]:
        return [
            (entry.state, entry.since, entry.codes)
            for entry in self.ledger.entries
            if isinstance(entry, Transition) and entry.site == CHILD
        ]


def one_daemon() -> Watcher:
    return _watcher([PARENT, CHILD], foreign=[])


def shard() -> Watcher:
    """The child's shard: the parent is another shard's."""
    return _watcher([CHILD], foreign=[PARENT])


def _watcher(own: list[str], foreign: list[str]) -> Watcher:
    evaluator = Evaluator(DOWN_AFTER, UP_AFTER, parents={s: SITES[s].parent for s in SITES})
    ledger, meter = Ledger(), Meter()
    live = LiveState({site: SITES[site] for site in own})
    pipeline = Pipeline(evaluator, ledger, live, meter)
    pipeline.start(own, 0.0)
    pipeline.follow_foreign(foreign, 0.0)
    return Watcher(pipeline, ledger, live, meter)


def poll(site: str, at: float, ok: bool) -> Observation:
    if ok:  # a gateway's answer carries its uptime: a boot the ledger would keep
        return Observation(site, at, True, 0.05, values={"uptime_seconds": at + 3600.0})
    return Observation(site, at, False, 2.0, error="snmp timeout", error_reason="timeout")


def play(watcher: Watcher, polls: list[tuple[str, float, bool]]) -> None:
    for site, at, ok in sorted(polls, key=lambda p: p[1]):
        watcher.pipeline.observe(poll(site, at, ok))


def rounds(site: str, offset: float, answers: str) -> list[tuple[str, float, bool]]:
    """One poll a minute from `offset`: '+' an answer, '-' a failure."""
    return [(site, offset + 60.0 * i, ch == "+") for i, ch in enumerate(answers)]


# Both answer twice, then the parent's link is cut and neither answers; the child is polled
# 15 s after the parent in each round, or 15 s before it.
CUT_AFTER_PARENT = [*rounds(PARENT, 10.0, "++----"), *rounds(CHILD, 25.0, "++----")]
CUT_BEFORE_PARENT = [*rounds(PARENT, 40.0, "++----"), *rounds(CHILD, 25.0, "++----")]


@pytest.mark.parametrize(
    ("polls", "expected"),
    [
        # failures began after the parent's last answer: unreachable from the child's first
        (CUT_AFTER_PARENT, [(State.UP, 25.0, ()), (State.UNREACHABLE, 145.0, ("behind_parent",))]),
        # the child's third failure comes before the parent's: down a poll before its parent,
        # then unreachable from that same first failure (a down interval of no length)
        (
            CUT_BEFORE_PARENT,
            [
                (State.UP, 25.0, ()),
                (State.DOWN, 145.0, ("timeout",)),
                (State.UNREACHABLE, 145.0, ("behind_parent",)),
            ],
        ),
    ],
    ids=["parent-polled-first", "child-polled-first"],
)
def test_a_child_cut_off_behind_a_foreign_parent_is_unreachable_as_one_daemon_says(
    polls: list[tuple[str, float, bool]], expected: list[tuple[State, float, tuple[str, ...]]]
) -> None:
    whole, part = one_daemon(), shard()
    play(whole, polls)
    play(part, polls)
    # the README's rule, then one daemon, then the shard
    assert whole.child()[1:] == expected
    assert part.child() == whole.child()
    assert part.live.views[CHILD].state is State.UNREACHABLE
    assert part.live.views[CHILD].codes == ("behind_parent",)


def test_a_shard_not_following_the_parent_would_charge_the_child_as_down() -> None:
    """The cut above tells the two apart: what the shard says is not what it says anyway."""
    blind = _watcher([CHILD], foreign=[])
    play(blind, CUT_AFTER_PARENT)
    assert blind.child()[-1][0] is State.DOWN


def test_a_foreign_parent_is_never_recorded_shown_or_counted_as_a_change() -> None:
    """Its shard records and shows it: here too, it would be counted twice in the job."""
    part = shard()
    play(part, [*CUT_AFTER_PARENT, *rounds(PARENT, 370.0, "+++"), *rounds(CHILD, 385.0, "+++")])
    assert part.pipeline.evaluator.sites[PARENT].state is State.UP  # it was followed
    assert {entry.site for entry in part.ledger.entries} == {CHILD}  # no transition, no boot
    assert set(part.live.views) == {CHILD}
    # the child went up, unreachable and up again; the parent's changes are not counted
    assert part.meter.states == [State.UP, State.UNREACHABLE, State.UP]
    assert [state for state, _, _ in part.child()[1:]] == part.meter.states
    assert part.meter.polls.count(PARENT) == 9  # its polls are the monitor's own work


def test_the_followed_parents_follow_the_set_given_and_leave_no_record() -> None:
    part = shard()
    evaluator = part.pipeline.evaluator
    part.pipeline.follow_foreign([], 100.0)  # a reload: the child's parent is no longer foreign
    assert PARENT not in evaluator.sites and part.pipeline.foreign == frozenset()
    play(part, rounds(PARENT, 110.0, "---"))  # a poll in flight at the reload: dropped
    assert PARENT not in evaluator.sites
    part.pipeline.follow_foreign([PARENT], 200.0)
    assert evaluator.sites[PARENT].state is State.UNKNOWN
    assert evaluator.sites[PARENT].since == 200.0
    assert {entry.site for entry in part.ledger.entries} == {CHILD}
