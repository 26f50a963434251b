"""What each kind of simulated site answers over SNMP: standard MIB objects plus a small
private subtree. The full OID map, with units, is in monitor/simulator/README.md.

Every site answers the system group and IF-MIB (ifTable, ifXTable). BTS add UPS-MIB (RFC 1628)
and the cabinet environment group; radio stations the transmitter and encoder group;
loudspeaker clusters an amplifier group. The private groups live under 1.3.6.1.4.1.32473, the
enterprise number that RFC 5612 sets aside for documentation and examples (no vendor owns it,
so a simulated device can never be mistaken for a real one), at the OIDs the shipped profiles
read: one MIB for profiles, simulator and recordings (config/profiles/README.md).

A `Layout` is the sorted list of a site's OIDs with one value function each; sites of the same
kind and interface count share one. Values are computed when asked, from the site's state and
the simulated time, so there is nothing to refresh. Rows that come and go (UPS alarms) have a
`present` test: absent rows are skipped by GETNEXT and are noSuchInstance to GET.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysnmp.proto import rfc1902

from monitor.simulator import readings as r
from monitor.simulator.interfaces import Interface
from monitor.simulator.world import LOW_BATTERY_MINUTES, SiteSim

OID = tuple[int, ...]
Getter = Callable[[SiteSim, float], Any]
Present = Callable[[SiteSim, float], bool]

WRAP32 = 2**32
WRAP64 = 2**64

SYSTEM: OID = (1, 3, 6, 1, 2, 1, 1)
SYS_DESCR = (*SYSTEM, 1)
SYS_OBJECT_ID = (*SYSTEM, 2)
SYS_UPTIME = (*SYSTEM, 3)
SYS_CONTACT = (*SYSTEM, 4)
SYS_NAME = (*SYSTEM, 5)
SYS_LOCATION = (*SYSTEM, 6)
SYS_SERVICES = (*SYSTEM, 7)

IF_NUMBER: OID = (1, 3, 6, 1, 2, 1, 2, 1)
IF_ENTRY: OID = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IF_X_ENTRY: OID = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
IF_INDEX = (*IF_ENTRY, 1)
IF_ADMIN_STATUS = (*IF_ENTRY, 7)
IF_OPER_STATUS = (*IF_ENTRY, 8)

UPS: OID = (1, 3, 6, 1, 2, 1, 33, 1)
UPS_BATTERY_STATUS = (*UPS, 2, 1)
UPS_SECONDS_ON_BATTERY = (*UPS, 2, 2)
UPS_MINUTES_REMAINING = (*UPS, 2, 3)
UPS_CHARGE_REMAINING = (*UPS, 2, 4)
UPS_BATTERY_VOLTAGE = (*UPS, 2, 5)
UPS_INPUT_ENTRY = (*UPS, 3, 3, 1)
UPS_INPUT_VOLTAGE = (*UPS_INPUT_ENTRY, 3)
UPS_OUTPUT_SOURCE = (*UPS, 4, 1)
UPS_ALARMS_PRESENT = (*UPS, 6, 1)
UPS_ALARM_ENTRY = (*UPS, 6, 2, 1)
UPS_ALARM_ID = (*UPS_ALARM_ENTRY, 1)
UPS_ALARM_DESCR = (*UPS_ALARM_ENTRY, 2)
UPS_WELL_KNOWN_ALARMS: OID = (*UPS, 6, 3)
UPS_ALARM_ON_BATTERY = (*UPS_WELL_KNOWN_ALARMS, 2)
UPS_ALARM_LOW_BATTERY = (*UPS_WELL_KNOWN_ALARMS, 3)
UPS_CONFIG_LOW_BATT_TIME = (*UPS, 9, 7)

# upsBatteryStatus / upsOutputSource values (RFC 1628)
BATTERY_NORMAL, BATTERY_LOW = 2, 3
OUTPUT_NORMAL, OUTPUT_BATTERY = 3, 5

# The districtmon arc under RFC 5612's enterprise number for documentation: the OIDs the
# shipped profiles read (config/profiles/README.md), plus the loudspeaker amplifier group.
ENTERPRISE: OID = (1, 3, 6, 1, 4, 1, 32473)
ENV: OID = (*ENTERPRISE, 1)  # BTS cabinet environment (bts-power)
ENV_NOTIFICATIONS: OID = (*ENV, 0)
ENV_TEMPERATURE = (*ENV, 1)
ENV_HUMIDITY = (*ENV, 2)
ENV_DOOR = (*ENV, 3)
ENV_SMOKE = (*ENV, 4)
TX: OID = (*ENTERPRISE, 2)  # broadcast transmitter and encoder (radio-transmitter)
TX_NOTIFICATIONS: OID = (*TX, 0)
TX_ON_AIR = (*TX, 1)
TX_FORWARD_POWER = (*TX, 2)
TX_REFLECTED_POWER = (*TX, 3)
TX_FAULT = (*TX, 4)
TX_FREQUENCY = (*TX, 5)
TX_TEMPERATURE = (*TX, 6)
ENC_AUDIO = (*TX, 7)
TX_FAULT_TEXT = (*TX, 8)
AMP: OID = (*ENTERPRISE, 3)  # loudspeaker cluster amplifier (no shipped profile: MQTT)
AMP_NOTIFICATIONS: OID = (*AMP, 0)
AMP_STATUS = (*AMP, 1)
PRODUCTS_ARC: OID = (*ENTERPRISE, 10)

PRODUCTS = {"bts": 1, "radio_station": 2, "loudspeaker": 3, "gateway": 4}
DOOR_CLOSED, DOOR_OPEN = 1, 2
SMOKE_CLEAR = 1
ON_AIR, OFF_AIR = 1, 2
NO_FAULT, FAULT = 1, 2
AUDIO_PRESENT = 1
FAULT_TEXT = "power amplifier fault"
AMP_OK, AMP_FAULT = 1, 2
PLAYING, IDLE = 1, 2

_DESCR = {
    "bts": "BTS site controller with UPS (48 V battery string), shelter sensors",
    "radio_station": "FM radio station controller, transmitter monitor",
    "loudspeaker": "Loudspeaker cluster controller, 100 V line amplifier, LTE modem",
    "gateway": "LAN gateway router",
}


@dataclass(slots=True)
class Entry:
    oid: OID
    name: rfc1902.ObjectName
    value: Getter
    counter64: bool = False
    present: Present | None = None

    def exists(self, sim: SiteSim, now: float) -> bool:
        return self.present is None or self.present(sim, now)


class Layout:
    """A site's OIDs in lexicographic order, with the objects (scalars, columns) they belong
    to, so that a missing OID can be told noSuchObject from noSuchInstance."""

    def __init__(self, entries: list[Entry], objects: set[OID]) -> None:
        self.entries = sorted(entries, key=lambda e: e.oid)
        self.oids = [e.oid for e in self.entries]
        self.by_oid = {e.oid: e for e in self.entries}
        self.objects = objects

    def get(self, oid: OID) -> Entry | None:
        return self.by_oid.get(oid)

    def next_after(self, oid: OID, sim: SiteSim, now: float, v1: bool) -> Entry | None:
        """The first existing entry after `oid`; SNMPv1 cannot carry Counter64, so a v1
        walk skips those objects (RFC 3584 section 4.2.2.1)."""
        entries = self.entries
        for index in range(bisect.bisect_right(self.oids, oid), len(entries)):
            entry = entries[index]
            if (entry.present is None or entry.present(sim, now)) and not (v1 and entry.counter64):
                return entry
        return None

    def is_object(self, oid: OID) -> bool:
        """True if a prefix of `oid` is a known object: the instance is what is missing."""
        return any(oid[:length] in self.objects for length in range(len(oid), 6, -1))


class _Builder:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.objects: set[OID] = set()

    def scalar(self, base: OID, value: Getter, *, counter64: bool = False) -> None:
        self.add(base, (0,), value, counter64=counter64)

    def add(
        self,
        base: OID,
        index: OID,
        value: Getter,
        *,
        counter64: bool = False,
        present: Present | None = None,
    ) -> None:
        oid = base + index
        self.entries.append(Entry(oid, rfc1902.ObjectName(oid), value, counter64, present))
        self.objects.add(base)


_layouts: dict[tuple[str, int], Layout] = {}


def layout_for(sim: SiteSim) -> Layout:
    key = (sim.site.kind, len(sim.interfaces))
    layout = _layouts.get(key)
    if layout is None:
        layout = _layouts[key] = _build(sim.site.kind, len(sim.interfaces))
    return layout


def _build(kind: str, interfaces: int) -> Layout:
    b = _Builder()
    _system(b, kind)
    _interfaces(b, interfaces)
    if kind == "bts":
        _ups(b)
        _environment(b)
    elif kind == "radio_station":
        _transmitter(b)
    elif kind == "loudspeaker":
        _amplifier(b)
    return Layout(b.entries, b.objects)


def _text(text: str) -> rfc1902.OctetString:
    """A DisplayString: ASCII only (RFC 2579), so Vietnamese names lose their diacritics the
    way real devices' configured names do ("Thanh Nưa" -> "Thanh Nua")."""
    return rfc1902.OctetString(ascii_fold(text).encode("ascii"))


