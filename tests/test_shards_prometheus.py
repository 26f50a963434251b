"""Two shards behind one Prometheus give the district the figures one daemon gives.

One simulated district (four communes of the shipped one: BTS, commune gateways and a radio
station polled over SNMP, loudspeaker clusters reporting over MQTT) is watched at the same
time by one `districtmon run` (job "districtmon") and by `--shard 1/2` and `--shard 2/2`
(job "districtmon-sharded"), every daemon with its own configuration directory as on its own
machine, their ledgers in one folder and their MQTT clients on one broker (so a clash of file
names or client ids would show). One real Prometheus scrapes the three and evaluates the
shipped rule files (recording.yml, dashboards.rules.yml, alerts.yml; their group intervals
scaled to the test's evaluation interval, nothing else changed).

Sites of both shards are taken down, among them a commune gateway whose dependants cross
shards (its radio station is the other shard's, and that station's loudspeaker clusters are
the gateway's shard's again), and one cluster's amplifier fails. At a quiet instant (every
change the simulator recorded is confirmed by every daemon and scraped) every series the
shipped recording rules record per job is compared between the jobs: counts and shares
exactly, and both jobs' counts with the simulator's own record, which has the gateway's
dependants unreachable, not down; availability within a bound worked out from the runs'
timing (`availability_tolerance`). Every rule, recording and alerting, evaluates without
error with the two jobs exporting the same sites.

The dependants are unreachable in the sharded job only because each shard polls the parents
of its sites that the other watches (their "foreign parents") without exporting them: were
it not so, they would be down there, or the gateway and the station counted twice.
"""

from __future__ import annotations

import inspect
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alerting import PROMETHEUS_CONFIG, PROMETHEUS_DIR, load_yaml, parse_duration, scaled_rules
from harness import Daemon, free_tcp_port
from oracle import Truth, raw_state
from peers import free_udp_port
from promstack import Prometheus, http_json
from simpeers import Mosquitto, Simulator, fast_settings, wait_until, write_district
from stack import unmeasured

from monitor.config.load import load_config
from monitor.config.shards import Shard
from monitor.core.model import Site
from monitor.ledger.writer import Ledger

COMMUNES = ["muong-phang", "thanh-nua", "na-tong", "muong-nha"]
POLL, TIMEOUT, DOWN_AFTER = 1.0, 0.3, 3
REFRESH = 0.5  # availability gauges (ledger.availability_refresh_seconds)
SCRAPE = 0.5  # Prometheus' scrape and evaluation intervals
SPEED = 60  # the simulator's MQTT clusters report every 60 simulated seconds: 1 s
WATCHED_BEFORE = 30.0  # seconds every site is watched up before the faults
DOWN_FOR = 45.0  # seconds the faults last before the figures are compared
# Sites with no dependants, of both shards, several kinds, communes and owners. Of na-tong,
# shard 2 watches two sites and both go down, shard 1 four that stay up: a rule averaging the
# shards' ratios instead of weighting them by counted time would be off by about a sixth of
# the time down (1/3 of the commune's time against the mean of 0 and 1), more than
# availability_tolerance allows.
DOWN = [
    "bts-vtl-thanh-nua-01",  # shard 2
    "bts-vnp-na-tong-01",  # shard 2
    "loa-na-tong-02",  # shard 2, MQTT
    "gw-ubnd-thanh-nua",  # shard 1
    "bts-mbf-muong-phang-01",  # shard 1
]
AMPLIFIER_FAULT = "loa-thanh-nua-03"  # shard 1: degraded, and its areas not covered
# shard 2; its radio station is shard 1's, the station's three loudspeaker clusters shard 2's
GATEWAY_DOWN = "gw-ubnd-muong-phang"
ONE, SHARDED = "districtmon", "districtmon-sharded"
# recorded series that are not figures of one setup: names and thresholds for any job, and
# each daemon's own UTC offset
NOT_PER_JOB = {
    "commune:districtmon_commune_name:info",
    "owner:districtmon_owner_name:info",
    "instance:districtmon_timezone_offset:seconds",
    "kind:districtmon_availability_objective:ratio",
    "kind:districtmon_battery_low_threshold:volts",
}


def recorded_names() -> list[str]:
    """Every series the shipped rule files record."""
    return [
        rule["record"]
        for name in load_yaml(PROMETHEUS_CONFIG)["rule_files"]
        for group in load_yaml(PROMETHEUS_DIR / name)["groups"]
        for rule in group["rules"]
        if "record" in rule
    ]


