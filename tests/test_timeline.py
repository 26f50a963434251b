"""A scripted ten hours of a small district, on a simulated clock: outages, flaps, a parent
outage, a maintenance window, a daemon crash and a broker loss. Observations go through the
real pipeline (evaluator, maintenance overlay, ledger writer with its rollups) into a ledger
file; the report's figures must equal, to the second, what is worked out by hand below.

Sites (polled every 60 s; offsets in brackets):
  gw    gateway, VNPT, Thanh Nưa                      [+0 s]
  bts1  BTS Viettel behind gw, Thanh Nưa              [+10 s]
  bts2  BTS Viettel, Thanh Nưa, weekly maintenance    [+20 s]
        Tuesday 02:00-04:00 Asia/Ho_Chi_Minh
  spk   loudspeaker cluster over MQTT, Mường Phăng    [+30 s]

T0 is Tuesday 00:00 in Hồ Chí Minh time (Monday 17:00 UTC), so the window is T0+2h..T0+4h.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.config.maintenance import window_from_spec
from monitor.core.availability import to_ms
from monitor.core.model import Commune, Observation, Owner, Site, SnmpProbe, State
from monitor.expose.self_metrics import build_registry
from monitor.ledger.records import read_intervals
from monitor.ledger.views import open_readonly, plan, watermark_of
from monitor.ledger.writer import Ledger
from monitor.report.build import build_report
from monitor.report.render import render_csv
from monitor.state.evaluator import Evaluator
from monitor.state.live import LiveState
from monitor.state.pipeline import Pipeline
from monitor.state.windows import Schedule

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = dt.datetime(2024, 6, 4, 0, 0, tzinfo=HCM).timestamp()  # a Tuesday
END = 36_000
CRASH, RESTART = 20_000, 21_800
BROKER_LOST, BROKER_BACK = 30_000, 31_200
OFFSETS = {"gw": 0, "bts1": 10, "bts2": 20, "spk": 30}

COMMUNES = (
    Commune("thanh-nua", "Thanh Nưa", 21.4, 103.0),
    Commune("muong-phang", "Mường Phăng", 21.5, 103.1),
)
OWNERS = (
    Owner("vnpt", "VNPT Điện Biên", "operator"),
    Owner("viettel", "Viettel", "operator"),
    Owner("dai-truyen-thanh", "Đài Truyền thanh huyện", "broadcaster"),
)


def _site(
    site_id: str, kind: str, name: str, commune: str, owner: str, parent: str | None = None
) -> Site:
    return Site(
        site_id, kind, name, commune, owner, 0.0, 0.0, SnmpProbe("127.0.0.1"), parent=parent
    )


SITES = {
    "gw": _site("gw", "gateway", "Cổng mạng UBND Thanh Nưa", "thanh-nua", "vnpt"),
    "bts1": _site("bts1", "bts", "BTS Viettel Thanh Nưa 01", "thanh-nua", "viettel", parent="gw"),
    "bts2": _site("bts2", "bts", "BTS Viettel Thanh Nưa 02", "thanh-nua", "viettel"),
    "spk": _site("spk", "loudspeaker", "Cụm loa Bản Phăng", "muong-phang", "dai-truyen-thanh"),
}
WEEKLY = {
    "id": "bts2-weekly",
    "sites": ["bts2"],
    "reason": "bảo dưỡng định kỳ",
    "weekly": {"days": ["tue"], "start": "02:00", "end": "04:00"},
    "timezone": "Asia/Ho_Chi_Minh",
}


def answers(site: str, t: int) -> bool:
    """The script: does `site` answer its poll at T0 + t?"""
    if site == "gw":
        return not 3600 <= t <= 4740  # 20 failed polls
    if site == "bts1":
        return not 3610 <= t <= 4810  # unreachable while gw is down
    if site == "bts2":
        flaps = {620, 1220, 1820, 1880}  # single and double failures: never an outage
        flaps |= {4220, 4280, 4340, 4460}  # an outage, a recovery attempt that fails
        return not (
            t in flaps
            or 2420 <= t <= 3020  # an outage
            or 10220 <= t <= 10820  # inside the maintenance window
            or 14000 <= t <= 15020  # begins inside the window, outlasts it
        )
    return not 25050 <= t <= 25350  # spk


def on_battery(site: str, t: int) -> bool:
    return site == "bts2" and 16220 <= t <= 17420


# Worked out by hand from the script (seconds since T0):
#  gw:   up [0,3600) down [3600,4800) (first failure .. first of the 2 answers) up [4800,20000)
#        crash gap [20000,21800) unknown [21800,21840) (no data yet) up [21840,36000)
#  bts1: unknown [0,10) up [10,3610) unreachable [3610,4870) (charged to gw: its first
#        failure came after gw's, and it answered again at 4870) up [4870,20000) gap
#        unknown [21800,21850) up [21850,36000)
#  bts2: unknown [0,20) up [20,2420) down [2420,3080) up [3080,4220) down [4220,4520) (4400
#        answered alone) up [4520,7200) maintenance [7200,14400) (its outage at 10220 does
#        not count) down [14400,15080) (began at 14000, inside the window: counted from the
#        window's end) up [15080,16220) degraded [16220,17480) up [17480,20000) gap
#        up [21800,36000) (its first poll after the restart fell at 21800 exactly)
#  spk:  unknown [0,30) up [30,20000) gap unknown [21800,21810) up [21810,25050)
#        down [25050,25410) up [25410,30000) unknown [30000,31230) (broker lost at 30000, back
#        at 31200, first message 31230) up [31230,36000)
EXPECTED = {
    "gw": dict(
        up=3600 + (20000 - 4800) + (36000 - 21840),
        degraded=0,
        down=1200,
        unreachable=0,
        maintenance=0,
        unknown=1800 + 40,
        outages=1,
        longest_outage=1200,
    ),
    "bts1": dict(
        up=(3610 - 10) + (20000 - 4870) + (36000 - 21850),
        degraded=0,
        down=0,
        unreachable=4870 - 3610,
        maintenance=0,
        unknown=10 + 1800 + 50,
        outages=0,
        longest_outage=0,
    ),
    "bts2": dict(
        up=(2420 - 20)
        + (4220 - 3080)
        + (7200 - 4520)
        + (16220 - 15080)
        + (20000 - 17480)
        + (36000 - 21800),
        degraded=17480 - 16220,
        down=(3080 - 2420) + (4520 - 4220) + (15080 - 14400),
        unreachable=0,
        maintenance=14400 - 7200,
        unknown=20 + 1800,
        outages=3,
        longest_outage=680,
    ),
    "spk": dict(
        up=(20000 - 30) + (25050 - 21810) + (30000 - 25410) + (36000 - 31230),
        degraded=0,
        down=25410 - 25050,
        unreachable=0,
        maintenance=0,
        unknown=30 + 1800 + 10 + 1230,
        outages=1,
        longest_outage=360,
    ),
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Run:
    """One run of the daemon's core: ledger (with its writer), evaluator, overlay, live state."""

    ledger: Ledger
    writer: asyncio.Task[None]
    live: LiveState
    pipeline: Pipeline

    def __init__(self) -> None:
        self.commits = 0  # by the writer, heartbeats included
        self._commit = asyncio.Event()

    def _committed(self, _seconds: float, _rows: int) -> None:
        self.commits += 1
        self._commit.set()

    @classmethod
    async def start(cls, path: Path, clock: Clock, sites: dict[str, Site] | None = None) -> Run:
        """The daemon's core over `sites` (default: the script's, with its weekly window)."""
        self = cls()
        watched = SITES if sites is None else sites
        self.ledger = await Ledger.open(
            path, clock=clock, heartbeat_seconds=0.002, on_commit=self._committed
        )
        await self.ledger.sync_sites(watched.values(), COMMUNES, OWNERS)
        self.writer = asyncio.create_task(self.ledger.run())
        self.live = LiveState(watched)
        _, metrics = build_registry()
        evaluator = Evaluator(
            down_after=3,
            up_after=2,
            parents={s.id: s.parent for s in watched.values()},
            degraded_by=lambda o: "on battery" if o.values.get("on_battery") else None,
        )
        windows = [window_from_spec(WEEKLY, "config")] if sites is None else []
        schedule = Schedule(windows, watched.values())
        self.pipeline = Pipeline(evaluator, self.ledger, self.live, metrics, schedule)
        self.pipeline.start(list(watched), clock.now)
        return self

    async def settle(self) -> None:
        """Until the writer has committed everything queued, and then a heartbeat dated by the
        clock as it is now (bounded)."""
        try:
            async with asyncio.timeout(10):
                await self.ledger.flushed()
                # the commit under way may have read the clock before it was set: the one
                # after it began later, and its heartbeat says now
                target = self.commits + 2
                while self.commits < target:
                    self._commit.clear()
                    await self._commit.wait()
        except TimeoutError:
            raise AssertionError("the ledger writer did not settle") from None

    async def crash(self) -> None:
        """The process dies: no clean close, whatever is committed stays."""
        self.writer.cancel()
        await asyncio.gather(self.writer, return_exceptions=True)
        await self.ledger._db.close()

    async def stop(self, at: float) -> None:
        self.ledger.stop()
        await self.writer
        await self.ledger.close(at=at)

    def state(self, site: str) -> State:
        return self.live.views[site].state

    def states(self) -> dict[str, State]:
        return {site: view.state for site, view in self.live.views.items()}


