"""What every dashboard panel must show at an instant of a played day, decided from the
simulator's record (tests/oracle.py) and from what its devices reported (the sampler of
tests/stack.py): the bridge between the oracle and the panel checks of tests/panels.py.

An instant is checked only when it is quiet: no site's expected state changed within
`margin` before it (the longest the daemon takes to confirm a change and Prometheus to
scrape it and evaluate the rules on it, or a panel's rate window, whichever is longer), and
the monitor was running. There the state each site must show is the oracle's, exactly; the
figures that drift (a battery draining, a rate) are the range the devices' own readings
around the instant allow, widened by the daemon's resolution."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from alerting import PROMETHEUS_CONFIG, load_yaml, parse_duration
from oracle import Span, Timing, Truth, Window, expected, raw_state
from panels import (
    ALL,
    ANNOTATIONS,
    EXPECTED,
    SEVERITY,
    UNSTATED,
    Place,
    Range,
    Reading,
    Selection,
    World,
    base_kinds,
    check_labels,
    dashboards,
    panels,
    rate_interval,
    substitute,
)
from panels import Truth as PanelTruth

from monitor.config.load import load_config
from monitor.core.reasons import FAILURE_CODES

# The codes a site not up must show, from the oracle's view of it: its state, and for a
# degraded one, the health fact that is bad (the shipped profiles' and mappings' codes).
FACT_CODES: dict[tuple[str, str], str] = {
    ("bts", "mains"): "on_battery",
    ("bts", "battery_low"): "battery_low",
    ("bts", "door_open"): "door_open",
    ("radio_station", "transmitter_ok"): "transmitter_off_air",
    ("loudspeaker", "amplifier_ok"): "amplifier_fault",
    ("loudspeaker", "mains"): "on_battery",
}
# Codes a degraded site may show beside those: the profiles' rules on analog readings, which
# follow from the fact (a BTS on battery long enough has its voltage under the low mark; a
# transmitter off air is also a transmitter fault).
MAY_CODES: dict[str, frozenset[str]] = {
    "bts": frozenset({"battery_low", "cabinet_hot"}),
    "radio_station": frozenset({"transmitter_fault", "reflected_power_high", "audio_lost"}),
    "loudspeaker": frozenset({"battery_low"}),
}
# How a silent device's failure reads, by probe
DOWN_CODES: dict[str, frozenset[str]] = {
    "snmp": frozenset({"timeout"}),
    "mqtt": frozenset({"offline", "silent"}),
}
DEGRADING_VALUE = {  # the value of each health fact that makes its site degraded
    "mains": False,
    "battery_low": True,
    "door_open": True,
    "transmitter_ok": False,
    "amplifier_ok": False,
}


Query = Callable[[str, float], list[dict[str, Any]]]


@dataclass(frozen=True)
class Sample:
    wall: float
    measured: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Played:
    """What the panel check reads of a played day."""

    truth: Truth
    config: Any  # monitor.config.model.Config of the run's configuration
    samples: Sequence[Sample]
    timing: Timing
    started_at: float  # the daemon's first start
    known_at: float  # every site seen
    ended_at: float
    gaps: Sequence[Window]
    maintenance: Sequence[Window]
    scrape: float  # Prometheus' scrape (and rule evaluation) interval, seconds


def _availability_scrape() -> float:
    """The scrape interval of the shipped job that scrapes each site's availability, seconds."""
    config = load_yaml(PROMETHEUS_CONFIG)
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "districtmon_availability"]
    return float(parse_duration(str(job["scrape_interval"])))


AVAILABILITY_SCRAPE = _availability_scrape()


def world_of(config: Any, truth: Truth) -> World:
    places = tuple(
        Place(
            site.id,
            site.kind,
            site.commune,
            site.owner,
            truth.sites[site.id].probe,
            covers=tuple(site.covers),
        )
        for site in config.sites.values()
    )
    return World(
        places,
        {c.id: tuple(c.areas) for c in config.communes.values()},
        {o.id: o.name for o in config.owners.values()},
        {s.id: s.name for s in config.sites.values()},
    )


def load(config_dir: Any) -> Any:
    return load_config(config_dir, environ={})