def per_job(
    prometheus: Prometheus, name: str, at: float
) -> dict[str, dict[tuple[Any, ...], float]]:
    """A recorded series at `at`, by job: {job: {labels other than job and instance: value}}."""
    found: dict[str, dict[tuple[Any, ...], float]] = {}
    for sample in prometheus.query(name, at=at):
        labels = dict(sample["metric"])
        assert "job" in labels, f"{name} adds up the jobs: {sample}"
        job = labels.pop("job")
        labels.pop("instance", None)
        labels.pop("__name__", None)
        key = tuple(sorted(labels.items()))
        assert key not in found.setdefault(job, {}), f"{name}: two series for {key} in {job}"
        found[job][key] = float(sample["value"][1])
    return found


# How old the figures a rule reads of one daemon may be: a daemon's ledger counts an open
# interval up to the writer's last commit or heartbeat (every few seconds when nothing
# changes), its gauges are refreshed from the ledger every REFRESH and scraped every SCRAPE.
HEARTBEAT: float = inspect.signature(Ledger.open).parameters["heartbeat_seconds"].default
AS_OF = HEARTBEAT + REFRESH + SCRAPE


def availability_tolerance(
    sites: int, down: int, counted: float, unavailable: float, known_apart: float
) -> float:
    """How far the availability of one group may differ between the two setups.

    A group's availability is 1 - D/C: D its sites' down seconds, C their counted seconds,
    each daemon's as of an instant up to AS_OF old. Between the setups, for each site,
    - an outage's start differs by less than one poll interval (each daemon dates it at its
      own first failed poll), and its length so far by less than that plus the difference
      of the as-of instants: |dD| < POLL + AS_OF for each of the `down` sites, 0 for others;
    - the counted time starts when the daemon first knew the site (measured: `known_apart`,
      the largest difference between the setups over every site) and ends at the as-of
      instant: |dC| < known_apart + AS_OF for each of the `sites`.
    Then |d(D/C)| <= |dD| / C + (D/C) |dC| / C, with C the smaller of the two setups' and
    D/C (`unavailable`) the larger."""
    d_down = down * (POLL + AS_OF)
    d_counted = sites * (known_apart + AS_OF)
    return (d_down + unavailable * d_counted) / counted


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as mosquitto:
        yield mosquitto


