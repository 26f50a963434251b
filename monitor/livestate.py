"""Live state in memory: what the collector and /healthz read from the HTTP thread.

The event loop replaces one frozen `SiteView` per site on each observation; the set of keys
never changes while the daemon runs (a reload swaps the whole `LiveState`), so the HTTP thread
can iterate without locks and never sees a half-built record.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from monitor.model import Observation, Sample, Site, State, Transition


@dataclass(frozen=True, slots=True)
class SiteView:
    state: State = State.UNKNOWN
    since: float | None = None
    reason: str = ""
    last_poll: float | None = None
    last_ok: bool | None = None
    last_duration: float | None = None
    device_uptime: float | None = None
    # The device's values at the last poll, none after a failed one: a stale battery voltage
    # from an hour ago would be read as today's.
    values: Mapping[str, float | str] = field(default_factory=dict)
    samples: tuple[Sample, ...] = ()


@dataclass(slots=True)
class MonitorHealth:
    """Liveness of the daemon's own parts, written by the loop, read by /healthz."""

    started: float = field(default_factory=time.time)
    loop_tick: float = field(default_factory=time.monotonic)
    ledger_commit: float = field(default_factory=time.monotonic)


class LiveState:
    def __init__(self, sites: dict[str, Site]) -> None:
        self._table: tuple[dict[str, Site], dict[str, SiteView]] = (
            sites,
            {site_id: SiteView() for site_id in sites},
        )
        self.health = MonitorHealth()

    @property
    def sites(self) -> dict[str, Site]:
        return self._table[0]

    @property
    def views(self) -> dict[str, SiteView]:
        return self._table[1]

    def replace_sites(self, sites: dict[str, Site]) -> None:
        """Swap in a new inventory in one assignment; kept sites keep their views."""
        old = self.views
        self._table = (sites, {site_id: old.get(site_id, SiteView()) for site_id in sites})

    def apply_observation(self, obs: Observation) -> None:
        views = self.views
        old = views.get(obs.site)
        if old is None:
            return
        uptime = obs.values.get("uptime_seconds")
        views[obs.site] = replace(
            old,
            last_poll=obs.time,
            last_ok=obs.ok,
            last_duration=obs.duration,
            device_uptime=float(uptime) if isinstance(uptime, int | float) else old.device_uptime,
            values=obs.values if obs.ok else {},
            samples=obs.samples if obs.ok else (),
        )

    def apply_transition(self, t: Transition) -> None:
        views = self.views
        old = views.get(t.site)
        if old is None:
            return
        views[t.site] = replace(old, state=t.state, since=t.since, reason=t.reason)

    def items(self) -> list[tuple[Site, SiteView]]:
        """A consistent copy for one scrape: the table is read once, each view is immutable."""
        sites, views = self._table
        return [(site, views[site_id]) for site_id, site in sites.items()]

    def counts(self) -> dict[State, int]:
        counts = dict.fromkeys(State, 0)
        for view in list(self.views.values()):
            counts[view.state] += 1
        return counts
