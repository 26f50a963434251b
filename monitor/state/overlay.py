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

MAINTENANCE_CODES = ("maintenance",)


@dataclass(slots=True)
class _Site:
    observed: State
    observed_reason: str
    observed_codes: tuple[str, ...]
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
                first.state, first.reason, first.codes, None, first.state, first.since
            )
            return first
        self._sites[first.site] = _Site(
            first.state, first.reason, first.codes, window, State.MAINTENANCE, first.since
        )
        return Transition(
            first.site,
            State.MAINTENANCE,
            first.since,
            State.UNKNOWN,
            _reason(window),
            MAINTENANCE_CODES,
        )

    def forget(self, site: str) -> None:
        self._sites.pop(site, None)

    def observed(self, t: Transition) -> Transition | None:
        """An observed change; what to record, if anything."""
        entry = self._sites.get(t.site)
        if entry is None:
            return None
        entry.observed, entry.observed_reason, entry.observed_codes = t.state, t.reason, t.codes
        if entry.window is not None:
            return None
        return self._move(t.site, entry, t.state, t.since, t.reason, t.codes)

    def refresh(self, site: str, state: State, reason: str, codes: tuple[str, ...]) -> bool:
        """The observed state's cause changed without a change of state (a second health rule
        fails too): keep it for the window's end; True if the recorded state is the observed
        one, so the live snapshot should show the new cause."""
        entry = self._sites.get(site)
        if entry is None or entry.observed is not state:
            return False
        entry.observed_reason, entry.observed_codes = reason, codes
        return entry.window is None

    def hold(self, site: str, window: Window | None, at: float) -> Transition | None:
        """The planned window holding `site` from `at` (None: none does)."""
        entry = self._sites.get(site)
        if entry is None:
            return None
        was, entry.window = entry.window, window
        if (was is None) == (window is None):
            return None  # still out, or still in (perhaps another window taking over)
        if window is not None:
            return self._move(
                site, entry, State.MAINTENANCE, at, _reason(window), MAINTENANCE_CODES
            )
        return self._move(
            site, entry, entry.observed, at, entry.observed_reason, entry.observed_codes
        )

    def _move(
        self,
        site: str,
        entry: _Site,
        state: State,
        since: float,
        reason: str,
        codes: tuple[str, ...],
    ) -> Transition | None:
        since = max(since, entry.since)
        previous = entry.state
        entry.state, entry.since = state, since
        return Transition(site, state, since, previous, reason, codes)


def _reason(window: Window) -> str:
    return f"maintenance {window.id}" + (f": {window.reason}" if window.reason else "")
