"""What the people on duty see is what happened: a scripted district day played by the
simulator through the daemon, a real Prometheus and a real Alertmanager (all on the shipped
files, every timer divided by one factor), compared with the simulator's own record.

The expected states, pages and figures are decided by tests/oracle.py from the record and the
rules of DESIGN.md, never from what the code under test computed. The allowances are the
daemon's own timings: an edge may be dated up to one observation late, and a stretch too short
to be confirmed may or may not show.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alerting import Notification, alert_rules, parse_duration
from netns import NetNs
from oracle import STATES, Expected, expected, ledger_seconds, raw_state
from panel_truth import check_panels
from simpeers import SHIPPED
from stack import District, Run, save, unmeasured
from test_report_html import Tables

from monitor.config.load import load_config
from monitor.ledger.records import Interval, read_intervals

# The day plays in about seven minutes (its three simulated hours at x30, after a lead-in).
pytestmark = pytest.mark.timeout(900)

FACTOR = 30.0
# The communes the day happens in, and the district town (its core router): a third of the
# shipped district, every site as shipped. The whole district at this speed is more than two
# cores carry (Prometheus evaluates the shipped rules every 0.5 s).
COMMUNES = (
    "thanh-xuong", "thanh-nua", "thanh-luong", "thanh-hung", "muong-phang", "noong-het",
    "muong-nha", "na-u",
)  # fmt: skip
DAY = SHIPPED / "scenarios" / "day.yaml"
# Scenario time (simulated seconds) at which the daemon is restarted: inside the first
# outage (bts-vtl-thanh-nua-03 dies at 5m and comes back at 20m).
RESTART_AT = 12 * 60
SETTLE = 15.0  # after the last event: recoveries confirmed, alerts resolved
# A planned window over a whole outage: a Mường Phăng BTS whose battery dies at 1h05 (the
# power cut at 25m, 40 minutes of battery) and comes back with the mains at 1h25. Inside it
# the site is in maintenance: no outage, no page.
MAINTENANCE = (("bts-vtl-muong-phang-01", 55 * 60.0, 95 * 60.0),)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The day, played once for every check of this module, in a network namespace of its
    own: the shipped district binds fixed addresses and ports, and cuts pings with nftables."""
    root = tmp_path_factory.mktemp("day")
    district = District(root, DAY, FACTOR, maintenance=MAINTENANCE, communes=COMMUNES)
    with unmeasured(), NetNs() as ns, ns.entered(), district:
        run = district.start()
        district.wait_known()
        district.wait_monitor_settled()
        wait = district.scenario_time(RESTART_AT) - time.time()
        if wait > 0:
            time.sleep(wait)
        run.restart_daemon(pause=1.0)
        district.wait_known()
        district.wait_scenario_end(limit=600)
        time.sleep(SETTLE)
        run.ended_at = time.time()
        stats = run.simulator.get("/stats")[1]
        mqtt = stats.get("mqtt", {})  # the publishers' connections: what a failure reads first
        run.simulator_loop = {
            **stats["loop"],
            "mqtt_connected": mqtt.get("connected"),
            "mqtt_errors": mqtt.get("errors"),
        }
        run.fetch_runbooks()  # while the daemon that serves them runs
        district.stop_daemon()
        _keep_for_reading(root, run)
        keep = os.environ.get("DISTRICTMON_DAY_KEEP")
        if keep:  # a copy of the run to replay the panel check on (tests/panel_truth.py)
            save(run, Path(keep))
        yield run


def _keep_for_reading(root: Path, run: Run) -> None:
    """What the checks read, kept beside the run for whoever reads a failure."""
    pages = [
        {"receiver": n.receiver, "at": n.at, "payload": n.payload} for n in run.webhook.received
    ]
    (root / "pages.json").write_text(json.dumps(pages, ensure_ascii=False, indent=1))
    (root / "run.json").write_text(
        json.dumps(
            {
                "known_at": run.known_at,
                "ended_at": run.ended_at,
                "gaps": [[g.start, g.end] for g in run.gaps],
                "maintenance": [[w.start, w.end, sorted(w.sites or ())] for w in run.maintenance],
                "settings": dataclasses.asdict(run.settings),
            }
        )
    )


def _by_site(intervals: list[Interval]) -> dict[str, list[tuple[str, float, float | None]]]:
    found: dict[str, list[tuple[str, float, float | None]]] = defaultdict(list)
    for i in intervals:
        found[i.site].append((i.state.value, i.start, i.end))
    return found


