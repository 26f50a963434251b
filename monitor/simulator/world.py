"""The physics of the simulated district: power, batteries, links and faults, in simulated time.

The world knows nothing of SNMP or MQTT. It holds one `SiteSim` per site, applies actions
(from a scenario or the live control), runs its own timers (a battery running out, a flapping
link) and tells its listeners what happened: an `Event` for each fault a device would report
(the trap sender turns them into SNMP notifications) and a change callback whenever a site's
reachability or telemetry changes (the MQTT publishers follow it).

Every site of the inventory is a device here, whatever its probe: SNMP agents, MQTT
publishers, and the sites that are only pinged, connected to, fetched or asked (services.py,
nameserver.py and icmpcut.py serve those). Reachability follows the inventory's parents: a
site answers only if it is alive (powered, not failed), its uplink is up, and its parent is
reachable. A gateway parent has one port per child; the port goes down when the child's link
is cut or the child dies, and the gateway reports it (linkDown/linkUp) like a real router.

The world writes the ground truth (truth.py) as it changes: each action applied, before what it
causes; each change of whether a site answers and why not; each change of a health fact. A
site that does not answer says why in one word: `failed` (dead), `unpowered` (battery
exhausted), `link` (its own uplink cut), or `behind:<id>`, <id> the nearest ancestor that is
out for a reason of its own (a loudspeaker behind a commune station behind a cut fibre is
`behind:` the cut gateway).

Continuous quantities (battery charge, counters) are computed from the time on demand; the
timers only mark the moments something changes state.
"""

from __future__ import annotations

import enum
import hashlib
import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from monitor.config.load import Config
from monitor.core.model import (
    DnsProbe,
    HttpProbe,
    IcmpProbe,
    MqttProbe,
    Probe,
    Site,
    SnmpProbe,
    TcpProbe,
)
from monitor.simulator.actions import Action, entry_gateways
from monitor.simulator.clock import DAY, UTC_OFFSET, Clock
from monitor.simulator.interfaces import (
    Interface,
    gateway_port,
    note_change,
    own_interfaces,
)
from monitor.simulator.truth import Truth

# Autonomy on battery at full charge, by kind (minutes); a power-cut action may override it.
DEFAULT_BATTERY_MINUTES = {"bts": 120.0, "gateway": 240.0, "radio_station": 60.0}
LOUDSPEAKER_BATTERY_MINUTES = 480.0
OTHER_BATTERY_MINUTES = 60.0
LOW_BATTERY_MINUTES = 10  # UPS-MIB upsConfigLowBattTime: "low" below this many minutes left
RECHARGE_SECONDS = 8 * 3600.0  # empty to full on mains


class Event(enum.StrEnum):
    """What a device reports at the moment it happens (see traps.py for the OIDs)."""

    COLD_START = "cold-start"
    ON_BATTERY = "on-battery"
    BATTERY_LOW = "battery-low"
    POWER_RESTORED = "power-restored"
    LINK_DOWN = "link-down"
    LINK_UP = "link-up"
    AMPLIFIER_FAULT = "amplifier-fault"
    AMPLIFIER_RESTORED = "amplifier-restored"
    TRANSMITTER_FAULT = "transmitter-fault"
    TRANSMITTER_RESTORED = "transmitter-restored"
    DOOR_OPENED = "door-opened"
    DOOR_CLOSED = "door-closed"


@dataclass(frozen=True, slots=True)
class Happening:
    """An event raised by `site` at sim time `at`; `if_index` names the port of a link event."""

    site: str
    event: Event
    at: float
    if_index: int | None = None


def seed_of(site_id: str) -> int:
    """A stable number per site: the same district looks the same on every run."""
    return int.from_bytes(hashlib.blake2b(site_id.encode(), digest_size=8).digest(), "big")


def local_hour(now: float) -> float:
    return ((now + UTC_OFFSET) % DAY) / 3600.0


