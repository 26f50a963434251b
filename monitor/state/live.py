"""Live state in memory: what the collector and /healthz read from the HTTP thread.

The event loop replaces one frozen `SiteView` per site on each observation; the set of keys
never changes while the daemon runs (a reload swaps the whole `LiveState`), so the HTTP thread
can iterate without locks and never sees a half-built record.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from monitor.core.model import Commune, Observation, Owner, Sample, Site, State, Transition


@dataclass(frozen=True, slots=True)
class SiteView:
    state: State = State.UNKNOWN
    since: float | None = None
    reason: str = ""
    codes: tuple[str, ...] = ()  # the reason's bounded codes (monitor/core/reasons.py)
    last_poll: float | None = None
    last_ok: bool | None = None
    last_duration: float | None = None
    device_uptime: float | None = None
    # The values of the last observation (rtt_seconds, battery_volts...), replaced whole by the
    # next poll, failed or not: a value the last poll could not measure is absent, not stale
    # (a battery voltage from an hour ago would be read as today's). Pushed
    # telemetry (MQTT) is merged instead: a report may carry only some of its fields; a
    # device gone offline or silent, or one the monitor cannot see (its broker lost), shows
    # none.
    values: Mapping[str, float | str] = field(default_factory=dict)
    samples: tuple[Sample, ...] = ()  # labelled values (table rows) of the last poll


@dataclass(frozen=True, slots=True)
class Inventory:
    """What the collector and the JSON API need besides the sites: commune names, coordinates
    and areas (the map and the coverage share), owner names. Swapped whole on a reload."""

    communes: dict[str, Commune] = field(default_factory=dict)
    owners: dict[str, Owner] = field(default_factory=dict)


@dataclass(slots=True)
class MonitorHealth:
    """Liveness of the daemon's own parts, written by the loop, read by /healthz."""

    started: float = field(default_factory=time.time)
    loop_tick: float = field(default_factory=time.monotonic)
    ledger_commit: float = field(default_factory=time.monotonic)
    # when the running configuration was loaded (the start or the last good reload), and why
    # the last reload was refused, if it was: the daemon is fine, its configuration is old
    config_loaded: float = field(default_factory=time.time)
    reload_refused: str | None = None
    # why the ledger's last commit failed (a full or read-only disk), None once one succeeds
    ledger_trouble: str | None = None


class LiveState:
    def __init__(
        self,
        sites: dict[str, Site],
        communes: dict[str, Commune] | None = None,
        owners: dict[str, Owner] | None = None,
    ) -> None:
        self.inventory = Inventory(communes or {}, owners or {})
        self._table: tuple[dict[str, Site], dict[str, SiteView]] = (
            sites,
            {site_id: SiteView() for site_id in sites},
        )
        self.health = MonitorHealth()
        # named values rendered as districtmon_site_<name>, with their help (from the
        # telemetry profiles); others stay in observations only
        self.value_help: dict[str, str] = {}
        # the configuration's timezone (IANA name; None: the machine's), for the local times
        # the JSON API gives beside Unix seconds
        self.timezone: str | None = None

    @property
    def sites(self) -> dict[str, Site]:
        return self._table[0]

    @property
    def views(self) -> dict[str, SiteView]:
        return self._table[1]

    def replace_sites(
        self,
        sites: dict[str, Site],
        communes: dict[str, Commune] | None = None,
        owners: dict[str, Owner] | None = None,
    ) -> None:
        """Swap in a new inventory in one assignment; kept sites keep their views."""
        if communes is not None or owners is not None:
            old_inventory = self.inventory
            self.inventory = Inventory(
                old_inventory.communes if communes is None else communes,
                old_inventory.owners if owners is None else owners,
            )
        old = self.views
        self._table = (sites, {site_id: old.get(site_id, SiteView()) for site_id in sites})

    def apply_observation(self, obs: Observation) -> None:
        views = self.views
        old = views.get(obs.site)
        if old is None:
            return
        uptime = obs.values.get("uptime_seconds")
        measured = obs.values  # a failed poll carries only what it measured (ICMP loss 1)
        if obs.probe == "mqtt" and obs.ok:
            # a report may carry some fields only: the others stand as last reported; but
            # a device gone offline or silent says nothing now, as a failed poll does not
            values = {**old.values, **measured} if measured else old.values
        else:
            values = measured
        # built directly, not with dataclasses.replace: this runs for every pushed message
        views[obs.site] = SiteView(
            old.state,
            old.since,
            old.reason,
            old.codes,
            last_poll=obs.time,
            last_ok=obs.ok,
            last_duration=obs.duration,
            device_uptime=float(uptime) if isinstance(uptime, int | float) else old.device_uptime,
            values=values,
            samples=obs.samples,
        )

    def forget_values(self, site: str) -> None:
        """What the device last reported is no longer known to be current: the monitor lost
        sight of it (its broker). Its next report brings them back."""
        view = self.views.get(site)
        if view is not None and (view.values or view.samples):
            self.views[site] = replace(view, values={}, samples=())

    def apply_transition(self, t: Transition) -> None:
        views = self.views
        old = views.get(t.site)
        if old is None:
            return
        views[t.site] = replace(old, state=t.state, since=t.since, reason=t.reason, codes=t.codes)

    def apply_cause(self, site: str, reason: str, codes: tuple[str, ...]) -> None:
        """A new cause of the same state (a second health rule fails): no transition."""
        views = self.views
        old = views.get(site)
        if old is not None:
            views[site] = replace(old, reason=reason, codes=codes)

    def items(self) -> list[tuple[Site, SiteView]]:
        """A consistent copy for one scrape: the table is read once, each view is immutable."""
        sites, views = self._table
        return [(site, views[site_id]) for site_id, site in sites.items()]

    def snapshot(self) -> tuple[dict[str, Site], dict[str, SiteView]]:
        """The site table and its views as one pair; a reload replaces the pair, never edits
        it, so the identity of the sites dict tells a cache that the inventory changed. The
        views are in the order of the sites (both are made from the one table, and a view is
        only ever replaced), so `list(views.values())` lines up with the sites."""
        return self._table

    def counts(self) -> dict[State, int]:
        counts = dict.fromkeys(State, 0)
        for view in list(self.views.values()):
            counts[view.state] += 1
        return counts
