"""What a simulated device measures, in physical units, at a given simulated time.

SNMP (mib.py) and MQTT telemetry (mqtt.py) report the same quantities in their own units and
types; both read them here so that a poll and a telemetry message of the same instant agree.
Values move plausibly: a daily cycle, a little per-site spread, and the effects of faults
(a shelter warms up when the air conditioning stops on battery; voltage sags with charge).
"""

from __future__ import annotations

import math

from monitor.simulator.clock import DAY, UTC_OFFSET
from monitor.simulator.world import SiteSim

# The BTS UPS: a 48 V battery string feeding a 230 V AC output.
FLOAT_VOLTS = 54.5
BOOST_VOLTS = 55.2
EMPTY_VOLTS = 44.0
FULL_DISCHARGE_VOLTS = 51.5
LOAD_WATTS = 2000.0
NOMINAL_MAINS_VOLTS = 230.0
# A loudspeaker cluster's 12 V backup battery.
SPEAKER_FLOAT_VOLTS = 13.6
SPEAKER_EMPTY_VOLTS = 11.0
SPEAKER_FULL_VOLTS = 12.7


def _daily(now: float, peak_hour: float) -> float:
    """-1..1 over the local day, 1 at `peak_hour`."""
    phase = (now + UTC_OFFSET) % DAY / DAY - peak_hour / 24
    return math.cos(2 * math.pi * phase)


def _spread(sim: SiteSim, span: float, salt: int = 0) -> float:
    """A stable per-site offset in [-span/2, span/2]."""
    return ((sim.seed >> (8 + salt)) % 1000 / 1000 - 0.5) * span


def minutes_on_battery(sim: SiteSim, now: float) -> float:
    return 0.0 if sim.on_battery_since is None else (now - sim.on_battery_since) / 60


def ups_battery_volts(sim: SiteSim, now: float) -> float:
    if sim.mains:
        return FLOAT_VOLTS if sim.charge(now) >= 0.999 else BOOST_VOLTS
    charge = sim.charge(now)
    return EMPTY_VOLTS + (FULL_DISCHARGE_VOLTS - EMPTY_VOLTS) * charge


def ups_battery_amps(sim: SiteSim, now: float) -> float:
    """Positive while discharging into the load, negative while recharging, 0 when floating."""
    if not sim.mains:
        return LOAD_WATTS / ups_battery_volts(sim, now)
    return 0.0 if sim.charge(now) >= 0.999 else -12.0


def mains_volts(sim: SiteSim, now: float) -> float:
    if not sim.mains:
        return 0.0
    return NOMINAL_MAINS_VOLTS - 4 + 5 * math.sin(now / 2000 + sim.seed % 7) + _spread(sim, 4)


def mains_hertz(sim: SiteSim, now: float) -> float:
    return 0.0 if not sim.mains else 50.0 + 0.1 * math.sin(now / 300 + sim.seed % 5)


def load_watts(sim: SiteSim, now: float) -> float:
    return LOAD_WATTS * (0.95 + 0.05 * _daily(now, 15)) + _spread(sim, 200)


def shelter_celsius(sim: SiteSim, now: float) -> float:
    """Air-conditioned BTS shelter; the air conditioning stops on battery."""
    base = 26.0 + 3.0 * _daily(now, 15) + _spread(sim, 3)
    return base + min(14.0, minutes_on_battery(sim, now) * 0.4)


def shelter_humidity_percent(sim: SiteSim, now: float) -> float:
    """Relative humidity: highest before dawn, lowest in the afternoon; drier air-conditioned."""
    base = 62.0 - 8.0 * _daily(now, 15) + _spread(sim, 6, 2)
    return base + (6.0 if not sim.mains else 0.0)


def transmitter_watts(sim: SiteSim) -> float:
    return 0.0 if not sim.transmitter_ok else 500.0 + _spread(sim, 30)


def transmitter_reflected_watts(sim: SiteSim) -> float:
    """A healthy antenna sends a few watts back; an amplifier in fault sends nothing at all."""
    return 6.0 + _spread(sim, 4, 3) if sim.transmitter_ok else 0.0


def transmitter_khz(sim: SiteSim) -> int:
    return 96_000 + (sim.seed % 120) * 100


def transmitter_celsius(sim: SiteSim, now: float) -> float:
    return 38.0 + 4.0 * _daily(now, 15) + (6.0 if sim.transmitter_ok else 0.0)


def speaker_playing(sim: SiteSim, now: float) -> bool:
    """Heard, not only scheduled: a cluster whose amplifier failed plays nothing, whichever
    way it reports (SNMP status, MQTT telemetry, the control's `measured`)."""
    return sim.amplifier_ok and sim.playing(now)


def speaker_volume(sim: SiteSim) -> int:
    return 60 + sim.seed % 31


def speaker_line_volts(sim: SiteSim, now: float) -> float:
    """The 100 V loudspeaker line carries the programme only while the amplifier plays."""
    if not speaker_playing(sim, now):
        return 0.0
    return 98.0 + 3.0 * math.sin(now / 7 + sim.seed % 11)


def speaker_battery_volts(sim: SiteSim, now: float) -> float:
    if sim.mains:
        return SPEAKER_FLOAT_VOLTS if sim.charge(now) >= 0.999 else 13.9
    charge = sim.charge(now)
    return SPEAKER_EMPTY_VOLTS + (SPEAKER_FULL_VOLTS - SPEAKER_EMPTY_VOLTS) * charge


def speaker_celsius(sim: SiteSim, now: float) -> float:
    playing = 5.0 if speaker_playing(sim, now) else 0.0
    return 31.0 + 5.0 * _daily(now, 14) + playing + _spread(sim, 4)


def rssi_dbm(sim: SiteSim, now: float) -> int:
    return round(-62 - sim.seed % 25 + 2 * math.sin(now / 97 + sim.seed % 13))


def measured(sim: SiteSim, now: float) -> dict[str, object]:
    """What the device reports now, as a person reading its display would: the figures a
    dashboard shows (battery and cabinet of a BTS, a cluster's signal and whether it plays,
    the octets its uplink carried since boot). The control serves it beside the site's state,
    so a test can compare a panel with what was served, not with what the daemon made of it."""
    found: dict[str, object] = {}
    kind = sim.site.kind
    if kind == "bts":
        found["battery_volts"] = round(ups_battery_volts(sim, now), 1)  # upsBatteryVoltage
        found["cabinet_celsius"] = round(shelter_celsius(sim, now), 1)  # envTemperature
    elif kind == "loudspeaker":
        found["battery_volts"] = round(speaker_battery_volts(sim, now), 2)
        found["rssi_dbm"] = rssi_dbm(sim, now)
        found["playing"] = speaker_playing(sim, now)
    uplink = next((i for i in sim.interfaces if i.uplink), None)
    if uplink is not None and sim.alive:
        found["uplink"] = {
            "name": uplink.name,
            "oper_up": uplink.oper_up,
            "in_octets": uplink.octets(uplink.rate_in, uplink.lost_in, sim.boot_at, now),
            "out_octets": uplink.octets(uplink.rate_out, uplink.lost_out, sim.boot_at, now),
        }
    return found
