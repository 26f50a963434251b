"""What every dashboard panel must show, given a district, the state of each of its sites and
what each reports: the checks that the dashboard test (a small district whose values the
test wrote) and the whole-stack test (the simulated district, decided by the oracle from the
simulator's record) both run against a real Prometheus.

A check receives the panel's variables, the district and what is true of it (`Selection`),
and the query's result. Figures that drift while a panel's data is fresh (a battery that
drains, a counter's rate, a time in state) are `Range`s: the lowest and highest value the
truth allows at that instant."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.core.model import SITE_KINDS

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "dashboards"

# $name, ${name}, ${name:format}, [[name]]; not $1 (a label_replace group)
VARIABLE_REF = re.compile(r"\$([A-Za-z_]\w*)|\$\{([A-Za-z_]\w*)(?::\w+)?\}|\[\[(\w+)\]\]")
ALL = ".*"  # what a variable at All expands to (allValue)
SEVERITY = {"up": 0, "maintenance": 1, "unknown": 2, "degraded": 3, "unreachable": 4, "down": 5}
STATES = tuple(SEVERITY)
EVERY_KIND = "|".join(SITE_KINDS)
BROADCAST = "radio_station|loudspeaker"
AGENCY = "gateway|video_endpoint|portal"
GROUP_LABELS = ("commune", "owner", "kind")
NOT_SNMP = ("icmp", "tcp", "http", "dns", "mqtt", "dead")


def dashboards() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        found[path.name] = json.loads(path.read_text(encoding="utf-8"))
    return found


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def base_kinds(board: dict[str, Any]) -> str:
    """The dashboard's own kind filter, as its first site variable's query states it."""
    for var in board["templating"]["list"]:
        match = re.search(r'districtmon_site_info\{kind=~"([^"]+)"', var["query"]["query"])
        if match:
            return match.group(1)
    raise AssertionError(f"{board['uid']}: no site variable with a kind filter")


def seconds(duration: str) -> float:
    """A Grafana/Prometheus duration (`2m`, `15s`, `1h30m`) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def rate_interval(panel: dict[str, Any], scrape: float, factor: float = 1.0) -> float:
    """Grafana's $__rate_interval for `panel`: max($__interval + scrape, 4 x scrape), where
    $__interval is at least the panel's minimum interval (divided by `factor` in a run at
    speed) and the datasource's scrape interval."""
    interval = max(scrape, seconds(panel["interval"]) / factor if panel.get("interval") else 0)
    return max(interval + scrape, 4 * scrape)


def substitute(expr: str, values: Mapping[str, str], grafana: Mapping[str, str]) -> str:
    """The query as Grafana sends it: its own variables (`grafana`: $__range...) and the
    dashboard's (`values`)."""
    for name, value in grafana.items():
        expr = expr.replace(name, value)

    def one(match: re.Match[str]) -> str:
        name = next(filter(None, match.groups()))
        return values[name]

    return VARIABLE_REF.sub(one, expr)


@dataclass(frozen=True, slots=True)
class Range:
    """A figure the truth bounds but does not pin: any value in [lo, hi]."""

    lo: float
    hi: float

    @classmethod
    def of(cls, value: Reading) -> Range:
        return value if isinstance(value, Range) else cls(value, value)


Reading = float | Range


def within(got: float, expected: Reading, tol: float = 1e-9) -> bool:
    span = Range.of(expected)
    return span.lo - tol <= got <= span.hi + tol


@dataclass(frozen=True)
class Place:
    """A site and what is true of it: how it is probed (`snmp`, `icmp`, `mqtt`..., or a
    test's own names for its agents), the areas its cluster covers, and what it reports
    (`mains_ok`, `battery_volts`, `cabinet`, `amplifier_ok`, `playing`, `rssi_dbm`,
    `wan_down`, `wan_in`, `wan_out`: bits per second)."""

    id: str
    kind: str
    commune: str
    owner: str
    probe: str
    profile: str = ""
    covers: tuple[str, ...] = ()
    facts: Mapping[str, Reading] = field(default_factory=dict)


@dataclass(frozen=True)
class World:
    """The district as its inventory says: sites, each commune's areas, names of things."""

    places: tuple[Place, ...]
    areas: Mapping[str, tuple[str, ...]]
    owner_names: Mapping[str, str]
    site_names: Mapping[str, str]


