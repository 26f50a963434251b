"""Live last wills wait a short grace before they count: a broker that stops sends them all.

mosquitto stopped with SIGTERM (`systemctl restart mosquitto`) publishes every connected
device's last will to the remaining subscribers about a millisecond *before* it closes their
connections, ours included. Taken at once, each will would down its site, and the report would
charge every device with an outage that was the broker's. So a live `offline` is held for
`mqtt.will_grace_seconds` (default 2): if the connection is lost within that time, the will was
the broker's shutdown and is set aside (counted as ignored, reason `broker_shutdown`); the
sites turn `unknown` with all the others. If the connection holds, the will counts, dated when
it arrived: the outage starts at the same instant as before, it is only confirmed later.

Anything else observed for a site whose will is held (a new `online`, telemetry, a silent
heartbeat check) first lets the will through, so that one site's observations stay in order.
A retained `offline` is not held: it is the broker's memory from before this connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from monitor.core.model import Observation
from monitor.probes.mqtt.counts import MqttCounts

SET_ASIDE = "broker_shutdown"


class WillGrace:
    """Between the ingest and the pipeline: `observe` passes observations on, `hold` keeps a
    live will for the grace, `set_aside` drops every held will (the broker went away)."""

    def __init__(
        self, observe: Callable[[Observation], None], counts: MqttCounts, grace: float
    ) -> None:
        self._observe = observe
        self._counts = counts
        self.grace = grace
        self._held: dict[str, tuple[Observation, asyncio.TimerHandle]] = {}

    @property
    def held(self) -> int:
        return len(self._held)

    def observe(self, obs: Observation) -> None:
        self._let_through(obs.site)
        self._observe(obs)

    def hold(self, obs: Observation) -> None:
        """A live will: counted after the grace unless the broker is lost first."""
        if self.grace <= 0:
            self.observe(obs)
            return
        self._let_through(obs.site)  # a second will of the same site: the first one counts
        handle = asyncio.get_running_loop().call_later(self.grace, self._let_through, obs.site)
        self._held[obs.site] = (obs, handle)

    def set_aside(self) -> int:
        """The connection is lost: the held wills were the broker's shutdown, not the sites'
        fault. Returns how many."""
        held, self._held = self._held, {}
        for _obs, handle in held.values():
            handle.cancel()
        self._counts.ignored[SET_ASIDE] += len(held)
        return len(held)

    def _let_through(self, site: str) -> None:
        held = self._held.pop(site, None)
        if held is not None:
            held[1].cancel()
            self._observe(held[0])