def margin(played: Played, rate_window: float = 0.0) -> float:
    """How long before an instant nothing may have changed for a state (or, given its
    window, a rate) shown then to be sure: the longest confirmation, or the rate's window
    with the poll that fills it, then a scrape and a rule evaluation."""
    timing = played.timing
    confirm = max(
        timing.sure(probe, max(timing.down_after, timing.up_after)) for probe in ("snmp", "mqtt")
    )
    wanted = rate_window + timing.late("snmp") if rate_window else 0.0
    return max(confirm, wanted) + 2 * played.scrape + timing.slack


def _edges(played: Played) -> list[float]:
    return sorted(
        {e for site in played.truth.sites for e in played.truth.edges(site)}
        | {t for w in played.maintenance for t in (w.start, w.end)}
    )


def quiet(played: Played, edges: Sequence[float], at: float, calm: float) -> bool:
    """Nothing changed (`edges`: _edges of the day) within `calm` before `at`, and the
    monitor ran through it."""
    recent = any(at - calm <= e <= at + 1.0 for e in edges)
    in_gap = any(g.start - 1.0 <= at <= g.end + calm for g in played.gaps)
    return not recent and not in_gap


def quiet_instants(played: Played, step: float = 0.5) -> list[float]:
    """Instants with nothing changing within the margin before them, one per quiet stretch
    (its middle), over the watched part of the day."""
    calm = margin(played)
    edges = _edges(played)
    last = min(played.ended_at, played.samples[-1].wall if played.samples else 0.0) - 1.0
    stretches: list[list[float]] = [[]]
    t = played.known_at + calm
    while t <= last:
        if quiet(played, edges, t, calm):
            stretches[-1].append(t)
        elif stretches[-1]:
            stretches.append([])
        t += step
    return [s[len(s) // 2] for s in stretches if s]


def _readings(
    samples: Sequence[Sample], site: str, start: float, end: float
) -> list[tuple[float, dict[str, Any]]]:
    return [
        (s.wall, s.measured[site]) for s in samples if start <= s.wall <= end and site in s.measured
    ]


def _spread(values: Iterable[float], resolution: float) -> Range | None:
    found = list(values)
    if not found:
        return None
    return Range(min(found) - resolution, max(found) + resolution)


def facts_at(played: Played, place: Place, at: float, rate_window: float) -> dict[str, Reading]:
    """What the site's device reported around `at`, as the panels read it."""
    timing, truth = played.timing, played.truth
    every = timing.every(place.probe)
    fresh = every + timing.timeout + 2 * played.scrape + timing.slack
    near = _readings(played.samples, place.id, at - fresh - 0.5, at + 0.5)
    facts: dict[str, Reading] = {}
    if place.kind == "bts":
        mains = truth.condition(place.id, "mains", at)
        if mains is not None:
            facts["mains_ok"] = 1.0 if mains else 0.0
        volts = _spread((m["battery_volts"] for _, m in near if "battery_volts" in m), 0.1)
        cabinet = _spread((m["cabinet_celsius"] for _, m in near if "cabinet_celsius" in m), 0.1)
        if volts is not None:
            facts["battery_volts"] = volts
        if cabinet is not None:
            facts["cabinet"] = cabinet
    elif place.kind == "loudspeaker":
        amplifier = truth.condition(place.id, "amplifier_ok", at)
        if amplifier is not None:
            facts["amplifier_ok"] = 1.0 if amplifier else 0.0
        rssi = _spread((float(m["rssi_dbm"]) for _, m in near if "rssi_dbm" in m), 1.0)
        if rssi is not None:
            facts["rssi_dbm"] = rssi
        playing = {bool(m["playing"]) for _, m in near if "playing" in m}
        if len(playing) == 1:
            facts["playing"] = 1.0 if playing.pop() else 0.0
        elif playing:  # the programme began or ended in the window: either may be shown
            facts["playing"] = Range(0.0, 1.0)
    elif place.kind == "gateway":
        links = [m["uplink"] for _, m in near if "uplink" in m]
        if links:
            facts["wan_down"] = 0.0 if links[-1]["oper_up"] else 1.0
        window = _readings(played.samples, place.id, at - rate_window - fresh, at)
        moving = [(wall, m["uplink"]) for wall, m in window if "uplink" in m]
        if len(moving) >= 2 and moving[-1][0] > moving[0][0]:
            (t0, a), (t1, b) = moving[0], moving[-1]
            for name, key in (("wan_in", "in_octets"), ("wan_out", "out_octets")):
                bits = 8 * (b[key] - a[key]) / (t1 - t0)
                if bits >= 0:  # a reboot inside the window: the counter restarted
                    facts[name] = Range(0.65 * bits, 1.35 * bits)
    return facts


def _stretches(spans: Sequence[Span], gaps: Sequence[Window]) -> list[Span]:
    """The spans as the daemon's `since` tells them: a monitor gap starts a new stretch,
    except inside an outage that goes on across it (README "Availability"). Unknown for any
    other reason (the broker lost) is a stretch of its own."""
    merged: list[Span] = []
    for span in spans:
        if (
            len(merged) >= 2
            and _in_gap(merged[-1], gaps)
            and merged[-2].state == span.state
            and span.state in ("down", "unreachable")
        ):
            merged.pop()
            before = merged.pop()
            merged.append(Span(span.state, before.start, span.end))
            continue
        merged.append(span)
    return merged


def panel_truth(
    played: Played, world: World, at: float, states: dict[str, str], range_start: float
) -> PanelTruth:
    """Times in state, availability, reboots, scrapes up and state changes at `at`."""
    truth, timing = played.truth, played.timing
    since: dict[str, Range] = {}
    windows: dict[str, tuple[Range, Range]] = {}
    boots: dict[str, Range] = {}
    scrapes: dict[str, Range] = {}
    changes: dict[str, Range] = {}
    reasons: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for place in world.places:
        want = expected(
            truth, place.id, played.known_at, at, timing, played.maintenance, played.gaps
        )
        late = timing.late(place.probe)
        current = _stretches(want.spans, played.gaps)[-1]
        assert current.state == states[place.id], (place.id, current, states[place.id])
        if current.start > played.known_at:
            # dated at the first observation that saw it: one poll late, or two when the
            # machine delayed the poll due at the edge (the scheduler's lag). Early too: an
            # observation is dated when its poll began, and a poll that spans the edge (a ping
            # burst whose last requests are answered once the fibre is back) dates the new
            # state before the record does, by up to the poll's timeout
            slow = late + timing.every(place.probe) + 2 * played.scrape
            if place.probe == "mqtt" and played.config.mqtt is not None:
                # a stretch that begins with the broker's return waits for the daemon to
                # connect again (its backoff) before the first report can date it
                slow += played.config.mqtt.reconnect_max_seconds + timing.slack
            early = played.scrape + timing.timeout + timing.slack
            since[place.id] = Range(at - current.start - slow, at - current.start + early)
        else:  # since the daemon's first look at it
            since[place.id] = Range(at - played.known_at - late, at - played.started_at)
        seconds = want.seconds()
        available = seconds["up"] + seconds["degraded"]
        counted = available + seconds["down"]
        # the daemon's figures start at its own start and are refreshed every minute (divided
        # by the speed), and Prometheus scrapes them at that pace in their own job: up to a
        # refresh and a scrape of that job old
        early = played.known_at - played.started_at
        stale = (60 + AVAILABILITY_SCRAPE) / (truth.speed or 1) + 2 * played.scrape
        slack = want.tolerance + stale
        windows[place.id] = (
            Range(max(0.0, available - slack), available + slack + early),
            Range(max(0.0, counted - slack), counted + slack + early),
        )
        in_range = expected(
            truth, place.id, range_start, at, timing, played.maintenance, played.gaps
        )
        watched = in_range.seconds()
        seen = sum(watched[s] for s in ("up", "degraded", "down", "unreachable"))
        if seen > 0:
            up = watched["up"] + watched["degraded"]
            spread = in_range.tolerance + late + 2 * played.scrape
            scrapes[place.id] = Range(
                max(0.0, (up - spread) / seen), min(1.0, (up + spread) / seen)
            )
        answered = [s for s in in_range.spans if s.state in ("up", "degraded")]
        if place.probe == "snmp" and answered:
            # resets() sees a boot only after a sample of the uptime before it, in the range
            n = sum(
                b <= at and any(s.start < b - timing.late("snmp") for s in answered)
                for b in truth.boots.get(place.id, [])
            )
            boots[place.id] = Range(n, n)
        # changes() of the since gauge: one per stretch after the first; a restart may show
        # the moment of no data before the first poll; a stretch too short to be sure of
        # may not show at all
        stretches = [
            s for s in _stretches(in_range.spans, played.gaps) if not _in_gap(s, played.gaps)
        ]
        count = max(0, len(stretches) - 1)
        restarts = sum(range_start < g.end <= at for g in played.gaps)
        sure = timing.sure(place.probe, max(timing.down_after, timing.up_after))
        unsure = sum(1 for s in stretches[1:] if s.seconds < sure)
        changes[place.id] = Range(max(0, count - 2 * unsure - restarts), count + 2 * restarts)
        reasons[place.id] = _reasons(played, place, at, states[place.id])
    return PanelTruth(
        since,
        {"30d": windows, "24h": windows},
        boots,
        scrapes,
        changes,
        reasons,
        broker_up=truth.broker_up(at),
    )


def _in_gap(span: Span, gaps: Sequence[Window]) -> bool:
    return span.state == "unknown" and any(
        g.start - 1 <= span.start and span.end <= g.end + 1 for g in gaps
    )


def _reasons(
    played: Played, place: Place, at: float, state: str
) -> tuple[frozenset[str], frozenset[str]]:
    if state == "up":
        return frozenset(), frozenset()
    if state == "unreachable":
        return frozenset({"behind_parent"}), frozenset()
    if state == "maintenance":
        return frozenset({"maintenance"}), frozenset()
    if state == "unknown":
        return frozenset(), frozenset({"broker_lost", "subscription_lost", "no_data"})
    if state == "down":
        codes = DOWN_CODES.get(place.probe, frozenset(FAILURE_CODES))
        return (codes if len(codes) == 1 else frozenset()), codes
    must = frozenset(
        code
        for (kind, fact), code in FACT_CODES.items()
        if kind == place.kind
        and played.truth.condition(place.id, fact, at) is DEGRADING_VALUE[fact]
    )
    return must, MAY_CODES.get(place.kind, frozenset())


def states_at(played: Played, at: float) -> dict[str, str]:
    return {
        site: raw_state(played.truth, site, at, played.maintenance, played.gaps)
        for site in played.truth.sites
    }


def one_value(board: dict[str, Any], world: World, states: dict[str, str]) -> dict[str, str]:
    """The variables at one real value, as an operator narrows a dashboard: the commune,
    owner and kind of a site of the dashboard's kinds that is not up (of any, when all are)."""
    kinds = base_kinds(board)
    mine = [p for p in world.places if kinds == ALL or p.kind in kinds.split("|")]
    troubled = [p for p in mine if states[p.id] != "up"] or mine
    pick = sorted(troubled, key=lambda p: (SEVERITY[states[p.id]] * -1, p.id))[0]
    chosen = {"commune": pick.commune, "owner": pick.owner, "kind": pick.kind, "site": pick.id}
    names = [v["name"] for v in board["templating"]["list"]]
    return {name: chosen.get(name, "districtmon") for name in names}  # job: the shipped one


def check_panels(
    played: Played, query: Query, factor: float, most: int = 10
) -> tuple[list[str], list[tuple[float, dict[str, str], bool]]]:
    """Every panel target of every dashboard, at quiet instants of the day, with the
    variables at All and at one value: what is wrong, and the instants with their states and
    whether the rates were stated there."""
    world = world_of(played.config, played.truth)
    boards = dashboards()
    rated = [
        rate_interval(p, played.scrape, factor)
        for board in boards.values()
        for p in panels(board)
        if any("$__rate_interval" in t["expr"] for t in p["targets"])
    ]
    rate_window = max(rated)
    rate_calm = margin(played, rate_window)
    instants = quiet_instants(played)
    edges = _edges(played)
    if len(instants) > most:
        instants = [instants[round(i * (len(instants) - 1) / (most - 1))] for i in range(most)]
    range_start = played.known_at + 2.0
    problems: list[str] = []
    seen: list[tuple[float, dict[str, str], bool]] = []
    for at in instants:
        states = states_at(played, at)
        rates_quiet = quiet(played, edges, at, rate_calm)
        seen.append((at, states, rates_quiet))
        truth = panel_truth(played, world, at, states, range_start)
        if query("districtmon_objective_ratio", at):  # a daemon that exports objectives
            held, per_kind = objectives_of(played.config)
            truth = replace(truth, objectives=held, kind_objectives=per_kind)
        places = tuple(replace(p, facts=facts_at(played, p, at, rate_window)) for p in world.places)
        now = World(places, world.areas, world.owner_names, world.site_names)
        clock = f"{at - played.known_at:.0f} s into the day"
        for board in boards.values():
            kinds = base_kinds(board)
            everything = {v["name"]: ALL for v in board["templating"]["list"]}
            # the annotations: the overview's are every dashboard's but the site's
            notes = board["annotations"]["list"] if board["uid"] in NOTED else []
            for note in notes:
                if note["name"] not in ANNOTATIONS:
                    continue
                for values in (everything, one_value(board, now, states)):
                    expr = substitute(note["expr"], values, {})
                    sel = Selection(now, values, states, at - played.started_at, truth)
                    try:
                        ANNOTATIONS[note["name"]](at)(sel, query(expr, at))
                    except AssertionError as exc:
                        problems.append(
                            f"{clock}: {board['uid']} annotation {note['name']!r} with "
                            f"{values}: {exc}\n  {expr}"
                        )
            for panel in panels(board):
                grafana = {
                    "$__rate_interval": _ms(rate_interval(panel, played.scrape, factor)),
                    "$__interval": _ms(played.scrape),
                    "$__range": _ms(at - range_start),
                }
                # a rate over a window that holds a change is stated only where calm enough
                stated = rates_quiet or "$__rate_interval" not in str(panel["targets"])
                for target in panel["targets"]:
                    key = (board["uid"], panel["id"], target["refId"])
                    for values in (everything, one_value(board, now, states)):
                        expr = substitute(target["expr"], values, grafana)
                        result = query(expr, at)
                        sel = Selection(now, values, states, at - played.started_at, truth)
                        try:
                            check_labels(kinds, target["expr"], sel, result)
                            if key not in UNSTATED and stated:
                                EXPECTED[key](sel, result)
                        except AssertionError as exc:
                            problems.append(
                                f"{clock}: {board['uid']} {panel['id']} {panel['title']!r} "
                                f"{target['refId']} with {values}: {exc}\n  {expr}"
                            )
    return problems, seen


def objectives_of(config: Any) -> tuple[dict[str, float], dict[str, float]]:
    """The objectives the run's configuration sets: each site's (its own, else its kind's)
    and each kind's."""
    kinds = dict(config.objectives)
    sites = {
        site.id: site.objective if site.objective is not None else kinds[site.kind]
        for site in config.sites.values()
        if site.objective is not None or site.kind in kinds
    }
    return sites, kinds


# The dashboards whose annotations are checked: the others carry the overview's.
NOTED = ("districtmon-overview", "districtmon-site")


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def replay(saved: Path) -> list[str]:
    """The panel check on a saved run (tests/stack.py `save`), against a Prometheus started on
    its data: for whoever reads a failure of the whole-stack test."""
    from promstack import Prometheus

    doc = json.loads((saved / "played.json").read_text())
    played = Played(
        Truth.load(saved / "truth.jsonl"),
        load(saved / "config"),
        [Sample(wall, measured) for wall, measured in doc["samples"]],
        Timing(**doc["timing"]),
        doc["started_at"],
        doc["known_at"],
        doc["ended_at"],
        [Window(a, b, None) for a, b in doc["gaps"]],
        [Window(a, b, frozenset(sites)) for a, b, sites in doc["maintenance"]],
        doc["scrape"],
    )
    config = {"global": {"scrape_interval": "1h"}, "scrape_configs": []}
    flags = ("--query.lookback-delta=10s",)
    with Prometheus([], config=config, flags=flags) as prometheus:
        shutil.copytree(saved / "prometheus", prometheus.dir / "data")
        prometheus.start()
        problems, _seen = check_panels(played, prometheus.query, float(doc["factor"]))
    return problems


if __name__ == "__main__":
    found = replay(Path(sys.argv[1]))
    print("\n".join(found) or "every panel shows what the oracle says")
    sys.exit(1 if found else 0)
