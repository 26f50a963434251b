"""The whole stack, as a user installs it, on loopback and at speed: the simulated district
(`districtmon simulate` with a scenario, recording its ground truth), the daemon on the shipped
configuration, a real Prometheus with the shipped prometheus.yml and rules, a real
Alertmanager with the shipped routing, and a webhook receiver standing in for every owner.

Only time changes. Every timer of the shipped files is divided by the same factor (NOTES.md:
dividing some and not others is how an outage that pages nobody went unnoticed): the
simulator plays at that speed; the daemon's poll interval, heartbeat timeout and refresh;
Prometheus' scrape and evaluation intervals, every rule's `for:`, `keep_firing_for:`, group
interval and range selector; Alertmanager's group_wait, group_interval, repeat_interval and
resolve_timeout. Two exceptions, each because the shipped value is not a timing of the model
but of the machine or of a protocol: the poll timeout (a round trip on this machine does not
get faster with the factor) and the MQTT keepalive (the broker protocol's minimum is 5 s);
neither decides when a state changes.

Receivers keep their names and routes; each one's integrations become one webhook to the test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml
from alerting import (
    PROMETHEUS_CONFIG,
    WebhookReceiver,
    alertmanager_test_config,
    load_yaml,
    parse_duration,
    scaled_prometheus,
)
from harness import Daemon, free_tcp_port
from oracle import Timing, Truth, Window
from panel_truth import Played, Sample, load
from peers import free_udp_port
from promstack import Alertmanager, Prometheus
from simpeers import SHIPPED, Mosquitto, Simulator, wait_until

RECONNECT_MAX = 1.0  # the daemon's MQTT reconnection backoff, at most (seconds)


@dataclass(frozen=True, slots=True)
class Settings:
    """The daemon's shipped settings, timed for the run."""

    factor: float
    poll: float
    timeout: float
    down_after: int
    up_after: int
    heartbeat: float

    def timing(self) -> Timing:
        # the simulator's MQTT devices report every 60 simulated seconds
        return Timing(
            self.poll,
            self.timeout,
            self.down_after,
            self.up_after,
            60 / self.factor,
            reconnect=RECONNECT_MAX * 1.2,
        )


def daemon_settings(
    target: Path, factor: float, http: int, relay: int, traps: int
) -> tuple[dict[str, Any], Settings]:
    """The shipped districtmon.yaml with its timers divided by `factor` and its listeners on
    the test's ports (written to `target`)."""
    doc: dict[str, Any] = load_yaml(SHIPPED / "districtmon.yaml")
    doc["http"] = {"listen": f"127.0.0.1:{http}"}
    doc["ledger"] = {"path": "ledger.sqlite", "availability_refresh_seconds": 60 / factor}
    poll = doc.setdefault("poll", {})
    poll["interval_seconds"] = poll.get("interval_seconds", 60) / factor
    poll["timeout_seconds"] = min(1.0, poll["interval_seconds"] / 2)
    poll["retries"] = 0
    doc["snmp"]["traps"]["listen"] = f"127.0.0.1:{traps}"
    mqtt = doc["mqtt"]
    mqtt["port"] = relay
    mqtt["heartbeat_timeout_seconds"] = mqtt.get("heartbeat_timeout_seconds", 180) / factor
    mqtt["self_check_seconds"] = max(0.5, mqtt.get("self_check_seconds", 5) / factor)
    mqtt["keepalive_seconds"] = 5
    mqtt["reconnect_min_seconds"] = 0.05
    mqtt["reconnect_max_seconds"] = RECONNECT_MAX
    target.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    state = doc.get("state", {})
    return doc, Settings(
        factor,
        poll["interval_seconds"],
        poll["timeout_seconds"],
        int(state.get("down_after", 3)),
        int(state.get("up_after", 2)),
        mqtt["heartbeat_timeout_seconds"],
    )