@dataclass(frozen=True)
class Truth:
    """What is known of the instant beyond each site's state; None where the test knows only
    that the states never changed once decided (then the figures follow from the states)."""

    since: Mapping[str, Range] | None = None  # site -> seconds in its current state
    # window -> site -> (available, counted) seconds, each a Range
    availability: Mapping[str, Mapping[str, tuple[Range, Range]]] | None = None
    boots: Mapping[str, Range] | None = None  # site -> reboots seen in $__range
    scrapes_up: Mapping[str, Range] | None = None  # site -> share of $__range answering
    changes: Mapping[str, Range] | None = None  # site -> state changes in $__range
    # site -> (codes that must show, codes that may): every site not up has a reason
    reasons: Mapping[str, tuple[frozenset[str], frozenset[str]]] | None = None
    broker_up: bool = True  # the MQTT broker path (the daemon's connection to it)
    # the objectives the configuration sets, site -> its own or its kind's, and per kind;
    # None where the daemon that ran did not export them (then their panels are empty)
    objectives: Mapping[str, float] | None = None
    kind_objectives: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Selection:
    """The variables as a panel sees them, the state of every site, what else is true, and
    how long ago the daemon started (no time in a state can be longer)."""

    world: World
    values: Mapping[str, str]
    states: Mapping[str, str]
    age: float
    truth: Truth = Truth()

    def matches(self, variable: str, value: str) -> bool:
        chosen = self.values.get(variable, ALL)
        return chosen in (ALL, value)

    def sites(self, kinds: str, follow_kind: bool = True) -> list[Place]:
        """The sites of `kinds` (a |-list) that the commune and owner variables select,
        and the kind variable too when the panel follows it."""
        return [
            p
            for p in self.world.places
            if p.kind in kinds.split("|")
            and self.matches("commune", p.commune)
            and self.matches("owner", p.owner)
            and (not follow_kind or self.matches("kind", p.kind))
            and self.matches("site", p.id)
        ]

    def communes(self) -> list[str]:
        return [c for c in self.world.areas if self.matches("commune", c)]

    def state(self, place: Place) -> str:
        return self.states[place.id]

    def answering(self, place: Place) -> bool:
        return self.state(place) in ("up", "degraded")


Result = list[dict[str, Any]]
Check = Callable[[Selection, Result], None]
Keep = Callable[[Selection, Place], bool]
Expected = dict[tuple[str, ...], Reading | None]


def group_key(place: Place, labels: tuple[str, ...], state: str = "") -> tuple[str, ...]:
    attrs = {"commune": place.commune, "owner": place.owner, "kind": place.kind, "state": state}
    return tuple(attrs[label] for label in labels)


def values_by(result: Result, *labels: str) -> dict[tuple[str, ...], float]:
    found: dict[tuple[str, ...], float] = {}
    for series in result:
        key = tuple(series["metric"].get(label, "") for label in labels)
        assert key not in found, f"two series for {key}: {result}"
        found[key] = float(series["value"][1])
    return found


def scalar(result: Result) -> float | None:
    """The one value of an aggregate; None when the query returned nothing."""
    if not result:
        return None
    [series] = result
    return float(series["value"][1])


def share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def ratio(part: Range, whole: Range) -> Range | None:
    """part / whole, both bounded, as bounds within 0..1."""
    if whole.hi <= 0:
        return None
    lo = part.lo / whole.hi if whole.hi > 0 else 0.0
    hi = part.hi / whole.lo if whole.lo > 0 else 1.0
    return Range(max(0.0, min(lo, 1.0)), min(1.0, max(hi, 0.0)))


def total(readings: list[Reading]) -> Range:
    spans = [Range.of(r) for r in readings]
    return Range(sum(s.lo for s in spans), sum(s.hi for s in spans))


def expect_scalar(compute: Callable[[Selection], Reading | None], tol: float = 1e-9) -> Check:
    def check(sel: Selection, result: Result) -> None:
        expected, got = compute(sel), scalar(result)
        if expected is None:
            assert got is None, f"expected no value, got {got}"
        else:
            assert got is not None and within(got, expected, tol), f"expected {expected}, got {got}"

    return check


def expect_by(
    labels: tuple[str, ...], compute: Callable[[Selection], Expected], tol: float = 1e-9
) -> Check:
    """One series per expected key of `labels`, each with its value (None: any value >= 0)."""

    def check(sel: Selection, result: Result) -> None:
        expected, got = compute(sel), values_by(result, *labels)
        assert got.keys() == expected.keys(), (
            f"missing {sorted(expected.keys() - got.keys())}, "
            f"extra {sorted(got.keys() - expected.keys())}"
        )
        wrong = {
            key: (got[key], value)
            for key, value in expected.items()
            if not (got[key] >= 0 if value is None else within(got[key], value, tol))
        }
        assert not wrong, f"(got, expected) {wrong}"

    return check


def count_in(kinds: str, states: str, follow_kind: bool = True) -> Check:
    """How many selected sites are in `states` (nothing at all when none is selected)."""

    def compute(sel: Selection) -> float | None:
        sites = sel.sites(kinds, follow_kind)
        in_states = sum(sel.state(p) in states.split("|") for p in sites)
        return float(in_states) if sites else None

    return expect_scalar(compute)


def up_share(kinds: str, follow_kind: bool = True) -> Check:
    def compute(sel: Selection) -> float | None:
        sites = sel.sites(kinds, follow_kind)
        return share(sum(sel.answering(p) for p in sites), len(sites))

    return expect_scalar(compute)


def grouped_counts(kinds: str, labels: tuple[str, ...], states: str | None = None) -> Check:
    """`sum by (labels)` of the one-hot state counts: one series per group of the selected
    sites, zeros included; per state too when `labels` has it (then `states` is None)."""

    def compute(sel: Selection) -> Expected:
        found: dict[tuple[str, ...], float] = {}
        for place in sel.sites(kinds):
            for state in STATES if "state" in labels else ("",):
                key = group_key(place, labels, state)
                wanted = (state,) if state else str(states).split("|")
                found[key] = found.get(key, 0.0) + (sel.state(place) in wanted)
        return dict(found)

    return expect_by(labels, compute)


