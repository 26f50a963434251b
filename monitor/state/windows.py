"""Which sites planned maintenance windows hold, and when those windows begin and end.

The windows themselves are configuration (monitor/config/maintenance.py); this is the daemon's
view of them against its inventory, asked by the pipeline at every observation and by the
maintenance clock every second, so the matching is done once per inventory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.config.maintenance import Target, Window


class Schedule:
    """Windows matched against an inventory: which sites a window holds, and when windows
    begin and end."""

    def __init__(self, windows: Sequence[Window], sites: Iterable[Target]) -> None:
        self.windows = tuple(windows)
        self._held: dict[str, list[str]] = {w.id + "\0" + w.source: [] for w in self.windows}
        self._by_site: dict[str, list[Window]] = {}
        for site in sites:
            for window in self.windows:
                if window.matches(site):
                    self._held[_key(window)].append(site.id)
                    self._by_site.setdefault(site.id, []).append(window)

    def held_by(self, window: Window) -> list[str]:
        return self._held.get(_key(window), [])

    def covering(self, site: str, at: float) -> Window | None:
        """A window holding `site` at `at` (the first declared, if several overlap)."""
        for window in self._by_site.get(site, ()):
            if any(s <= at < e for s, e in window.occurrences(at, at + 1.0)):
                return window
        return None

    def next_boundary(self, after: float, horizon: float = 2 * 86400.0) -> float:
        """The first start or end of an occurrence after `after`; `after + horizon` if none
        comes sooner (the caller looks again then)."""
        upto = after + horizon
        best = upto
        for window in self.windows:
            if not self.held_by(window):
                continue
            for s, e in window.occurrences(after, upto):
                for t in (s, e):
                    if after < t < best:
                        best = t
        return best

    def boundaries(self, after: float, upto: float) -> list[tuple[float, Window]]:
        """Starts and ends of occurrences in `(after, upto]`, in time order."""
        found: list[tuple[float, Window]] = []
        for window in self.windows:
            if not self.held_by(window):
                continue
            for s, e in window.occurrences(after, upto + 1.0):
                found.extend((t, window) for t in (s, e) if after < t <= upto)
        found.sort(key=lambda item: item[0])
        return found


def _key(window: Window) -> str:
    return window.id + "\0" + window.source
