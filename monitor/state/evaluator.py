"""Health evaluator: turns a stream of observations into confirmed state changes, per site.

A single failed poll is not an outage (a lost UDP datagram, a busy agent): a site goes down only
after `down_after` consecutive failures, and a down site comes back only after `up_after`
consecutive successes. The change is dated at the first observation of the run that confirmed
it, so availability is charged from the first failed poll, not from the Nth.

From `unknown` (no data yet, daemon just started, sight lost) one success is enough to say
`up`: the recovery rule exists to stop flapping out of an outage, not to delay the first
answer.

A site whose own polls fail while its parent (the link it depends on) is down or unreachable
is `unreachable`, not down: its time is charged to the parent. Precisely, a failing child is
unreachable for exactly the time its parent is down or unreachable; when the parent goes down
after the child, the child's outage turns unreachable from the parent's first failed poll
(`knock-on`); when the parent recovers, the child stays unreachable until its own next poll
decides (an answer starts its recovery, a failure makes it down from that poll). The parent
relation comes from the inventory; the evaluator does no I/O.

`blind` is for a probe that lost its means of seeing (an MQTT broker gone): the sites are
`unknown` from that moment, whatever they were, and observations are ignored until `restore`;
after that the next observations decide afresh, as after a start.

An answer may be unhealthy: the probe says so with `degraded_reason` (loss over a threshold, a
slow answer, a certificate about to expire) or a health rule (`degraded_by`) finds it in the
values (on battery). The same confirmation applies between `up` and `degraded`: `down_after`
consecutive unhealthy answers to leave `up`, `up_after` consecutive healthy ones to leave
`degraded`, dated at the first answer of the run. Out of `down`, `up_after` consecutive answers
of either kind end the outage, and the latest one says whether the site is back `up` or
`degraded`. Both count as available.

A *decisive* failure (a device's last will: it says itself that it is gone) takes the site
down at once, dated like any other: at the first failure of the run it ends. An observation
marked `confirmed` (a trap: the device's own word, e.g. "on battery", "mains restored") is
applied at once too, dated when it came.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from monitor.core.model import Observation, State, Transition

BAD = frozenset({State.DOWN, State.UNREACHABLE})
UP_LIKE = frozenset({State.UP, State.DEGRADED})

DegradedRule = Callable[[Observation], str | None]


@dataclass(slots=True)
class SiteHealth:
    """Live state of one site, owned by the evaluator (mutated only in the event loop)."""

    state: State = State.UNKNOWN
    since: float | None = None
    reason: str = ""
    run_ok: bool | None = None
    run_length: int = 0
    run_start: float = 0.0
    # consecutive answers alike in health (unhealthy or not); reset by a failure
    answers_degraded: bool | None = None
    answers_length: int = 0
    answers_start: float = 0.0
    bad_since: float | None = None  # start of the current down/unreachable stretch
    blind: bool = False


class Evaluator:
    def __init__(
        self,
        down_after: int = 3,
        up_after: int = 2,
        parents: Mapping[str, str | None] | None = None,
        degraded_by: DegradedRule | None = None,
    ) -> None:
        if down_after < 1 or up_after < 1:
            raise ValueError("down_after and up_after must be at least 1")
        self.down_after = down_after
        self.up_after = up_after
        self.degraded_by = degraded_by
        self.sites: dict[str, SiteHealth] = {}
        self._parents: dict[str, str] = {}
        self._children: dict[str, list[str]] = {}
        self.set_parents(parents or {})

    def set_parents(self, parents: Mapping[str, str | None]) -> None:
        """Take the inventory's parent relation (on start and on every reload)."""
        self._parents = {site: parent for site, parent in parents.items() if parent}
        children: dict[str, list[str]] = defaultdict(list)
        for site, parent in self._parents.items():
            children[parent].append(site)
        self._children = dict(children)

    def start(self, site: str, at: float) -> Transition:
        """Begin watching a site: it is unknown until observed."""
        self.sites[site] = SiteHealth(state=State.UNKNOWN, since=at)
        return Transition(site, State.UNKNOWN, at, State.UNKNOWN, "no data yet")

    def forget(self, site: str) -> None:
        self.sites.pop(site, None)

    def observe(self, obs: Observation) -> Transition | None:
        """The observed site's own latest change, if any. Changes this causes to other sites
        (a parent's outage turning its children unreachable) come only from `step`."""
        own = [t for t in self.step(obs) if t.site == obs.site]
        return own[-1] if own else None

    def step(self, obs: Observation) -> list[Transition]:
        """Feed one observation; return every change it confirms, in order: the site's own,
        then knock-on changes of its children.

        An observation of a site not (or no longer) watched, or blind, is dropped: a poll still
        in flight when a reload removed its site must not bring the site back."""
        health = self.sites.get(obs.site)
        if health is None or health.blind:
            return []
        if health.run_ok is obs.ok:
            health.run_length += 1
        else:
            health.run_ok = obs.ok
            health.run_length = 1
            health.run_start = obs.time
        changes = self._answered(health, obs) if obs.ok else self._failed(health, obs)
        out: list[Transition] = []
        for state, since, reason in changes:
            out.extend(self._apply(obs.site, health, state, since, reason))
        return out

    def blind(self, site: str, at: float, reason: str) -> list[Transition]:
        """The probe of `site` can no longer see it (from `at`): unknown until `restore`."""
        health = self.sites.get(site)
        if health is None:
            return []
        health.blind = True
        health.run_ok, health.run_length = None, 0
        if health.state is State.UNKNOWN:
            return []
        return self._apply(site, health, State.UNKNOWN, at, reason)

    def restore(self, site: str) -> None:
        """Sight is back: the next observations decide (the site stays unknown till then)."""
        health = self.sites.get(site)
        if health is not None:
            health.blind = False
            health.run_ok, health.run_length = None, 0

    def blocked_since(self, site: str) -> float | None:
        """Since when the site's parent has been down or unreachable; None if it is not."""
        parent = self._parents.get(site)
        health = self.sites.get(parent) if parent else None
        if health is None or health.state not in BAD:
            return None
        return health.bad_since

    # --- decisions --------------------------------------------------------------------------

    def _answered(self, health: SiteHealth, obs: Observation) -> list[tuple[State, float, str]]:
        problem = obs.degraded_reason or (self.degraded_by(obs) if self.degraded_by else None)
        unhealthy = problem is not None
        if health.answers_degraded is unhealthy and health.run_length > 1:
            health.answers_length += 1
        else:
            health.answers_degraded = unhealthy
            health.answers_length = 1
            health.answers_start = obs.time
        target = State.DEGRADED if unhealthy else State.UP
        reason = problem or ""
        if obs.confirmed and health.state not in BAD:
            return [] if target is health.state else [(target, obs.time, reason)]
        if health.state in BAD:  # out of an outage: up_after answers of either health
            if health.run_length < self.up_after:
                return []
            return [(target, health.run_start, reason)]
        if health.state in UP_LIKE:
            if target is health.state:
                health.reason = reason  # keep the latest cause for the snapshot
                return []
            needed = self.down_after if unhealthy else self.up_after
            if health.answers_length < needed:
                return []
            return [(target, health.answers_start, reason)]
        return [(target, health.run_start, reason)]  # unknown: the first answer decides

    def _failed(self, health: SiteHealth, obs: Observation) -> list[tuple[State, float, str]]:
        if health.run_length < self.down_after and not (obs.decisive or obs.confirmed):
            return []
        reason = obs.error or "probe failed"
        blocked = self.blocked_since(obs.site)
        if health.state is State.UNREACHABLE:
            if blocked is None:  # the parent is back and this site still fails: its own fault
                return [(State.DOWN, obs.time, reason)]
            health.reason = reason
            return []
        if health.state is State.DOWN:
            if blocked is not None:  # the parent went down meanwhile
                return [(State.UNREACHABLE, blocked, _behind(obs.site, self._parents))]
            health.reason = reason
            return []
        start = health.run_start
        if blocked is None:
            return [(State.DOWN, start, reason)]
        if start >= blocked:
            return [(State.UNREACHABLE, start, _behind(obs.site, self._parents))]
        return [
            (State.DOWN, start, reason),
            (State.UNREACHABLE, blocked, _behind(obs.site, self._parents)),
        ]

    def _apply(
        self, site: str, health: SiteHealth, state: State, since: float, reason: str
    ) -> list[Transition]:
        """Record a change (never dated before the current state began) and its knock-on."""
        previous = health.state
        since = max(since, health.since) if health.since is not None else since
        was_bad = previous in BAD
        health.state, health.since, health.reason = state, since, reason
        if state in BAD:
            if not was_bad:
                health.bad_since = since
        else:
            health.bad_since = None
        out = [Transition(site, state, since, previous, reason)]
        if state in BAD and not was_bad:
            out.extend(self._knock_on(site, since))
        return out

    def _knock_on(self, parent: str, bad_since: float) -> list[Transition]:
        """Children already down when their parent goes down: unreachable from then on."""
        out: list[Transition] = []
        for child in self._children.get(parent, ()):
            health = self.sites.get(child)
            if health is None or health.state is not State.DOWN:
                continue
            out.extend(self._apply(child, health, State.UNREACHABLE, bad_since, f"behind {parent}"))
        return out


def _behind(site: str, parents: Mapping[str, str]) -> str:
    return f"behind {parents.get(site, '?')}"