def share_by_owner(kinds: str) -> Check:
    def compute(sel: Selection) -> Expected:
        owners: dict[tuple[str, ...], list[bool]] = {}
        for place in sel.sites(kinds):
            owners.setdefault((place.owner,), []).append(sel.answering(place))
        return {key: sum(up) / len(up) for key, up in owners.items()}

    return expect_by(("owner",), compute)


def facts_count(
    kinds: str, keep: Keep, follow_kind: bool = True, unsettled: str | None = None
) -> Check:
    """How many selected sites `keep` holds for (0 when none: the panels say `or vector(0)`).

    A fact the devices changed inside the freshness window (`unsettled`: its name, then a
    `Range`) may be shown either way: each such site adds one to the count's upper bound."""

    def count(sel: Selection) -> Reading:
        places = sel.sites(kinds, follow_kind)
        sure = float(sum(keep(sel, p) for p in places))
        if unsettled is None:
            return sure
        maybe = sum(sel.answering(p) and isinstance(p.facts.get(unsettled), Range) for p in places)
        return Range(sure, sure + maybe) if maybe else sure

    return expect_scalar(count)


def per_site(
    kinds: str,
    keep: Keep,
    value: Callable[[Selection, Place], Reading | None] | None,
    follow_kind: bool = True,
    tol: float = 1e-9,
) -> Check:
    def compute(sel: Selection) -> Expected:
        return {
            (p.id,): value(sel, p) if value else None
            for p in sel.sites(kinds, follow_kind)
            if keep(sel, p)
        }

    return expect_by(("site",), compute, tol)


def per_group(
    kinds: str,
    labels: tuple[str, ...],
    keep: Keep,
    value: Callable[[Selection, list[Place]], Reading | None] | None = None,
    follow_kind: bool = True,
    tol: float = 1e-9,
) -> Check:
    """One series per group of the selected sites `keep` holds for; `value` of its sites."""

    def compute(sel: Selection) -> Expected:
        groups: dict[tuple[str, ...], list[Place]] = {}
        for p in sel.sites(kinds, follow_kind):
            if keep(sel, p):
                groups.setdefault(group_key(p, labels), []).append(p)
        return {key: value(sel, ps) if value else None for key, ps in groups.items()}

    return expect_by(labels, compute, tol)


def expect_sites(kinds: str, states: str) -> Check:
    """One row per selected site of `kinds` in `states`, with its state, name and owner's
    name as labels where the query joins them in, valued by its time in that state."""

    def check(sel: Selection, result: Result) -> None:
        sites = [p for p in sel.sites(kinds) if sel.state(p) in states.split("|")]
        got = {s["metric"]["site"]: s for s in result}
        assert sorted(got) == sorted(p.id for p in sites)
        names = sel.world
        for place in sites:
            metric = got[place.id]["metric"]
            assert metric["state"] == sel.state(place), place.id
            assert metric["name"] == names.site_names[place.id], place.id
            assert metric["owner_name"] == names.owner_names[place.owner], place.id
            since = Range(0, sel.age) if sel.truth.since is None else sel.truth.since[place.id]
            value = float(got[place.id]["value"][1])
            assert within(value, since, 1e-3), (
                f"{place.id}: {value} s in {metric['state']}, {since}"
            )

    return check


def availability(sel: Selection, window: str, sites: list[Place]) -> Reading | None:
    """Availability of `sites` over `window`, weighted by counted time: the oracle's seconds
    when the truth has them; else every state was decided at the start and never changed,
    so it is near the answering share."""
    if sel.truth.availability is None:
        up = [sel.answering(p) for p in sites]
        return Range(sum(up) / len(up) - 0.05, sum(up) / len(up) + 0.05)
    seconds = sel.truth.availability[window]
    available = total([seconds[p.id][0] for p in sites])
    counted = total([seconds[p.id][1] for p in sites])
    return ratio(available, counted)


def counted(window: str) -> Keep:
    """The site has counted time in the window (the daemon exports no ratio before)."""

    def keep(sel: Selection, place: Place) -> bool:
        if sel.truth.availability is None:
            return True
        return sel.truth.availability[window][place.id][1].lo > 0

    return keep


def weighted(kinds: str, labels: tuple[str, ...], window: str = "30d") -> Check:
    def compute(sel: Selection) -> Expected:
        groups: dict[tuple[str, ...], list[Place]] = {}
        for p in sel.sites(kinds):
            if counted(window)(sel, p):
                groups.setdefault(group_key(p, labels), []).append(p)
        return {key: availability(sel, window, ps) for key, ps in groups.items()}

    return expect_by(labels, compute)


