"""Health evaluator: turns a stream of observations into confirmed state changes, per site.

A single failed poll is not an outage (a lost UDP datagram, a busy agent): a site goes down only
after `down_after` consecutive failures, and a down site comes back only after `up_after`
consecutive answers. The change is dated at the first observation of the run that confirmed
it, so availability is charged from the first failed poll, not from the Nth.

An answer is healthy (up) or degraded (an ok observation with a `degraded_reason`: on battery,
WAN down). Moving between up and degraded also needs `up_after` consecutive observations of
the new kind, dated at the first of them: one reading of a flickering mains sensor is not a
state change, for the same reason one answered poll does not end an outage. Out of `down`,
the `up_after` answers may be healthy or degraded; the state they lead to is that of the last.

From `unknown` (no data yet, daemon just started) one answer is enough to say up or degraded:
the confirmation rules exist to stop flapping, not to delay the first answer. An observation
marked `confirmed` (a trap: the device's own word) is applied at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.model import Observation, State, Transition


@dataclass(slots=True)
class SiteHealth:
    """Live state of one site, owned by the evaluator (mutated only in the event loop).

    `run_*` is the run of observations of the same kind (failed, healthy, degraded);
    `answers_*` the run of answers of either kind, which is what ends an outage."""

    state: State = State.UNKNOWN
    since: float | None = None
    reason: str = ""
    run_kind: State | None = None
    run_length: int = 0
    run_start: float = 0.0
    answers: int = 0
    answers_start: float = 0.0
    last_observation: Observation | None = None

    @property
    def run_ok(self) -> bool | None:
        """Whether the current run is of answers (None before any observation)."""
        return None if self.run_kind is None else self.run_kind is not State.DOWN


def kind_of(obs: Observation) -> State:
    """What one observation says on its own: down (failed), degraded or up."""
    if not obs.ok:
        return State.DOWN
    return State.DEGRADED if obs.degraded_reason else State.UP


class Evaluator:
    def __init__(self, down_after: int = 3, up_after: int = 2) -> None:
        if down_after < 1 or up_after < 1:
            raise ValueError("down_after and up_after must be at least 1")
        self.down_after = down_after
        self.up_after = up_after
        self.sites: dict[str, SiteHealth] = {}

    def start(self, site: str, at: float) -> Transition:
        """Begin watching a site: it is unknown until observed."""
        self.sites[site] = SiteHealth(state=State.UNKNOWN, since=at)
        return Transition(site, State.UNKNOWN, at, State.UNKNOWN, "no data yet")

    def forget(self, site: str) -> None:
        self.sites.pop(site, None)

    def observe(self, obs: Observation) -> Transition | None:
        """Feed one observation; return the transition it confirms, if any.

        An observation of a site not (or no longer) watched is dropped: a poll still in
        flight when a reload removed its site must not bring the site back."""
        health = self.sites.get(obs.site)
        if health is None:
            return None
        health.last_observation = obs
        kind = kind_of(obs)
        if health.run_kind is kind:
            health.run_length += 1
        else:
            health.run_kind = kind
            health.run_length = 1
            health.run_start = obs.time
        if obs.ok:
            if health.answers == 0:
                health.answers_start = obs.time
            health.answers += 1
        else:
            health.answers = 0

        target, since = self._target(health, kind, obs)
        reason = _reason(kind, obs)
        if target is None or target is health.state:
            if kind is health.state:
                health.reason = reason  # still down/degraded: keep the latest cause
            return None
        previous = health.state
        health.state = target
        health.since = since
        health.reason = reason
        return Transition(obs.site, target, since, previous, reason)

    def _target(
        self, health: SiteHealth, kind: State, obs: Observation
    ) -> tuple[State | None, float]:
        if obs.confirmed:
            health.run_length = max(health.run_length, self.up_after, self.down_after)
            return kind, obs.time
        if kind is State.DOWN:
            if health.run_length >= self.down_after:
                return State.DOWN, health.run_start
            return None, 0.0
        if health.state is State.DOWN:
            if health.answers >= self.up_after:
                return kind, health.answers_start
            return None, 0.0
        if health.state in (State.UP, State.DEGRADED):
            if health.run_length >= self.up_after:
                return kind, health.run_start
            return None, 0.0
        return kind, obs.time  # unknown (or a state decided elsewhere): the first answer says


def _reason(kind: State, obs: Observation) -> str:
    if kind is State.DOWN:
        return obs.error or "probe failed"
    if kind is State.DEGRADED:
        return obs.degraded_reason or "degraded"
    return ""
