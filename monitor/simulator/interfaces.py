"""The simulated devices' network interfaces: what each kind has, and how its traffic counters
move (octets grow at the interface's mean rate while it is up, and stand still while it is down).

A gateway also has one port per site behind it; cutting that port cuts the site.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitor.simulator.clock import DAY, UTC_OFFSET

# Interface numbering: the device's own interfaces first, then one port per child (gateways).
UPLINK_IF_INDEX = 1


@dataclass(slots=True, eq=False)
class Interface:
    index: int
    name: str
    descr: str
    if_type: int
    speed_bps: int
    rate_in: float  # mean bytes/s
    rate_out: float
    mac: bytes
    uplink: bool = False
    child: str | None = None
    oper_up: bool = True
    last_change: float | None = None  # sim time of the last oper status change since boot
    down_since: float | None = None
    lost_in: float = 0.0  # octets not carried while down, since boot
    lost_out: float = 0.0
    errors: int = 0

    def octets(self, rate: float, lost: float, boot: float, now: float) -> int:
        """Octets carried since boot: a daily cycle around the mean (always > 0), none while
        the interface is down. The integral is closed-form so any poll rate sees the same."""
        total = _traffic(rate, boot, now) - lost
        if self.down_since is not None:
            total -= _traffic(rate, self.down_since, now)
        return max(0, int(total))


def _traffic(rate: float, start: float, end: float) -> float:
    """Integral of rate * (1 + 0.5 sin(2 pi (t + offset) / day)) over [start, end]."""
    if end <= start:
        return 0.0
    w = 2 * math.pi / DAY
    shift = UTC_OFFSET - 9 * 3600.0  # lowest at 03:00 local, highest at 15:00
    return rate * (
        (end - start) - 0.5 / w * (math.cos(w * (end + shift)) - math.cos(w * (start + shift)))
    )


def note_change(iface: Interface, up: bool, now: float) -> None:
    if iface.oper_up == up:
        return
    iface.oper_up = up
    iface.last_change = now
    if not up:
        iface.down_since = now
    elif iface.down_since is not None:
        start = iface.down_since
        iface.lost_in += _traffic(iface.rate_in, start, now)
        iface.lost_out += _traffic(iface.rate_out, start, now)
        iface.down_since = None


GIGABIT = 1_000_000_000
FAST = 100_000_000
ETHERNET = 6  # IANAifType ethernetCsmacd
LOOPBACK = 24  # softwareLoopback

# (name, description, ifType, speed, mean bytes/s in, out) of each kind's own interfaces;
# the first one is the uplink.
_OWN_INTERFACES: dict[str, list[tuple[str, str, int, int, float, float]]] = {
    "bts": [
        ("ge-0/0/0", "backhaul", ETHERNET, GIGABIT, 2_500_000.0, 600_000.0),
        ("ge-0/0/1", "baseband unit", ETHERNET, GIGABIT, 600_000.0, 2_500_000.0),
        ("fe-0/0/2", "site management", ETHERNET, FAST, 2_000.0, 1_500.0),
    ],
    "gateway": [
        ("wan0", "fibre uplink", ETHERNET, GIGABIT, 1_250_000.0, 400_000.0),
        ("lan0", "office LAN", ETHERNET, GIGABIT, 400_000.0, 1_250_000.0),
        ("lo0", "loopback", LOOPBACK, 0, 200.0, 200.0),
    ],
    "radio_station": [
        ("eth0", "network uplink", ETHERNET, FAST, 60_000.0, 25_000.0),
        ("eth1", "studio LAN", ETHERNET, FAST, 25_000.0, 60_000.0),
    ],
    "loudspeaker": [("wwan0", "LTE modem", ETHERNET, 50_000_000, 4_000.0, 1_000.0)],
}


_GENERIC_INTERFACES = [("eth0", "network uplink", ETHERNET, FAST, 50_000.0, 20_000.0)]


def own_interfaces(kind: str, seed: int) -> list[Interface]:
    """The interfaces of a site of `kind`; `seed` (the site's own) makes sites differ."""
    spec = _OWN_INTERFACES.get(kind, _GENERIC_INTERFACES)
    factor = 0.5 + (seed >> 16) % 1000 / 1000  # 0.5..1.5: sites differ
    return [
        Interface(
            index=number,
            name=name,
            descr=f"{name} {descr}",
            if_type=if_type,
            speed_bps=speed,
            rate_in=rate_in * factor,
            rate_out=rate_out * factor,
            mac=_mac(seed, number),
            uplink=number == UPLINK_IF_INDEX,
        )
        for number, (name, descr, if_type, speed, rate_in, rate_out) in enumerate(spec, 1)
    ]


def gateway_port(gateway_seed: int, child_id: str, kind: str, seed: int, index: int) -> Interface:
    """Port `index` of a gateway, to the child `child_id` (of `kind`, with its `seed`)."""
    own = _OWN_INTERFACES.get(kind, _GENERIC_INTERFACES)[0]
    factor = 0.5 + (seed >> 16) % 1000 / 1000
    return Interface(
        index=index,
        name=f"ge-1/0/{index}",
        descr=f"ge-1/0/{index} to {child_id}",
        if_type=ETHERNET,
        speed_bps=GIGABIT,
        rate_in=own[5] * factor,  # what the child sends up comes in here
        rate_out=own[4] * factor,
        mac=_mac(gateway_seed, index),
        child=child_id,
    )


def _mac(seed: int, index: int) -> bytes:
    """A locally administered unicast MAC (02:...), stable per site and interface."""
    tail = ((seed & 0xFFFFFFFF) ^ (index * 0x9E3779B1)) & 0xFFFFFFFF
    return bytes([0x02, index & 0xFF]) + tail.to_bytes(4, "big")