def least_available(kinds: str, k: int, window: str = "30d") -> Check:
    """bottomk: the k lowest ratios, each its site's; ties at the cut may be any of them."""

    def check(sel: Selection, result: Result) -> None:
        sites = [p for p in sel.sites(kinds) if counted(window)(sel, p)]
        expected = {p.id: availability(sel, window, [p]) for p in sites}
        got = {key[0]: value for key, value in values_by(result, "site").items()}
        assert len(got) == min(k, len(sites)), f"{len(got)} rows, {len(sites)} sites"
        wrong = {
            site: (value, expected.get(site))
            for site, value in got.items()
            if site not in expected or not within(value, expected[site] or 0.0)
        }
        assert not wrong, f"(got, expected) {wrong}"
        cut = max(got.values(), default=1.0)
        left_out = [
            site
            for site, value in expected.items()
            if site not in got and value is not None and Range.of(value).hi < cut - 1e-9
        ]
        assert not left_out, f"lower than the last row ({cut}), yet not listed: {left_out}"

    return check


def coverage(sel: Selection, commune: str) -> tuple[int, int]:
    """Areas of the commune reached by a working cluster (answering, no amplifier fault),
    capped at the commune's areas; and its areas."""
    reached = sum(
        len(p.covers)
        for p in sel.world.places
        if p.kind == "loudspeaker"
        and p.commune == commune
        and sel.answering(p)
        and p.facts.get("amplifier_ok", 1) == 1
    )
    areas = sel.world.areas[commune]
    return min(reached, len(areas)), len(areas)


def coverage_by_commune(sel: Selection) -> Expected:
    return {(c,): share(*coverage(sel, c)) for c in sel.communes() if sel.world.areas[c]}


def district_coverage(sel: Selection) -> float | None:
    parts = [coverage(sel, c) for c in sel.communes()]
    return share(sum(p[0] for p in parts), sum(p[1] for p in parts))


def worst_by_commune(sel: Selection) -> Expected:
    worst: dict[tuple[str, ...], float] = {}
    for p in sel.sites(EVERY_KIND):
        worst[(p.commune,)] = max(worst.get((p.commune,), 0.0), float(SEVERITY[sel.state(p)]))
    return dict(worst)


def fact(name: str, value: float | None = None) -> Keep:
    """The site answers and reports `name` (equal to `value` when given)."""
    return lambda sel, p: (
        sel.answering(p) and name in p.facts and (value is None or p.facts[name] == value)
    )


def reading(name: str) -> Callable[[Selection, Place], Reading]:
    return lambda sel, p: p.facts[name]


def highest(name: str) -> Callable[[Selection, list[Place]], Reading]:
    def value(sel: Selection, places: list[Place]) -> Reading:
        spans = [Range.of(p.facts[name]) for p in places]
        return Range(max(s.lo for s in spans), max(s.hi for s in spans))

    return value


def lowest(name: str) -> Callable[[Selection, list[Place]], Reading]:
    def value(sel: Selection, places: list[Place]) -> Reading:
        spans = [Range.of(p.facts[name]) for p in places]
        return Range(min(s.lo for s in spans), min(s.hi for s in spans))

    return value


def answering(sel: Selection, place: Place) -> bool:
    return sel.answering(place)


def silent(sel: Selection, place: Place) -> bool:
    """Reaches nobody: down or unreachable, or answering with an amplifier fault."""
    return sel.state(place) in ("down", "unreachable") or fact("amplifier_ok", 0)(sel, place)


def snmp_polled(sel: Selection, place: Place) -> bool:
    """Its device uptime has samples in the range: polled over SNMP, and it answered then."""
    if sel.truth.boots is not None:
        return place.id in sel.truth.boots
    return sel.answering(place) and place.probe not in NOT_SNMP


def reboots(sel: Selection, places: list[Place]) -> Reading:
    if sel.truth.boots is None:
        return 0.0  # nothing reboots in the test's district
    return total([sel.truth.boots[p.id] for p in places])


def not_mqtt(sel: Selection, place: Place) -> bool:
    return place.probe != "mqtt"


def icmp_answering(sel: Selection, place: Place) -> bool:
    return place.probe == "icmp" and sel.answering(place)


def icmp_polled(sel: Selection, place: Place) -> bool:
    """Pinged and decided: a burst that got nothing back measured a loss too (1)."""
    return place.probe == "icmp" and sel.state(place) in ("up", "degraded", "down", "unreachable")


def worst_loss(sel: Selection, places: list[Place]) -> Reading:
    """Loopback loses nothing; a host that does not answer loses every request."""
    return 0.0 if all(sel.answering(p) for p in places) else 1.0


def anything(sel: Selection, result: Result) -> None:
    """A figure the test cannot know (rates of the daemon's own work, latencies, the
    process): only the labels of what comes back are checked."""


def at_most(limit: float) -> Check:
    def check(sel: Selection, result: Result) -> None:
        got = scalar(result)
        assert got is not None and 0 <= got <= limit, got

    return check


def ledger_ratio(sel: Selection, place: Place) -> Reading:
    """A site's 30-day availability as the ledger counts it."""
    found = availability(sel, "30d", [place])
    assert found is not None
    return found


def scrapes_up(sel: Selection, places: list[Place]) -> Reading | None:
    """The average over the sites of their share of the range answering (Prometheus' view)."""
    if sel.truth.scrapes_up is None:
        return None
    spans = [sel.truth.scrapes_up[p.id] for p in places]
    return Range(sum(s.lo for s in spans) / len(spans), sum(s.hi for s in spans) / len(spans))