def test_two_shards_behind_one_prometheus_record_the_figures_of_one_daemon(
    tmp_path: Path, broker: Mosquitto
) -> None:
    ledgers = tmp_path / "ledgers"
    ledgers.mkdir()
    ports = {ONE: free_tcp_port(), "1/2": free_tcp_port(), "2/2": free_tcp_port()}

    def settings(http: int) -> str:
        mqtt = f"mqtt: {{host: 127.0.0.1, port: {broker.port}, heartbeat_timeout_seconds: 5}}\n"
        ledger = str(ledgers / "ledger.sqlite")
        return fast_settings(http, POLL, TIMEOUT, DOWN_AFTER, ledger, REFRESH) + mqtt

    whole = write_district(
        tmp_path / "one", communes=COMMUNES, port=free_udp_port(), speakers="mqtt",
        settings=settings(ports[ONE]),
    )  # fmt: skip
    configs = {ONE: whole}
    for shard in ("1/2", "2/2"):
        configs[shard] = tmp_path / f"shard-{shard[0]}"
        shutil.copytree(whole, configs[shard])
        (configs[shard] / "districtmon.yaml").write_text(settings(ports[shard]), "utf-8")
    inventory = load_config(whole, environ={})
    for site in [*DOWN, AMPLIFIER_FAULT]:
        assert not any(s.parent == site for s in inventory.sites.values()), site
    behind = _dependants(inventory.sites, GATEWAY_DOWN)
    [station] = [s for s in behind if inventory.sites[s].parent == GATEWAY_DOWN]
    clusters = [s for s in behind if s != station]
    assert len(clusters) == 3 and all(inventory.sites[s].parent == station for s in clusters)
    home = 1 if Shard(1, 2).owns(GATEWAY_DOWN) else 2
    assert not Shard(home, 2).owns(station) and all(Shard(home, 2).owns(s) for s in clusters)
    shares = {i: {s for s in inventory.sites if Shard(i, 2).owns(s)} for i in (1, 2)}
    assert {shard for site in DOWN for shard in (1, 2) if site in shares[shard]} == {1, 2}
    na_tong = {s for s, site in inventory.sites.items() if site.commune == "na-tong"}
    assert na_tong & shares[2] == {"bts-vnp-na-tong-01", "loa-na-tong-02"} and len(na_tong) == 6

    rules = tmp_path / "rules"
    rules.mkdir()
    factor = parse_duration(str(load_yaml(PROMETHEUS_CONFIG)["global"]["evaluation_interval"]))
    files = tuple(
        scaled_rules(PROMETHEUS_DIR / name, rules / name, factor / SCRAPE)
        for name in load_yaml(PROMETHEUS_CONFIG)["rule_files"]
    )
    scrape_configs = [
        {"job_name": ONE, "static_configs": [{"targets": [f"127.0.0.1:{ports[ONE]}"]}]},
        {
            "job_name": SHARDED,
            "static_configs": [
                {"targets": [f"127.0.0.1:{ports['1/2']}", f"127.0.0.1:{ports['2/2']}"]}
            ],
        },
    ]
    truth_file = tmp_path / "truth.jsonl"
    every = f"{round(SCRAPE * 1000)}ms"
    daemons: dict[str, Daemon] = {}
    with (
        unmeasured(),  # timed like production: see stack.unmeasured
        Simulator(
            whole, "--mqtt", f"127.0.0.1:{broker.port}", "--speed", str(SPEED),
            "--truth", str(truth_file),
        ) as simulator,
        Prometheus([], files, every, every, scrape_configs=scrape_configs) as prometheus,
    ):  # fmt: skip
        try:
            simulator.wait_ready(limit=30)
            prometheus.start()
            for name, config in configs.items():
                extra = () if name == ONE else ("--shard", name)
                daemons[name] = Daemon(config, ports[name], extra_args=extra)
            _wait_every_site_known(daemons)
            started = time.time()
            known = _first_known(prometheus)
            time.sleep(max(0.0, started + WATCHED_BEFORE - time.time()))

            for site in [*DOWN, GATEWAY_DOWN]:
                simulator.ctl(f"/sites/{site}/down")
            simulator.ctl(f"/sites/{AMPLIFIER_FAULT}/amplifier-fault")
            faults = time.time()
            truth = _recorded(truth_file, [*DOWN, GATEWAY_DOWN, *behind, AMPLIFIER_FAULT])
            expected = {s: raw_state(truth, s, time.time()) for s in inventory.sites}
            assert {s: expected[s] for s in behind} == dict.fromkeys(behind, "unreachable")
            out = len(DOWN) + 1 + len(behind)
            assert Counter(expected.values()) == {
                "up": len(inventory.sites) - out - 1, "down": len(DOWN) + 1,
                "unreachable": len(behind), "degraded": 1,
            }  # fmt: skip
            _wait_states(prometheus, expected, limit=30)
            time.sleep(max(0.0, faults + DOWN_FOR - time.time()))
            at = time.time()

            truth = Truth.load(truth_file)
            changes = [r["wall"] for r in truth.records if r["type"] in ("serves", "condition")]
            settle = DOWN_AFTER * POLL + 2 * SCRAPE
            assert max(changes) < at - settle, "a change was in flight at the instant compared"
            assert {s: raw_state(truth, s, at) for s in inventory.sites} == expected
            assert not _failing_rules(prometheus)
            _compare(prometheus, at, expected, inventory.sites, known)
            for daemon in daemons.values():
                assert daemon.metric("districtmon_mqtt_broker_connected") == 1
        finally:
            codes = _stop_all(daemons)
    logs = {name: daemon.log.read_text()[-2000:] for name, daemon in daemons.items()}
    assert codes == {ONE: 0, "1/2": 0, "2/2": 0}, logs
    # one ledger each, side by side; one MQTT session each (a shared client id would have
    # made the broker close one daemon's session for another's, again and again)
    assert sorted(p.name for p in ledgers.glob("*.sqlite")) == [
        "ledger.shard-1-of-2.sqlite", "ledger.shard-2-of-2.sqlite", "ledger.sqlite",
    ]  # fmt: skip
    assert "already connected, closing old connection" not in broker.log()


def _stop_all(daemons: dict[str, Daemon]) -> dict[str, int | str]:
    """Each daemon's exit code, every one stopped though another would not stop or had died
    (its code then says so: a dead one's log is in the test's report)."""
    codes: dict[str, int | str] = {}
    for name, daemon in daemons.items():
        if daemon.proc.poll() is not None:
            daemon.kill()  # closes its log
            codes[name] = f"died with {daemon.proc.returncode}"
            continue
        try:
            codes[name] = daemon.stop()
        except AssertionError as exc:
            codes[name] = str(exc)[:200]
    return codes


def _dependants(sites: dict[str, Site], parent: str) -> list[str]:
    """Every site cut off when `parent` is: its children, theirs, and so on."""
    found: list[str] = []
    for site_id, site in sites.items():
        if site.parent == parent:
            found += [site_id, *_dependants(sites, site_id)]
    return found


def _failing_rules(prometheus: Prometheus) -> list[tuple[str, str]]:
    """Rules whose last evaluation failed (e.g. a join that two jobs make ambiguous)."""
    groups = http_json(f"{prometheus.url}/api/v1/rules")["data"]["groups"]
    return [
        (rule["name"], rule.get("lastError", ""))
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]


