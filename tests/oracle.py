"""The oracle: what an operator should see, decided from the simulator's own record of what it
did (`districtmon simulate --truth FILE`) and from the test's own actions -- never from the
code under test.

The record says, at each moment, whether each simulated device answers its probe, its health
facts (on mains, battery low, amplifier, transmitter, cabinet door), and whether the MQTT
broker path is up. From it and the rules of DESIGN.md this module derives each site's
expected state over time:

- a site that does not answer is `unreachable` while its parent does not answer either (its
  time is charged to the parent), `down` otherwise;
- a site that answers is `degraded` while a health fact its kind's profile reads is bad
  (`DEGRADING`), `up` otherwise;
- an MQTT site is `unknown` while the broker path is down (the monitor is blind), every site
  is `unknown` while the daemon is stopped, and `maintenance` inside a planned window.

The daemon confirms a change only after several observations, so a stretch too short to be
confirmed never shows, and every edge is late by up to one observation: `Timing` holds the
numbers that make those allowances, and the comparison allows exactly them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# What each kind's shipped profile or telemetry mapping reads, and which value of each health
# fact makes the site degraded: the spec, written down here from the profiles' documentation.
DEGRADING: dict[str, dict[str, bool]] = {
    "bts": {"mains": False, "battery_low": True, "door_open": True},  # bts-power (UPS-MIB)
    "radio_station": {"transmitter_ok": False},  # radio-transmitter
    # telemetry mapping: amplifier_ok, and battery_volts under its charger's (on battery)
    "loudspeaker": {"amplifier_ok": False, "mains": False},
}
STATES = ("up", "degraded", "down", "unreachable", "maintenance", "unknown")


@dataclass(frozen=True, slots=True)
class SiteInfo:
    kind: str
    parent: str | None
    probe: str


@dataclass(slots=True)
class Truth:
    """The simulator's record, indexed for the questions the oracle asks."""

    speed: float
    start_wall: float
    sites: dict[str, SiteInfo]
    records: list[dict[str, Any]]
    answering: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    conditions: dict[tuple[str, str], list[tuple[float, bool]]] = field(default_factory=dict)
    broker: list[tuple[float, bool]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    boots: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def parse(cls, records: Iterable[dict[str, Any]]) -> Truth:
        ordered = sorted(records, key=lambda r: int(r["seq"]))
        start = ordered[0]
        assert start["type"] == "start", start
        sites = {
            site: SiteInfo(info["kind"], info.get("parent"), info["probe"])
            for site, info in start["sites"].items()
        }
        truth = cls(float(start["speed"]), float(start["wall"]), sites, ordered)
        for record in ordered[1:]:
            wall = float(record["wall"])
            kind = record["type"]
            if kind == "serves":
                truth.answering.setdefault(record["site"], []).append(
                    (wall, bool(record["answering"]))
                )
            elif kind == "condition":
                key = (record["site"], record["name"])
                truth.conditions.setdefault(key, []).append((wall, bool(record["value"])))
            elif kind == "broker":
                truth.broker.append((wall, bool(record["up"])))
            elif kind == "action":
                truth.actions.append(record)
            elif kind == "boot":
                truth.boots.setdefault(record["site"], []).append(wall)
        return truth

    @classmethod
    def load(cls, path: Path) -> Truth:
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls.parse(json.loads(line) for line in lines if line.strip())

    def answers(self, site: str, at: float) -> bool:
        return _value_at(self.answering.get(site, []), at, default=True)

    def condition(self, site: str, name: str, at: float) -> bool | None:
        series = self.conditions.get((site, name))
        return None if not series else _value_at(series, at, default=None)

    def broker_up(self, at: float) -> bool:
        return _value_at(self.broker, at, default=True)

    def edges(self, site: str) -> list[float]:
        """Every moment something about `site` (or what it depends on) changed."""
        times = [t for t, _ in self.answering.get(site, [])]
        for (name_site, _name), series in self.conditions.items():
            if name_site == site:
                times.extend(t for t, _ in series)
        info = self.sites[site]
        if info.parent is not None:
            times.extend(t for t, _ in self.answering.get(info.parent, []))
        if info.probe == "mqtt":
            times.extend(t for t, _ in self.broker)
        return sorted(set(times))


T = TypeVar("T")


def _value_at(series: Sequence[tuple[float, T]], at: float, default: T) -> T:
    value = default
    for when, changed in series:
        if when > at:
            break
        value = changed
    return value


@dataclass(frozen=True, slots=True)
class Timing:
    """The daemon's timings in the run (seconds, already divided by the run's factor)."""

    poll: float  # poll.interval_seconds
    timeout: float  # poll.timeout_seconds (retries 0)
    down_after: int
    up_after: int
    report: float  # the MQTT devices' telemetry period (real seconds)
    slack: float = 0.5  # scheduling, evaluation and scrape jitter on a loaded machine
    # the daemon's longest wait before it connects to the broker again (mqtt.reconnect_max_
    # seconds with its jitter): a return from the broker's loss is dated after it
    reconnect: float = 0.0

    def late(self, probe: str) -> float:
        """How late the daemon may date an edge: its first observation after it."""
        every = self.report if probe == "mqtt" else self.poll
        return every + self.timeout + self.slack

    def every(self, probe: str) -> float:
        return self.report if probe == "mqtt" else self.poll

    def sure(self, probe: str, count: int) -> float:
        """A stretch this long holds `count` observations in a row, whatever the phase."""
        return count * self.every(probe) + self.timeout + self.slack

    def never(self, probe: str, count: int) -> float:
        """A stretch shorter than this cannot hold `count` observations in a row."""
        return max(0.0, (count - 1) * self.every(probe) - self.timeout - self.slack)


@dataclass(frozen=True, slots=True)
class Span:
    state: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Expected:
    """A site's expected timeline, and how far a true ledger may differ from it."""

    site: str
    spans: list[Span]
    tolerance: float  # seconds, per state: late edges, and stretches that may or may not show
    outages: int  # confirmed down stretches
    ambiguous_outages: int  # down stretches that may or may not be confirmed

    def seconds(self) -> dict[str, float]:
        totals = dict.fromkeys(STATES, 0.0)
        for span in self.spans:
            totals[span.state] += span.seconds
        return totals


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch the test itself made: a planned window, or the daemon stopped."""

    start: float
    end: float
    sites: frozenset[str] | None  # None: every site

    def holds(self, site: str, at: float) -> bool:
        return self.start <= at < self.end and (self.sites is None or site in self.sites)


def raw_state(
    truth: Truth,
    site: str,
    at: float,
    maintenance: Sequence[Window] = (),
    gaps: Sequence[Window] = (),
) -> str:
    """The state the rules give at one instant, before any confirmation delay."""
    info = truth.sites[site]
    if any(gap.holds(site, at) for gap in gaps):
        return "unknown"
    if any(window.holds(site, at) for window in maintenance):
        return "maintenance"
    if info.probe == "mqtt" and not truth.broker_up(at):
        return "unknown"
    if not truth.answers(site, at):
        parent = info.parent
        if parent is not None and parent in truth.sites and not truth.answers(parent, at):
            return "unreachable"
        return "down"
    for fact, bad in DEGRADING.get(info.kind, {}).items():
        if truth.condition(site, fact, at) is bad:
            return "degraded"
    return "up"


def expected(
    truth: Truth,
    site: str,
    start: float,
    end: float,
    timing: Timing,
    maintenance: Sequence[Window] = (),
    gaps: Sequence[Window] = (),
) -> Expected:
    """The expected timeline of `site` over `[start, end)` (wall seconds).

    A stretch shorter than the daemon can confirm is merged into what came before it; one
    that may or may not be confirmed stays, and its length is added to the tolerance."""
    probe = truth.sites[site].probe
    cuts = [start]
    for window in (*maintenance, *gaps):
        if window.sites is None or site in window.sites:
            cuts.extend(t for t in (window.start, window.end) if start < t < end)
    cuts.extend(t for t in truth.edges(site) if start < t < end)
    cuts = [*sorted(set(cuts)), end]
    raw: list[Span] = []
    for a, b in itertools.pairwise(cuts):
        state = raw_state(truth, site, (a + b) / 2, maintenance, gaps)
        if raw and raw[-1].state == state:
            raw[-1] = Span(state, raw[-1].start, b)
        else:
            raw.append(Span(state, a, b))
    spans: list[Span] = []
    tolerance = 0.0
    outages = ambiguous = 0
    late = timing.late(probe)
    for index, span in enumerate(raw):
        previous = spans[-1].state if spans else None
        needs = _observations_to_enter(span.state, previous, probe, timing)
        first = index == 0
        if not first and needs and span.seconds < timing.never(probe, needs):
            spans[-1] = Span(spans[-1].state, spans[-1].start, span.end)  # never shows
            continue
        if not first and needs and span.seconds < timing.sure(probe, needs):
            tolerance += span.seconds  # may show or not
            if span.state == "down":
                ambiguous += 1
        elif span.state == "down" and not first:
            outages += 1
        if spans and spans[-1].state == span.state:
            spans[-1] = Span(span.state, spans[-1].start, span.end)
        else:
            spans.append(span)
        if not first:
            tolerance += late
            if probe == "mqtt" and previous == "unknown":
                tolerance += timing.reconnect
    if spans and spans[0].state == "down":
        outages += 1
    return Expected(site, spans, tolerance, outages, ambiguous)


def _observations_to_enter(state: str, previous: str | None, probe: str, timing: Timing) -> int:
    """How many observations in a row the daemon needs before it says `state` (0: it needs
    none, the change is the monitor's own or planned)."""
    if state in ("unknown", "maintenance"):
        return 0
    if previous in (None, "unknown", "maintenance"):
        return 1  # the first observation decides
    bad = ("down", "unreachable")
    if state in bad:
        if previous in bad:
            return 1
        return 1 if probe == "mqtt" else timing.down_after  # an MQTT will is decisive
    if previous in bad:
        return timing.up_after
    return timing.down_after if state == "degraded" else timing.up_after


def ledger_seconds(
    intervals: Iterable[tuple[str, float, float | None]], start: float, end: float
) -> dict[str, float]:
    """Seconds per state of one site's ledger intervals `(state, start, end)` within
    `[start, end)`; time no interval covers is unknown (the monitor was not watching)."""
    totals = dict.fromkeys(STATES, 0.0)
    covered = 0.0
    for state, a, b in intervals:
        lo, hi = max(a, start), min(end if b is None else b, end)
        if hi > lo:
            totals[state] += hi - lo
            covered += hi - lo
    totals["unknown"] += max(0.0, (end - start) - covered)
    return totals


def ledger_outages(intervals: Iterable[tuple[str, float, float | None]], start: float) -> int:
    """Down stretches of one site's ledger intervals after `start` (a monitor gap between two
    down intervals does not end an outage, README "Availability")."""
    count = 0
    previous = None
    for state, _a, b in intervals:
        if b is not None and b <= start:
            continue
        if state == "down" and previous != "down":
            count += 1
        if state != "unknown" or previous != "down":
            previous = state
    return count