def test_the_ledger_holds_what_each_site_went_through(day: Run) -> None:
    truth = day.truth()
    assert truth.records[0].get("icmp_cut", True), "ICMP sites cannot be cut: is nft there?"
    intervals = _by_site(read_intervals(day.config / "ledger.sqlite"))
    start, end = day.known_at, day.ended_at
    timing = day.settings.timing()
    wrong: list[str] = []
    for site in truth.sites:
        want: Expected = expected(truth, site, start, end, timing, day.maintenance, day.gaps)
        got = ledger_seconds(intervals.get(site, []), start, end)
        seconds = want.seconds()
        off = {
            s: round(got[s] - seconds[s], 2)
            for s in STATES
            if abs(got[s] - seconds[s]) > want.tolerance
        }
        if off:
            spans = ", ".join(
                f"{s.state} {s.start - start:.1f}..{s.end - start:.1f}" for s in want.spans
            )
            wrong.append(
                f"{site}: off by {off} (tolerance {want.tolerance:.1f} s); expected {spans}"
            )
    assert not wrong, (
        f"{len(wrong)} of {len(truth.sites)} sites (simulator loop {day.simulator_loop}):\n"
        + "\n".join(wrong[:60])
    )


# --- pages -----------------------------------------------------------------------------------
#
# Which alert pages for a site that is down, by kind, as alerts.yml names them; a rule's own
# `for:` is read from the shipped file. An outage pages when the daemon's confirmed down state
# outlasts that `for:`: it is confirmed `down_after` polls after it began and ends `up_after`
# polls after the site is back, so it pages when it lasts `for:` + (down_after - up_after)
# polls, give or take an observation at each end.
DOWN_ALERTS = {
    "bts": "BtsDown",
    "gateway": "GatewayDown",
    "radio_station": "RadioStationDown",
    "loudspeaker": "LoudspeakerDown",
}
DEGRADED_ALERTS = {"BtsOnBattery", "BatteryLow", "AmplifierFault", "WanDown", "SiteDegraded"}
# What a down site's page gives as its reason, by probe: what the device's silence looks like
MISSING_REASONS = {"snmp": "timeout", "icmp": "timeout", "tcp": "refused", "http": "refused",
                   "mqtt": "offline"}  # fmt: skip


def _for_seconds(alertname: str) -> float:
    for rule in alert_rules():
        if rule["alert"] == alertname:
            return parse_duration(str(rule.get("for", "0s"))) / FACTOR
    raise AssertionError(f"no rule {alertname} in alerts.yml")


def _firing(day: Run) -> list[tuple[Notification, dict[str, Any]]]:
    return [
        (n, alert)
        for n in day.webhook.received
        for alert in n.alerts
        if alert["status"] == "firing"
    ]


def _when(alert: dict[str, Any]) -> float:
    text = str(alert["startsAt"])
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_every_outage_long_enough_pages_its_owner_and_resolves(day: Run) -> None:
    truth = day.truth()
    timing = day.settings.timing()
    inventory = load_config(day.config)
    routes = Receivers(day.alertmanager)
    late = max(timing.late("snmp"), timing.late("mqtt"))
    missing: list[str] = []
    checked = 0
    for site_id, site in inventory.sites.items():
        want = expected(
            truth, site_id, day.known_at, day.ended_at, timing, day.maintenance, day.gaps
        )
        alertname = DOWN_ALERTS.get(site.kind, "SiteDown")
        threshold = _for_seconds(alertname) + (timing.down_after - timing.up_after) * timing.every(
            truth.sites[site_id].probe
        )
        for span in want.spans:
            if span.state != "down" or span.seconds < threshold + 2 * late:
                continue
            if span.end >= day.ended_at - late:  # still down when the run ended: no resolve
                continue
            checked += 1
            receiver = routes.of({"owner": site.owner, "scope": "site", "severity": "critical"})
            got, starts, folded = _told_once(
                day, alertname, {"site": site_id}, span.start, span.end, late
            )
            where = (
                f"{site_id} down {span.start - day.known_at:.0f}..{span.end - day.known_at:.0f} s"
            )
            if not got:
                missing.append(f"{where}: no {alertname} reached anyone")
                continue
            if got != {receiver}:
                missing.append(f"{where}: {alertname} reached {sorted(got)}, not {receiver}")
            # one page: one alert (one start), told firing, then resolved, and nothing else
            # (Alertmanager repeats a group's whole state: repeats of a status are folded)
            if len(starts) != 1:
                missing.append(f"{where}: {alertname} began {len(starts)} times: {starts}")
            if folded != ["firing", "resolved"]:
                missing.append(f"{where}: {alertname} was told {folded}, not firing then resolved")
    assert checked >= 5, f"the day should page for several outages, it did for {checked}"
    assert not missing, "\n".join(missing)


