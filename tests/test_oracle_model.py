"""The oracle's own rules, on records written by hand: before it judges the daemon, it must
itself say what DESIGN.md says a person should see."""

from __future__ import annotations

from typing import Any

from oracle import Timing, Truth, Window, expected, ledger_outages, ledger_seconds, raw_state

T0 = 1_800_000_000.0
TIMING = Timing(poll=1.0, timeout=0.3, down_after=3, up_after=2, report=1.0, slack=0.2)


def truth(*changes: tuple[float, str, str, Any]) -> Truth:
    """A start record for a gateway, a BTS behind it and a loudspeaker over MQTT, then
    `(seconds after T0, type, site-or-name, value)` changes."""
    records: list[dict[str, Any]] = [
        {
            "seq": 1,
            "wall": T0,
            "sim": T0,
            "type": "start",
            "speed": 60.0,
            "sites": {
                "gw": {"kind": "gateway", "parent": None, "probe": "snmp"},
                "bts": {"kind": "bts", "parent": "gw", "probe": "snmp"},
                "loa": {"kind": "loudspeaker", "parent": None, "probe": "mqtt"},
            },
        }
    ]
    for seq, (after, kind, subject, value) in enumerate(changes, 2):
        record: dict[str, Any] = {"seq": seq, "wall": T0 + after, "sim": T0, "type": kind}
        if kind == "serves":
            record.update(site=subject, answering=value, why="")
        elif kind == "condition":
            site, name = subject.split(".")
            record.update(site=site, name=name, value=value)
        elif kind == "broker":
            record.update(up=value)
        records.append(record)
    return Truth.parse(records)


def test_a_site_behind_a_silent_parent_is_unreachable_and_alone_it_is_down() -> None:
    t = truth(
        (30, "serves", "gw", False),
        (30, "serves", "bts", False),
        (60, "serves", "gw", True),
        (60, "serves", "bts", True),
        (100, "serves", "bts", False),
        (130, "serves", "bts", True),
    )
    assert raw_state(t, "bts", T0 + 45) == "unreachable"
    assert raw_state(t, "gw", T0 + 45) == "down"
    assert raw_state(t, "bts", T0 + 115) == "down"
    bts = expected(t, "bts", T0, T0 + 200, TIMING)
    assert [s.state for s in bts.spans] == ["up", "unreachable", "up", "down", "up"]
    assert bts.outages == 1 and bts.ambiguous_outages == 0
    assert bts.seconds()["unreachable"] == 30 and bts.seconds()["down"] == 30
    assert bts.tolerance == 4 * TIMING.late("snmp")


def test_stretches_too_short_to_confirm_never_show_and_borderline_ones_are_allowed() -> None:
    t = truth(
        (10, "serves", "gw", False),
        (11, "serves", "gw", True),  # one poll at most: never down
        (50, "serves", "gw", False),
        (53, "serves", "gw", True),  # 2..4 polls: may or may not be confirmed
        (100, "serves", "gw", False),
        (120, "serves", "gw", True),  # confirmed
    )
    gw = expected(t, "gw", T0, T0 + 200, TIMING)
    assert [s.state for s in gw.spans] == ["up", "down", "up", "down", "up"]
    assert gw.outages == 1 and gw.ambiguous_outages == 1
    assert gw.tolerance >= 3  # the borderline stretch counts whole


def test_health_facts_degrade_the_kinds_that_read_them() -> None:
    t = truth(
        (10, "condition", "bts.mains", False),
        (10, "condition", "gw.mains", False),  # the router profile reads no power source
        (40, "condition", "bts.mains", True),
        (10, "condition", "loa.amplifier_ok", False),
        (40, "condition", "loa.amplifier_ok", True),
    )
    assert raw_state(t, "bts", T0 + 20) == "degraded"
    assert raw_state(t, "gw", T0 + 20) == "up"
    assert raw_state(t, "loa", T0 + 20) == "degraded"
    assert raw_state(t, "bts", T0 + 50) == "up"


def test_the_monitors_blindness_and_plans_are_unknown_and_maintenance_not_outages() -> None:
    t = truth((20, "broker", "", False), (40, "broker", "", True))
    assert raw_state(t, "loa", T0 + 30) == "unknown"
    assert raw_state(t, "bts", T0 + 30) == "up"  # polled, not over the broker
    gaps = [Window(T0 + 60, T0 + 70, None)]
    window = [Window(T0 + 80, T0 + 90, frozenset({"bts"}))]
    assert raw_state(t, "gw", T0 + 65, gaps=gaps) == "unknown"
    assert raw_state(t, "bts", T0 + 85, maintenance=window) == "maintenance"
    assert raw_state(t, "gw", T0 + 85, maintenance=window) == "up"


def test_ledger_figures_count_uncovered_time_as_unknown_and_join_outages_across_a_gap() -> None:
    intervals: list[tuple[str, float, float | None]] = [
        ("up", 0, 10),
        ("down", 10, 20),
        ("down", 25, 30),  # after a gap 20..25 in which nothing is known
        ("up", 30, None),
    ]
    seconds = ledger_seconds(intervals, 0, 40)
    assert seconds["down"] == 15 and seconds["unknown"] == 5 and seconds["up"] == 20
    assert ledger_outages(intervals, 0) == 1
