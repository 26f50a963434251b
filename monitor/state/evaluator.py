"""Health evaluator: turns a stream of observations into confirmed state changes, per site.

A single failed poll is not an outage (a lost UDP datagram, a busy agent): a site goes down only
after `down_after` consecutive failures, and a down site comes back only after `up_after`
consecutive successes. The change is dated at the first observation of the run that confirmed
it, so availability is charged from the first failed poll, not from the Nth.

From `unknown` (no data yet, daemon just started, sight lost) one success is enough to say
`up`: the recovery rule exists to stop flapping out of an outage, not to delay the first
answer.

A site whose own polls fail while its parent (the link it depends on) is down or unreachable
is `unreachable`, not down: its time is charged to the parent. The parent's outage is dated at
its first failed poll, but it really began somewhere between its last answer and that poll, and
a child polled a few seconds before its parent sees the same cut first. So the rule is:

- a child whose failures began after the parent's last answer (the last one before the
  parent's outage) is unreachable from its own first failed poll, never down, whichever of
  the two is confirmed first (`knock-on` turns a child already confirmed down);
- a child whose failures began while the parent still answered has an outage of its own: down
  from its first failed poll, unreachable from the parent's first failed poll;
- after a start (a restart of the daemon) nothing is known of the parent's past: the start
  counts as its last answer until it answers, so a child failing since the restart behind a
  parent that has not answered since is unreachable from its first failed poll too;
- when the parent recovers, the child stays unreachable until its own next poll decides (an
  answer starts its recovery, a failure makes it down from that poll).

The parent relation comes from the inventory; the evaluator does no I/O.

A failure whose cause is on the monitor's side (`error_reason` auth, permission or internal:
the agent refused the monitor's SNMPv3 credential, no ICMP socket is allowed, a fault of
ours) says nothing of the site: a run of `down_after` of them makes the site `unknown` (dated
at the first), with a reason that says it is the monitor's problem, never down or
unreachable; its time is not charged. Such failures and the site's own form separate runs.

Every state carries bounded reason codes beside its text (monitor/core/reasons.py): the
failed poll's reason word when down, `behind_parent` when unreachable, the health rules' codes
when degraded, `no_data` or the monitor's own code when unknown.

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
from monitor.core.reasons import MONITOR_CODES, failure_code, is_monitor_fault

BAD = frozenset({State.DOWN, State.UNREACHABLE})
UP_LIKE = frozenset({State.UP, State.DEGRADED})

DegradedRule = Callable[[Observation], str | None]
Change = tuple[State, float, str, tuple[str, ...]]

NO_DATA = "no data yet"
BEHIND = ("behind_parent",)


@dataclass(slots=True)
class SiteHealth:
    """Live state of one site, owned by the evaluator (mutated only in the event loop)."""

    state: State = State.UNKNOWN
    since: float | None = None
    reason: str = ""
    codes: tuple[str, ...] = ()
    run_ok: bool | None = None
    run_ours: bool = False  # the run's failures are the monitor's own (MONITOR_CODES)
    run_length: int = 0
    run_start: float = 0.0
    # consecutive answers alike in health (unhealthy or not); reset by a failure
    answers_degraded: bool | None = None
    answers_length: int = 0
    answers_start: float = 0.0
    bad_since: float | None = None  # start of the current down/unreachable stretch
    # the last answer (or, before any since the start, the start itself), and what it was
    # when the current down/unreachable stretch began: where the outage may really have begun
    answered_at: float = 0.0
    answered_before_bad: float | None = None
    blind: bool = False
    # down or unreachable when the previous run stopped: a failure right after the start
    # continues that outage instead of beginning a new one to confirm (cleared by the first
    # observation, whatever it says)
    carried: State | None = None


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

    def start(self, site: str, at: float, carried: State | None = None) -> Transition:
        """Begin watching a site: it is unknown until observed. `carried` is its state when
        the previous run of the daemon stopped: a site that was down or unreachable then and
        fails its first poll now is still in the same outage, confirmed by that one failure
        (it was confirmed before the stop), not after `down_after` new ones."""
        codes = ("no_data",)
        self.sites[site] = SiteHealth(
            state=State.UNKNOWN,
            since=at,
            reason=NO_DATA,
            codes=codes,
            answered_at=at,
            carried=carried if carried in BAD else None,
        )
        return Transition(site, State.UNKNOWN, at, State.UNKNOWN, NO_DATA, codes)

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
        ours = not obs.ok and is_monitor_fault(obs.error_reason)
        if health.run_ok is obs.ok and health.run_ours is ours:
            health.run_length += 1
        else:
            health.run_ok = obs.ok
            health.run_ours = ours
            health.run_length = 1
            health.run_start = obs.time
        if obs.ok and obs.time > health.answered_at:
            health.answered_at = obs.time
        changes = self._answered(health, obs) if obs.ok else self._failed(health, obs)
        out: list[Transition] = []
        for state, since, reason, codes in changes:
            out.extend(self._apply(obs.site, health, state, since, reason, codes))
        return out

    def blind(
        self, site: str, at: float, reason: str, code: str = "broker_lost"
    ) -> list[Transition]:
        """The probe of `site` can no longer see it (from `at`): unknown until `restore`."""
        health = self.sites.get(site)
        if health is None:
            return []
        health.blind = True
        health.run_ok, health.run_length = None, 0
        if health.state is State.UNKNOWN and health.codes == (code,):
            return []
        return self._apply(site, health, State.UNKNOWN, at, reason, (code,))

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

    def _answered(self, health: SiteHealth, obs: Observation) -> list[Change]:
        health.carried = None  # an answer: whatever was carried is over
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
        codes: tuple[str, ...] = (obs.codes or ("unhealthy",)) if unhealthy else ()
        if obs.confirmed and health.state not in BAD:
            return [] if target is health.state else [(target, obs.time, reason, codes)]
        if health.state in BAD:  # out of an outage: up_after answers of either health
            if health.run_length < self.up_after:
                return []
            return [(target, health.run_start, reason, codes)]
        if health.state in UP_LIKE:
            if target is health.state:
                health.reason, health.codes = reason, codes  # the latest cause, for the snapshot
                return []
            needed = self.down_after if unhealthy else self.up_after
            if health.answers_length < needed:
                return []
            return [(target, health.answers_start, reason, codes)]
        return [(target, health.run_start, reason, codes)]  # unknown: the first answer decides

    def _failed(self, health: SiteHealth, obs: Observation) -> list[Change]:
        carried = self._continues_carried(health, obs.site)
        if health.run_length < self.down_after and not (obs.decisive or obs.confirmed or carried):
            return []
        if health.run_ours:
            return self._monitor_fault(health, obs)
        reason = obs.error or "probe failed"
        codes = obs.codes or (failure_code(obs.error_reason),)
        blocked = self.blocked_since(obs.site)
        behind = _behind(obs.site, self._parents)
        if health.state is State.UNREACHABLE:
            if blocked is None:  # the parent is back and this site still fails: its own fault
                return [(State.DOWN, obs.time, reason, codes)]
            return []
        if health.state is State.DOWN:
            if blocked is not None:  # the parent went down meanwhile
                return [(State.UNREACHABLE, self._unreachable_from(obs.site), behind, BEHIND)]
            health.reason, health.codes = reason, codes
            return []
        start = health.run_start
        if blocked is None:
            return [(State.DOWN, start, reason, codes)]
        answered = self._parent_answered(obs.site)
        if start >= blocked or (answered is not None and start >= answered):
            return [(State.UNREACHABLE, start, behind, BEHIND)]
        return [(State.DOWN, start, reason, codes), (State.UNREACHABLE, blocked, behind, BEHIND)]

    def _monitor_fault(self, health: SiteHealth, obs: Observation) -> list[Change]:
        """A confirmed run of the monitor's own failures: unknown, never charged to the site."""
        code = obs.error_reason or "internal"
        reason = (
            f"monitor's problem, not the site's ({MONITOR_CODES.get(code, code)}): "
            f"{obs.error or code}"
        )
        if health.state is State.UNKNOWN and health.codes == (code,):
            health.reason = reason
            return []
        return [(State.UNKNOWN, health.run_start, reason, (code,))]

    def _continues_carried(self, health: SiteHealth, site: str) -> bool:
        """Whether this failure continues the outage the previous run left (and so confirms
        at once). Down: yes. Unreachable: only while the parent is down again; while the
        parent is still to be polled, wait for it (keeping the carry) rather than show a child
        of a dead gateway as down for the moment in between; once the parent answers, a
        failure of the child is its own and is confirmed like any other."""
        carried, health.carried = health.carried, None
        if carried is None or health.run_ours:
            return False
        if carried is State.DOWN:
            return True
        if self._parent_carried(site):
            health.carried = carried
            return False
        return self.blocked_since(site) is not None

    def _parent_carried(self, site: str) -> bool:
        """Whether the site's parent still carries an outage from the previous run."""
        parent = self._parents.get(site)
        health = self.sites.get(parent) if parent else None
        return health is not None and health.carried is not None

    def _parent_answered(self, site: str) -> float | None:
        """The parent's last answer before its current outage (or the start of watching)."""
        parent = self._parents.get(site)
        health = self.sites.get(parent) if parent else None
        return health.answered_before_bad if health is not None else None

    def _unreachable_from(self, child: str) -> float:
        """Since when a child already down is unreachable, its parent being down now: from its
        own first failure if that came after the parent's last answer, else from the parent's
        first failed poll."""
        health = self.sites[child]
        blocked = self.blocked_since(child)
        assert blocked is not None
        answered = self._parent_answered(child)
        own = health.bad_since
        if own is not None and answered is not None and own >= answered:
            return own
        return blocked

    def _apply(
        self,
        site: str,
        health: SiteHealth,
        state: State,
        since: float,
        reason: str,
        codes: tuple[str, ...],
    ) -> list[Transition]:
        """Record a change (never dated before the current state began) and its knock-on."""
        previous = health.state
        since = max(since, health.since) if health.since is not None else since
        was_bad = previous in BAD
        health.state, health.since, health.reason, health.codes = state, since, reason, codes
        if state in BAD:
            if not was_bad:
                health.bad_since = since
                health.answered_before_bad = health.answered_at
        else:
            health.bad_since = None
            health.answered_before_bad = None
        out = [Transition(site, state, since, previous, reason, codes)]
        if state in BAD and not was_bad:
            out.extend(self._knock_on(site))
        return out

    def _knock_on(self, parent: str) -> list[Transition]:
        """Children already down when their parent goes down: unreachable from then on (from
        their own first failure when it came after the parent's last answer)."""
        out: list[Transition] = []
        for child in self._children.get(parent, ()):
            health = self.sites.get(child)
            if health is None or health.state is not State.DOWN:
                continue
            since = self._unreachable_from(child)
            out.extend(
                self._apply(child, health, State.UNREACHABLE, since, f"behind {parent}", BEHIND)
            )
        return out


def _behind(site: str, parents: Mapping[str, str]) -> str:
    return f"behind {parents.get(site, '?')}"