def scraped(sel: Selection, place: Place) -> bool:
    """The site has samples in the range (every site the daemon watched then)."""
    return sel.truth.scrapes_up is None or place.id in sel.truth.scrapes_up


def state_changes(sel: Selection, places: list[Place]) -> Reading | None:
    if sel.truth.changes is None:
        return None
    return total([sel.truth.changes[p.id] for p in places])


def broker_connected(sel: Selection) -> float:
    return 1.0 if sel.truth.broker_up else 0.0


def expect_reasons(sel: Selection, result: Result) -> None:
    """One row per (site, code) for the selected sites not up: every code a site must show,
    none it may not; a site up or in maintenance shows no code of fault."""
    got: dict[str, set[str]] = {}
    for series in result:
        metric = series["metric"]
        got.setdefault(metric["site"], set()).add(metric["reason"])
        assert metric["name"] == sel.world.site_names[metric["site"]], metric
    selected = {p.id for p in sel.sites(EVERY_KIND)}
    silent = sorted(s for s in selected if sel.states[s] != "up" and s not in got)
    assert not silent, f"not up, yet no reason: {silent}"
    if sel.truth.reasons is None:
        return
    wrong = {}
    for site in selected | set(got):
        must, may = sel.truth.reasons.get(site, (frozenset(), frozenset()))
        shown = got.get(site, set())
        if not must <= shown or not shown <= must | may:
            wrong[site] = (sorted(shown), sorted(must), sorted(may))
    assert not wrong, f"site: (shown, must, may) {wrong}"


def severity(sel: Selection, place: Place) -> Reading:
    return float(SEVERITY[sel.state(place)])


def worst(sel: Selection, places: list[Place]) -> Reading:
    return max(float(SEVERITY[sel.state(p)]) for p in places)


def worst_of_all(sel: Selection) -> float | None:
    """The worst state of the selected sites, as its severity (None: no site selected)."""
    sites = sel.sites(EVERY_KIND)
    return max(float(SEVERITY[sel.state(p)]) for p in sites) if sites else None


def every(sel: Selection, place: Place) -> bool:
    return True


def budget(sel: Selection, window: str, sites: list[Place]) -> Reading:
    """Error budget left: 1 - downtime / the downtime the sites' objectives allow, both
    over counted seconds (the oracle's seconds when the truth has them; else every site was
    counted about as long, and its ratio is near its answering share)."""
    assert sel.truth.objectives is not None
    objectives = [sel.truth.objectives[p.id] for p in sites]
    if sel.truth.availability is None:
        ratios = [Range.of(availability(sel, window, [p]) or 0.0) for p in sites]
        down = Range(sum(1 - r.hi for r in ratios), sum(1 - r.lo for r in ratios))
        allowed = Range.of(sum(1 - o for o in objectives))
    else:
        seconds = sel.truth.availability[window]
        spans = [seconds[p.id] for p in sites]
        down = total([Range(max(0.0, c.lo - a.hi), max(0.0, c.hi - a.lo)) for a, c in spans])
        allowed = Range(
            sum((1 - o) * c.lo for o, (_, c) in zip(objectives, spans, strict=True)),
            sum((1 - o) * c.hi for o, (_, c) in zip(objectives, spans, strict=True)),
        )
    lo = 1 - down.hi / allowed.lo if allowed.lo > 0 else -math.inf
    hi = 1 - down.lo / allowed.hi if allowed.hi > 0 else math.inf
    return Range(lo, hi)


def budget_by(kinds: str, labels: tuple[str, ...], window: str = "30d") -> Check:
    """Per group of the selected sites with counted time: the error budget left; nothing at
    all where the daemon exported no objectives."""
    grouped = per_group(kinds, labels, counted(window), lambda sel, ps: budget(sel, window, ps))

    def check(sel: Selection, result: Result) -> None:
        if sel.truth.objectives is None:
            assert not result, "no objectives were exported, yet the budget has a value"
            return
        grouped(sel, result)

    return check


def least_budget(kinds: str, k: int, window: str = "30d") -> Check:
    """bottomk of the sites' budgets: each row its site's, none left out that is lower."""

    def check(sel: Selection, result: Result) -> None:
        if sel.truth.objectives is None:
            assert not result, "no objectives were exported, yet the budget has a value"
            return
        sites = [p for p in sel.sites(kinds) if counted(window)(sel, p)]
        expected = {p.id: Range.of(budget(sel, window, [p])) for p in sites}
        got = {key[0]: value for key, value in values_by(result, "site").items()}
        assert len(got) == min(k, len(sites)), f"{len(got)} rows, {len(sites)} sites"
        wrong = {s: (v, expected.get(s)) for s, v in got.items() if not within(v, expected[s])}
        assert not wrong, f"(got, expected) {wrong}"
        cut = max(got.values(), default=1.0)
        left_out = [s for s, v in expected.items() if s not in got and v.hi < cut - 1e-9]
        assert not left_out, f"lower than the last row ({cut}), yet not listed: {left_out}"

    return check


def kind_objective(kind: str) -> Check:
    return expect_scalar(
        lambda sel: None if sel.truth.kind_objectives is None else sel.truth.kind_objectives[kind]
    )