def polls(first: int, last: int) -> list[tuple[int, str]]:
    """Every poll in [first, last), in time order."""
    found = []
    for k in range(first // 60 - 1, last // 60 + 1):
        for site, offset in OFFSETS.items():
            t = 60 * k + offset
            if first <= t < last:
                found.append((t, site))
    return sorted(found)


async def play(run: Run, clock: Clock, first: int, last: int) -> dict[int, dict[str, State]]:
    """Feed the script's polls of [first, last); return the live states seen at some moments."""
    seen: dict[int, dict[str, State]] = {}
    checkpoints = [t for t in (3800, 8000, 14500, 16400, 30500) if first <= t < last]
    for t, site in polls(first, last):
        if checkpoints and t >= checkpoints[0]:
            seen[checkpoints.pop(0)] = {s: run.state(s) for s in SITES}
        if t == BROKER_LOST:
            run.pipeline.blind(["spk"], T0 + t, "mqtt broker lost")
        if t == BROKER_BACK:
            run.pipeline.sight_restored(["spk"], T0 + t)
        clock.now = T0 + t
        values: dict[str, float | str] = {"on_battery": 1} if on_battery(site, t) else {}
        ok = answers(site, t)
        run.pipeline.observe(
            Observation(site, T0 + t, ok, values=values, error=None if ok else "snmp timeout")
        )
        if t % 600 == 0:
            await run.settle()
    return seen


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite"


async def test_a_scripted_day_gives_the_hand_computed_figures_to_the_second(
    ledger_path: Path,
) -> None:
    clock = Clock()
    first = await Run.start(ledger_path, clock)
    seen = await play(first, clock, 0, CRASH)
    clock.now = T0 + CRASH
    await first.settle()  # the last heartbeat is exactly at CRASH
    await first.crash()

    clock.now = T0 + RESTART
    second = await Run.start(ledger_path, clock)
    assert second.ledger.recovered_gap == (T0 + CRASH, T0 + RESTART)
    seen.update(await play(second, clock, RESTART, END))
    clock.now = T0 + END
    await second.stop(at=T0 + END)

    # what the live view (and so /metrics) said on the way
    assert seen[3800]["bts1"] is State.UNREACHABLE and seen[3800]["gw"] is State.DOWN
    assert seen[8000]["bts2"] is State.MAINTENANCE
    assert seen[14500]["bts2"] is State.DOWN
    assert seen[16400]["bts2"] is State.DEGRADED
    assert seen[30500]["spk"] is State.UNKNOWN

    # the report reads rollups (hourly records for this window), not only raw intervals
    with open_readonly(ledger_path) as conn:
        watermark = watermark_of(conn)
        assert watermark >= to_ms(T0 + 8 * 3600)
        sources = {p.source for p in plan(to_ms(T0), to_ms(T0 + END), watermark, set())}
        assert "hours" in sources

    report = build_report([ledger_path], T0, T0 + END, "site", "Asia/Ho_Chi_Minh")
    by_site = {row.key: row for row in report.rows}
    assert set(by_site) == set(SITES)
    for site, expected in EXPECTED.items():
        f = by_site[site].figures
        got = {key: getattr(f, key) for key in expected}
        assert got == expected, site
        assert (
            sum(expected[k] for k in ("up", "degraded", "down", "unreachable"))
            + expected["maintenance"]
            + expected["unknown"]
            == END
        )
        available = expected["up"] + expected["degraded"]
        counted = END - expected["unknown"] - expected["maintenance"] - expected["unreachable"]
        assert f.availability == available / counted, site
        assert f.mttr == (expected["down"] / expected["outages"] if expected["outages"] else None)
        assert f.mtbf == (available / expected["outages"] if expected["outages"] else None)

    assert by_site["bts1"].figures.availability == 1.0  # its parent's outage is not its own
    assert [(g.start - T0, g.end - T0, g.cause) for g in report.gaps] == [
        (CRASH, RESTART, "crashed")
    ]

    # by owner: Viettel = bts1 + bts2, weighted by counted time
    owners = {row.key: row for row in build_report([ledger_path], T0, T0 + END, "owner").rows}
    viettel = owners["viettel"].figures
    b1, b2 = EXPECTED["bts1"], EXPECTED["bts2"]
    assert viettel.down == b2["down"] and viettel.outages == 3
    assert viettel.availability == (b1["up"] + b2["up"] + b2["degraded"]) / (
        2 * END - b1["unknown"] - b1["unreachable"] - b2["unknown"] - b2["maintenance"]
    )
    assert owners["viettel"].name == "Viettel" and owners["vnpt"].name == "VNPT Điện Biên"
    communes = {row.key: row for row in build_report([ledger_path], T0, T0 + END, "commune").rows}
    assert communes["thanh-nua"].sites == 3 and communes["thanh-nua"].name == "Thanh Nưa"
    assert communes["muong-phang"].figures.down == EXPECTED["spk"]["down"]

    # the CSV carries the same seconds, and the Vietnamese names intact
    csv_text = render_csv(report)
    assert "Cụm loa Bản Phăng" in csv_text
    bts2_line = next(line for line in csv_text.splitlines() if line.startswith("bts2,"))
    assert f",{b2['down']},{b2['unreachable']},{b2['maintenance']},{b2['unknown']}," in bts2_line

    with sqlite3.connect(ledger_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_sub_window_counts_only_its_own_seconds(ledger_path: Path) -> None:
    """The same script, read over 01:00..03:30 local: the gateway's outage, bts2's flap
    outage, and the maintenance window cut at the window's end."""
    clock = Clock()
    run = await Run.start(ledger_path, clock)
    await play(run, clock, 0, 12_600)
    clock.now = T0 + 12_600
    await run.stop(at=T0 + 12_600)
    start, end = T0 + 3600, T0 + 12_600
    report = build_report([ledger_path], start, end, "site")
    rows = {row.key: row.figures for row in report.rows}
    assert (rows["gw"].down, rows["gw"].up, rows["gw"].outages) == (1200, 9000 - 1200, 1)
    bts2 = rows["bts2"]
    assert (bts2.maintenance, bts2.up, bts2.down, bts2.outages) == (
        12_600 - 7200,
        (7200 - 3600) - (4520 - 4220),
        4520 - 4220,
        1,
    )
    assert (rows["bts1"].unreachable, rows["bts1"].up) == (4870 - 3610, 9000 - (4870 - 3610))


# --- a parent outage across a restart, its child polled three seconds before it ------------
#
#   gw    gateway, polled at +5 s; fails from 605 s to 2105 s (answers again at 2165 s)
#   bts   BTS behind gw, polled at +2 s: it sees the cut 3 s before its parent does, at 602 s,
#         after gw's last answer (545 s); it answers again at 2222 s
# The daemon crashes at 1200 s (its last heartbeat) and starts again at 1500 s, both sites
# still failing. Worked out by hand:
#   gw:  unknown [0,5) up [5,605) down [605,1200) gap [1200,1500) no data [1500,1505)
#        down [1505,2165) up [2165,3000): ONE outage of 1255 s (down on both sides of the gap)
#   bts: unknown [0,2) up [2,602) unreachable [602,1200) gap, no data [1500,1502)
#        unreachable [1502,2222) up [2222,3000): never down, its failures are the gateway's
PARENT_SITES = {
    "gw": _site("gw", "gateway", "Cổng mạng UBND Thanh Nưa", "thanh-nua", "vnpt"),
    "bts": _site("bts", "bts", "BTS Viettel Thanh Nưa 01", "thanh-nua", "viettel", parent="gw"),
}
PARENT_OFFSETS = {"gw": 5, "bts": 2}
PARENT_CRASH, PARENT_RESTART, PARENT_END = 1200, 1500, 3000


def parent_answers(site: str, t: int) -> bool:
    return not 605 <= t <= 2105 if site == "gw" else not 602 <= t <= 2162


async def play_parent(run: Run, clock: Clock, first: int, last: int) -> list[dict[str, State]]:
    seen = []
    polls = sorted(
        (60 * k + offset, site)
        for k in range(last // 60 + 1)
        for site, offset in PARENT_OFFSETS.items()
        if first <= 60 * k + offset < last
    )
    for t, site in polls:
        clock.now = T0 + t
        ok = parent_answers(site, t)
        run.pipeline.observe(
            Observation(
                site,
                T0 + t,
                ok,
                error=None if ok else "snmp timeout",
                error_reason=None if ok else "timeout",
            )
        )
        seen.append(run.states())
        if t % 600 < 60:
            await run.settle()
    return seen


async def test_a_parent_outage_across_a_restart_is_one_outage_and_never_its_childs(
    ledger_path: Path,
) -> None:
    clock = Clock()
    first = await Run.start(ledger_path, clock, PARENT_SITES)
    seen = await play_parent(first, clock, 0, PARENT_CRASH)
    clock.now = T0 + PARENT_CRASH
    await first.settle()
    await first.crash()
    clock.now = T0 + PARENT_RESTART
    second = await Run.start(ledger_path, clock, PARENT_SITES)
    seen += await play_parent(second, clock, PARENT_RESTART, PARENT_END)
    clock.now = T0 + PARENT_END
    await second.stop(at=T0 + PARENT_END)

    report = build_report([ledger_path], T0, T0 + PARENT_END, "site")
    rows = {row.key: row.figures for row in report.rows}
    gw, bts = rows["gw"], rows["bts"]
    assert (gw.up, gw.down, gw.unknown) == (600 + 835, 595 + 660, 5 + 300 + 5)
    assert (gw.outages, gw.longest_outage, gw.mttr) == (1, 1255, 1255)
    assert (bts.down, bts.outages, bts.mttr) == (0, 0, None)
    assert (bts.up, bts.unreachable, bts.unknown) == (600 + 778, 598 + 720, 2 + 300 + 2)
    assert bts.availability == 1.0
    # what the live view said on the way: the child was confirmed down first, each time, for
    # the seconds until its parent was confirmed (the ledger keeps no time of it)
    assert any(states["bts"] is State.DOWN for states in seen)
    intervals = read_intervals(ledger_path, "bts")
    assert all(i.end == i.start for i in intervals if i.state is State.DOWN)
    assert {i.codes for i in intervals if i.state is State.UNREACHABLE} == {("behind_parent",)}
    assert {i.codes for i in read_intervals(ledger_path, "gw") if i.state is State.DOWN} == {
        ("timeout",)
    }
