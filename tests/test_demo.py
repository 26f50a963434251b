"""`./dev demo` as a newcomer runs it: its steps after the set-up (`python -m
monitor.simulator.demo`, what ./dev execs), at its default x10, playing a scenario of the
test's own: one Viettel BTS dies 5 simulated minutes in and stays dead.

What the demo must show, checked against what was decided outside it: the simulator's own
record (GET /truth of its control port) for the sites' states that Prometheus holds, the
shipped config/prometheus/ and config/alertmanager/ files for the rules and the routing the
peers run, and the shipped route to Viettel's NOC for who is paged. Then Ctrl-C, as a terminal
sends it (SIGINT to the demo's process group), must leave no process of the demo behind.

The demo runs on its fixed loopback ports (those it prints), as a person runs it: the test
fails, saying so, when a demo is already running on this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerting import ALERT_RULES, ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, load_yaml, parse_duration
from oracle import STATES, Timing, Truth, raw_state
from shipped_windows import shipped_windows
from stack import unmeasured

from monitor.simulator.demo import timers

ROOT = Path(__file__).resolve().parents[1]
DEMO = "monitor.simulator.demo"
SPEED = 10.0
SITE = "bts-vtl-thanh-nua-03"  # Viettel's: the shipped routing pages viettel-noc
DIES_AT = 5 * 60  # simulated seconds: a lead for every site to be known and Prometheus settled


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode())


def wait_for(what: str, check: Callable[[], bool], limit: float, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass  # a peer not answering yet
        time.sleep(0.25)
    raise AssertionError(f"timed out after {limit:g} s waiting for {what}\n{log()[-4000:]}")


class DemoRun:
    """`python -m monitor.simulator.demo SCENARIO SPEED --var DIR` in a session of its own, as a
    terminal starts a command: Ctrl-C reaches its whole process group. Its output is read in a
    thread."""

    def __init__(self, scenario: Path, var: Path) -> None:
        self.var = var
        with unmeasured():  # timed like production, at SPEED: see stack.unmeasured
            self.proc = subprocess.Popen(
                [sys.executable, "-m", DEMO, str(scenario), f"{SPEED:g}", "--var", str(var)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def logs(self) -> str:
        """The demo's output, then the end of each peer's log."""
        parts = [self.output()]
        for log in sorted((self.var / "demo").glob("*.log")):
            text = log.read_text(encoding="utf-8", errors="replace").splitlines()
            parts.append(f"--- {log.name}\n" + "\n".join(text[-15:]))
        return "\n".join(parts)

    def printed_url(self, label: str) -> str:
        """The first URL the demo printed on the line that starts with `label`."""
        for line in self.lines:
            words = line.split()
            if words[:1] == [label] and len(words) > 1:
                parsed = urllib.parse.urlsplit(words[1])
                return f"{parsed.scheme}://{parsed.netloc}"
        raise AssertionError(f"the demo printed no {label} line:\n{self.output()}")

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the demo's process group; its exit status."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(150)  # each peer's stop is bounded (the demo's run.py)
        finally:
            self._reader.join(timeout=5)

    def close(self) -> None:
        """After a failed test: Ctrl-C first (the simulator removes its firewall table as it
        stops), then whatever of the session is left, SIGKILLed."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                self.interrupt()
        for pid in session_processes(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def session_processes(session: int) -> list[int]:
    """Every live (not zombie) process of the session `session`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid pgrp session ...: comm may hold spaces, so after the last ')'
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def command_line(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoRun]:
    scenario = tmp_path / "one-bts.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "name": "One BTS dies",
                "events": [{"at": f"{DIES_AT // 60}m", "do": "down", "site": SITE}],
            }
        ),
        encoding="utf-8",
    )
    run = DemoRun(scenario, tmp_path / "var")
    try:
        yield run
    finally:
        run.close()


def prometheus_states(prometheus: str, at: float, scrape: float) -> dict[str, str]:
    """Each site's state as Prometheus stored it just before `at`: the last sample of each
    series over three scrapes, so that one scrape that failed on a loaded machine (whose
    staleness markers end every series at once) does not hide them."""
    expr = f"last_over_time(districtmon_site_state[{round(3 * scrape * 1000)}ms]) == 1"
    query = urllib.parse.urlencode({"query": expr, "time": at})
    result = http_json(f"{prometheus}/api/v1/query?{query}")["data"]["result"]
    return {r["metric"]["site"]: r["metric"]["state"] for r in result}


def without_timers(route: dict[str, Any]) -> dict[str, Any]:
    """A route tree with its timers left out: what decides who is paged for what."""
    timers = ("group_wait", "group_interval", "repeat_interval")
    kept = {k: v for k, v in route.items() if k not in timers and k != "routes"}
    if kept.get("continue") is False:
        del kept["continue"]  # the default, which Alertmanager writes out
    if "matchers" in kept:
        kept["matchers"] = sorted(kept["matchers"])  # Alertmanager writes them sorted
    if "routes" in route:
        kept["routes"] = [without_timers(child) for child in route["routes"]]
    return kept


def inhibitions(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The inhibit rules, each one's matchers in order (Alertmanager writes them sorted)."""
    return [
        {k: sorted(v) if k.endswith("matchers") else v for k, v in rule.items()}
        for rule in config["inhibit_rules"]
    ]


def notifications(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.timeout(420)
def test_the_demo_runs_prometheus_and_alertmanager_beside_the_daemon_and_ctrl_c_stops_all(
    demo: DemoRun,
) -> None:
    wait_for("the demo to start", lambda: "  Pages:" in demo.lines, 180, demo.logs)
    prometheus = demo.printed_url("Prometheus:")
    alertmanager = demo.printed_url("Alertmanager:")
    control = demo.printed_url("truth:")
    pages = demo.var / "demo" / "notifications.jsonl"

    # Prometheus scrapes the daemon (the job the shipped rules watch), with the shipped rules,
    # their for: divided by the speed like every other timer
    wait_for(
        "Prometheus to scrape the daemon",
        lambda: bool(
            http_json(f"{prometheus}/api/v1/query?query=up%7Bjob%3D%22districtmon%22%7D+%3D%3D+1")[
                "data"
            ]["result"]
        ),
        60,
        demo.logs,
    )
    loaded = {
        rule["name"]: rule
        for group in http_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
        for rule in group["rules"]
        if rule["type"] == "alerting"
    }
    shipped_rules = load_yaml(ALERT_RULES)["groups"]
    shipped = {r["alert"]: r for g in shipped_rules for r in g["rules"] if "alert" in r}
    assert set(loaded) == set(shipped)
    bts_down_for = parse_duration(shipped["BtsDown"]["for"])
    assert loaded["BtsDown"]["duration"] == pytest.approx(bts_down_for / SPEED)

    # Alertmanager runs the shipped routing and inhibitions; only timers and receivers'
    # integrations (a webhook to the demo's receiver) differ
    running = yaml.safe_load(http_json(f"{alertmanager}/api/v2/status")["config"]["original"])
    routing = load_yaml(ALERTMANAGER_CONFIG)
    assert without_timers(running["route"]) == without_timers(routing["route"])
    assert inhibitions(running) == inhibitions(routing)
    assert [r["name"] for r in running["receivers"]] == [r["name"] for r in routing["receivers"]]
    group_wait = parse_duration(routing["route"]["group_wait"])
    assert parse_duration(running["route"]["group_wait"]) == pytest.approx(group_wait / SPEED)

    # the BTS dies: Viettel's NOC is paged (the shipped route for owner viettel), and the page
    # is written down by the demo's receiver
    def paged() -> bool:
        return any(
            n["receiver"] == "viettel-noc"
            and any(
                a["labels"]["alertname"] == "BtsDown"
                and a["labels"].get("site") == SITE
                and a["status"] == "firing"
                for a in n["payload"]["alerts"]
            )
            for n in notifications(pages)
        )

    # unless one of the shipped maintenance windows (real ones, on the wall clock) holds the BTS
    # over the run: then it is in maintenance, and pages nobody, whatever the simulator does
    begun = time.time()
    windows = shipped_windows(ROOT / "config", begun - 3600, begun + 3600)
    serviced = any(SITE in window.sites for window in windows if window.sites is not None)
    if not serviced:
        wait_for(f"BtsDown for {SITE} to reach viettel-noc", paged, 180, demo.logs)
        assert any("page to viettel-noc, FIRING" in line for line in demo.lines), demo.output()

    # what Prometheus holds of every site's state equals what the simulator served, at an
    # instant when nothing has changed for long enough for the daemon to have confirmed it
    truth = Truth.parse(http_json(f"{control}/truth")["records"])
    poll = 60 / SPEED
    timing = Timing(poll=poll, timeout=poll / 4, down_after=3, up_after=2, report=60 / SPEED)
    settled = max(
        max(truth.edges(site), default=truth.start_wall) + timing.sure(info.probe, 3)
        for site, info in truth.sites.items()
    )
    scrape = max(1.0, 15 / SPEED)  # the shipped 15 s divided, down to 1 s (the demo's timers.py)
    at = settled + 3 * scrape  # and then scraped
    time.sleep(max(0.0, at + 2 - time.time()))  # stored by then
    assert http_json(f"{control}/truth?after={truth.records[-1]['seq']}")["records"] == []
    seen = prometheus_states(prometheus, at, scrape)
    expected = {site: raw_state(truth, site, at, windows) for site in truth.sites}
    assert expected[SITE] == "down" or serviced
    wrong = {s: (seen.get(s), e) for s, e in expected.items() if seen.get(s) != e}
    assert not wrong, f"site: (Prometheus, truth): {wrong}"
    assert set(seen.values()) <= set(STATES)

    # the printed status page lists the site the simulator killed; the printed report is the
    # month's page with every commune of the shipped inventory
    daemon = demo.printed_url("report:")  # the daemon's listener, as the line names it
    summary = http_json(f"{daemon}/api/v1/summary")
    wrong_now = {w["id"] for w in summary["wrong"]}
    assert (SITE in wrong_now) == (expected[SITE] == "down"), summary["wrong"]
    assert summary["monitor"]["ok"] is True, summary["monitor"]
    with urllib.request.urlopen(f"{daemon}/report", timeout=30) as answer:
        report = answer.read().decode()
    assert "Báo cáo độ khả dụng hạ tầng" in report
    rows = re.findall(r'<table id="theo-commune">.*?</table>', report, re.S)
    listed = ROOT / "config" / "inventory" / "communes.yaml"
    communes = yaml.safe_load(listed.read_text("utf-8"))
    assert len(rows) == 1 and rows[0].count("<tr>") == 1 + len(communes["communes"])

    # Ctrl-C stops everything: the demo exits 0, no process of its session is left, and the
    # simulator's firewall table (its pings cut) is gone with it
    sessions_before = session_processes(demo.proc.pid)
    assert len(sessions_before) >= 6, sessions_before  # the demo and its five peers
    [simulator] = [pid for pid in sessions_before if b" simulate " in command_line(pid)]
    assert demo.interrupt() == 0, demo.logs()
    deadline = time.monotonic() + 10
    while (left := session_processes(demo.proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"left running after Ctrl-C: {left}\n{demo.logs()}"
    if truth.records[0]["icmp_cut"]:
        tables = subprocess.run(
            ["nft", "list", "tables"], capture_output=True, text=True, check=True
        )
        assert f"districtmon_sim_{simulator}" not in tables.stdout
    assert "stopped; the ledger is in" in demo.output()


def without_ranges(expr: str) -> str:
    """An expression with what is inside its square brackets (ranges, subqueries) left out."""
    return re.sub(r"\[[^\]]*\]", "[]", expr)


def run_tool(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_demo_copies_divide_every_timer_and_pass_promtool_amtool_and_check_config(
    tmp_path: Path,
) -> None:
    """The files the demo runs with at x10, read by the tools that will run them, against the
    shipped ones: the same rules, routes and settings, every timer a tenth."""
    speed = 10.0
    prom_dir = tmp_path / "prometheus"
    prom_dir.mkdir()
    config, flags = timers.prometheus_config(
        PROMETHEUS_CONFIG, prom_dir, speed, "127.0.0.1:9877", "127.0.0.1:19093"
    )
    run_tool("promtool", "check", "config", str(config))  # and the rule files it names
    written = load_yaml(config)
    assert written["global"]["scrape_interval"] == "1500ms"  # 15 s / 10
    # both shipped jobs scrape the demo's daemon: /metrics, and each site's availability at
    # the refresh's pace (60 s / 10)
    jobs = {job["job_name"]: job for job in written["scrape_configs"]}
    assert set(jobs) == {"districtmon", "districtmon_availability"}
    for job in jobs.values():
        assert job["static_configs"] == [{"targets": ["127.0.0.1:9877"]}]
    assert jobs["districtmon_availability"]["metrics_path"] == "/metrics/availability"
    assert jobs["districtmon_availability"]["scrape_interval"] == "6000ms"
    assert "--rules.alert.for-grace-period=60000ms" in flags  # 10m / 10
    for name in load_yaml(PROMETHEUS_CONFIG)["rule_files"]:
        groups = load_yaml(PROMETHEUS_CONFIG.parent / name)["groups"]
        shipped = [r for g in groups for r in g["rules"]]
        copied = [r for g in load_yaml(prom_dir / name)["groups"] for r in g["rules"]]
        assert len(copied) == len(shipped)
        for ours, theirs in zip(copied, shipped, strict=True):
            assert ours.get("alert", ours.get("record")) == theirs.get(
                "alert", theirs.get("record")
            )
            assert ours.get("labels") == theirs.get("labels")
            assert without_ranges(ours["expr"]) == without_ranges(theirs["expr"])
            for key in ("for", "keep_firing_for"):
                assert (key in ours) == (key in theirs)
                if key in theirs:
                    assert parse_duration(ours[key]) == pytest.approx(
                        parse_duration(theirs[key]) / speed
                    )
    # at x60 the scrape interval stays at 1 s: a scrape of the district takes its time
    fast = tmp_path / "fast"
    fast.mkdir()
    config60, _ = timers.prometheus_config(PROMETHEUS_CONFIG, fast, 60.0, "h:1", "h:2")
    assert load_yaml(config60)["global"]["scrape_interval"] == "1s"
    assert [job.get("scrape_interval") for job in load_yaml(config60)["scrape_configs"]] == [
        None,
        "1000ms",  # 60 s / 60
    ]

    am = timers.alertmanager_config(
        ALERTMANAGER_CONFIG, tmp_path / "alertmanager.yml", speed, "http://127.0.0.1:19095"
    )
    run_tool("amtool", "check-config", str(am))
    ours, theirs = load_yaml(am), load_yaml(ALERTMANAGER_CONFIG)
    assert without_timers(ours["route"]) == without_timers(theirs["route"])
    assert inhibitions(ours) == inhibitions(theirs)
    assert parse_duration(ours["route"]["group_interval"]) == pytest.approx(
        parse_duration(theirs["route"]["group_interval"]) / speed
    )
    for receiver in ours["receivers"]:
        hooks = receiver.get("webhook_configs", [])
        assert all(h["url"] == f"http://127.0.0.1:19095/{receiver['name']}" for h in hooks)
        assert set(receiver) <= {"name", "webhook_configs"}  # no e-mail, no Telegram

    copy = timers.daemon_config(
        ROOT / "config", tmp_path / "config", speed, tmp_path / "ledger.sqlite"
    )
    run_tool(sys.executable, "-m", "monitor", "check-config", "-c", str(copy))
    settings = load_yaml(copy / "districtmon.yaml")
    assert settings["poll"]["interval_seconds"] == 6.0
    assert settings["mqtt"]["heartbeat_timeout_seconds"] == 18.0
    assert settings["ledger"]["path"] == str(tmp_path / "ledger.sqlite")
