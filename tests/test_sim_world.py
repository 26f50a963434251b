"""The scenario engine and the world's physics, in simulated time (a clock the test moves)."""

from __future__ import annotations

from pathlib import Path

import pytest
from simpeers import SHIPPED

from monitor.config.load import load_config
from monitor.config.problems import ConfigError
from monitor.simulator import mib
from monitor.simulator.actions import build_action, entry_gateways, parse_duration
from monitor.simulator.clock import ManualClock
from monitor.simulator.mqtt import telemetry
from monitor.simulator.readings import measured
from monitor.simulator.scenario import load_scenario, schedule
from monitor.simulator.world import Event, Happening, World

CONFIG = load_config(SHIPPED, environ={})
BTS = "bts-vtl-muong-phang-01"
OTHER_BTS = "bts-vtl-thanh-nua-01"


def make_world() -> tuple[World, ManualClock, list[Happening]]:
    clock = ManualClock()
    world = World(CONFIG, clock)
    events: list[Happening] = []
    world.event_listeners.append(events.append)
    return world, clock, events


def run_until(world: World, clock: ManualClock, until: float, step: float = 5.0) -> None:
    """Move simulated time forward in steps, running the timers due, like the runner does."""
    while clock.t < until:
        clock.t = min(until, clock.t + step)
        world.run_due(clock.t)


def value(world: World, site: str, oid: tuple[int, ...], now: float) -> int:
    sim = world.sites[site]
    entry = mib.layout_for(sim).get(oid)
    assert entry is not None and entry.exists(sim, now)
    return int(entry.value(sim, now))


def test_shipped_power_cut_scenario_drains_batteries_then_silences_the_commune() -> None:
    world, clock, events = make_world()
    start = clock.t
    scenario = load_scenario(SHIPPED / "scenarios" / "power-cut.yaml", CONFIG)
    schedule(scenario, world, start)
    bts = world.sites[BTS]
    uptime_before = bts.uptime(start)

    run_until(world, clock, start + 30)
    assert bts.mains and value(world, BTS, (*mib.UPS_OUTPUT_SOURCE, 0), clock.t) == 3

    run_until(world, clock, start + 5 * 60)  # four minutes on battery
    now = clock.t
    assert value(world, BTS, (*mib.UPS_OUTPUT_SOURCE, 0), now) == mib.OUTPUT_BATTERY
    assert value(world, BTS, (*mib.UPS_SECONDS_ON_BATTERY, 0), now) == 240
    remaining = value(world, BTS, (*mib.UPS_MINUTES_REMAINING, 0), now)
    assert remaining == 16  # 20 minutes of autonomy, 4 used
    assert value(world, BTS, (*mib.UPS_BATTERY_STATUS, 0), now) == mib.BATTERY_NORMAL
    assert value(world, BTS, (*mib.UPS_INPUT_VOLTAGE, 1), now) == 0
    volts_early = value(world, BTS, (*mib.UPS_BATTERY_VOLTAGE, 0), now)
    assert value(world, BTS, (*mib.UPS_ALARMS_PRESENT, 0), now) == 1
    assert Happening(BTS, Event.ON_BATTERY, start + 60) in events
    assert world.sites[OTHER_BTS].mains, "another commune keeps its mains"

    run_until(world, clock, start + 15 * 60)  # 6 minutes left: battery low
    now = clock.t
    assert value(world, BTS, (*mib.UPS_BATTERY_STATUS, 0), now) == mib.BATTERY_LOW
    assert value(world, BTS, (*mib.UPS_BATTERY_VOLTAGE, 0), now) < volts_early
    assert Happening(BTS, Event.BATTERY_LOW, start + 11 * 60) in events
    assert value(world, BTS, (*mib.UPS_ALARMS_PRESENT, 0), now) == 2
    assert bts.reachable

    run_until(world, clock, start + 22 * 60)  # empty at 21 min
    assert not bts.reachable and not bts.alive
    in_commune = [s for s in world.sites.values() if s.site.commune == "muong-phang"]
    assert in_commune and not any(s.reachable for s in in_commune)
    assert world.sites[OTHER_BTS].reachable

    run_until(world, clock, start + 41 * 60)  # mains back at 40 min: reboot
    assert bts.reachable and bts.mains
    assert bts.uptime(clock.t) == pytest.approx(60, abs=5)
    assert uptime_before > 3 * 86400
    assert Happening(BTS, Event.COLD_START, start + 40 * 60) in events
    assert value(world, BTS, (*mib.UPS_OUTPUT_SOURCE, 0), clock.t) == 3