class Sampler:
    """Reads the simulator's devices twice a second while the day plays, in a thread: the
    figures a panel shows (a battery draining, a cabinet's temperature, a link's octets) are
    checked against what the devices reported around the panel's instant."""

    def __init__(self, simulator: Simulator, every: float = 0.5) -> None:
        self.samples: list[Sample] = []
        self._simulator = simulator
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = self._simulator.get("/sites")
            except OSError:
                status, body = 0, None
            if status == 200:
                sites = body["sites"]
                measured = {s["site"]: s["measured"] for s in sites if s["measured"]}
                self.samples.append(Sample(float(body["wall"]), measured))
            self._stop.wait(self._every)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Run:
    """What a test reads after (and during) a run."""

    config: Path
    truth_file: Path
    settings: Settings
    daemon: Daemon
    simulator: Simulator
    prometheus: Prometheus
    alertmanager: Alertmanager
    webhook: WebhookReceiver
    maintenance: list[Window] = field(default_factory=list)
    gaps: list[Window] = field(default_factory=list)
    known_at: float = 0.0  # when the daemon had seen every site
    ended_at: float = 0.0
    runbooks: dict[str, tuple[int, str]] = field(default_factory=dict)  # url -> status, text
    started_at: float = 0.0  # when the daemon was first started
    sampler: Sampler | None = None
    # the simulator's own loop over the run (its /stats "loop"): a held-up simulator answers
    # late for every device, which a failure message must tell apart from the daemon
    simulator_loop: dict[str, Any] = field(default_factory=dict)

    def truth(self) -> Truth:
        return Truth.load(self.truth_file)

    def played(self) -> Played:
        """What the panel check reads of the run."""
        scrape = float(
            parse_duration(str(load_yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]))
        )
        return Played(
            self.truth(),
            load(self.config),
            list(self.sampler.samples) if self.sampler is not None else [],
            self.settings.timing(),
            self.started_at,
            self.known_at,
            self.ended_at,
            list(self.gaps),
            list(self.maintenance),
            scrape / self.settings.factor,
        )

    def fetch_runbooks(self) -> None:
        """GET every runbook link the pages carry, as the person paged would follow it."""
        for notification in self.webhook.received:
            for alert in notification.alerts:
                url = str(alert.get("annotations", {}).get("runbook_url", ""))
                if url and url not in self.runbooks:
                    try:
                        with urllib.request.urlopen(url, timeout=5) as response:
                            self.runbooks[url] = (response.status, response.read().decode())
                    except urllib.error.HTTPError as exc:
                        with exc:
                            self.runbooks[url] = (exc.code, "")
                    except OSError as exc:
                        self.runbooks[url] = (0, str(exc))

    def restart_daemon(self, pause: float) -> None:
        """Stop the daemon cleanly, wait `pause` seconds, start it again: the monitor's own
        gap, which must be unknown for every site and end no outage."""
        stopped = time.time()
        assert self.daemon.stop() == 0, self.daemon.log.read_text()[-3000:]
        time.sleep(pause)
        port = int(self.daemon.url.rsplit(":", 1)[1])
        self.daemon = Daemon(self.config, port)
        self.gaps.append(Window(stopped, time.time(), None))


