"""The ground truth: every fault applied and every change of what a device serves, made by the
world as it happens, in order, with wall and simulated times; served by the control and
appended to a file."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from simpeers import SHIPPED, Simulator, write_district

from monitor.config.load import load_config
from monitor.simulator.actions import Action, build_action
from monitor.simulator.clock import ManualClock
from monitor.simulator.scenario import load_scenario, schedule
from monitor.simulator.truth import Truth
from monitor.simulator.world import World

CONFIG = load_config(SHIPPED, environ={})
Record = dict[str, Any]


def started() -> tuple[World, ManualClock, Truth]:
    clock = ManualClock()
    truth = Truth(wall=lambda: 1_800_000_000.0)
    world = World(CONFIG, clock, truth)
    world.begin(icmp_cut=True)
    return world, clock, truth


def act(world: World, name: str, target: str | None = None, **params: object) -> Action:
    action, problems = build_action(name, target, params, CONFIG)
    assert action is not None, problems
    world.apply(action)
    return action


def run_until(world: World, clock: ManualClock, until: float, step: float = 5.0) -> None:
    while clock.t < until:
        clock.t = min(until, clock.t + step)
        world.run_due(clock.t)


def serves(records: list[Record], site: str) -> list[tuple[bool, str]]:
    return [
        (r["answering"], r["why"]) for r in records if r["type"] == "serves" and r["site"] == site
    ]


def facts(records: list[Record], site: str, name: str) -> list[tuple[float, bool]]:
    return [
        (r["sim"], r["value"])
        for r in records
        if r["type"] == "condition" and r["site"] == site and r["name"] == name
    ]


def test_the_start_names_every_site_and_what_each_serves_and_its_health() -> None:
    _, clock, truth = started()
    records = truth.records()
    start = records[0]
    assert start["type"] == "start" and start["seq"] == 1 and start["icmp_cut"] is True
    assert start["speed"] == 1.0 and start["sim"] == clock.t and start["wall"] == 1_800_000_000.0
    sites = start["sites"]
    assert len(sites) == len(CONFIG.sites) == 386
    assert sites["vc-muong-nha"] == {"kind": "video_endpoint", "parent": "gw-ubnd-muong-nha",
                                     "probe": "icmp"}  # fmt: skip
    assert sites["gw-district-core"] == {"kind": "gateway", "parent": None, "probe": "snmp"}
    assert Counter(s["probe"] for s in sites.values()) == {
        "snmp": 269, "mqtt": 71, "icmp": 41, "http": 3, "tcp": 2,
    }  # fmt: skip
    initial = [r for r in records if r["type"] == "serves"]
    assert len(initial) == 386 and all(r["answering"] and r["why"] == "" for r in initial)
    conditions = Counter(r["name"] for r in records if r["type"] == "condition")
    assert conditions == {"mains": 386, "battery_low": 386, "door_open": 230,
                          "amplifier_ok": 71, "transmitter_ok": 6}  # fmt: skip
    assert records[-1]["type"] == "broker" and records[-1]["up"] is True
    assert len(records) == 1467  # as monitor/simulator/README.md says
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))


def test_a_fibre_cut_silences_what_is_behind_and_a_child_dying_meanwhile_stays_down() -> None:
    world, clock, truth = started()
    mark = len(truth)
    act(world, "fibre-cut", "muong-nha")
    cut = truth.records(mark)
    assert cut[0] == {**cut[0], "type": "action", "action": "fibre-cut", "target": "muong-nha",
                      "params": {}}  # fmt: skip
    assert serves(cut, "gw-ubnd-muong-nha") == [(False, "link")]
    for behind in ("radio-muong-nha", "loa-muong-nha-01", "vc-muong-nha"):
        assert serves(cut, behind) == [(False, "behind:gw-ubnd-muong-nha")], behind
    assert not serves(cut, "bts-vtl-muong-nha-01"), "operator backhaul: not behind the fibre"

    clock.advance(120)
    mark = len(truth)
    act(world, "down", "radio-muong-nha")  # the station dies during the outage
    died = truth.records(mark)
    assert [r["type"] for r in died[:2]] == ["action", "serves"]
    assert serves(died, "radio-muong-nha") == [(False, "failed")]
    assert serves(died, "loa-muong-nha-01") == [(False, "behind:radio-muong-nha")]
    assert all(r["sim"] == clock.t for r in died)

    clock.advance(600)
    mark = len(truth)
    act(world, "fibre-restore", "muong-nha")
    back = truth.records(mark)
    assert serves(back, "gw-ubnd-muong-nha") == [(True, "")]
    assert serves(back, "vc-muong-nha") == [(True, "")]
    assert serves(back, "radio-muong-nha") == [], "still dead: nothing changed for it"
    assert serves(back, "loa-muong-nha-01") == [], "still behind the dead station"


def test_a_power_cut_records_mains_battery_low_exhaustion_and_return_at_their_times() -> None:
    world, clock, truth = started()
    start = clock.t
    mark = len(truth)
    scenario = load_scenario(SHIPPED / "scenarios" / "power-cut.yaml", CONFIG)
    schedule(scenario, world, start)
    run_until(world, clock, start + 41 * 60)
    records = truth.records(mark)
    bts = "bts-vtl-muong-phang-01"
    action = records[0]
    assert action["action"] == "power-cut" and action["sim"] == start + 60
    assert action["params"] == {"battery_minutes": 20.0}
    assert facts(records, bts, "mains") == [(start + 60, False), (start + 40 * 60, True)]
    assert facts(records, bts, "battery_low") == [(start + 11 * 60, True), (start + 40 * 60, False)]
    assert serves(records, bts) == [(False, "unpowered"), (True, "")]
    empty = next(r for r in records if r["type"] == "serves" and r["site"] == bts)
    assert empty["sim"] == start + 21 * 60
    sims = [r["sim"] for r in records]
    assert sims == sorted(sims), "in the order things happened"
    restore = next(r for r in records if r["type"] == "action" and r["action"] == "power-restore")
    after = records[records.index(restore) + 1 :]
    assert facts(after, bts, "mains") == [(start + 40 * 60, True)], "the action comes first"
    boots = [r for r in records if r["type"] == "boot" and r["site"] == bts]
    assert [r["sim"] for r in boots] == [start + 40 * 60], "powered again: it boots, once"
    assert records.index(boots[0]) > records.index(restore)


def test_a_dead_device_that_comes_back_boots_and_a_cut_link_does_not_reboot_it() -> None:
    world, clock, truth = started()
    mark = len(truth)
    act(world, "down", "bts-vtl-thanh-nua-01")
    act(world, "link-down", "gw-ubnd-muong-nha")
    clock.advance(300)
    act(world, "up", "bts-vtl-thanh-nua-01")
    act(world, "link-up", "gw-ubnd-muong-nha")
    boots = [r["site"] for r in truth.records(mark) if r["type"] == "boot"]
    assert boots == ["bts-vtl-thanh-nua-01"], "a link cut leaves the devices powered"


def test_flaps_broker_loss_and_health_faults_are_each_recorded() -> None:
    world, clock, truth = started()
    mark = len(truth)
    act(world, "flap", "gw-ubnd-na-u", period="2m", duration="5m")
    run_until(world, clock, clock.t + 6 * 60, step=30)
    act(world, "broker-outage")
    act(world, "broker-outage")  # no change, no record
    act(world, "broker-restore")
    act(world, "amplifier-fault", "loa-thanh-nua-01")
    act(world, "transmitter-fault", "radio-huyen")
    act(world, "door-open", "bts-vtl-thanh-nua-01")
    act(world, "restore")
    records = truth.records(mark)
    assert serves(records, "gw-ubnd-na-u") == [(False, "link"), (True, "")] * 3
    assert serves(records, "vc-na-u") == [(False, "behind:gw-ubnd-na-u"), (True, "")] * 3
    assert [r["up"] for r in records if r["type"] == "broker"] == [False, True]
    for site, name, bad in (
        ("loa-thanh-nua-01", "amplifier_ok", False),
        ("radio-huyen", "transmitter_ok", False),
        ("bts-vtl-thanh-nua-01", "door_open", True),
    ):
        assert [v for _, v in facts(records, site, name)] == [bad, not bad], site
    actions = [r["action"] for r in records if r["type"] == "action"]
    assert actions == ["flap", "broker-outage", "broker-outage", "broker-restore",
                       "amplifier-fault", "transmitter-fault", "door-open", "restore"]  # fmt: skip


def test_the_control_serves_the_truth_and_the_file_holds_the_same_lines(tmp_path: Path) -> None:
    config = write_district(tmp_path / "config", communes=["thanh-nua"], kinds=["bts", "gateway"])
    truth_file = tmp_path / "truth.jsonl"
    with Simulator(config, "--truth", str(truth_file), "--speed", "60") as sim:
        sim.wait_ready()
        status, body = sim.get("/truth")
        assert status == 200
        first = body["records"]
        assert first[0]["type"] == "start" and first[0]["speed"] == 60.0
        assert first[0]["icmp_cut"] is True  # no ICMP site here: nothing it could not cut
        last = first[-1]["seq"]
        sim.ctl("/sites/bts-vtl-thanh-nua-01/down")
        status, body = sim.get(f"/truth?after={last}")
        assert [r["type"] for r in body["records"]] == ["action", "serves"]
        assert body["records"][0]["seq"] == last + 1
        assert body["records"][1]["why"] == "failed"
        assert sim.get("/truth?after=soon")[0] == 400
        assert sim.get("/sites/bts-vtl-thanh-nua-01")[1]["why"] == "failed"
        status, snapshot = sim.get("/sites")
        assert status == 200 and abs(snapshot["wall"] - time.time()) < 5
        by_id = {s["site"]: s for s in snapshot["sites"]}
        assert set(by_id) == {r["site"] for r in first if r["type"] == "serves"}
        alive = by_id["bts-vtl-thanh-nua-02"]["measured"]
        assert 48.0 <= alive["battery_volts"] <= 56.0, "a floating 48 V string on mains"
        assert 5.0 <= alive["cabinet_celsius"] <= 50.0
        assert alive["uplink"]["name"] == "ge-0/0/0" and alive["uplink"]["in_octets"] > 0
        assert "uplink" not in by_id["bts-vtl-thanh-nua-01"]["measured"], "dead: nothing moves"
        every = sim.get("/truth")[1]["records"]
    lines = truth_file.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == every
    wall = [r["wall"] for r in every]
    assert wall == sorted(wall) and abs(wall[0] - every[0]["sim"]) < 5  # sim starts at wall