def _recorded(truth_file: Path, sites: list[str], limit: float = 10.0) -> Truth:
    """The simulator's record once it holds a change of each of `sites`."""

    def holds() -> bool:
        truth = Truth.load(truth_file)
        changed = {r.get("site") for r in truth.records if r["type"] in ("serves", "condition")}
        return changed >= set(sites)

    wait_until("the simulator's record of the faults", holds, limit)
    return Truth.load(truth_file)


def _wait_every_site_known(daemons: dict[str, Daemon], limit: float = 40.0) -> None:
    def known() -> bool:
        for name, daemon in daemons.items():
            code = daemon.proc.poll()
            assert code is None, f"{name} exited with {code}: {daemon.log.read_text()[-3000:]}"
            try:
                _, body = daemon.get("/api/v1/sites?state=unknown")
            except OSError:
                return False
            if '"count": 0' not in body:
                return False
        return True

    wait_until("every daemon knows every site", known, limit)


def _first_known(prometheus: Prometheus, limit: float = 20.0) -> float:
    """The largest difference between the setups of when they first knew a site (every site
    is up from its first state, so its state_since is that moment)."""
    name = "districtmon_site_state_since_timestamp_seconds"

    def both() -> dict[str, dict[tuple[Any, ...], float]]:
        found: dict[str, dict[tuple[Any, ...], float]] = {}
        for sample in prometheus.query(name):
            labels = sample["metric"]
            found.setdefault(labels["job"], {})[labels["site"]] = float(sample["value"][1])
        return found

    def complete() -> bool:
        found = both()
        return len(found) == 2 and len({frozenset(sites) for sites in found.values()}) == 1

    wait_until("Prometheus holds every site of both setups", complete, limit, prometheus.log())
    since = both()
    return max(abs(since[ONE][s] - since[SHARDED][s]) for s in since[ONE])


def _wait_states(prometheus: Prometheus, expected: dict[str, str], limit: float) -> None:
    """Until both jobs' site states in Prometheus are the expected ones."""

    def seen() -> bool:
        states: dict[str, dict[str, str]] = {}
        for sample in prometheus.query("districtmon_site_state == 1"):
            labels = sample["metric"]
            states.setdefault(labels["job"], {})[labels["site"]] = labels["state"]
        return states == {ONE: expected, SHARDED: expected}

    wait_until("every daemon confirms the faults", seen, limit, prometheus.log())


def _compare(
    prometheus: Prometheus,
    at: float,
    expected: dict[str, str],
    sites: dict[str, Site],
    known_apart: float,
) -> None:
    for name in recorded_names():
        if name in NOT_PER_JOB:
            continue
        figures = per_job(prometheus, name, at)
        assert set(figures) == {ONE, SHARDED}, (name, figures)
        one, sharded = figures[ONE], figures[SHARDED]
        assert set(one) == set(sharded), (name, set(one) ^ set(sharded))
        if "availability" not in name:
            assert one == sharded, name
            continue
        # availability: within the bound of its group, from the counted seconds recorded
        counted_name = name.replace(":ratio", "_counted_seconds:sum")
        counted = per_job(prometheus, counted_name, at)
        for key, value in one.items():
            labels = dict(key)
            members = [s for s in sites if _in_group(sites[s], labels)]
            if name == counted_name:  # counted seconds: as the bound below says of C
                apart = len(members) * (known_apart + AS_OF)
                assert abs(value - sharded[key]) <= apart, (name, labels, value, sharded[key])
                continue
            down = sum(1 for s in members if expected[s] == "down")
            tolerance = availability_tolerance(
                len(members),
                down,
                min(counted[ONE][key], counted[SHARDED][key]),
                1 - min(value, sharded[key]),
                known_apart,
            )
            assert abs(value - sharded[key]) <= tolerance, (
                name,
                labels,
                value,
                sharded[key],
                tolerance,
            )

    # the faults show: the figures compared are not all 1
    district = per_job(prometheus, "job:districtmon_availability:ratio", at)
    assert all(value < 0.99 for job in district.values() for value in job.values()), district

    # both setups' counts are the simulator's record
    for name, groups in (
        ("kind_state:districtmon_sites:count", ("kind",)),
        ("commune_state:districtmon_sites:count", ("commune",)),
        ("owner_kind_state:districtmon_sites:count", ("owner", "kind")),
    ):
        record = Counter(
            tuple(sorted([*((g, getattr(sites[s], g)) for g in groups), ("state", state)]))
            for s, state in expected.items()
        )
        for job, found in per_job(prometheus, name, at).items():
            nonzero = {key: value for key, value in found.items() if value}
            assert nonzero == {key: float(n) for key, n in record.items()}, (name, job)


def _in_group(site: Site, labels: dict[str, str]) -> bool:
    groups = ("commune", "owner", "kind")
    return all(getattr(site, key) == value for key, value in labels.items() if key in groups)
