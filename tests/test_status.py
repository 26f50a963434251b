"""`districtmon status` against a real daemon polling real agents, and the JSON API's local
times: what is down, since when (to the second, in the configured zone), why and whose,
longest first; the exit code a script reads; --watch refreshing."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import INTERVAL, TIMEOUT, Daemon, free_tcp_port, wait_for, write_config
from peers import Snmpd, Snmpsim

from monitor.cli.status import Snapshot, duration, listen_url, render, show, watch
from monitor.config.settings import HttpSettings
from monitor.core.model import Commune, Owner, Site, SnmpProbe, State, Transition
from monitor.expose.http import HttpServer
from monitor.expose.self_metrics import build_registry
from monitor.state.live import LiveState

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def state_of(daemon: Daemon, site: str) -> str | None:
    try:
        _, body = daemon.get(f"/api/v1/sites/{site}")
    except OSError:
        return None
    record = json.loads(body).get("site") or {}
    value = record.get("state")
    return str(value) if value is not None else None


def clock(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, HCM).replace(microsecond=0, tzinfo=None)


def listed(out: str) -> list[list[str]]:
    """The rows of status' table: (state, since date, since time, ...) split on runs of two
    spaces, so that a name with single spaces stays one cell."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("state "))
    return [re.split(r"\s{2,}", line.strip()) for line in lines[start + 1 :] if line.strip()]


def test_status_answers_what_is_down_since_when_why_and_whose(
    tmp_path: Path, snmpd: Snmpd, snmpsim_agent: Snmpsim
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path / "config", port, snmpd, snmpsim_agent)
    settings = config / "districtmon.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8") + "timezone: Asia/Ho_Chi_Minh\n", encoding="utf-8"
    )
    inventory = config / "inventory" / "district.yaml"
    text = inventory.read_text(encoding="utf-8")
    # bts-ups depends on bts-snmpd: when both stop, bts-ups is unreachable, not down
    inventory.write_text(
        text.replace("    lat: 21.46\n", "    lat: 21.46\n    parent: bts-snmpd\n"),
        encoding="utf-8",
    )
    daemon = Daemon(config, port)
    try:
        wait_for(
            "both up",
            lambda: state_of(daemon, "bts-snmpd") == state_of(daemon, "bts-ups") == "up",
            daemon,
        )
        calm = status("-c", str(config))
        assert calm.returncode == 0, calm.stdout + calm.stderr
        assert calm.stdout.startswith(f"2 sites: 2 up (http://127.0.0.1:{port})\n")
        assert "daemon: healthy, running since " in calm.stdout
        assert "nothing down, unreachable, degraded or unknown" in calm.stdout

        parent_stopped = time.time()
        snmpd.stop()
        time.sleep(INTERVAL * 2)
        child_stopped = time.time()
        snmpsim_agent.stop()
        wait_for("the parent down", lambda: state_of(daemon, "bts-snmpd") == "down", daemon)
        wait_for(
            "the child unreachable", lambda: state_of(daemon, "bts-ups") == "unreachable", daemon
        )
        confirmed = time.time()

        found = status("--url", daemon.url)
        assert found.returncode == 1, found.stdout + found.stderr
        assert found.stdout.startswith("2 sites: 1 down, 1 unreachable")
        rows = listed(found.stdout)
        assert [row[0] for row in rows] == ["down", "unreachable"], "longest first"
        down, unreachable = rows
        assert down[3] == "bts-snmpd (BTS Viettel Thanh Nưa 01)" and down[4] == "Viettel"
        assert down[5], "a reason is given"
        assert "since (Asia/Ho_Chi_Minh)" in found.stdout
        # the outage is dated at its first failed poll: after the agent stopped (or at the
        # start of the poll in flight then), before the daemon confirmed it; shown to the
        # second in the configured zone
        since = dt.datetime.strptime(down[1], "%Y-%m-%d %H:%M:%S")
        assert clock(parent_stopped - TIMEOUT) <= since <= clock(confirmed)
        child_since = dt.datetime.strptime(unreachable[1], "%Y-%m-%d %H:%M:%S")
        assert clock(child_stopped - TIMEOUT) <= child_since <= clock(confirmed)

        only = status("--url", daemon.url, "--kind", "gateway")
        assert only.returncode == 0 and only.stdout.startswith("0 sites: none")

        watched = status("--url", daemon.url, "--watch", "0.2", "--count", "2")
        assert watched.returncode == 1
        assert watched.stdout.count("2 sites: 1 down, 1 unreachable") == 2
        assert watched.stdout.count("every 0.2 s, last at ") == 2
        assert daemon.stop() == 0
    finally:
        daemon.kill()

    gone = status("--url", daemon.url)
    assert gone.returncode == 2
    assert gone.stdout == ""
    assert f"cannot reach the daemon at {daemon.url}" in gone.stderr