# A health fact gone bad pages with its own alert (alerts.yml): the specific ones for power and
# amplifiers, SiteDegraded for the others (a cabinet door, a transmitter off air).
FAULT_ALERTS = {
    ("bts", "mains"): "BtsOnBattery",
    ("loudspeaker", "amplifier_ok"): "AmplifierFault",
    ("bts", "door_open"): "SiteDegraded",
    ("radio_station", "transmitter_ok"): "SiteDegraded",
}


def _rule(alertname: str) -> dict[str, Any]:
    return next(rule for rule in alert_rules() if rule["alert"] == alertname)


def _told_once(day: Run, alertname: str, match: dict[str, str], start: float, end: float,
               late: float) -> tuple[set[str], list[str], list[str]]:  # fmt: skip
    """Who was paged about `alertname` for the labels `match`, for a stretch from `start` to
    `end`: the receivers, the distinct starts, and what each was told, folded."""
    pages = [
        (n, a)
        for n, a in _firing(day)
        if a["labels"]["alertname"] == alertname
        and all(a["labels"].get(k) == v for k, v in match.items())
        and start - late <= _when(a) <= end + late
    ]
    starts = sorted({a["startsAt"] for _n, a in pages})
    told = [
        a["status"]
        for n in day.webhook.received
        for a in n.alerts
        if a["labels"]["alertname"] == alertname
        and all(a["labels"].get(k) == v for k, v in match.items())
        and a["startsAt"] in starts
    ]
    folded = [s for i, s in enumerate(told) if i == 0 or s != told[i - 1]]
    return {n.receiver for n, _a in pages}, starts, folded


def test_every_fault_long_enough_pages_once_with_its_own_alert(day: Run) -> None:
    """A site degraded by a health fact (on battery, an amplifier, a door, a transmitter) for
    longer than its alert's `for:` pages its owner once, firing then resolved, with the
    alert made for that fact; a broker lost longer than DistrictmonBrokerDisconnected's
    `for:` pages the monitor's keepers once."""
    truth = day.truth()
    timing = day.settings.timing()
    inventory = load_config(day.config)
    routes = Receivers(day.alertmanager)
    late = max(timing.late("snmp"), timing.late("mqtt"))
    wrong: list[str] = []
    checked: set[str] = set()
    for site_id, site in inventory.sites.items():
        want = expected(
            truth, site_id, day.known_at, day.ended_at, timing, day.maintenance, day.gaps
        )
        for span in want.spans:
            if span.state != "degraded" or span.end >= day.ended_at - late:
                continue
            middle = (span.start + span.end) / 2
            bad = [
                name
                for (kind, fact), name in FAULT_ALERTS.items()
                if kind == site.kind
                and truth.condition(site_id, fact, middle) is (fact == "door_open")
            ]
            for alertname in bad:
                rule = _rule(alertname)
                if span.seconds < _for_seconds(alertname) + 2 * late:
                    continue
                checked.add(alertname)
                labels = {
                    "owner": site.owner,
                    "scope": "site",
                    "severity": rule["labels"]["severity"],
                }
                receiver = routes.of(labels)
                got, starts, folded = _told_once(
                    day, alertname, {"site": site_id}, span.start, span.end, late
                )
                begun, ended = span.start - day.known_at, span.end - day.known_at
                where = f"{site_id} degraded {begun:.0f}..{ended:.0f} s"
                if got != {receiver} or len(starts) != 1 or folded != ["firing", "resolved"]:
                    wrong.append(
                        f"{where}: {alertname} reached {sorted(got)} (not {receiver}), began "
                        f"{len(starts)} times, told {folded}"
                    )
    lost = [(a, b) for (a, up), (b, _) in itertools.pairwise(truth.broker) if not up]
    for start, end in lost:
        if end - start < _for_seconds("DistrictmonBrokerDisconnected") + 2 * late:
            continue
        checked.add("DistrictmonBrokerDisconnected")
        receiver = routes.of({"scope": "monitor", "severity": "critical", "blind": "mqtt"})
        got, starts, folded = _told_once(day, "DistrictmonBrokerDisconnected", {}, start, end, late)
        if got != {receiver} or len(starts) != 1 or folded != ["firing", "resolved"]:
            wrong.append(
                f"broker lost {start - day.known_at:.0f}..{end - day.known_at:.0f} s: reached "
                f"{sorted(got)} (not {receiver}), began {len(starts)} times, told {folded}"
            )
    assert checked == {*FAULT_ALERTS.values(), "DistrictmonBrokerDisconnected"}, checked
    assert not wrong, "\n".join(wrong)


