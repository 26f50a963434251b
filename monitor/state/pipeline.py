"""The pipeline: observation -> state -> what is recorded (ledger) and shown (live snapshot).

Every probe hands its observations here. The evaluator decides the observed state, the
maintenance overlay turns it into the state that is recorded, and each confirmed change goes
to the recorder (the ledger's queue) and to the live snapshot that the HTTP thread reads. The
pipeline measures itself through a `PipelineMeter`; what those measurements become (Prometheus
series) is the exposition's business, and what the recorder does with a change is the
ledger's: data flows one way, and nothing here knows SQLite or Prometheus.

A shard (`--shard i/N`) also follows its "foreign parents": the parents of its sites that
another shard watches. Their observations go to the evaluator, so that a child's state is
what one daemon would say, but no change of theirs goes further: their own shard records and
shows them. That filter is here, where changes leave for the recorder and the snapshot; the
probes poll them like any other site and know nothing of shards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Protocol

from monitor.core.model import DeviceBoot, Observation, SiteRetired, State, Transition
from monitor.state.boots import BootBook
from monitor.state.evaluator import Evaluator
from monitor.state.live import LiveState
from monitor.state.overlay import MaintenanceOverlay
from monitor.state.windows import Schedule

log = logging.getLogger(__name__)


class PipelineMeter(Protocol):
    """What the pipeline measures of itself."""

    def polled(self, obs: Observation) -> None:
        """One observation came in (a poll, a pushed message or a silence)."""

    def transition(self, state: State) -> None:
        """A confirmed change of observed state."""

    def queued(self, pending: int) -> None:
        """Changes waiting to be recorded."""


class Recorder(Protocol):
    """Where recorded changes go: the ledger's queue."""

    def record(self, entry: Transition | SiteRetired | DeviceBoot) -> None: ...

    @property
    def pending(self) -> int: ...


