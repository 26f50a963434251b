"""The state that is recorded: `maintenance` while a planned window holds a site, the observed
state otherwise.

The evaluator keeps deciding the observed state during a window (so that the end of the window
returns the site to what it really is, dated at the end); only what reaches the ledger, the
live snapshot and /metrics is overlaid. Recorded changes are never dated before the recorded
state began, so an outage confirmed after a window ended, but whose first failed poll fell
inside it, starts at the window's end: maintenance time is never counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.config.maintenance import Window
from monitor.core.model import State, Transition


@dataclass(slots=True)
class _Site:
    observed: State
    observed_reason: str
    window: Window | None
    state: State
    since: float


class MaintenanceOverlay:
    def __init__(self) -> None:
        self._sites: dict[str, _Site] = {}

    def sites(self) -> list[str]:
        return list(self._sites)

    def start(self, first: Transition, window: Window | None) -> Transition:
        """A site begins to be watched: its first recorded state."""
        if window is None:
            self._sites[first.site] = _Site(
                first.state, first.reason, None, first.state, first.since
            )
            return first
        self._sites[first.site] = _Site(
            first.state, first.reason, window, State.MAINTENANCE, first.since
        )
        return Transition(
            first.site, State.MAINTENANCE, first.since, State.UNKNOWN, _reason(window)
        )

    def forget(self, site: str) -> None:
        self._sites.pop(site, None)

    def observed(self, t: Transition) -> Transition | None:
        """An observed change; what to record, if anything."""
        entry = self._sites.get(t.site)
        if entry is None:
            return None
        entry.observed, entry.observed_reason = t.state, t.reason
        if entry.window is not None:
            return None
        return self._move(t.site, entry, t.state, t.since, t.reason)

    def hold(self, site: str, window: Window | None, at: float) -> Transition | None:
        """The planned window holding `site` from `at` (None: none does)."""
        entry = self._sites.get(site)
        if entry is None:
            return None
        was, entry.window = entry.window, window
        if (was is None) == (window is None):
            return None  # still out, or still in (perhaps another window taking over)
        if window is not None:
            return self._move(site, entry, State.MAINTENANCE, at, _reason(window))
        return self._move(site, entry, entry.observed, at, entry.observed_reason)

    def _move(
        self, site: str, entry: _Site, state: State, since: float, reason: str
    ) -> Transition | None:
        since = max(since, entry.since)
        previous = entry.state
        entry.state, entry.since = state, since
        return Transition(site, state, since, previous, reason)


def _reason(window: Window) -> str:
    return f"maintenance {window.id}" + (f": {window.reason}" if window.reason else "")