class District:
    """The stack around one scenario; `run()` plays it to the end and returns the Run."""

    def __init__(
        self,
        root: Path,
        scenario: Path,
        factor: float = 60.0,
        maintenance: tuple[tuple[str, float, float], ...] = (),
        lead: float = 30 * 60,
        communes: tuple[str, ...] | None = None,
    ) -> None:
        """`maintenance`: (site, start, end) in seconds of scenario time (simulated), turned
        into one-off windows of the daemon's maintenance.yaml at the real times they fall on.
        `lead`: simulated seconds added before the scenario's first event, so that the
        daemon, Prometheus and Alertmanager are settled (every site known, the monitor's own
        start-up alerts over) before anything happens.
        `communes`: watch only the shipped district's sites in these communes (and what they
        hang off), every one as shipped; None: the whole district."""
        self.root = root
        self.communes = communes
        self.scenario = _delayed(scenario, root / scenario.name, lead)
        self.lead = lead
        self.factor = factor
        self.planned = maintenance
        self._stack = ExitStack()
        self.run: Run | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.run is not None:
            self.run.daemon.kill()
            if self.run.sampler is not None:
                self.run.sampler.close()
        self._stack.close()

    def start(self) -> Run:
        factor = self.factor
        config = self.root / "config"
        shutil.copytree(SHIPPED, config, ignore=shutil.ignore_patterns("scenarios"))
        if self.communes is not None:
            _keep_communes(config / "inventory", set(self.communes))
        http, relay, traps = free_tcp_port(), free_tcp_port(), free_udp_port()
        _doc, settings = daemon_settings(config / "districtmon.yaml", factor, http, relay, traps)
        webhook = self._stack.enter_context(WebhookReceiver())
        alertmanager = self._stack.enter_context(
            Alertmanager(alertmanager_test_config(webhook.url, factor))
        )
        alertmanager.start()
        broker = self._stack.enter_context(Mosquitto())
        truth_file = self.root / "truth.jsonl"
        simulator = self._stack.enter_context(
            Simulator(
                config,
                "--scenario", str(self.scenario), "--speed", str(factor),
                "--mqtt", f"127.0.0.1:{broker.port}", "--broker-relay", f"127.0.0.1:{relay}",
                "--traps", f"127.0.0.1:{traps}", "--truth", str(truth_file),
                "--log-level", "info",
            )
        )  # fmt: skip
        simulator.wait_ready(limit=60)
        begun = Truth.load(truth_file).start_wall
        windows = [
            Window(
                begun + (self.lead + start) / factor,
                begun + (self.lead + end) / factor,
                frozenset({site}),
            )
            for site, start, end in self.planned
        ]
        _write_maintenance(config / "maintenance.yaml", self.planned, windows)
        started_at = time.time()
        daemon = Daemon(config, http)
        rules = self.root / "rules"
        rules.mkdir(exist_ok=True)
        scrape, flags = scaled_prometheus([f"127.0.0.1:{http}"], alertmanager.url, rules, factor)
        prometheus = self._stack.enter_context(Prometheus([], config=scrape, flags=tuple(flags)))
        prometheus.start()
        self.run = Run(
            config, truth_file, settings, daemon, simulator, prometheus, alertmanager, webhook,
            maintenance=windows, started_at=started_at, sampler=Sampler(simulator),
        )  # fmt: skip
        return self.run

    def wait_known(self, limit: float = 30.0) -> float:
        """Until the daemon has a state for every site; returns when."""
        assert self.run is not None
        daemon = self.run.daemon

        def known() -> bool:
            try:
                _, body = daemon.get("/api/v1/sites?state=unknown")
            except OSError:
                return False
            return '"count": 0' in body

        wait_until("every site known", known, limit, daemon.log.read_text()[-3000:])
        self.run.known_at = time.time()
        return self.run.known_at

    def scenario_time(self, seconds: float) -> float:
        """The wall time at which `seconds` of the scenario (simulated, from its own zero)
        fall."""
        assert self.run is not None
        return self.run.truth().start_wall + (self.lead + seconds) / self.factor

    def wait_monitor_settled(self, limit: float = 60.0) -> None:
        """Until Prometheus scrapes the daemon and no alert about the monitor itself fires:
        the start-up's own (the targets arrive a few seconds late) must be over before the
        scenario begins, or they would mute what it does."""
        assert self.run is not None
        prometheus = self.run.prometheus

        def settled() -> bool:
            up = prometheus.query('up{job="districtmon"} == 1')
            monitor = prometheus.query('ALERTS{scope="monitor"}')
            return bool(up) and not monitor

        wait_until("Prometheus scraping, no monitor alert", settled, limit, prometheus.log())

    def wait_scenario_end(self, limit: float) -> float:
        """Until the simulator has applied the scenario's last event (its own record says)."""
        assert self.run is not None
        run = self.run
        events = load_yaml(self.scenario)["events"]

        def finished() -> bool:
            return len(run.truth().actions) >= len(events)

        wait_until("the scenario's last event", finished, limit, run.simulator.log())
        run.ended_at = time.time()
        return run.ended_at

    def stop_daemon(self) -> None:
        assert self.run is not None
        if self.run.sampler is not None:
            self.run.sampler.close()
        assert self.run.daemon.stop() == 0, self.run.daemon.log.read_text()[-3000:]