class Pipeline:
    """Observation -> state -> ledger + live snapshot + self-metrics.

    The evaluator decides the observed state; the maintenance overlay turns it into the state
    that is recorded. Public entry points for probes and for the rest of the daemon:

    - `observe(obs)`: one observation (every probe).
    - `blind(site_ids, at, reason, code)` / `sight_restored(site_ids, at)`: a probe lost or
      regained its means of seeing (an MQTT broker): the sites are unknown from `at` (with
      reason code `code`), observations are ignored until sight is restored, then decide
      afresh.
    - `advance(now)`: apply the starts and ends of maintenance windows up to `now`, each dated
      exactly (the daemon calls it every second; `observe` calls it too).
    - `set_schedule(schedule, now)`: new maintenance windows (reload, `maintenance add`).
    - `follow_foreign(site_ids, at)`: the foreign parents to follow (start and reload).
    """

    def __init__(
        self,
        evaluator: Evaluator,
        recorder: Recorder,
        live: LiveState,
        meter: PipelineMeter,
        schedule: Schedule | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.recorder = recorder
        self.live = live
        self.meter = meter
        self.schedule = schedule or Schedule((), ())
        self.overlay = MaintenanceOverlay()
        self.boots = BootBook()
        self._advanced_to: float | None = None
        self._next_boundary = 0.0
        self.confirm_next: set[str] = set()  # sites whose next answered poll a trap asked for
        self.foreign: frozenset[str] = frozenset()  # followed for the evaluator's sake only

    def start(
        self, site_ids: list[str], at: float, carried: Mapping[str, State] | None = None
    ) -> None:
        """Begin watching sites; `carried`: their states when the previous run stopped."""
        if self._advanced_to is None:
            self._advanced_to = at
            self._next_boundary = self.schedule.next_boundary(at)
        carried = carried or {}
        for site_id in site_ids:
            first = self.evaluator.start(site_id, at, carried.get(site_id))
            self._record(self.overlay.start(first, self.schedule.covering(site_id, at)))

    def follow_foreign(self, site_ids: Iterable[str], at: float) -> None:
        """Follow these sites of other shards (and no longer those followed before and not
        named): each starts unknown, as at a start of the daemon, and a site that leaves
        the set is forgotten, with nothing recorded either way. Call it after `retire` and
        before `start` of a reload, so that a site moving between this shard's own and its
        foreign parents starts afresh in its new part."""
        wanted = list(dict.fromkeys(site_ids))
        for site_id in self.foreign.difference(wanted):
            self.evaluator.forget(site_id)
        for site_id in wanted:
            if site_id not in self.foreign:
                self.evaluator.start(site_id, at)
        self.foreign = frozenset(wanted)

    def retire(self, site_ids: list[str], at: float) -> None:
        for site_id in site_ids:
            self.evaluator.forget(site_id)
            self.overlay.forget(site_id)
            self.boots.forget(site_id)
            self.recorder.record(SiteRetired(site_id, at))

    def observe(self, obs: Observation) -> None:
        if self.confirm_next and obs.site in self.confirm_next:
            self.confirm_next.discard(obs.site)
            if obs.ok:
                obs = replace(obs, confirmed=True)
        self.meter.polled(obs)
        foreign = obs.site in self.foreign  # the evaluator's only; its children's changes go on
        if not foreign:
            self.live.apply_observation(obs)
        self.advance(obs.time)
        for transition in self.evaluator.step(obs):
            self._observed(transition)
        if foreign:
            return
        self._cause(obs.site)
        boot = self.boots.seen(obs)
        if boot is not None:
            self.recorder.record(boot)

    def _cause(self, site_id: str) -> None:
        """Show a new cause of an unchanged state (a second rule fails, a down site now refuses
        instead of timing out): the snapshot and /metrics follow, the ledger keeps the cause
        its interval began with."""
        health = self.evaluator.sites.get(site_id)
        view = self.live.views.get(site_id)
        if health is None or view is None:
            return
        if health.codes == view.codes and health.reason == view.reason:
            return
        shown = self.overlay.refresh(site_id, health.state, health.reason, health.codes)
        if shown and view.state is health.state:
            self.live.apply_cause(site_id, health.reason, health.codes)

    def blind(self, site_ids: list[str], at: float, reason: str, code: str = "broker_lost") -> None:
        self.advance(at)
        for site_id in site_ids:
            for transition in self.evaluator.blind(site_id, at, reason, code):
                self._observed(transition)
            self.live.forget_values(site_id)

    def sight_restored(self, site_ids: list[str], at: float) -> None:
        self.advance(at)
        for site_id in site_ids:
            self.evaluator.restore(site_id)

    def advance(self, now: float) -> None:
        if self._advanced_to is None or now <= self._advanced_to:
            return
        if now >= self._next_boundary:
            for when, window in self.schedule.boundaries(self._advanced_to, now):
                for site_id in self.schedule.held_by(window):
                    held = self.schedule.covering(site_id, when)
                    self._record(self.overlay.hold(site_id, held, when))
            self._next_boundary = self.schedule.next_boundary(now)
        self._advanced_to = now

    def set_schedule(self, schedule: Schedule, now: float) -> None:
        self.advance(now)
        self.schedule = schedule
        for site_id in self.overlay.sites():
            self._record(self.overlay.hold(site_id, schedule.covering(site_id, now), now))
        self._next_boundary = schedule.next_boundary(now)

    def _observed(self, transition: Transition) -> None:
        if transition.site in self.foreign:  # its own shard records and shows it
            return
        self.meter.transition(transition.state)
        log.info(
            "site=%s state=%s previous=%s reason=%s",
            transition.site,
            transition.state.value,
            transition.previous.value,
            transition.reason or "-",
            extra={
                "site": transition.site,
                "state": transition.state.value,
                "previous": transition.previous.value,
                "since": transition.since,
            },
        )
        self._record(self.overlay.observed(transition))

    def event(self, obs: Observation) -> None:
        """An observation that is not a poll (a trap): state only, no poll metrics."""
        self.advance(obs.time)
        for transition in self.evaluator.step(obs):
            self._observed(transition)
        self._cause(obs.site)

    def is_suspect(self, site_id: str) -> bool:
        """The site's last poll failed: it is polled from the scheduler's pool for the dead."""
        health = self.evaluator.sites.get(site_id)
        return health is not None and health.run_ok is False

    def _record(self, transition: Transition | None) -> None:
        if transition is None:
            return
        self.recorder.record(transition)
        self.live.apply_transition(transition)
        self.meter.queued(self.recorder.pending)