def ascii_fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return (
        "".join(c for c in folded if not unicodedata.combining(c))
        .encode("ascii", "replace")
        .decode()
    )


def uptime_ticks(sim: SiteSim, now: float) -> rfc1902.TimeTicks:
    return rfc1902.TimeTicks(int(sim.uptime(now) * 100) % WRAP32)


def _since_boot(sim: SiteSim, at: float | None) -> rfc1902.TimeTicks:
    """A TimeStamp: sysUpTime at `at`, 0 if it happened before the last boot."""
    if at is None or at < sim.boot_at:
        return rfc1902.TimeTicks(0)
    return rfc1902.TimeTicks(int((at - sim.boot_at) * 100) % WRAP32)


def _system(b: _Builder, kind: str) -> None:
    product = rfc1902.ObjectIdentifier((*PRODUCTS_ARC, PRODUCTS.get(kind, 5)))
    services = rfc1902.Integer32(78 if kind == "gateway" else 72)
    descr = _DESCR.get(kind, "Networked site controller")

    def sys_descr(sim: SiteSim, now: float) -> rfc1902.OctetString:
        return _text(f"districtmon-sim {descr}; {sim.contact}")

    b.scalar(SYS_DESCR, sys_descr)
    b.scalar(SYS_OBJECT_ID, lambda sim, now: product)
    b.scalar(SYS_UPTIME, uptime_ticks)
    b.scalar(SYS_CONTACT, lambda sim, now: _text(sim.contact))
    b.scalar(SYS_NAME, lambda sim, now: _text(sim.id))
    b.scalar(SYS_LOCATION, lambda sim, now: _text(sim.location))
    b.scalar(SYS_SERVICES, lambda sim, now: services)