@contextlib.contextmanager
def unmeasured() -> Iterator[None]:
    """The processes started meanwhile run without coverage measurement (`./dev test` runs
    the suite under coverage, which measures every Python subprocess too). The whole stack is
    timed like production: the simulator and the daemon traced line by line run several
    times slower, and at the run's speed the machine, not the code, would then decide what
    the operator sees. Their code is measured by the other tests."""
    saved = os.environ.pop("COVERAGE_PROCESS_CONFIG", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["COVERAGE_PROCESS_CONFIG"] = saved


def _keep_communes(inventory: Path, communes: set[str]) -> None:
    """Drop the sites of other communes from the inventory's files, keeping the sites the kept
    ones depend on (their parents, up to the district's core), every entry as shipped."""
    docs = {path: load_yaml(path) or {} for path in sorted(inventory.glob("*.yaml"))}
    sites = {s["id"]: s for doc in docs.values() for s in doc.get("sites", [])}
    keep = {site_id for site_id, s in sites.items() if s["commune"] in communes}
    for site_id in list(keep):
        parent = sites[site_id].get("parent")
        while parent is not None and parent not in keep:
            keep.add(parent)
            parent = sites[parent].get("parent")
    for path, doc in docs.items():
        if "sites" in doc:
            doc["sites"] = [s for s in doc["sites"] if s["id"] in keep]
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _delayed(source: Path, target: Path, lead: float) -> Path:
    """A copy of a scenario with every event `lead` simulated seconds later."""
    doc = load_yaml(source)
    for event in doc["events"]:
        event["at"] = f"{round(parse_duration(str(event['at'])) + lead)}s"
    target.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def _write_maintenance(
    path: Path, planned: tuple[tuple[str, float, float], ...], windows: list[Window]
) -> None:
    entries = [
        {
            "id": f"test-window-{index}",
            "sites": [site],
            "reason": "Bảo trì theo kế hoạch (kiểm thử)",
            "start": _iso(window.start),
            "end": _iso(window.end),
        }
        for index, ((site, _a, _b), window) in enumerate(zip(planned, windows, strict=True))
    ]
    path.write_text(
        yaml.safe_dump({"windows": entries}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def sites_with(truth: Truth, kind: str | None = None) -> Iterator[str]:
    for site, info in truth.sites.items():
        if kind is None or info.kind == kind:
            yield site


def save(run: Run, target: Path) -> None:
    """Copy what the panel check reads of a run to `target`: the configuration, the truth,
    the samples, the run's times and Prometheus' data (`python tests/panel_truth.py target`
    replays the check on it)."""
    played = run.played()
    shutil.copytree(run.config, target / "config", dirs_exist_ok=True)
    shutil.copy(run.truth_file, target / "truth.jsonl")
    shutil.copytree(run.prometheus.dir / "data", target / "prometheus", dirs_exist_ok=True)
    (target / "played.json").write_text(
        json.dumps(
            {
                "samples": [[s.wall, s.measured] for s in played.samples],
                "timing": dataclasses.asdict(played.timing),
                "factor": run.settings.factor,
                "started_at": played.started_at,
                "known_at": played.known_at,
                "ended_at": played.ended_at,
                "gaps": [[g.start, g.end] for g in played.gaps],
                "maintenance": [
                    [w.start, w.end, sorted(w.sites or ())] for w in played.maintenance
                ],
                "scrape": played.scrape,
            }
        )
    )