@dataclass(slots=True, eq=False)
class SiteSim:
    """One simulated device. Mutated only by the World (in the event loop)."""

    site: Site
    probe: SnmpProbe | None  # None: the device has no SNMP agent
    probe_type: str  # what the daemon does with it: snmp, mqtt, icmp, tcp, http, dns
    community: bytes
    seed: int
    boot_at: float
    battery_minutes: float
    location: str = ""
    contact: str = ""
    interfaces: list[Interface] = field(default_factory=list)
    parent: SiteSim | None = None
    children: list[SiteSim] = field(default_factory=list)
    ports: dict[str, Interface] = field(default_factory=dict)  # child id -> port (gateways)
    depth: int = 0
    # power
    mains: bool = True
    powered: bool = True
    charge_ref: float = 1.0
    charge_at: float = 0.0
    on_battery_since: float | None = None
    battery_low_since: float | None = None
    power_epoch: int = 0
    line_bads: int = 0
    # faults
    failed: bool = False
    link_up: bool = True
    flap_epoch: int = 0
    slow_delay: float = 0.0
    amplifier_ok: bool = True
    transmitter_ok: bool = True
    door_open: bool = False
    # derived by World._refresh
    alive: bool = True
    reachable: bool = True
    why: str = ""  # why it does not answer (README "Ground truth"); "" while it does
    cause: SiteSim | None = None  # the site out for a reason of its own that silences this one

    @property
    def id(self) -> str:
        return self.site.id

    def charge(self, now: float) -> float:
        """State of charge 0..1 of the backup battery."""
        elapsed = max(0.0, now - self.charge_at)
        if self.mains:
            return min(1.0, self.charge_ref + elapsed / RECHARGE_SECONDS)
        return max(0.0, self.charge_ref - elapsed / (self.battery_minutes * 60))

    def minutes_remaining(self, now: float) -> float:
        return self.charge(now) * self.battery_minutes

    def uptime(self, now: float) -> float:
        return max(0.0, now - self.boot_at)

    def port_up(self) -> bool:
        """The state of this site's link as its parent's port sees it."""
        return self.link_up and self.alive

    def playing(self, now: float) -> bool:
        """Commune loudspeakers play the morning and evening programmes (local time)."""
        hour = local_hour(now)
        return 5.5 <= hour < 6.5 or 17.0 <= hour < 18.0


EventListener = Callable[[Happening], None]
ChangeListener = Callable[[SiteSim], None]
BrokerListener = Callable[[bool], None]


