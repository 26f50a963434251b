"""The simulator's watch on its own event loop.

Every simulated device answers from one event loop: while it is held up (a burst of work at a
scenario step, a slow call, a machine out of CPU) every agent, portal and publisher answers
that much later. A probe that times out then does so because of the simulator, not the
network it plays, and whoever reads a failed whole-stack run must be able to tell. So the loop
is sampled every few tens of milliseconds; a stall longer than `report_seconds` is logged
(rate limited) with its length and the wall time it ended, and counted in the control's
`/stats`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from monitor.core.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)


class StallWatch:
    def __init__(self, every: float = 0.05, report_seconds: float = 0.25) -> None:
        self.every = every
        self.report_seconds = report_seconds
        self.stalls = 0
        self.worst = 0.0
        self._log = RateLimitedLog(log, period=10.0, burst=5)

    def stats(self) -> dict[str, object]:
        return {"stalls": self.stalls, "worst_seconds": round(self.worst, 3)}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.every
            await asyncio.sleep(self.every)
            late = loop.time() - due
            if late > self.report_seconds:
                self.stalls += 1
                self.worst = max(self.worst, late)
                self._log.log(
                    logging.WARNING,
                    "stall",
                    "simulator: the event loop was held up %.2f s (until %.3f): every device "
                    "answered that much late",
                    late,
                    time.time(),
                )
