"""SNMPv2c notifications at the moment of a fault, encoded with pysnmp's v2c message API.

Each device's trap leaves from the device's own address (a receiver tells devices apart by
source address, as with real ones) and carries the trap community of the configuration: the
first credential named in `snmp.traps.credentials` of districtmon.yaml, which is what the
daemon's receiver accepts. Real devices are set up the same way: one trap community for the
whole district, apart from the read communities of polling.

The notifications and their var-binds are listed in monitor/simulator/README.md ("Traps"):
standard ones where a standard exists (coldStart, linkDown/linkUp, UPS-MIB upsTrapOnBattery
and alarm entries), the districtmon arc for doors, amplifiers and transmitters.

A trap is a message encoded and sent from a socket bound to the device's address, not through
a pysnmp engine: an engine per source address costs tens of milliseconds to make and more on its
first notification, in the one loop that also answers every agent and service of the world.
Eight BTS going on battery at once then held HTTP answers past a probe's timeout, and the
daemon rightly saw the district's portals down: the world would have lied about itself.

A device reports only what it can get out: a dead site or one behind a cut link sends nothing
(the world does not raise the event), and power events of kinds without a UPS-MIB send nothing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from typing import Any

from pyasn1.codec.ber import encoder
from pysnmp.proto import api, rfc1902

from monitor.config.load import Config
from monitor.simulator import mib
from monitor.simulator.agent import SimulatorError
from monitor.simulator.world import Event, Happening, SiteSim, World

log = logging.getLogger(__name__)

SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
SYS_UPTIME_0 = (*mib.SYS_UPTIME, 0)
SYS_NAME_0 = (*mib.SYS_NAME, 0)
_SNMP_TRAPS = (1, 3, 6, 1, 6, 3, 1, 1, 5)
COLD_START = (*_SNMP_TRAPS, 1)
LINK_DOWN = (*_SNMP_TRAPS, 3)
LINK_UP = (*_SNMP_TRAPS, 4)
_UPS_TRAPS = (1, 3, 6, 1, 2, 1, 33, 2)
UPS_TRAP_ON_BATTERY = (*_UPS_TRAPS, 1)
UPS_TRAP_ALARM_ADDED = (*_UPS_TRAPS, 3)
UPS_TRAP_ALARM_REMOVED = (*_UPS_TRAPS, 4)
DOOR_OPENED = (*mib.ENV_NOTIFICATIONS, 1)  # envDoorOpened
DOOR_CLOSED = (*mib.ENV_NOTIFICATIONS, 2)  # envDoorClosed
TRANSMITTER_RESTORED = (*mib.TX_NOTIFICATIONS, 2)  # txOnAir: the carrier is back
TRANSMITTER_FAULT = (*mib.TX_NOTIFICATIONS, 3)  # txFault
AMPLIFIER_FAULT = (*mib.AMP_NOTIFICATIONS, 1)  # ampFault
AMPLIFIER_RESTORED = (*mib.AMP_NOTIFICATIONS, 2)  # ampRestored

_UPS_EVENTS = {Event.ON_BATTERY, Event.BATTERY_LOW, Event.POWER_RESTORED}
_V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]


def notification(
    happening: Happening, sim: SiteSim
) -> tuple[tuple[int, ...], list[tuple[int, ...]]] | None:
    """The trap OID and the OIDs of its objects for an event, or None if the device would
    not send one."""
    event = happening.event
    if event in _UPS_EVENTS and sim.site.kind != "bts":
        return None
    if event is Event.COLD_START:
        return COLD_START, []
    if event in (Event.LINK_DOWN, Event.LINK_UP):
        index: tuple[int, ...] = (happening.if_index or 1,)
        trap = LINK_DOWN if event is Event.LINK_DOWN else LINK_UP
        return trap, [mib.IF_INDEX + index, mib.IF_ADMIN_STATUS + index, mib.IF_OPER_STATUS + index]
    if event is Event.ON_BATTERY:
        objects = [mib.UPS_MINUTES_REMAINING, mib.UPS_SECONDS_ON_BATTERY]
        return UPS_TRAP_ON_BATTERY, [(*o, 0) for o in (*objects, mib.UPS_CONFIG_LOW_BATT_TIME)]
    if event is Event.BATTERY_LOW:
        return UPS_TRAP_ALARM_ADDED, [(*mib.UPS_ALARM_ID, 2), (*mib.UPS_ALARM_DESCR, 2)]
    if event is Event.POWER_RESTORED:
        return UPS_TRAP_ALARM_REMOVED, [(*mib.UPS_ALARM_ID, 1), (*mib.UPS_ALARM_DESCR, 1)]
    simple: dict[Event, tuple[tuple[int, ...], list[tuple[int, ...]]]] = {
        Event.DOOR_OPENED: (DOOR_OPENED, [mib.ENV_DOOR]),
        Event.DOOR_CLOSED: (DOOR_CLOSED, [mib.ENV_DOOR]),
        Event.AMPLIFIER_FAULT: (AMPLIFIER_FAULT, [mib.AMP_STATUS]),
        Event.AMPLIFIER_RESTORED: (AMPLIFIER_RESTORED, [mib.AMP_STATUS]),
        Event.TRANSMITTER_FAULT: (TRANSMITTER_FAULT, [mib.TX_FAULT, mib.TX_FAULT_TEXT]),
        Event.TRANSMITTER_RESTORED: (TRANSMITTER_RESTORED, [mib.TX_ON_AIR]),
    }
    trap_oid, objects = simple[event]
    return trap_oid, [(*oid, 0) for oid in objects]


def _values(happening: Happening, sim: SiteSim) -> list[Any]:
    found = notification(happening, sim)
    if found is None:
        return []
    trap, objects = found
    layout = mib.layout_for(sim)
    at = happening.at
    varbinds: list[Any] = [
        (rfc1902.ObjectName(SYS_UPTIME_0), mib.uptime_ticks(sim, at)),
        (rfc1902.ObjectName(SNMP_TRAP_OID), rfc1902.ObjectIdentifier(trap)),
    ]
    for oid in [*objects, SYS_NAME_0]:
        entry = layout.get(oid)
        if entry is not None:
            varbinds.append((entry.name, entry.value(sim, at)))
    return varbinds


def trap_community(config: Config) -> str:
    """The community the configuration's trap receiver accepts first; SimulatorError if the
    configuration has no receiver or its first credential carries no community."""
    traps = config.snmp.traps
    if traps is None or not traps.credentials:
        raise SimulatorError(
            [
                "--traps needs the trap receiver of the configuration: snmp.traps.credentials "
                "in districtmon.yaml names the community the daemon accepts"
            ]
        )
    name = traps.credentials[0]
    credential = config.credentials[name]
    if credential.version == "3":
        raise SimulatorError(
            [
                f"trap credential '{name}' is SNMPv3; the simulator sends v2c traps only: name a "
                "v1/v2c credential first in snmp.traps.credentials"
            ]
        )
    if credential.community is None:
        raise SimulatorError([f"trap credential '{name}' has no community (credentials.yaml)"])
    return credential.community.reveal()


class TrapSender:
    def __init__(self, world: World, host: str, port: int, community: str) -> None:
        self.world = world
        self.target = (host, port)
        self._community = community
        self.sent: Counter[str] = Counter()
        self.failed = 0
        self._queue: asyncio.Queue[tuple[Happening, list[Any]]] = asyncio.Queue()
        world.event_listeners.append(self._on_event)

    def _on_event(self, happening: Happening) -> None:
        """Called by the world in the loop: the var-binds are read now, the send is queued."""
        sim = self.world.sites[happening.site]
        varbinds = _values(happening, sim)
        if varbinds:
            self._queue.put_nowait((happening, varbinds))

    async def run(self) -> None:
        while True:
            happening, varbinds = await self._queue.get()
            self._send(happening, varbinds)

    def _send(self, happening: Happening, varbinds: list[Any]) -> None:
        sim = self.world.sites[happening.site]
        if sim.probe is None:
            return  # a device without an SNMP agent sends no trap
        try:
            send_from(sim.probe.address, self.target, trap_message(self._community, varbinds))
        except Exception as exc:  # a trap that cannot be sent must not stop the simulation
            self.failed += 1
            log.warning("site=%s: %s trap not sent: %s", sim.id, happening.event.value, exc)
            return
        self.sent[happening.event.value] += 1
        log.info("site=%s: sent %s trap", sim.id, happening.event.value)


def trap_message(community: str, varbinds: list[Any]) -> bytes:
    """The BER of an SNMPv2-Trap-PDU carrying ``varbinds`` (sysUpTime.0 and snmpTrapOID.0
    first, as RFC 3416 wants), in a v2c message of ``community``."""
    pdu = _V2C.TrapPDU()
    _V2C.apiTrapPDU.set_defaults(pdu)
    _V2C.apiTrapPDU.set_varbinds(pdu, varbinds)
    message = _V2C.Message()
    _V2C.apiMessage.set_defaults(message)
    _V2C.apiMessage.set_community(message, community)
    _V2C.apiMessage.set_pdu(message, pdu)
    packet: bytes = encoder.encode(message)
    return packet


def send_from(source: str, target: tuple[str, int], packet: bytes) -> None:
    """One datagram from the device's address (a receiver tells devices apart by it, as with
    real ones); on loopback a send does not wait."""
    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if (":" in source) == (family == socket.AF_INET6):
            sock.bind((source, 0))
        sock.setblocking(False)
        sock.sendto(packet, target)