def highest_objective(sel: Selection) -> float | None:
    """The highest objective of the selected sites (None: none exported or none selected)."""
    if sel.truth.objectives is None:
        return None
    held = [
        sel.truth.objectives[p.id] for p in sel.sites(EVERY_KIND) if p.id in sel.truth.objectives
    ]
    return max(held) if held else None


def device_values(facts: Mapping[str, str]) -> Check:
    """Series of districtmon_device_* values of the selected sites, each named by its `value`
    label; those that `facts` maps to a fact the site reports (value -> fact) must be there,
    while it answers, and read what the device reported."""

    def check(sel: Selection, result: Result) -> None:
        selected = {p.id: p for p in sel.sites(EVERY_KIND)}
        got: dict[tuple[str, str], list[float]] = {}
        for series in result:
            metric = series["metric"]
            assert metric["site"] in selected, f"not selected: {metric}"
            assert metric["name"] == sel.world.site_names[metric["site"]], metric
            got.setdefault((metric["site"], metric["value"]), []).append(float(series["value"][1]))
        wrong = []
        for place in selected.values():
            for value, fact in facts.items():
                if not (sel.answering(place) and fact in place.facts):
                    continue
                shown = got.get((place.id, value))
                expected = place.facts[fact]
                if not shown or not all(within(v, expected, 1e-6) for v in shown):
                    wrong.append(f"{place.id} {value}: {shown}, expected {expected}")
        assert not wrong, "; ".join(wrong)

    return check


def objective_budget(sel: Selection, place: Place) -> Reading:
    return budget(sel, "30d", [place])


def site_budget(sel: Selection, result: Result) -> None:
    if sel.truth.objectives is None:
        assert not result, "no objectives were exported, yet the budget has a value"
        return
    per_site(EVERY_KIND, counted("30d"), objective_budget)(sel, result)


def site_changes(sel: Selection, place: Place) -> Reading | None:
    return state_changes(sel, [place])


# The monitor dashboard's panels on the daemon's own work: panel id -> its targets' refIds.
MONITOR_OWN = {
    6: "A", 7: "A", 8: "A", 9: "AB", 10: "ABC", 11: "ABC", 12: "A", 13: "A", 14: "A", 15: "A",
}  # fmt: skip

