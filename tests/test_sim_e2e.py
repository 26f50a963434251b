"""End to end: the daemon polls the simulated district while the shipped power-cut scenario
plays; the commune's BTS go down on /metrics and in the ledger when their batteries run out,
and come back when the mains do.

This inventory names no device profile, so the daemon reads no battery values and "degraded"
(answering, but on battery) cannot show here: this test checks that the degraded values are
there for a poller to read (UPS-MIB upsOutputSource = battery) and that up and down follow.
The profiles' reading of them is tests/test_sim_profiles.py's.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from harness import Daemon, free_tcp_port, wait_for
from peers import free_udp_port
from simpeers import SHIPPED, Simulator, fast_settings, snmp, values, write_district

from monitor.core.model import State
from monitor.ledger.records import Interval, read_intervals

SPEED = 150  # the scenario's 40 simulated minutes in 16 seconds
CUT_AT, EMPTY_AT, RESTORED_AT = 60 / SPEED, 21 * 60 / SPEED, 40 * 60 / SPEED
COMMUNE_BTS = ["bts-vtl-muong-phang-01", "bts-vnp-muong-phang-01", "bts-mbf-muong-phang-01"]
OTHER_BTS = "bts-vtl-thanh-nua-01"


def answered(intervals: list[Interval], started: float) -> list[Interval]:
    """A site's intervals from the first time it was seen up after ``started``, the moment the
    simulator was launched: before its agents answered, a daemon quicker than the simulator's
    start rightly saw the site down, and on a loaded machine the first up can come before the
    simulator says it is bound."""
    after = [i for i in intervals if i.end is None or i.end > started]
    first_up = next((n for n, i in enumerate(after) if i.state is State.UP), len(after))
    return after[first_up:]


def test_power_cut_scenario_turns_the_commune_bts_down_then_up_in_metrics_and_ledger(
    tmp_path: Path,
) -> None:
    port, http = free_udp_port(), free_tcp_port()
    config = write_district(
        tmp_path / "config", communes=["muong-phang", "thanh-nua"], kinds=["bts"], port=port,
        settings=fast_settings(http, 0.4, 0.15),
    )  # fmt: skip
    daemon = Daemon(config, http)
    try:
        wait_for("/metrics", lambda: daemon.metric("districtmon_site_info", site=OTHER_BTS) == 1,
                 daemon)  # fmt: skip
        scenario = SHIPPED / "scenarios" / "power-cut.yaml"
        started = time.time()  # the scenario's time zero is a little later: when it is bound
        with Simulator(config, "--scenario", str(scenario), "--speed", str(SPEED)) as sim:
            sim.wait_ready()
            bound = time.time()

            def up(site: str) -> bool:
                return daemon.metric("districtmon_site_up", site=site) == 1

            def site_down(site: str) -> bool:
                return daemon.metric("districtmon_site_up", site=site) == 0

            wait_for("all BTS up", lambda: all(up(s) for s in [*COMMUNE_BTS, OTHER_BTS]), daemon)
            wait_for("on battery", lambda: not sim.state(COMMUNE_BTS[0])["mains"], daemon)
            source = "1.3.6.1.2.1.33.1.4.1.0"
            reply = snmp("snmpget", "127.1.0.191", port, "sim-viettel", source).stdout
            if sim.state(COMMUNE_BTS[0])["powered"]:  # still inside the battery window
                assert values(reply)[source] == "INTEGER: 5", reply  # upsOutputSource battery
            for site in COMMUNE_BTS:
                wait_for(f"{site} down", functools.partial(site_down, site), daemon, limit=30)
            assert daemon.metric("districtmon_site_state", site=COMMUNE_BTS[0], state="down") == 1
            assert up(OTHER_BTS), "another commune keeps its mains"
            for site in COMMUNE_BTS:
                wait_for(f"{site} back up", functools.partial(up, site), daemon, limit=30)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    for site in COMMUNE_BTS:
        intervals = answered(read_intervals(config / "ledger.sqlite", site), started)
        assert [i.state for i in intervals] == [State.UP, State.DOWN, State.UP]
        down = intervals[1]
        # dated at the first failed poll: after the batteries ran out, within a poll or two
        assert started + EMPTY_AT <= down.start <= bound + EMPTY_AT + 1.5, (down, started, bound)
        assert "timeout" in down.reason
    other = answered(read_intervals(config / "ledger.sqlite", OTHER_BTS), started)
    assert [i.state for i in other] == [State.UP]
