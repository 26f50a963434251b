"""A site's history for the status page, read from the ledger: the spans of each state over
the last day, week or month, the seconds in each, its availability and its outages. It is the
history an office without Prometheus has, and the same ledger the monthly report reads.

The figures are the report's own (monitor/core/availability.py: `sweep` and `figures`):
availability over the counted time, and an outage a maximal run of down time that unknown
time does not end, cut at the window's start. The list of outages follows the same rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from monitor.core.availability import STATE_CODES, figures, sweep, to_ms
from monitor.core.model import State
from monitor.expose.api import local_time
from monitor.ledger.records import read_window

WINDOWS = {"1d": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
OUTAGES_SHOWN = 50


def site_timeline(
    ledger: Path, site: str, window: str, timezone: str | None, now: float | None = None
) -> dict[str, object]:
    """The timeline of `site` over the last `window` (1d, 7d or 30d)."""
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
    end = time.time() if now is None else now
    start = end - WINDOWS[window]
    spans = []
    coded = []
    outages: list[_Outage] = []
    in_outage = False
    unknown = 0.0  # of the intervals saying so (the time before any record is not drawn)
    for interval in read_window(ledger, site, start, end):
        a = max(interval.start, start)
        b = min(end if interval.end is None else interval.end, end)
        if b <= a:
            continue
        state = interval.state
        spans.append({"state": state.value, "start": a, "end": b, "reason": interval.reason})
        coded.append((STATE_CODES[state], to_ms(a), to_ms(b)))
        if state is State.UNKNOWN:
            unknown += b - a
            continue  # neither begins nor ends an outage
        if state is not State.DOWN:
            in_outage = False
        elif in_outage:  # the same outage, across the monitor's blind time
            outages[-1].seconds += b - a
            outages[-1].ongoing = interval.end is None
        else:
            in_outage = True
            outages.append(_Outage(a, b - a, interval.end is None, interval.reason))
    found = figures(sweep(coded, to_ms(start), to_ms(end)))
    seconds = {
        state: value
        for state, value in (
            ("up", found.up),
            ("degraded", found.degraded),
            ("down", found.down),
            ("unreachable", found.unreachable),
            ("maintenance", found.maintenance),
            ("unknown", unknown),
        )
        if value
    }
    return {
        "site": site,
        "window": window,
        "start": start,
        "end": end,
        "spans": spans,
        "seconds": seconds,
        "availability": found.availability,
        "outages_total": found.outages,
        "outages": [  # latest first
            {
                "start": o.start,
                "start_local": local_time(o.start, timezone),
                "seconds": o.seconds,
                "ongoing": o.ongoing,
                "reason": o.reason,
            }
            for o in outages[-OUTAGES_SHOWN:][::-1]
        ],
    }


@dataclass(slots=True)
class _Outage:
    start: float
    seconds: float  # its down time
    ongoing: bool
    reason: str