def _iface(number: int, read: Callable[[Interface, SiteSim, float], Any]) -> Getter:
    return lambda sim, now: read(sim.interfaces[number - 1], sim, now)


def _in_octets(i: Interface, sim: SiteSim, now: float) -> int:
    return i.octets(i.rate_in, i.lost_in, sim.boot_at, now)


def _out_octets(i: Interface, sim: SiteSim, now: float) -> int:
    return i.octets(i.rate_out, i.lost_out, sim.boot_at, now)


IN_PACKET_BYTES = 700
OUT_PACKET_BYTES = 400
C32 = rfc1902.Counter32
C64 = rfc1902.Counter64
I32 = rfc1902.Integer32


def _interfaces(b: _Builder, count: int) -> None:
    b.scalar(IF_NUMBER, lambda sim, now: I32(len(sim.interfaces)))
    zero = C32(0)
    for n in range(1, count + 1):
        index = (n,)
        columns: list[tuple[int, Callable[[Interface, SiteSim, float], Any]]] = [
            (1, lambda i, s, t: I32(i.index)),
            (2, lambda i, s, t: _text(i.descr)),
            (3, lambda i, s, t: I32(i.if_type)),
            (4, lambda i, s, t: I32(1500 if i.if_type != 24 else 65535)),
            (5, lambda i, s, t: rfc1902.Gauge32(min(i.speed_bps, WRAP32 - 1))),
            (6, lambda i, s, t: rfc1902.OctetString(i.mac if i.if_type != 24 else b"")),
            (7, lambda i, s, t: I32(1)),
            (8, lambda i, s, t: I32(1 if i.oper_up else 2)),
            (9, lambda i, s, t: _since_boot(s, i.last_change)),
            (10, lambda i, s, t: C32(_in_octets(i, s, t) % WRAP32)),
            (11, lambda i, s, t: C32(_in_octets(i, s, t) // IN_PACKET_BYTES % WRAP32)),
            (13, lambda i, s, t: zero),
            (14, lambda i, s, t: C32(i.errors)),
            (16, lambda i, s, t: C32(_out_octets(i, s, t) % WRAP32)),
            (17, lambda i, s, t: C32(_out_octets(i, s, t) // OUT_PACKET_BYTES % WRAP32)),
            (19, lambda i, s, t: zero),
            (20, lambda i, s, t: zero),
        ]
        for column, read in columns:
            b.add((*IF_ENTRY, column), index, _iface(n, read))
        x_columns: list[tuple[int, Callable[[Interface, SiteSim, float], Any], bool]] = [
            (1, lambda i, s, t: _text(i.name), False),
            (6, lambda i, s, t: C64(_in_octets(i, s, t) % WRAP64), True),
            (7, lambda i, s, t: C64(_in_octets(i, s, t) // IN_PACKET_BYTES), True),
            (10, lambda i, s, t: C64(_out_octets(i, s, t) % WRAP64), True),
            (11, lambda i, s, t: C64(_out_octets(i, s, t) // OUT_PACKET_BYTES), True),
            (15, lambda i, s, t: rfc1902.Gauge32(i.speed_bps // 1_000_000), False),
            (18, lambda i, s, t: _text(i.descr.split(" ", 1)[1]), False),
        ]
        for column, read, wide in x_columns:
            b.add((*IF_X_ENTRY, column), index, _iface(n, read), counter64=wide)


def battery_status(sim: SiteSim, now: float) -> int:
    low = not sim.mains and sim.minutes_remaining(now) <= LOW_BATTERY_MINUTES
    return BATTERY_LOW if low else BATTERY_NORMAL


def seconds_on_battery(sim: SiteSim, now: float) -> int:
    return 0 if sim.on_battery_since is None else int(now - sim.on_battery_since)


def minutes_remaining(sim: SiteSim, now: float) -> int:
    return max(1, int(sim.minutes_remaining(now)))  # PositiveInteger


def output_source(sim: SiteSim, now: float) -> int:
    return OUTPUT_NORMAL if sim.mains else OUTPUT_BATTERY


def _alarms(sim: SiteSim, now: float) -> list[tuple[int, float]]:
    """Active UPS alarms as (id, since): 1 = on battery, 2 = low battery."""
    found = []
    if sim.on_battery_since is not None:
        found.append((1, sim.on_battery_since))
    if sim.battery_low_since is not None and not sim.mains:
        found.append((2, sim.battery_low_since))
    return found


def _ups(b: _Builder) -> None:
    ident = [
        (1, lambda sim, now: _text("districtmon-sim")),
        (2, lambda sim, now: _text("DSIM-3000 (48 V battery string)")),
        (3, lambda sim, now: _text("2.4.1")),
        (4, lambda sim, now: _text("districtmon-sim agent 0.1")),
        (5, lambda sim, now: _text(sim.id)),
        (6, lambda sim, now: _text(sim.site.name)),
    ]
    for column, getter in ident:
        b.scalar((*UPS, 1, column), getter)
    battery: list[tuple[int, Getter]] = [
        (1, lambda sim, now: I32(battery_status(sim, now))),
        (2, lambda sim, now: I32(seconds_on_battery(sim, now))),
        (3, lambda sim, now: I32(minutes_remaining(sim, now))),
        (4, lambda sim, now: I32(round(sim.charge(now) * 100))),
        (5, lambda sim, now: I32(round(r.ups_battery_volts(sim, now) * 10))),
        (6, lambda sim, now: I32(round(r.ups_battery_amps(sim, now) * 10))),
        (7, lambda sim, now: I32(round(r.shelter_celsius(sim, now) - 2))),
    ]
    for column, getter in battery:
        b.scalar((*UPS, 2, column), getter)
    b.scalar((*UPS, 3, 1), lambda sim, now: C32(sim.line_bads))
    b.scalar((*UPS, 3, 2), lambda sim, now: I32(1))
    line = (1,)
    input_row: list[tuple[int, Getter]] = [
        (1, lambda sim, now: I32(1)),
        (2, lambda sim, now: I32(round(r.mains_hertz(sim, now) * 10))),
        (3, lambda sim, now: I32(round(r.mains_volts(sim, now)))),
        (4, lambda sim, now: I32(round(_input_amps(sim, now) * 10))),
        (5, lambda sim, now: I32(round(r.load_watts(sim, now) if sim.mains else 0))),
    ]
    for column, getter in input_row:
        b.add((*UPS_INPUT_ENTRY, column), line, getter)
    b.scalar(UPS_OUTPUT_SOURCE, lambda sim, now: I32(output_source(sim, now)))
    b.scalar((*UPS, 4, 2), lambda sim, now: I32(500))
    b.scalar((*UPS, 4, 3), lambda sim, now: I32(1))
    output_row: list[tuple[int, Getter]] = [
        (1, lambda sim, now: I32(1)),
        (2, lambda sim, now: I32(230)),
        (3, lambda sim, now: I32(round(r.load_watts(sim, now) / 230 * 10))),
        (4, lambda sim, now: I32(round(r.load_watts(sim, now)))),
        (5, lambda sim, now: I32(round(r.load_watts(sim, now) / 3000 * 100))),
    ]
    for column, getter in output_row:
        b.add((*UPS, 4, 4, 1, column), line, getter)
    b.scalar(UPS_ALARMS_PRESENT, lambda sim, now: rfc1902.Gauge32(len(_alarms(sim, now))))
    descr = {
        1: rfc1902.ObjectIdentifier(UPS_ALARM_ON_BATTERY),
        2: rfc1902.ObjectIdentifier(UPS_ALARM_LOW_BATTERY),
    }
    for alarm_id in (1, 2):
        present = _alarm_present(alarm_id)
        since = _alarm_since(alarm_id)
        b.add(UPS_ALARM_ID, (alarm_id,), _const(I32(alarm_id)), present=present)
        b.add(UPS_ALARM_DESCR, (alarm_id,), _const(descr[alarm_id]), present=present)
        b.add((*UPS_ALARM_ENTRY, 3), (alarm_id,), since, present=present)
    config: list[tuple[int, Getter]] = [
        (1, lambda sim, now: I32(230)),
        (2, lambda sim, now: I32(500)),
        (3, lambda sim, now: I32(230)),
        (4, lambda sim, now: I32(500)),
        (5, lambda sim, now: I32(3000)),
        (6, lambda sim, now: I32(2400)),
        (7, lambda sim, now: I32(LOW_BATTERY_MINUTES)),
    ]
    for column, getter in config:
        b.scalar((*UPS, 9, column), getter)


def _const(value: Any) -> Getter:
    return lambda sim, now: value


def _alarm_present(alarm_id: int) -> Present:
    return lambda sim, now: any(i == alarm_id for i, _ in _alarms(sim, now))


def _alarm_since(alarm_id: int) -> Getter:
    def since(sim: SiteSim, now: float) -> rfc1902.TimeTicks:
        started = next((at for i, at in _alarms(sim, now) if i == alarm_id), None)
        return _since_boot(sim, started)

    return since


def _input_amps(sim: SiteSim, now: float) -> float:
    volts = r.mains_volts(sim, now)
    return r.load_watts(sim, now) / volts if volts else 0.0


def _environment(b: _Builder) -> None:
    b.scalar(ENV_TEMPERATURE, lambda sim, now: I32(round(r.shelter_celsius(sim, now) * 10)))
    b.scalar(ENV_HUMIDITY, lambda sim, now: I32(round(r.shelter_humidity_percent(sim, now))))
    b.scalar(ENV_DOOR, lambda sim, now: I32(DOOR_OPEN if sim.door_open else DOOR_CLOSED))
    b.scalar(ENV_SMOKE, _const(I32(SMOKE_CLEAR)))


def tx_on_air(sim: SiteSim) -> int:
    return ON_AIR if sim.transmitter_ok else OFF_AIR


def tx_fault(sim: SiteSim) -> int:
    return NO_FAULT if sim.transmitter_ok else FAULT


def _transmitter(b: _Builder) -> None:
    """A fault is the power amplifier's: the carrier goes off air and the fault text says so."""
    group: list[tuple[OID, Getter]] = [
        (TX_ON_AIR, lambda sim, now: I32(tx_on_air(sim))),
        (TX_FORWARD_POWER, lambda sim, now: I32(round(r.transmitter_watts(sim) * 10))),
        (TX_REFLECTED_POWER, lambda sim, now: I32(round(r.transmitter_reflected_watts(sim) * 10))),
        (TX_FAULT, lambda sim, now: I32(tx_fault(sim))),
        (TX_FREQUENCY, lambda sim, now: rfc1902.Gauge32(r.transmitter_khz(sim))),
        (TX_TEMPERATURE, lambda sim, now: I32(round(r.transmitter_celsius(sim, now) * 10))),
        (ENC_AUDIO, _const(I32(AUDIO_PRESENT))),
        (TX_FAULT_TEXT, lambda sim, now: _text("" if sim.transmitter_ok else FAULT_TEXT)),
    ]
    for oid, getter in group:
        b.scalar(oid, getter)


def amp_status(sim: SiteSim) -> int:
    return AMP_OK if sim.amplifier_ok else AMP_FAULT


def _amplifier(b: _Builder) -> None:
    group: list[tuple[int, Getter]] = [
        (1, lambda sim, now: I32(amp_status(sim))),
        (2, lambda sim, now: I32(PLAYING if r.speaker_playing(sim, now) else IDLE)),
        (3, lambda sim, now: I32(r.speaker_volume(sim))),
        (4, lambda sim, now: I32(round(r.speaker_line_volts(sim, now) * 10))),
        (5, lambda sim, now: I32(round(r.speaker_battery_volts(sim, now) * 10))),
        (6, lambda sim, now: I32(round(r.speaker_celsius(sim, now) * 10))),
        (7, lambda sim, now: I32(r.rssi_dbm(sim, now))),
    ]
    for column, getter in group:
        b.scalar((*AMP, column), getter)