# (dashboard uid, panel id, refId) -> what it must show. Every target has an entry (a new
# panel comes with its check), and every entry a target. UNSTATED says, for the entries a
# whole-stack run cannot decide from the simulator's record, why.
EXPECTED: dict[tuple[str, int, str], Check] = {
    # overview
    ("districtmon-overview", 1, "A"): count_in(EVERY_KIND, "down"),
    ("districtmon-overview", 2, "A"): count_in(EVERY_KIND, "unreachable"),
    ("districtmon-overview", 3, "A"): up_share(EVERY_KIND),
    ("districtmon-overview", 4, "A"): grouped_counts(EVERY_KIND, ("state",)),
    ("districtmon-overview", 5, "A"): expect_by(("commune",), worst_by_commune),
    ("districtmon-overview", 6, "A"): grouped_counts(EVERY_KIND, ("kind", "state")),
    ("districtmon-overview", 7, "A"): expect_sites(EVERY_KIND, "down|unreachable|degraded"),
    ("districtmon-overview", 8, "A"): grouped_counts(EVERY_KIND, ("kind",), "down|unreachable"),
    ("districtmon-overview", 9, "A"): expect_reasons,
    ("districtmon-overview", 10, "A"): per_site(EVERY_KIND, every, severity),
    ("districtmon-overview", 11, "A"): per_group(EVERY_KIND, ("commune", "kind"), every, worst),
    # BTS
    ("districtmon-bts", 1, "A"): share_by_owner("bts"),
    ("districtmon-bts", 2, "A"): weighted("bts", ("owner",)),
    ("districtmon-bts", 2, "B"): kind_objective("bts"),
    ("districtmon-bts", 3, "A"): facts_count("bts", fact("mains_ok", 0)),
    ("districtmon-bts", 4, "A"): grouped_counts("bts", ("commune", "owner"), "down|unreachable"),
    ("districtmon-bts", 5, "A"): weighted("bts", ("commune", "owner"), "24h"),
    ("districtmon-bts", 6, "A"): per_site("bts", fact("mains_ok", 0), reading("battery_volts")),
    ("districtmon-bts", 7, "A"): per_group("bts", ("commune", "owner"), snmp_polled, reboots),
    ("districtmon-bts", 8, "A"): grouped_counts("bts", ("owner",), "down|unreachable"),
    ("districtmon-bts", 9, "A"): per_group(
        "bts", ("commune",), fact("cabinet"), highest("cabinet")
    ),
    ("districtmon-bts", 10, "A"): budget_by("bts", ("owner",)),
    # broadcast: the panels about one kind ignore the kind variable
    ("districtmon-broadcast", 1, "A"): up_share("radio_station", follow_kind=False),
    ("districtmon-broadcast", 2, "A"): up_share("loudspeaker", follow_kind=False),
    ("districtmon-broadcast", 3, "A"): expect_scalar(district_coverage),
    ("districtmon-broadcast", 4, "A"): facts_count(
        "loudspeaker", fact("amplifier_ok", 0), follow_kind=False
    ),
    ("districtmon-broadcast", 5, "A"): facts_count(
        "loudspeaker", fact("playing", 1), follow_kind=False, unsettled="playing"
    ),
    ("districtmon-broadcast", 6, "A"): expect_scalar(broker_connected),
    ("districtmon-broadcast", 7, "A"): expect_by(("commune",), coverage_by_commune),
    ("districtmon-broadcast", 8, "A"): expect_by(("commune",), coverage_by_commune),
    ("districtmon-broadcast", 9, "A"): expect_sites(BROADCAST, "down|unreachable|degraded"),
    ("districtmon-broadcast", 10, "A"): per_site(
        "loudspeaker", silent, lambda sel, p: float(len(p.covers)), follow_kind=False
    ),
    ("districtmon-broadcast", 11, "A"): per_site(
        "loudspeaker", fact("amplifier_ok", 0), lambda sel, p: 0.0, follow_kind=False
    ),
    ("districtmon-broadcast", 12, "A"): per_group(
        "loudspeaker", ("commune",), fact("rssi_dbm"), lowest("rssi_dbm"), follow_kind=False
    ),
    # agency: the panels named for gateways read gateways only
    ("districtmon-agency", 1, "A"): count_in("gateway", "down"),
    ("districtmon-agency", 2, "A"): up_share("gateway"),
    ("districtmon-agency", 3, "A"): facts_count("gateway", fact("wan_down", 1)),
    ("districtmon-agency", 4, "A"): at_most(1.0),  # a poll times out after at most 1 s
    ("districtmon-agency", 5, "A"): expect_sites("gateway", "|".join(STATES)),
    ("districtmon-agency", 6, "A"): per_site("gateway", fact("wan_in"), reading("wan_in")),
    ("districtmon-agency", 7, "A"): per_site("gateway", fact("wan_out"), reading("wan_out")),
    ("districtmon-agency", 8, "A"): per_group(AGENCY, ("commune",), not_mqtt),
    ("districtmon-agency", 9, "A"): per_group(AGENCY, ("commune",), icmp_answering),
    ("districtmon-agency", 9, "B"): per_group(AGENCY, ("commune",), icmp_polled, worst_loss),
    # SLA
    ("districtmon-sla", 1, "A"): weighted(EVERY_KIND, ("commune",)),
    ("districtmon-sla", 2, "A"): weighted(EVERY_KIND, ("owner",)),
    ("districtmon-sla", 3, "A"): weighted(EVERY_KIND, ("kind",)),
    ("districtmon-sla", 1, "B"): budget_by(EVERY_KIND, ("commune",)),
    ("districtmon-sla", 2, "B"): budget_by(EVERY_KIND, ("owner",)),
    ("districtmon-sla", 3, "B"): budget_by(EVERY_KIND, ("kind",)),
    ("districtmon-sla", 7, "A"): least_budget(EVERY_KIND, 20),
    ("districtmon-sla", 4, "A"): least_available(EVERY_KIND, 20),
    ("districtmon-sla", 5, "A"): per_group(EVERY_KIND, ("commune",), scraped, scrapes_up),
    ("districtmon-sla", 6, "A"): per_group(
        EVERY_KIND, ("commune", "kind"), lambda sel, p: True, state_changes
    ),
    # one site (the site variable narrows every selection)
    ("districtmon-site", 1, "A"): expect_scalar(worst_of_all),
    ("districtmon-site", 2, "A"): expect_sites(EVERY_KIND, "|".join(STATES)),
    ("districtmon-site", 3, "A"): per_site(EVERY_KIND, every, severity),
    ("districtmon-site", 4, "A"): expect_reasons,
    ("districtmon-site", 5, "A"): device_values({"battery_volts": "battery_volts"}),
    ("districtmon-site", 6, "A"): device_values({"cabinet_temperature_celsius": "cabinet"}),
    ("districtmon-site", 7, "A"): device_values({"rssi_dbm": "rssi_dbm"}),
    ("districtmon-site", 8, "A"): device_values(
        {"mains_ok": "mains_ok", "amplifier_ok": "amplifier_ok"}
    ),
    ("districtmon-site", 9, "A"): per_site(EVERY_KIND, every, None),
    ("districtmon-site", 10, "A"): per_site(EVERY_KIND, counted("30d"), ledger_ratio),
    ("districtmon-site", 10, "B"): expect_scalar(highest_objective),
    ("districtmon-site", 11, "A"): site_budget,
    ("districtmon-site", 12, "A"): per_site(EVERY_KIND, every, site_changes),
    # one commune
    ("districtmon-commune", 1, "A"): expect_sites(EVERY_KIND, "|".join(STATES)),
    ("districtmon-commune", 2, "A"): grouped_counts(EVERY_KIND, ("kind", "state")),
    ("districtmon-commune", 3, "A"): expect_by(("commune",), coverage_by_commune),
    ("districtmon-commune", 4, "A"): expect_sites("gateway", "|".join(STATES)),
    ("districtmon-commune", 5, "A"): share_by_owner("bts"),
    ("districtmon-commune", 6, "A"): per_group(EVERY_KIND, ("kind",), every, worst),
    ("districtmon-commune", 7, "A"): per_site(EVERY_KIND, every, severity),
    # the monitor's own health
    ("districtmon-monitor", 1, "A"): expect_scalar(lambda sel: 1.0),
    ("districtmon-monitor", 2, "A"): anything,
    ("districtmon-monitor", 3, "A"): at_most(5.0),
    ("districtmon-monitor", 4, "A"): expect_scalar(broker_connected),
    ("districtmon-monitor", 5, "A"): expect_scalar(lambda sel: 0.0),
    **{
        ("districtmon-monitor", n, ref): anything for n, refs in MONITOR_OWN.items() for ref in refs
    },
}