class World:
    def __init__(self, config: Config, clock: Clock, truth: Truth | None = None) -> None:
        self.config = config
        self.clock = clock
        self.truth = truth if truth is not None else Truth()
        self.broker_up = True
        self.sites: dict[str, SiteSim] = {}
        self.event_listeners: list[EventListener] = []
        self.change_listeners: list[ChangeListener] = []
        self.broker_listeners: list[BrokerListener] = []
        self._timers: list[tuple[float, int, Callable[[float], None]]] = []
        self._sequence = itertools.count()
        self.timer_added: Callable[[], None] = lambda: None
        now = clock.now()
        for site in config.sites.values():
            snmp: SnmpProbe | None = None
            community = ""  # no SNMP agent: MQTT, or only pinged, connected to or fetched
            if isinstance(site.probe, SnmpProbe):
                snmp = site.probe
                secret = config.credentials[site.probe.credential].community
                community = secret.reveal() if secret is not None else ""  # v3: no community
            seed = seed_of(site.id)
            uptime = 3 * DAY + (seed % 10_000) / 10_000 * 117 * DAY  # 3..120 days
            sim = SiteSim(
                site=site,
                probe=snmp,
                probe_type=probe_type(site.probe),
                community=community.encode(),
                seed=seed,
                boot_at=now - uptime,
                battery_minutes=default_battery_minutes(site.kind),
                location=f"{site.name}, {config.communes[site.commune].name} "
                f"({site.lat:.4f}, {site.lon:.4f})",
                contact=config.owners[site.owner].name,
                charge_at=now,
            )
            self.sites[site.id] = sim
        for sim in self.sites.values():
            parent_id = sim.site.parent
            if parent_id is not None:
                sim.parent = self.sites[parent_id]
                sim.parent.children.append(sim)
        for sim in self.sites.values():
            sim.depth = _depth(sim)
            sim.interfaces = own_interfaces(sim.site.kind, sim.seed)
        for sim in self.sites.values():
            if sim.site.kind == "gateway":
                for child in sim.children:
                    port = gateway_port(
                        sim.seed, child.id, child.site.kind, child.seed, len(sim.interfaces) + 1
                    )
                    sim.interfaces.append(port)
                    sim.ports[child.id] = port

    # --- the ground truth ---------------------------------------------------------------------

    def begin(self, **start: object) -> None:
        """Write the start record (with `start`'s extra fields), then what every site serves,
        its health facts and the broker path, as they are now."""
        now = self.clock.now()
        sites = {
            sim.id: {"kind": sim.site.kind, "parent": sim.site.parent, "probe": sim.probe_type}
            for sim in self.sites.values()
        }
        self.truth.record(now, "start", speed=self.clock.speed, sites=sites, **start)
        for sim in self.sites.values():
            self._record_serves(sim, now)
        for sim in self.sites.values():
            for name in conditions_of(sim.site.kind):
                self.truth.record(now, "condition", site=sim.id, name=name, value=_fact(sim, name))
        self.truth.record(now, "broker", up=self.broker_up)

    def _record_serves(self, sim: SiteSim, now: float) -> None:
        self.truth.record(now, "serves", site=sim.id, answering=sim.reachable, why=sim.why)

    def _record_fact(self, sim: SiteSim, name: str, now: float) -> None:
        self.truth.record(now, "condition", site=sim.id, name=name, value=_fact(sim, name))

    # --- timers -----------------------------------------------------------------------------

    def at(self, when: float, callback: Callable[[float], None]) -> None:
        """Run `callback(now)` at sim time `when` (or as soon as possible if past)."""
        heapq.heappush(self._timers, (when, next(self._sequence), callback))
        self.timer_added()

    def next_due(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def run_due(self, now: float) -> int:
        """Run every timer due at `now`, in time order; timers they add run too if due."""
        ran = 0
        while self._timers and self._timers[0][0] <= now:
            when, _, callback = heapq.heappop(self._timers)
            callback(when)
            ran += 1
        return ran

    # --- actions ----------------------------------------------------------------------------

    def apply(self, action: Action, now: float | None = None) -> None:
        """Apply a validated action at sim time `now` (default: the clock's now)."""
        at = self.clock.now() if now is None else now
        handler = getattr(self, "_do_" + action.name.replace("-", "_"))
        params = {
            key: list(value) if isinstance(value, tuple) else value
            for key in ("battery_minutes", "kinds", "period", "duration", "delay")
            if (value := getattr(action, key)) not in (None, ())
        }
        self.truth.record(at, "action", action=action.name, target=action.target, params=params)
        handler(action, at)

    def _site(self, action: Action) -> SiteSim:
        assert action.target is not None
        return self.sites[action.target]

    def _do_down(self, action: Action, now: float) -> None:
        sim = self._site(action)
        sim.failed = True
        self._refresh([sim], now)

    def _do_up(self, action: Action, now: float) -> None:
        sim = self._site(action)
        sim.failed = False
        self._refresh([sim], now)

    def _do_link_down(self, action: Action, now: float) -> None:
        sim = self._site(action)
        sim.flap_epoch += 1
        self._set_link(sim, False, now)

    def _do_link_up(self, action: Action, now: float) -> None:
        sim = self._site(action)
        sim.flap_epoch += 1
        self._set_link(sim, True, now)

    def _do_flap(self, action: Action, now: float) -> None:
        sim = self._site(action)
        assert action.period is not None
        sim.flap_epoch += 1
        epoch = sim.flap_epoch
        half = action.period / 2
        end = now + action.duration if action.duration is not None else None

        def toggle(at: float) -> None:
            if sim.flap_epoch != epoch:
                return
            if end is not None and at >= end:
                self._set_link(sim, True, at)
                return
            self._set_link(sim, not sim.link_up, at)
            self.at(at + half, toggle)

        toggle(now)

    def _do_slow(self, action: Action, now: float) -> None:
        self._site(action).slow_delay = action.delay or 0.0

    def _do_amplifier_fault(self, action: Action, now: float) -> None:
        self._set_flag(self._site(action), "amplifier_ok", False, Event.AMPLIFIER_FAULT, now)

    def _do_amplifier_restore(self, action: Action, now: float) -> None:
        self._set_flag(self._site(action), "amplifier_ok", True, Event.AMPLIFIER_RESTORED, now)

    def _do_transmitter_fault(self, action: Action, now: float) -> None:
        self._set_flag(self._site(action), "transmitter_ok", False, Event.TRANSMITTER_FAULT, now)

    def _do_transmitter_restore(self, action: Action, now: float) -> None:
        sim = self._site(action)
        self._set_flag(sim, "transmitter_ok", True, Event.TRANSMITTER_RESTORED, now)

    def _do_door_open(self, action: Action, now: float) -> None:
        self._set_flag(self._site(action), "door_open", True, Event.DOOR_OPENED, now)

    def _do_door_close(self, action: Action, now: float) -> None:
        self._set_flag(self._site(action), "door_open", False, Event.DOOR_CLOSED, now)

    def _do_power_cut(self, action: Action, now: float) -> None:
        for sim in self._in_commune(action.target, action.kinds):
            if action.battery_minutes is not None:
                sim.charge_ref, sim.charge_at = sim.charge(now), now
                sim.battery_minutes = action.battery_minutes
            self._cut_mains(sim, now)

    def _do_power_restore(self, action: Action, now: float) -> None:
        restored = [sim for sim in self._in_commune(action.target, ()) if not sim.mains]
        for sim in restored:
            self._restore_mains(sim, now)
        self._refresh(restored, now)

    def _do_fibre_cut(self, action: Action, now: float) -> None:
        assert action.target is not None
        for site_id in entry_gateways(self.config, action.target):
            sim = self.sites[site_id]
            sim.flap_epoch += 1
            self._set_link(sim, False, now)

    def _do_fibre_restore(self, action: Action, now: float) -> None:
        assert action.target is not None
        for site_id in entry_gateways(self.config, action.target):
            sim = self.sites[site_id]
            sim.flap_epoch += 1
            self._set_link(sim, True, now)

    def _do_broker_outage(self, action: Action, now: float) -> None:
        self._set_broker(False, now)

    def _do_broker_restore(self, action: Action, now: float) -> None:
        self._set_broker(True, now)

    def _do_restore(self, action: Action, now: float) -> None:
        for sim in self.sites.values():
            sim.failed = False
            sim.flap_epoch += 1
            sim.slow_delay = 0.0
            if not sim.link_up:
                sim.link_up = True
                note_change(sim.interfaces[0], True, now)
            if not sim.mains:
                self._restore_mains(sim, now)
            sim.battery_minutes = default_battery_minutes(sim.site.kind)
            self._set_flag(sim, "amplifier_ok", True, Event.AMPLIFIER_RESTORED, now)
            self._set_flag(sim, "transmitter_ok", True, Event.TRANSMITTER_RESTORED, now)
            self._set_flag(sim, "door_open", False, Event.DOOR_CLOSED, now)
        self._refresh(self.sites.values(), now)
        self._set_broker(True, now)

    # --- mechanics --------------------------------------------------------------------------

    def _in_commune(self, commune: str | None, kinds: tuple[str, ...]) -> list[SiteSim]:
        return [
            sim
            for sim in self.sites.values()
            if sim.site.commune == commune and (not kinds or sim.site.kind in kinds)
        ]

    def _set_broker(self, up: bool, now: float) -> None:
        if self.broker_up == up:
            return
        self.broker_up = up
        self.truth.record(now, "broker", up=up)
        for listener in self.broker_listeners:
            listener(up)

    def _set_flag(self, sim: SiteSim, name: str, value: bool, event: Event, now: float) -> None:
        if getattr(sim, name) == value:
            return
        setattr(sim, name, value)
        self._record_fact(sim, name, now)
        self._emit(sim, event, now)
        self._changed(sim)

    def _set_link(self, sim: SiteSim, up: bool, now: float) -> None:
        if sim.link_up == up:
            return
        sim.link_up = up
        uplink = sim.interfaces[0]
        uplink.errors += 0 if up else 3  # a link that drops loses frames in flight
        note_change(uplink, up, now)
        self._refresh([sim], now)

    def _cut_mains(self, sim: SiteSim, now: float) -> None:
        if not sim.mains:
            return
        sim.charge_ref, sim.charge_at = sim.charge(now), now
        sim.mains = False
        sim.on_battery_since = now
        sim.line_bads += 1
        sim.power_epoch += 1
        epoch = sim.power_epoch
        self._record_fact(sim, "mains", now)
        self._emit(sim, Event.ON_BATTERY, now)
        self._changed(sim)
        remaining = sim.minutes_remaining(now) * 60
        low_at = now + max(0.0, remaining - LOW_BATTERY_MINUTES * 60)

        def battery_low(at: float) -> None:
            if sim.power_epoch == epoch and sim.powered:
                sim.battery_low_since = at
                self._record_fact(sim, "battery_low", at)
                self._emit(sim, Event.BATTERY_LOW, at)
                self._changed(sim)

        def exhausted(at: float) -> None:
            if sim.power_epoch == epoch:
                sim.powered = False
                self._refresh([sim], at)

        self.at(low_at, battery_low)
        self.at(now + remaining, exhausted)

    def _restore_mains(self, sim: SiteSim, now: float) -> None:
        sim.charge_ref, sim.charge_at = sim.charge(now), now
        sim.mains = True
        sim.on_battery_since = None
        was_low, sim.battery_low_since = sim.battery_low_since is not None, None
        sim.power_epoch += 1
        self._record_fact(sim, "mains", now)
        if was_low:
            self._record_fact(sim, "battery_low", now)
        if sim.powered:
            self._emit(sim, Event.POWER_RESTORED, now)
            self._changed(sim)
        sim.powered = True  # a dead site boots in the refresh that follows

    def _refresh(self, roots: Iterable[SiteSim], now: float) -> None:
        """Recompute alive/reachable below `roots`, top-down; report what changed."""
        todo: dict[str, SiteSim] = {}
        stack = list(roots)
        while stack:
            sim = stack.pop()
            if sim.id not in todo:
                todo[sim.id] = sim
                stack.extend(sim.children)
        booted: list[SiteSim] = []
        for sim in sorted(todo.values(), key=lambda s: s.depth):
            alive = sim.powered and not sim.failed
            if alive and not sim.alive:
                _reboot(sim, now)
                booted.append(sim)
            sim.alive = alive
            parent = sim.parent
            reachable = alive and sim.link_up and (parent is None or parent.reachable)
            changed = reachable != sim.reachable
            sim.reachable = reachable
            own = _own_reason(sim)
            if own:
                why, cause = own, sim
            elif parent is not None and parent.cause is not None:
                why, cause = f"behind:{parent.cause.id}", parent.cause
            else:
                why, cause = "", None
            sim.cause = cause
            if changed or why != sim.why:
                sim.why = why
                self._record_serves(sim, now)
            port = parent.ports.get(sim.id) if parent is not None else None
            up = sim.port_up()
            if parent is not None and port is not None and port.oper_up != up:
                note_change(port, up, now)
                self._emit(parent, Event.LINK_UP if up else Event.LINK_DOWN, now, port.index)
            if changed or sim in booted:
                self._changed(sim)
        for sim in booted:
            self.truth.record(now, "boot", site=sim.id)
            self._emit(sim, Event.COLD_START, now)

    def _emit(self, sim: SiteSim, event: Event, now: float, if_index: int | None = None) -> None:
        """A device can only report what happened if its report can get out."""
        if not sim.reachable:
            return
        happening = Happening(sim.id, event, now, if_index)
        for listener in self.event_listeners:
            listener(happening)

    def _changed(self, sim: SiteSim) -> None:
        for listener in self.change_listeners:
            listener(sim)


_PROBE_TYPES: tuple[tuple[type, str], ...] = (
    (SnmpProbe, "snmp"),
    (MqttProbe, "mqtt"),
    (IcmpProbe, "icmp"),
    (TcpProbe, "tcp"),
    (HttpProbe, "http"),
    (DnsProbe, "dns"),
)


def probe_type(probe: Probe) -> str:
    return next(name for cls, name in _PROBE_TYPES if isinstance(probe, cls))


def conditions_of(kind: str) -> tuple[str, ...]:
    """The health facts a site of `kind` has: power for all, its own part for some."""
    part = {"bts": "door_open", "radio_station": "transmitter_ok", "loudspeaker": "amplifier_ok"}
    return ("mains", "battery_low", part[kind]) if kind in part else ("mains", "battery_low")


def _fact(sim: SiteSim, name: str) -> bool:
    if name == "battery_low":
        return sim.battery_low_since is not None
    value: bool = getattr(sim, name)
    return value


def _own_reason(sim: SiteSim) -> str:
    """Why a site is out by itself ("" if it is not): dead, out of battery, or its link cut."""
    if sim.failed:
        return "failed"
    if not sim.powered:
        return "unpowered"
    if not sim.link_up:
        return "link"
    return ""


def default_battery_minutes(kind: str) -> float:
    if kind == "loudspeaker":
        return LOUDSPEAKER_BATTERY_MINUTES
    return DEFAULT_BATTERY_MINUTES.get(kind, OTHER_BATTERY_MINUTES)


def _depth(sim: SiteSim) -> int:
    depth, parent = 0, sim.parent
    while parent is not None:
        depth, parent = depth + 1, parent.parent
    return depth


def _reboot(sim: SiteSim, now: float) -> None:
    """A device that comes back starts from zero: uptime, counters, interface history."""
    sim.boot_at = now
    for iface in sim.interfaces:
        iface.last_change = None
        iface.down_since = None if iface.oper_up else now
        iface.lost_in = iface.lost_out = 0.0
        iface.errors = 0