def test_status_reads_only_http_listen_and_says_so_when_the_config_is_unreadable(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    port = free_tcp_port()  # nothing listens there
    (config / "districtmon.yaml").write_text(f"http: {{listen: '127.0.0.1:{port}'}}\n")
    found = status("-c", str(config))  # no inventory, no credentials: still the right address
    assert found.returncode == 2
    assert f"cannot reach the daemon at http://127.0.0.1:{port}" in found.stderr
    (config / "districtmon.yaml").write_text(
        f"http: {{listen: '127.0.0.1:{port}'}}\npoll: {{retries: -1}}\n"
    )
    found = status("-c", str(config))  # a mistake elsewhere in the file is only a note
    assert found.returncode == 2
    assert f"cannot reach the daemon at http://127.0.0.1:{port}" in found.stderr
    assert "(note: " in found.stderr and "poll.retries" in found.stderr


def test_wildcard_listeners_are_reached_on_loopback() -> None:
    assert listen_url(HttpSettings("0.0.0.0", 9877)) == "http://127.0.0.1:9877"
    assert listen_url(HttpSettings("::", 9877)) == "http://[::1]:9877"
    assert listen_url(HttpSettings("10.0.0.5", 9000)) == "http://10.0.0.5:9000"


def test_the_exit_code_follows_faults_not_blindness() -> None:
    def code(*states: str) -> int:
        sites = [{"id": f"s{i}", "state": s, "since": 1.0} for i, s in enumerate(states)]
        return render(Snapshot("http://x", 10.0, "UTC", sites, None))[1]

    assert code("up", "maintenance", "unknown") == 0
    assert code("up", "degraded") == 1
    assert code("unreachable") == 1
    assert code("down", "up") == 1
    assert duration(45) == "45s" and duration(725) == "12m 05s"
    assert duration(3 * 3600 + 7 * 60) == "3h 07m" and duration(2 * 86400 + 4 * 3600) == "2d 04h"


def test_watch_stops_after_count_and_keeps_trying_an_absent_daemon() -> None:
    out = io.StringIO()
    naps: list[float] = []
    code = watch(f"http://127.0.0.1:{free_tcp_port()}", {}, 3.0, 3, out, sleep=naps.append)
    assert code == 2 and naps == [3.0, 3.0]
    assert out.getvalue().count("cannot reach the daemon") == 3


def test_the_api_gives_local_time_beside_every_unix_time() -> None:
    sites = {
        "bts-a": Site(
            "bts-a", "bts", "Trạm A", "thanh-nua", "viettel", 0, 0, SnmpProbe("127.0.0.1")
        )
    }
    live = LiveState(
        sites,
        {"thanh-nua": Commune("thanh-nua", "Thanh Nưa", 0, 0)},
        {"viettel": Owner("viettel", "Viettel", "operator")},
    )
    live.timezone = "Asia/Ho_Chi_Minh"
    # 1_700_000_000 is 2023-11-14T22:13:20Z
    live.apply_transition(Transition("bts-a", State.DOWN, 1_700_000_000.5, State.UP, "timeout"))
    server = HttpServer("127.0.0.1", 0, build_registry()[0], live)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(base + "/api/v1/sites", timeout=5) as response:
            body = json.loads(response.read())
        with urllib.request.urlopen(base + "/api/v1/sites/bts-a", timeout=5) as response:
            one = json.loads(response.read())
        with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
            health = json.loads(response.read())
    finally:
        server.stop()
    [record] = body["sites"]
    assert record["since"] == 1_700_000_000.5
    assert record["since_local"] == "2023-11-15T05:13:20.500+07:00"
    assert record["last_poll"] is None and record["last_poll_local"] is None
    assert body["timezone"] == "Asia/Ho_Chi_Minh"
    for what in (body, one):
        local = dt.datetime.fromisoformat(what["time_local"])
        assert local.utcoffset() == dt.timedelta(hours=7)
        assert abs(local.timestamp() - what["time"]) < 0.001
    assert one["site"]["since_local"] == record["since_local"]
    started = dt.datetime.fromisoformat(health["started_local"])
    assert abs(started.timestamp() - health["started"]) < 0.001


@pytest.mark.parametrize("seed", [1, 2])
def test_longest_first_whatever_the_order_of_the_api(seed: int) -> None:
    states = ["down", "degraded", "unknown", "unreachable", "up"] * 3
    sites: list[dict[str, object]] = [
        {"id": f"s{i:02d}", "state": s, "since": 1000.0 + i, "reason": "r"}
        for i, s in enumerate(states)
    ]
    sites.append({"id": "never", "state": "unknown", "since": None})
    random.Random(seed).shuffle(sites)
    text, _ = render(Snapshot("http://x", 2000.0, "UTC", sites, None))
    order = [row[3] for row in listed(text)]
    timed = [str(s["id"]) for s in sites if s["state"] != "up" and s["since"] is not None]
    assert order == [*sorted(timed), "never"]  # ids sort as their `since` does


def test_an_unhealthy_daemon_says_so_and_a_stranger_is_not_taken_for_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sites = {"a": Site("a", "bts", "A", "c", "o", 0, 0, SnmpProbe("127.0.0.1"))}
    live = LiveState(sites)
    live.apply_transition(Transition("a", State.DOWN, time.time() - 90, State.UP, "timeout"))
    live.health.loop_tick = time.monotonic() - 100  # a stuck event loop: /healthz says 503
    server = HttpServer("127.0.0.1", 0, build_registry()[0], live)
    server.start()
    try:
        out = io.StringIO()
        assert show(f"http://127.0.0.1:{server.port}", {}, out) == 1
    finally:
        server.stop()
    text = out.getvalue()
    assert "daemon: UNHEALTHY, running since " in text and "event loop has not ticked" in text
    assert re.search(r"down\s+\S+ \S+\s+1m 3\ds\s+a \(A\)", text), text

    page = tmp_path / "index.html"
    page.write_text("<html>not a monitor</html>")
    stranger = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port := free_tcp_port())],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):  # bounded: until it listens
            if show(url, {}, io.StringIO()) == 2 and "HTTP 404" in capsys.readouterr().err:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the stranger never answered")
        (tmp_path / "api" / "v1").mkdir(parents=True)
        (tmp_path / "api" / "v1" / "sites").write_text("<html>sites?</html>")
        assert show(url, {}, io.StringIO()) == 2
        assert "answered, but not with JSON: is it districtmon?" in capsys.readouterr().err
    finally:
        stranger.terminate()
        stranger.wait(timeout=10)


def test_a_refused_reload_is_a_warning_of_a_healthy_daemon() -> None:
    sites = {"a": Site("a", "bts", "A", "c", "o", 0, 0, SnmpProbe("127.0.0.1"))}
    live = LiveState(sites)
    live.health.reload_refused = "reload refused (2 problems) at 2026-12-01T14:00:00.000+07:00"
    server = HttpServer("127.0.0.1", 0, build_registry()[0], live)
    server.start()
    try:
        out = io.StringIO()
        show(f"http://127.0.0.1:{server.port}", {}, out)
    finally:
        server.stop()
    line = next(x for x in out.getvalue().splitlines() if x.startswith("daemon:"))
    assert line.startswith("daemon: healthy, running since ")
    assert (
        "; warning: reload refused (2 problems) at 2026-12-01T14:00:00.000+07:00; running " in line
    )
