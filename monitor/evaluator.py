"""Health evaluator: turns a stream of observations into confirmed state changes, per site.

A single failed poll is not an outage (a lost UDP datagram, a busy agent): a site goes down only
after `down_after` consecutive failures, and a down site comes back only after `up_after`
consecutive successes. The change is dated at the first observation of the run that confirmed
it, so availability is charged from the first failed poll, not from the Nth.

From `unknown` (no data yet, daemon just started) one success is enough to say `up`: the
recovery rule exists to stop flapping out of an outage, not to delay the first answer.

An answer may carry a `degraded_reason` (loss over a threshold, a slow answer, a certificate
about to expire): the site answers but is unhealthy. The same confirmation applies between
`up` and `degraded`: `down_after` consecutive unhealthy answers to leave `up`, `up_after`
consecutive healthy ones to leave `degraded`, dated at the first answer of the run. Out of
`down`, `up_after` consecutive answers of either kind end the outage, and the latest one says
whether the site is back `up` or `degraded`.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.model import Observation, State, Transition


@dataclass(slots=True)
class SiteHealth:
    """Live state of one site, owned by the evaluator (mutated only in the event loop)."""

    state: State = State.UNKNOWN
    since: float | None = None
    reason: str = ""
    run_ok: bool | None = None
    run_length: int = 0
    run_start: float = 0.0
    # consecutive answers alike in health (degraded or not); reset by a failure
    answers_degraded: bool | None = None
    answers_length: int = 0
    answers_start: float = 0.0
    last_observation: Observation | None = None


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
        if health.run_ok is obs.ok:
            health.run_length += 1
        else:
            health.run_ok = obs.ok
            health.run_length = 1
            health.run_start = obs.time
        degraded = None if not obs.ok else obs.degraded_reason is not None
        if degraded is not None and health.answers_degraded is degraded:
            health.answers_length += 1
        else:
            health.answers_degraded = degraded
            health.answers_length = 1
            health.answers_start = obs.time

        target, reason, since = self._target(health, obs)
        if target is health.state:
            health.reason = reason  # still down: keep the latest cause for the snapshot
            return None
        if target is None:
            return None
        previous = health.state
        health.state = target
        health.since = since
        health.reason = reason
        return Transition(obs.site, target, since, previous, reason)

    def _target(self, health: SiteHealth, obs: Observation) -> tuple[State | None, str, float]:
        """The state this observation confirms (None: not yet), its reason and its date."""
        if not obs.ok:
            if health.run_length >= self.down_after:
                return State.DOWN, obs.error or "probe failed", health.run_start
            return None, "", 0.0
        verdict = State.UP if obs.degraded_reason is None else State.DEGRADED
        reason = obs.degraded_reason or ""
        if health.state is State.DOWN:
            if health.run_length >= self.up_after:
                return verdict, reason, health.run_start
            return None, "", 0.0
        if health.state in (State.UP, State.DEGRADED) and verdict is not health.state:
            needed = self.down_after if verdict is State.DEGRADED else self.up_after
            if health.answers_length >= needed:
                return verdict, reason, health.answers_start
            return None, "", 0.0
        return verdict, reason, health.run_start
