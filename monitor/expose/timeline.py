"""A site's history for the status page, read from the ledger: the spans of each state over
the last day, week or month, the seconds in each, its availability and its outages. It is the
history an office without Prometheus has, and the same ledger the monthly report reads.

Availability is the report's: (up + degraded) over (up + degraded + down); unreachable,
maintenance and unknown time are not counted. An outage is a down span; one that began before
the window is cut at the window's start.
"""

from __future__ import annotations

import time
from pathlib import Path

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
    seconds: dict[str, float] = {}
    outages = []
    for interval in read_window(ledger, site, start, end):
        a = max(interval.start, start)
        b = min(end if interval.end is None else interval.end, end)
        if b <= a:
            continue
        state = interval.state.value
        seconds[state] = seconds.get(state, 0.0) + (b - a)
        spans.append({"state": state, "start": a, "end": b, "reason": interval.reason})
        if state == "down":
            outages.append(
                {
                    "start": a,
                    "start_local": local_time(a, timezone),
                    "seconds": b - a,
                    "ongoing": interval.end is None,
                    "reason": interval.reason,
                }
            )
    available = seconds.get("up", 0.0) + seconds.get("degraded", 0.0)
    counted = available + seconds.get("down", 0.0)
    return {
        "site": site,
        "window": window,
        "start": start,
        "end": end,
        "spans": spans,
        "seconds": seconds,
        "availability": available / counted if counted > 0 else None,
        "outages_total": len(outages),
        "outages": outages[-OUTAGES_SHOWN:][::-1],  # latest first
    }