def test_nothing_pages_for_sites_behind_a_parent_in_maintenance_or_unseen(day: Run) -> None:
    """A site-scope page must be about a site the oracle says was down (down alerts) or
    degraded (degraded alerts) when the alert began: never about one that was unreachable (its
    parent's fault), in maintenance, unknown (the broker lost, the monitor stopped) or up.
    The monitor's own alerts stay silent once it runs, but for the broker it lost; and no
    objective alert fires on a ledger that holds a day, not the quarter of a month the rule
    asks for."""
    truth = day.truth()
    timing = day.settings.timing()
    late = max(timing.late("snmp"), timing.late("mqtt"))
    wrong: list[str] = []
    for notification, alert in _firing(day):
        labels = alert["labels"]
        site = labels.get("site")
        name = labels["alertname"]
        own = labels.get("scope") == "monitor" and name != "DistrictmonBrokerDisconnected"
        watched = day.known_at <= _when(alert) < day.ended_at  # before the test stops it
        if (own and watched) or name == "AvailabilityBelowObjective":
            wrong.append(f"{notification.receiver}: {name} at {_when(alert) - day.known_at:.0f} s")
            continue
        if labels.get("scope") != "site" or site not in truth.sites:
            continue
        if name in DEGRADED_ALERTS:
            allowed = {"degraded"}
        elif name in (*DOWN_ALERTS.values(), "SiteDown"):
            allowed = {"down"}
        else:
            continue
        began = _when(alert) - _for_seconds(name)
        # the state that made the alert: at some moment of its pending time, within an edge
        seen = {
            raw_state(truth, site, at, day.maintenance, day.gaps)
            for at in (began - late, began, began + late, _when(alert))
        }
        if not seen & allowed:
            wrong.append(
                f"{notification.receiver}: {name} {site} from {began - day.known_at:.0f} s: "
                f"the site was {sorted(seen)}"
            )
    assert not wrong, "\n".join(wrong)


def test_each_page_names_site_commune_owner_reason_local_time_and_a_runbook(day: Run) -> None:
    truth = day.truth()
    inventory = load_config(day.config)
    zone = ZoneInfo(inventory.timezone or "UTC")
    wrong: list[str] = []
    pages = [(n, a) for n, a in _firing(day) if a["labels"].get("site") in inventory.sites]
    assert pages, "no site page at all"
    for _notification, alert in pages:
        labels, notes = alert["labels"], alert["annotations"]
        site = inventory.sites[labels["site"]]
        text = f"{notes.get('summary', '')} {notes.get('description', '')}"
        commune = inventory.communes[site.commune].name
        owner = inventory.owners[site.owner].name
        problems = [
            what
            for what, needed in (("site name", site.name), ("commune", commune), ("owner", owner))
            if needed not in text
        ]
        if labels["alertname"] in (*DOWN_ALERTS.values(), "SiteDown"):
            reason = MISSING_REASONS[truth.sites[site.id].probe]
            if reason not in text:
                problems.append(f"reason {reason}")
            # since when, in the district's local time, to the minute
            began = _when(alert) - _for_seconds(labels["alertname"])
            minutes = {
                dt.datetime.fromtimestamp(began + shift, zone).strftime("%H:%M")
                for shift in range(-15, 16)
            }
            if not any(minute in text for minute in minutes) or "UTC+7" not in text:
                problems.append("local time of the outage's start")
        status, body = day.runbooks.get(notes.get("runbook_url", ""), (0, ""))
        if status != 200 or labels["alertname"].lower() not in body.lower():
            problems.append(f"runbook {notes.get('runbook_url')} ({status})")
        if problems:
            wrong.append(f"{labels['alertname']} {site.id}: missing {', '.join(problems)}: {text}")
    assert not wrong, "\n".join(wrong[:20])


