"""Health evaluator: turns a stream of observations into confirmed state changes, per site.

A single failed poll is not an outage (a lost UDP datagram, a busy agent): a site goes down only
after `down_after` consecutive failures, and a down site comes back only after `up_after`
consecutive successes. The change is dated at the first observation of the run that confirmed
it, so availability is charged from the first failed poll, not from the Nth.

From `unknown` (no data yet, daemon just started) one success is enough to say `up`: the
recovery rule exists to stop flapping out of an outage, not to delay the first answer.

Two shortcuts exist for pushed telemetry. A *decisive* failure (a device's last will) takes
the site down at once, dated like any other: at the first failure of the run it ends. And
when the monitor itself goes blind (the broker is lost), `blind` turns a site `unknown` at
that instant: the time after it is nobody's downtime, and the first fresh observation
decides again as from a start.
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

    def blind(self, site: str, at: float, reason: str) -> Transition | None:
        """The monitor cannot see `site` from `at` on: it becomes unknown, and the run of
        observations before the blindness no longer counts towards the next decision."""
        health = self.sites.get(site)
        if health is None:
            return None
        health.run_ok = None
        health.run_length = 0
        if health.state is State.UNKNOWN:
            return None
        previous = health.state
        health.state = State.UNKNOWN
        health.since = at
        health.reason = reason
        return Transition(site, State.UNKNOWN, at, previous, reason)

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

        target, reason = self._target(health, obs)
        if target is health.state:
            health.reason = reason  # still down: keep the latest cause for the snapshot
            return None
        if target is None:
            return None
        previous = health.state
        health.state = target
        health.since = health.run_start
        health.reason = reason
        return Transition(obs.site, target, health.run_start, previous, reason)

    def _target(self, health: SiteHealth, obs: Observation) -> tuple[State | None, str]:
        if obs.ok:
            needed = self.up_after if health.state is State.DOWN else 1
            return (State.UP, "") if health.run_length >= needed else (None, "")
        if obs.decisive or health.run_length >= self.down_after:
            return State.DOWN, obs.error or "probe failed"
        return None, ""