def test_fibre_cut_silences_the_gateway_and_all_behind_it_and_the_core_reports_its_port() -> None:
    world, clock, events = make_world()
    action, problems = build_action("fibre-cut", "muong-nha", {}, CONFIG)
    assert action is not None, problems
    world.apply(action, clock.t)
    gateway = world.sites["gw-ubnd-muong-nha"]
    assert not gateway.reachable
    behind = ["radio-muong-nha", "loa-muong-nha-01"]
    assert all(not world.sites[s].reachable for s in behind)
    assert all(s.reachable for s in world.sites.values() if s.site.kind == "bts")
    core = world.sites["gw-district-core"]
    port = core.ports["gw-ubnd-muong-nha"]
    assert not port.oper_up
    assert Happening(core.id, Event.LINK_DOWN, clock.t, port.index) in events
    in_octets = value(world, core.id, (*mib.IF_ENTRY, 10, port.index), clock.t + 60)
    assert in_octets == value(world, core.id, (*mib.IF_ENTRY, 10, port.index), clock.t + 600)

    restore, _ = build_action("fibre-restore", "muong-nha", {}, CONFIG)
    assert restore is not None
    clock.advance(60)
    world.apply(restore, clock.t)
    assert gateway.reachable and world.sites["loa-muong-nha-01"].reachable
    assert port.oper_up
    assert Happening(core.id, Event.LINK_UP, clock.t, port.index) in events
    assert gateway.uptime(clock.t) > 3600, "a cut link is no reboot"


def test_flapping_link_toggles_every_half_period_then_settles_up() -> None:
    world, clock, events = make_world()
    action, _ = build_action("flap", "gw-ubnd-na-u", {"period": "2m", "duration": "10m"}, CONFIG)
    assert action is not None
    start = clock.t
    world.apply(action, start)
    site = world.sites["gw-ubnd-na-u"]
    seen = []
    for _ in range(12):
        seen.append(site.reachable)
        run_until(world, clock, clock.t + 60, step=60)
    assert seen[:6] == [False, True, False, True, False, True]
    assert site.reachable
    downs = [e for e in events if e.event is Event.LINK_DOWN and e.site == "gw-district-core"]
    assert len(downs) == 5


def test_counters_grow_uptime_ticks_and_counter32_is_the_wrapped_counter64() -> None:
    world, clock, _ = make_world()
    now = clock.t
    hc = (*mib.IF_X_ENTRY, 6, 1)
    low = (*mib.IF_ENTRY, 10, 1)
    first, later = value(world, BTS, hc, now), value(world, BTS, hc, now + 60)
    assert 0 < first < later
    assert 60 * 0.25 * 1_250_000 < later - first < 60 * 1.5 * 3_750_000  # plausible rate
    assert value(world, BTS, low, now) == first % 2**32
    ticks = (*mib.SYS_UPTIME, 0)
    assert value(world, BTS, ticks, now + 10) - value(world, BTS, ticks, now) == 1000


