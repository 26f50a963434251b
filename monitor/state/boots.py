"""Device boot times, from the uptime a poll reads, for the ledger to keep across restarts.

A device's boot time is the poll's time minus the uptime it answered (sysUpTime). The ledger
keeps the last one of each device, so that after a restart of the monitor the poller can tell
a device that rebooted meanwhile (its boot time moved later) from one that did not
(probes/snmp/counters.py). A boot time is recorded when first seen in a run, when it moves
later by more than the tolerance (a reboot, or an uptime wrap), and otherwise at most once an
hour when it has drifted (a device clock that runs slow would otherwise pile up, restart after
restart, into a reboot that never happened). An estimate that moves earlier is a device clock
running fast, or a simulated one: kept hourly too, never taken for a reboot.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.core.model import BOOT_TOLERANCE_SECONDS, DeviceBoot, Observation

REFRESH_SECONDS = 3600.0
DRIFT_SECONDS = 1.0


class BootBook:
    def __init__(self) -> None:
        self._known: dict[str, tuple[float, float]] = {}  # site -> (boot, when recorded)

    def seed(self, boots: Mapping[str, float], at: float) -> None:
        """The boot times the ledger kept, as recorded at `at` (the start)."""
        self._known = {site: (boot, at) for site, boot in boots.items()}

    def seen(self, obs: Observation) -> DeviceBoot | None:
        """The boot time to record after this observation, if any."""
        if not obs.ok or obs.probe != "snmp":
            return None
        uptime = obs.values.get("uptime_seconds")
        if not isinstance(uptime, float | int):
            return None
        boot = obs.time - uptime
        known = self._known.get(obs.site)
        if known is not None:
            last, recorded = known
            if boot <= last + BOOT_TOLERANCE_SECONDS and (
                abs(boot - last) <= DRIFT_SECONDS or obs.time - recorded < REFRESH_SECONDS
            ):
                return None
        self._known[obs.site] = (boot, obs.time)
        return DeviceBoot(obs.site, boot, obs.time)

    def forget(self, site: str) -> None:
        self._known.pop(site, None)
