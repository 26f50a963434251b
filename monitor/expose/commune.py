"""A commune's page for the status page: what its chairman asks of the district office. Now:
its sites by kind and state, those that are wrong, and which of its residential areas a
working loudspeaker cluster reaches. Over the last day, week or month, from the ledger: the
availability and outages of each kind of site in the commune, as the monthly report counts
them (monitor/core/availability.py), so that the page and the report never disagree.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from monitor.core.availability import Figures, Tally, group_figures, to_ms
from monitor.core.model import Site
from monitor.expose.api import (
    WORST_FIRST,
    WRONG,
    WRONG_SHOWN,
    local_time,
    longest_first,
    site_record,
    state_counts,
)
from monitor.expose.coverage import coverage
from monitor.expose.timeline import WINDOWS
from monitor.ledger.views import read_tallies
from monitor.state.live import LiveState

#: The most sites a commune's page lists one by one, the worst first: a province's commune may
#: hold thousands, and the page must stay light on a phone (bench/status_bench.py).
SITES_SHOWN = 500
#: How old the ledger's figures behind a commune's history may be, in seconds.
HISTORY_MAX_AGE = 60.0


class WindowTallies:
    """Every site's tallies over the last day, week or month, read from the ledger at most once
    a minute per window and shared by every commune's page: a province's month is seconds of
    reading (bench/ledger_bench.py), and each open page asks again at every refresh. Safe
    from the HTTP server's threads: one reads, the others wait for its figures."""

    def __init__(self, ledger: Path, max_age: float = HISTORY_MAX_AGE) -> None:
        self.ledger = ledger
        self.max_age = max_age
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, dict[str, Tally]]] = {}

    def get(self, window: str, now: float) -> tuple[float, dict[str, Tally]] | None:
        """(the end the tallies reach, each site's tally); None while there is no ledger."""
        if not self.ledger.exists():
            return None
        with self._lock:
            kept = self._kept.get(window)
            if kept is not None and abs(now - kept[0]) < self.max_age:
                return kept
            start = now - WINDOWS[window]
            fresh = (now, read_tallies(self.ledger, to_ms(start), to_ms(now)))
            self._kept[window] = fresh
            return fresh


def commune_report(
    live: LiveState,
    commune_id: str,
    tallies: WindowTallies | None,
    window: str,
    now: float | None = None,
) -> dict[str, object] | None:
    """The page of `commune_id`, its history over `window` (1d, 7d or 30d) from `tallies`;
    None when the inventory has no such commune. `history` is None without a ledger."""
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
    commune = live.inventory.communes.get(commune_id)
    if commune is None:
        return None
    now = time.time() if now is None else now
    zone = live.timezone
    mine = [(site, view) for site, view in live.items() if site.commune == commune_id]
    counts = state_counts(mine, lambda site: site.kind)
    wrong = longest_first((s, v) for s, v in mine if v.state.value in WRONG)
    listed = sorted(
        mine, key=lambda pair: (WORST_FIRST.index(pair[1].state.value), pair[0].kind, pair[0].id)
    )[:SITES_SHOWN]
    read = None if tallies is None else tallies.get(window, now)
    history = None
    if read is not None:
        end, found = read
        history = _history(found, [site for site, _ in mine], end - WINDOWS[window], end)
    return {
        "time": now,
        "time_local": local_time(now, zone),
        "id": commune.id,
        "name": commune.name,
        "lat": commune.lat,
        "lon": commune.lon,
        "kinds": counts,
        "coverage": coverage(commune.areas, mine),
        "wrong_total": len(wrong),
        "wrong": [site_record(s, v, live.inventory, zone) for s, v in wrong[:WRONG_SHOWN]],
        "sites_total": len(mine),
        "sites": [
            {
                "id": site.id,
                "name": site.name,
                "kind": site.kind,
                "owner": site.owner,
                "state": view.state.value,
                "since_local": local_time(view.since, zone),
            }
            for site, view in listed
        ],
        "window": window,
        "history": history,
    }


def _history(
    tallies: dict[str, Tally], sites: list[Site], start: float, end: float
) -> dict[str, object]:
    """Each kind's figures and the commune's over `[start, end)`: availability over the time
    counted, outages, down time and the longest outage, summed over the sites as the report
    does (a site the ledger knows nothing of in the window counts nothing)."""
    by_kind: dict[str, list[str]] = {}
    for site in sites:
        by_kind.setdefault(site.kind, []).append(site.id)
    kinds = {
        kind: _figures(group_figures(tallies[s] for s in ids if s in tallies), len(ids))
        for kind, ids in sorted(by_kind.items())
    }
    every = [tallies[site.id] for site in sites if site.id in tallies]
    return {
        "start": start,
        "end": end,
        "kinds": kinds,
        "total": _figures(group_figures(every), len(sites)),
    }


def _figures(found: Figures, sites: int) -> dict[str, object]:
    return {
        "sites": sites,
        "availability": found.availability,
        "outages": found.outages,
        "down_seconds": found.down,
        "longest_outage_seconds": found.longest_outage,
        "mttr_seconds": found.mttr,
    }