def test_a_dead_device_sends_no_event_and_amplifier_faults_are_reported() -> None:
    world, clock, events = make_world()
    speaker = "loa-thanh-nua-02"
    fault, _ = build_action("amplifier-fault", speaker, {}, CONFIG)
    down, _ = build_action("down", speaker, {}, CONFIG)
    assert fault is not None and down is not None
    world.apply(fault, clock.t)
    assert events[-1] == Happening(speaker, Event.AMPLIFIER_FAULT, clock.t)
    assert value(world, speaker, (*mib.AMP_STATUS, 0), clock.t) == mib.AMP_FAULT
    world.apply(down, clock.t)
    count = len(events)
    restore, _ = build_action("amplifier-restore", speaker, {}, CONFIG)
    assert restore is not None
    world.apply(restore, clock.t)
    assert len(events) == count, "a dead device reports nothing"


def test_actions_are_checked_against_the_inventory() -> None:
    message = "'amplifier-fault' applies to loudspeaker sites; 'bts-vtl-thanh-nua-01' is a bts"
    assert build_action("amplifier-fault", "bts-vtl-thanh-nua-01", {}, CONFIG)[1] == [
        ("target", message)
    ]
    assert build_action("power-cut", "nowhere", {}, CONFIG)[1][0][0] == "target"
    assert entry_gateways(CONFIG, "muong-nha") == ["gw-ubnd-muong-nha"]
    assert entry_gateways(CONFIG, "thanh-xuong") == ["gw-district-core"]  # the district's uplink
    _, problems = build_action("flap", "gw-ubnd-na-u", {"speed": 2}, CONFIG)
    assert {key for key, _ in problems} == {"speed", "period"}
    assert parse_duration("1h30m") == 5400 and parse_duration("1.5s") == 1.5
    assert parse_duration("soon") is None and parse_duration(-1) is None


def test_every_shipped_scenario_is_valid() -> None:
    files = sorted((SHIPPED / "scenarios").glob("*.yaml"))
    assert {f.stem for f in files} >= {
        "power-cut", "fibre-cut", "amplifier-fault", "flapping-link", "slow-agent",
        "broker-outage", "demo", "day",
    }  # fmt: skip
    for path in files:
        assert load_scenario(path, CONFIG).events, path


def test_a_broken_scenario_is_refused_whole_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        """events:
  - at: 1m
    do: power-cut
    commune: muong-phangg
  - at: soon
    do: slow
    site: radio-muong-nha
  - at: 2m
    do: down
    commune: thanh-nua
    colour: red
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_scenario(path, CONFIG)
    text = [str(p) for p in caught.value.problems]
    assert text[0] == f"{path}:4: events[0].commune: unknown commune 'muong-phangg'"
    assert f"{path}:5: events[1].at: must be a time offset" in text[1]
    assert f"{path}:6: events[1].do: 'slow' needs delay" in text[2]
    assert any(f"{path}:10: events[2].commune: 'down' takes a site" in t for t in text)
    assert any(f"{path}:11: events[2].colour: unknown key" in t for t in text)


def test_a_cluster_with_a_failed_amplifier_plays_nothing_whichever_way_it_is_read() -> None:
    """The morning programme (05:30-06:30 local time) is on; the cluster whose amplifier failed
    is silent in its SNMP status, its MQTT telemetry and the control's `measured` alike: a
    panel of clusters playing must not count it."""
    morning = (1_750_000_000 // 86400) * 86400 + 22.75 * 3600  # 05:45 at UTC+7
    world = World(CONFIG, ManualClock(start=morning))
    speaker = "loa-thanh-nua-02"
    sim = world.sites[speaker]

    def readings() -> tuple[int, object, object]:
        return (
            value(world, speaker, (*mib.AMP, 2, 0), morning),
            telemetry(sim, morning)["playing"],
            measured(sim, morning)["playing"],
        )

    assert readings() == (mib.PLAYING, True, True)
    fault, _ = build_action("amplifier-fault", speaker, {}, CONFIG)
    assert fault is not None
    world.apply(fault, morning)
    assert readings() == (mib.IDLE, False, False)
