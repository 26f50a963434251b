"""The SNMP poller: one GET (and the profile's table walks) per site and interval, turned into
an Observation of named values, counters as totals, reboots, and a degraded reason.

Each poll asks sysUpTime and sysName plus the profile's scalars in one GET, then walks the
profile's tables column by column. A failed GET fails the poll (the agent did not answer); a
walk that fails or runs long after a good GET leaves the poll ok with those tables missing,
and says so. Values the agent lacks or mangles are left out, counted, and logged when the set
of problems of a site changes (not on every poll).

The engine (gufo_snmp or pysnmp, `snmp.engine` in districtmon.yaml) is behind
`monitor.probes.snmp.engine.SnmpEngine`; nothing here depends on which one runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping

from monitor.config.credentials import SnmpCredential
from monitor.config.profiles import (
    AUTO,
    SYS_DESCR,
    SYS_NAME,
    SYS_OBJECT_ID,
    SYS_UPTIME,
    SYSTEM_PROFILE,
    Profile,
    TableSpec,
)
from monitor.config.settings import PollSettings
from monitor.core.model import Observation, Sample, Site, SnmpProbe
from monitor.core.ratelimit import RateLimitedLog
from monitor.probes.health import findings
from monitor.probes.measure import Poll, ProbePoller
from monitor.probes.snmp.counters import CounterKey, DeviceState
from monitor.probes.snmp.decode import (
    MISSING,
    UNAVAILABLE,
    Problems,
    Row,
    decode_table,
    derive,
    is_absent,
    read,
    text_of,
)
from monitor.probes.snmp.detect import Detected, choose, detection_oids
from monitor.probes.snmp.engine import SnmpEngine, SnmpError, SnmpTarget, SnmpValue, WalkResult

log = logging.getLogger(__name__)

#: OIDs per GET: agents answer tooBig past their PDU size; 32 fits the smallest in practice.
MAX_OIDS_PER_GET = 32
#: The walks of one poll may take this many times a request's whole budget (timeout x tries).
WALK_BUDGET_FACTOR = 3


class SnmpPoller(ProbePoller[SnmpProbe]):
    """Polls SNMP sites through one engine; keeps each device's uptime and counters."""

    def __init__(
        self,
        engine: SnmpEngine,
        settings: PollSettings,
        credentials: Mapping[str, SnmpCredential],
        profiles: Mapping[str, Profile] | None = None,
    ) -> None:
        super().__init__(SnmpProbe, "snmp", settings)
        self.engine = engine
        self._devices: dict[str, DeviceState] = {}
        self._boots: dict[str, float] = {}  # boot times kept from an earlier run, until used
        self._problems: dict[str, str] = {}
        self._problem_log = RateLimitedLog(log, period=60.0, burst=20)
        self.use(credentials, profiles)

    def use(
        self, credentials: Mapping[str, SnmpCredential], profiles: Mapping[str, Profile] | None
    ) -> None:
        """Take new credentials and profiles (a reload); polls in flight finish with the old
        ones."""
        self._credentials = dict(credentials)
        self._profiles = dict(profiles or {})
        self._detection_oids = detection_oids(self._profiles)
        self._detected: dict[str, Detected] = {}  # profile: auto, by site; again on a reload
        self._again: set[str] = set()  # auto sites to detect again (they rebooted)

    def known_boots(self, boots: Mapping[str, float]) -> None:
        """Each device's boot time as the ledger kept it (UTC seconds), given at start: the
        first poll of a device compares its own with it, so that a reboot while the monitor
        was stopped is counted, and its counters are taken as restarted."""
        self._boots = dict(boots)

    def retain(self, site_ids: Iterable[str]) -> None:
        """Forget the devices of sites that left the inventory."""
        keep = set(site_ids)
        for site_id in [s for s in self._devices if s not in keep]:
            del self._devices[site_id]
            self._problems.pop(site_id, None)
        for site_id in [s for s in self._detected if s not in keep]:
            del self._detected[site_id]

    def profile_of(self, site: Site) -> Profile:
        """The profile a site names; for `auto`, the one detected (system until then)."""
        name = site.probe.profile if isinstance(site.probe, SnmpProbe) else None
        if name == AUTO:
            detected = self._detected.get(site.id)
            return detected.profile if detected is not None else SYSTEM_PROFILE
        return self._profiles.get(name, SYSTEM_PROFILE) if name else SYSTEM_PROFILE

    def problems_of(self, site_id: str) -> str:
        """What the last poll of a site could not read, in words ("" when nothing)."""
        return self._problems.get(site_id, "")

    def detected(self, site_id: str) -> Detected | None:
        """What `profile: auto` chose for a site at its last detection."""
        return self._detected.get(site_id)

    async def detect(self, site: Site, target: SnmpTarget | None = None) -> Detected:
        """Ask the device what it is (sysObjectID, sysDescr, the profiles' `has` OIDs) and
        choose its profile; raises SnmpError when it does not answer."""
        answer = await self._get(target or self.target_of(site), self._detection_oids)
        raw_id = answer.get(SYS_OBJECT_ID)
        object_id = text_of(raw_id).removeprefix(".") if raw_id is not None else ""
        raw_descr = answer.get(SYS_DESCR)
        descr = text_of(raw_descr) if raw_descr is not None else ""
        found = choose(self._profiles, object_id, descr, answer.keys())
        before = self._detected.get(site.id)
        self._detected[site.id] = found
        if before is None or before.profile.id != found.profile.id:
            log.info("site=%s profile auto: %s (%s)", site.id, found.profile.id, found.why or "-")
        return found

    def target_of(self, site: Site, timeout: float | None = None) -> SnmpTarget:
        probe = site.probe
        if not isinstance(probe, SnmpProbe):
            raise TypeError(f"site {site.id}: not an SNMP probe")  # the router sends only these
        if timeout is None:
            timeout = probe.timeout_seconds or self.settings.timeout_seconds
        return SnmpTarget(
            probe.address,
            probe.port,
            self._credentials[probe.credential],
            timeout,
            probe.retries if probe.retries is not None else self.settings.retries,
        )

    async def measure(self, site: Site, probe: SnmpProbe, poll: Poll) -> Observation:
        problems = Problems()
        target = self.target_of(site, poll.timeout)
        if probe.profile == AUTO and (site.id not in self._detected or site.id in self._again):
            self._again.discard(site.id)
            await self.detect(site, target)
        profile = self.profile_of(site)
        answer = await self._get(target, profile.get_oids)
        walks = await self._walk(target, profile.tables, problems)
        return self._observation(site, profile, poll, answer, walks, problems)

    async def _get(self, target: SnmpTarget, oids: tuple[str, ...]) -> dict[str, SnmpValue]:
        if len(oids) <= MAX_OIDS_PER_GET:
            return await self.engine.get(target, oids)
        answer: dict[str, SnmpValue] = {}
        for start in range(0, len(oids), MAX_OIDS_PER_GET):
            answer.update(await self.engine.get(target, oids[start : start + MAX_OIDS_PER_GET]))
        return answer

    async def _walk(
        self, target: SnmpTarget, tables: tuple[TableSpec, ...], problems: Problems
    ) -> dict[str, dict[str, WalkResult]]:
        """Every column of every table; a failure or the time budget stops the walks, keeping
        what was read (a slow or dying agent must not hold a poll slot for long). A fallback
        column is walked only when its primary left rows without a value. Columns never
        reached are absent from the result: the decoder says they were not walked, rather
        than that the device lacks them."""
        walks: dict[str, dict[str, WalkResult]] = {}
        if not tables:
            return walks
        budget = target.timeout * (target.retries + 1) * WALK_BUDGET_FACTOR
        started = time.monotonic()
        try:
            async with asyncio.timeout(budget):
                for table in tables:
                    walked = walks.setdefault(table.name, {})
                    for oid in table.walked:
                        await self._walk_column(target, table, oid, walked, problems)
                    for oid in _fallbacks_needed(table, walked):
                        await self._walk_column(target, table, oid, walked, problems)
        except TimeoutError:
            spent = time.monotonic() - started
            problems.tables.append(
                f"table walks stopped after {spent:.1f} s, their budget (timeout x tries x "
                f"{WALK_BUDGET_FACTOR}): tables incomplete"
            )
        except SnmpError as exc:
            problems.tables.append(f"table walk failed ({exc.reason}): tables incomplete")
        return walks

    async def _walk_column(
        self,
        target: SnmpTarget,
        table: TableSpec,
        oid: str,
        walked: dict[str, WalkResult],
        problems: Problems,
    ) -> None:
        result = await self.engine.walk(target, oid, table.max_rows)
        walked[oid] = result
        said = f"table {table.name}: {result.problem}"
        if result.problem and said not in problems.tables:  # once, not once per column
            problems.tables.append(said)

    def _observation(
        self,
        site: Site,
        profile: Profile,
        poll: Poll,
        answer: dict[str, SnmpValue],
        walks: dict[str, dict[str, WalkResult]],
        problems: Problems,
    ) -> Observation:
        probe_profile = site.probe.profile if isinstance(site.probe, SnmpProbe) else None
        device = self._devices.get(site.id)
        if device is None:
            device = self._devices[site.id] = DeviceState(known_boot=self._boots.pop(site.id, None))
        values = poll.values
        rebooted = False
        uptime = answer.get(SYS_UPTIME)
        if isinstance(uptime, int):
            first = device.uptime_ticks is None
            rebooted = device.observe_uptime(uptime, poll.started, poll.wall)
            values["uptime_seconds"] = uptime / 100.0
            values["reboots_total"] = float(device.reboots)
            if rebooted:
                log.warning(
                    "site=%s rebooted%s: uptime now %.0f s",
                    site.id,
                    " while the monitor was stopped" if first else "",
                    uptime / 100.0,
                )
                # new firmware, or another device: detect it again (on a first poll, the
                # detection was just made)
                if site.id in self._detected and not first:
                    self._again.add(site.id)
        name = answer.get(SYS_NAME)
        if name is not None:
            values["sys_name"] = text_of(name)
        seen: set[CounterKey] = set()
        for spec in profile.scalars:
            if spec.derive is not None:
                continue
            value, problem = read(spec, [answer.get(source.oid) for source in spec.sources])
            if problem == MISSING:
                problems.missing.append(spec.name)
            elif problem == UNAVAILABLE:
                problems.unavailable.append(spec.name)
            elif problem is not None or value is None:
                problems.malformed.append(problem or spec.name)
            elif spec.is_counter and isinstance(value, int):
                key: CounterKey = (spec.name, ())
                seen.add(key)
                values[spec.name] = device.counter(key, value, _bits(spec.kind), rebooted)
            else:
                values[spec.name] = float(value) if isinstance(value, int) else value
        for spec in profile.scalars:  # derived after every value read, in profile order
            if spec.derive is not None and (derived := derive(spec.derive, values)) is not None:
                values[spec.name] = derived
        samples: list[Sample] = []
        tables: dict[str, list[Row]] = {}
        hidden = profile.hidden
        for table in profile.tables:
            rows = decode_table(table, walks.get(table.name, {}), problems, bool(problems.tables))
            kinds = {column.name: column.kind for column in table.columns}
            for row in rows:
                for counter, raw_count in row.counters.items():
                    key = (counter, row.labels)
                    seen.add(key)
                    row.values[counter] = device.counter(
                        key, raw_count, _bits(kinds[counter]), rebooted
                    )
                samples.extend(
                    Sample(n, row.labels, v) for n, v in row.values.items() if n not in hidden
                )
            tables[table.name] = rows
        if not problems.tables:
            device.keep_counters(seen)
        if profile is not SYSTEM_PROFILE or probe_profile == AUTO:
            chosen = "auto" if probe_profile == AUTO else "named"
            values["device_profile"] = profile.id
            values["device_vendor"] = profile.vendor
            info = (("chosen", chosen), ("profile", profile.id), ("vendor", profile.vendor))
            samples.append(Sample("profile_info", info, 1.0))
        if profile is not SYSTEM_PROFILE:
            values["snmp_values_missing"] = float(problems.values_missing)
            values["snmp_values_malformed"] = float(len(problems.malformed))
        self._report(site.id, problems)
        found = findings(profile.health, values, tables)
        for name in hidden:  # read to derive or test others, not to be exported
            values.pop(name, None)
        return poll.answered(findings=found, samples=samples)

    def _report(self, site_id: str, problems: Problems) -> None:
        """Log a site's value problems when they change, not on every poll."""
        described = problems.describe()
        if described == self._problems.get(site_id, ""):
            return
        self._problems[site_id] = described
        if described:
            # A value a model simply lacks is routine in a mixed fleet; a wrong type or a
            # cut table is worth an operator's look.
            level = logging.WARNING if problems.malformed or problems.tables else logging.INFO
            self._problem_log.log(level, site_id, "site=%s SNMP values: %s", site_id, described)
        else:
            self._problem_log.log(
                logging.INFO, site_id, "site=%s SNMP values complete again", site_id
            )


def _fallbacks_needed(table: TableSpec, walked: Mapping[str, WalkResult]) -> list[str]:
    """The fallback columns to walk: those standing in for a column that left a row (of any
    walked column) without a usable value."""
    if not table.fallback_columns:
        return []
    prefixes = {oid: len(oid) + 1 for oid in walked}
    indexes = {
        row_oid[prefixes[oid] :] for oid, result in walked.items() for row_oid, _ in result.rows
    }
    needed: dict[str, None] = {}
    for column in table.columns:
        if not column.fallbacks:
            continue
        primary = walked.get(column.oid)
        answered = (
            {
                row_oid[len(column.oid) + 1 :]
                for row_oid, raw in primary.rows
                if not (column.absent and is_absent(raw, column.absent))
            }
            if primary is not None
            else set()
        )
        if indexes - answered:
            for source in column.fallbacks:
                if source.oid not in walked:
                    needed.setdefault(source.oid, None)
    return list(needed)


def _bits(kind: str) -> int:
    return 32 if kind == "counter32" else 64
