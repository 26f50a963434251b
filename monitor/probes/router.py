"""Routes each site to the poller of its probe type.

The scheduler knows nothing of SNMP or ICMP: it asks the router to poll a site, and the router
hands the site to the poller registered for the type of its probe. Sites whose probe is not
polled (pushed telemetry such as MQTT) are left out of the schedule.
"""

from __future__ import annotations

from typing import Protocol

from monitor.core.model import Observation, Site


class Poller(Protocol):
    async def poll(self, site: Site) -> Observation: ...


class ProbeRouter:
    def __init__(self) -> None:
        self._pollers: dict[type, Poller] = {}

    def register(self, probe_type: type, poller: Poller) -> None:
        self._pollers[probe_type] = poller

    def polled(self, site: Site) -> bool:
        return type(site.probe) in self._pollers

    async def poll(self, site: Site) -> Observation:
        return await self._pollers[type(site.probe)].poll(site)