def state_change_notes(at: float) -> Check:
    """The state-change annotation queried at `at`: one moment per selected site, at the
    time its current state began (ms), titled with that state and the site's name."""

    def check(sel: Selection, result: Result) -> None:
        got = {series["metric"]["site"]: series for series in result}
        sites = sel.sites(EVERY_KIND)
        assert sorted(got) == sorted(p.id for p in sites), "one moment per selected site"
        for place in sites:
            metric = got[place.id]["metric"]
            assert metric["state"] == sel.state(place), (place.id, metric["state"])
            assert metric["name"] == sel.world.site_names[place.id], place.id
            since = Range(0, sel.age) if sel.truth.since is None else sel.truth.since[place.id]
            began = float(got[place.id]["value"][1]) / 1000
            assert within(at - began, since, 1e-3), f"{place.id}: began {at - began} s ago"

    return check


def maintenance_notes(sel: Selection, result: Result) -> None:
    """The maintenance annotation: a region for each selected site in maintenance now."""
    got = sorted(series["metric"]["site"] for series in result)
    assert got == sorted(p.id for p in sel.sites(EVERY_KIND) if sel.state(p) == "maintenance")


# What the annotations every dashboard carries must show, by name (a function of the
# instant they are queried at).
ANNOTATIONS: dict[str, Callable[[float], Check]] = {
    "Đổi trạng thái (state changes)": state_change_notes,
    "Bảo trì (maintenance)": lambda at: maintenance_notes,
}

# Why the whole-stack run cannot state a figure: only its labels are checked there.
UNSTATED: dict[tuple[str, int, str], str] = {
    ("districtmon-agency", 4, "A"): "a poll's round trip is the machine's, not the simulator's",
    ("districtmon-agency", 8, "A"): "a poll's round trip is the machine's, not the simulator's",
    ("districtmon-agency", 9, "A"): "a ping's round trip is the machine's, not the simulator's",
    ("districtmon-monitor", 2, "A"): "the daemon's poll rate: its schedule, not the district's",
    ("districtmon-monitor", 3, "A"): "how late the oldest poll is: the daemon's schedule",
    ("districtmon-site", 9, "A"): "a poll's round trip is the machine's, not the simulator's",
    **{
        ("districtmon-monitor", n, ref): "the daemon's own work and process, not the district"
        for n, refs in MONITOR_OWN.items()
        for ref in refs
    },
}


def allowed_sites(board_kinds: str, expr: str, sel: Selection) -> list[Place]:
    """The sites whose series a panel query may return: of the kinds its selectors name (the
    dashboard's when they name none), and of the variables it follows."""
    literal = {k for _, ks in re.findall(r'kind(=~|=)"([^"$]+)"', expr) for k in ks.split("|")}
    kinds = literal or set((EVERY_KIND if board_kinds == ALL else board_kinds).split("|"))
    return [
        p
        for p in sel.world.places
        if p.kind in kinds
        and ("$commune" not in expr or sel.matches("commune", p.commune))
        and ("$owner" not in expr or sel.matches("owner", p.owner))
        and ("$kind" not in expr or sel.matches("kind", p.kind))
        and ("$site" not in expr or sel.matches("site", p.id))
    ]


def check_labels(board_kinds: str, expr: str, sel: Selection, result: Result) -> None:
    """Every series is of a site, or of a commune / owner / kind that has a site, that the
    panel may show."""
    sites = allowed_sites(board_kinds, expr, sel)
    for series in result:
        metric = series["metric"]
        if "site" in metric:
            assert metric["site"] in {p.id for p in sites}, f"not selected: {metric}"
            continue
        present = [label for label in GROUP_LABELS if label in metric]
        if not present:
            continue
        # a commune's own figure (a recording rule of communes), its name joined in or not
        commune_series = str(metric.get("__name__", "")).startswith("commune:") or (
            "commune:districtmon" in expr and "commune_name" in metric
        )
        if commune_series and present == ["commune"] and metric["commune"] in sel.world.areas:
            # a commune's own figure (its coverage): every commune has one, sites or none
            assert "$commune" not in expr or sel.matches("commune", metric["commune"]), metric
            continue
        wanted = tuple(metric[label] for label in present)
        assert any(group_key(p, tuple(present)) == wanted for p in sites), (
            f"no selected site has {metric}"
        )


def approx(value: float, tol: float) -> Range:
    return Range(value - tol, value + tol)