class Receivers:
    """Who the shipped routes send an alert to, as Alertmanager's own amtool says."""

    def __init__(self, alertmanager: Any) -> None:
        self._config = alertmanager.dir / "alertmanager.yml"
        self._known: dict[tuple[tuple[str, str], ...], str] = {}

    def of(self, labels: dict[str, str]) -> str:
        key = tuple(sorted(labels.items()))
        if key not in self._known:
            done = subprocess.run(
                ["amtool", "config", "routes", "test", f"--config.file={self._config}",
                 *(f"{k}={v}" for k, v in key)],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            self._known[key] = done.stdout.strip()
        return self._known[key]


# --- panels ----------------------------------------------------------------------------------


def test_every_panel_shows_what_the_oracle_says_at_quiet_instants(day: Run) -> None:
    """Every target of every dashboard, queried from the run's Prometheus at instants of the
    day when nothing had just changed, at All and at one commune, owner and kind: the states,
    counts, coverage, times in state, availability, reboots, readings and reasons it shows
    are the oracle's (tests/panel_truth.py; panels.UNSTATED lists what it cannot state)."""
    problems, seen = check_panels(day.played(), day.prometheus.query, FACTOR)
    assert len(seen) >= 6, f"only {len(seen)} quiet instants in the day"
    assert sum(rates for _, _, rates in seen) >= 3, "rates stated at fewer than 3 instants"
    shown = {state for _, states, _ in seen for state in states.values()}
    assert shown == set(STATES), f"the instants checked show only {sorted(shown)}"
    assert not problems, (
        f"{len(problems)} wrong (simulator loop {day.simulator_loop}):\n" + "\n".join(problems[:40])
    )


# --- what the day is, and the report --------------------------------------------------------


def test_the_day_puts_every_state_in_front_of_the_oracle(day: Run) -> None:
    """The checks above mean something only if the day really made each kind of trouble."""
    truth = day.truth()
    timing = day.settings.timing()
    seen: dict[str, set[str]] = defaultdict(set)
    for site in truth.sites:
        want = expected(truth, site, day.known_at, day.ended_at, timing, day.maintenance, day.gaps)
        for span in want.spans:
            seen[span.state].add(truth.sites[site].kind)
    assert set(seen) == set(STATES), seen
    assert {"bts", "gateway", "radio_station"} <= seen["down"], seen["down"]
    assert {"bts", "radio_station", "loudspeaker"} <= seen["degraded"], seen["degraded"]
    assert "loudspeaker" in seen["unknown"]  # the broker lost
    assert day.gaps, "the daemon was restarted"


def test_the_report_over_the_day_gives_the_oracles_figures(day: Run) -> None:
    """`districtmon report`, as the office runs it at the end of a month, over the day."""
    truth = day.truth()
    timing = day.settings.timing()
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "report", "-c", str(day.config), "--by", "site",
         "--format", "json", "--from", _moment(day.known_at), "--to", _moment(day.ended_at)],
        capture_output=True, text=True, timeout=120, check=True, cwd=day.config,
    )  # fmt: skip
    rows = {row["id"]: row for row in json.loads(done.stdout)["rows"]}
    wrong: list[str] = []
    for site in truth.sites:
        want = expected(truth, site, day.known_at, day.ended_at, timing, day.maintenance, day.gaps)
        row = rows[site]
        seconds = want.seconds()
        for state in STATES:
            got = float(row[f"{state}_site_seconds"])
            # the report cuts the window to the millisecond: a rounding more at each end
            if abs(got - seconds[state]) > want.tolerance + 0.01:
                wrong.append(f"{site} {state}: {got:.1f} s, expected {seconds[state]:.1f}")
        outages = int(row["outages"])
        if not want.outages <= outages <= want.outages + want.ambiguous_outages:
            wrong.append(f"{site}: {outages} outages, expected {want.outages}")
    assert not wrong, f"simulator loop {day.simulator_loop}:\n" + "\n".join(wrong[:40])


