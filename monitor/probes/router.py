"""Routes each site to the poller of its probe type.

The scheduler knows nothing of SNMP or ICMP: it asks the router to poll a site, and the router
hands the site to the poller registered for the type of its probe. Sites whose probe is not
polled (pushed telemetry such as MQTT) are left out of the schedule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from monitor.config.settings import PollSettings
from monitor.core.model import MqttProbe, Observation, Site
from monitor.probes.measure import ProbePoller


class ProbeRouter:
    def __init__(self, pollers: Iterable[ProbePoller[Any]] = ()) -> None:
        self._pollers: dict[type, ProbePoller[Any]] = {}
        for poller in pollers:
            self.register(poller)

    def register(self, poller: ProbePoller[Any]) -> None:
        self._pollers[poller.kind] = poller

    def configure(self, settings: PollSettings) -> None:
        """A reload's `poll:` defaults, for every poller alike."""
        for poller in self._pollers.values():
            poller.configure(settings)

    def polled(self, site: Site) -> bool:
        return type(site.probe) in self._pollers

    async def poll(self, site: Site) -> Observation:
        return await self._pollers[type(site.probe)].poll(site)


def interval_of(site: Site, default: float) -> float:
    """How often a site is polled: its probe's own `interval_seconds`, else the default."""
    probe = site.probe
    own = None if isinstance(probe, MqttProbe) else probe.interval_seconds
    return default if own is None else own