def _moment(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")


# Three-valued: True in service, False not, None either (the site's figure is within the
# oracle's tolerance of the threshold).
Maybe = bool | None


def _in_service(want: Expected, kind: str, threshold: float) -> Maybe:
    """The oracle's word on a site over the day: its available (for a radio station: up)
    seconds over its counted seconds, each of which may be off by the tolerance."""
    s = want.seconds()
    counted = sum(s[state] for state in ("up", "degraded", "down"))
    good = s["up"] if kind == "radio_station" else s["up"] + s["degraded"]
    t = want.tolerance
    if counted + t <= 0:
        return False
    lo = max(0.0, good - t) / (counted + t)
    hi = 1.0 if counted - t <= 0 else min(1.0, (good + t) / (counted - t))
    if lo >= threshold:
        return True
    if hi < threshold:
        return False
    return None


def _all(values: list[Maybe]) -> Maybe:
    if any(v is False for v in values):
        return False
    return True if all(v is True for v in values) else None


def _any(values: list[Maybe]) -> Maybe:
    if any(v is True for v in values):
        return True
    return False if all(v is False for v in values) else None


def test_the_infrastructure_indicators_over_the_day_count_what_the_oracle_counts(day: Run) -> None:
    """`districtmon report --indicators`, the figures the office files, over the day: each
    count lies between what the oracle says surely was in service and what may have been."""
    truth = day.truth()
    timing = day.settings.timing()
    config = load_config(day.config, environ={})
    threshold = config.in_service
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "report", "-c", str(day.config), "--indicators",
         "--format", "json", "--from", _moment(day.known_at), "--to", _moment(day.ended_at)],
        capture_output=True, text=True, timeout=120, check=True, cwd=day.config,
    )  # fmt: skip
    got = {i["key"]: i for i in json.loads(done.stdout)["indicators"]}
    sites = config.sites.values()
    served: dict[str, Maybe] = {
        s.id: _in_service(
            expected(truth, s.id, day.known_at, day.ended_at, timing, day.maintenance, day.gaps),
            s.kind,
            threshold,
        )
        for s in sites
    }
    communes = list(config.communes)
    want: dict[str, list[Maybe]] = {}
    for operator in (o.id for o in config.owners.values() if o.kind == "operator"):
        theirs = [served[s.id] for s in sites if s.kind == "bts" and s.owner == operator]
        if theirs:
            want[f"bts:{operator}"] = theirs
    # a commune's line: its gateways whose parent is in another commune, or that have none
    lines = {
        c: [
            served[s.id]
            for s in sites
            if s.kind == "gateway"
            and s.commune == c
            and (s.parent not in config.sites or config.sites[s.parent].commune != c)
        ]
        for c in communes
    }
    want["communes_fibre"] = [_all(v) if v else False for v in lines.values()]
    operators = sorted({s.owner for s in sites if s.kind == "bts"})
    want["communes_mobile"] = [
        _all(
            [
                _any(
                    [
                        served[s.id]
                        for s in sites
                        if s.kind == "bts" and (s.commune, s.owner) == (c, op)
                    ]
                )
                for op in operators
            ]
        )
        for c in communes
    ]
    want["radio_on_air"] = [served[s.id] for s in sites if s.kind == "radio_station"]
    want["loudspeaker_areas"] = [
        _any(
            [
                served[s.id]
                for s in sites
                if s.kind == "loudspeaker" and s.commune == commune.id and area in s.covers
            ]
        )
        for commune in config.communes.values()
        for area in commune.areas
    ]
    agencies = {o.id for o in config.owners.values() if o.kind == "agency"}
    want["agencies_online"] = [
        served[s.id] for s in sites if s.kind == "gateway" and s.owner in agencies
    ]
    want["communes_meeting"] = [
        _any([served[s.id] for s in sites if s.kind == "video_endpoint" and s.commune == c])
        for c in communes
    ]
    want["post_points"] = [served[s.id] for s in sites if s.kind == "post_point"]
    assert set(got) == set(want)
    wrong = []
    for key, values in want.items():
        sure = sum(v is True for v in values)
        maybe = sum(v is None for v in values)
        item = got[key]
        if item["of"] != len(values) or not sure <= item["met"] <= sure + maybe:
            wrong.append(
                f"{key}: {item['met']}/{item['of']}, expected {sure}..{sure + maybe}/{len(values)}"
            )
    assert not wrong, "\n".join(wrong)
    # the day's faults are in the figures: something fell short, and not everything did
    assert any(got[k]["short"] for k in want) and any(got[k]["met"] for k in want)
    # the printed page holds the same counts, first
    page = subprocess.run(
        [sys.executable, "-m", "monitor", "report", "-c", str(day.config), "--format", "html",
         "--from", _moment(day.known_at), "--to", _moment(day.ended_at)],
        capture_output=True, text=True, timeout=120, check=True, cwd=day.config,
    ).stdout  # fmt: skip
    tables = Tables()
    tables.feed(page)
    _head, *rows = tables.tables["chi-tieu"]
    printed = {row[0]: (int(row[1]), row[2]) for row in rows}
    assert printed == {i["label"]: (i["met"], f"{i['of']} {i['unit']}") for i in got.values()}
    assert page.index('id="chi-tieu"') < page.index('id="theo-commune"')
