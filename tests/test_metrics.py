"""/metrics and the JSON API served in-process from a live snapshot: the fast per-site
rendering is byte for byte prometheus-client's, the metric names and labels follow the
Prometheus conventions, and the JSON API says what a site's state is, why and since when."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.model import Commune, Observation, Owner, Site, SnmpProbe, State, Transition
from monitor.expose.exposition import SiteExposition
from monitor.expose.http import HttpServer
from monitor.expose.self_metrics import build_registry
from monitor.expose.site_metrics import SiteCollector
from monitor.state.live import LiveState

COMMUNES = {
    "thanh-nua": Commune("thanh-nua", "Thanh Nưa", 21.432, 102.998, ("Bản Ta Pô", "Bản Mển")),
    "muong-phang": Commune(
        "muong-phang", "Mường Phăng", 21.461, 103.132, ("Bản Co Củ", "Bản Phăng", "Bản Nghịu")
    ),
}
OWNERS = {
    "viettel": Owner("viettel", "Viettel", "operator"),
    "dien-bien-rtv": Owner("dien-bien-rtv", "Đài Truyền thanh - Truyền hình huyện", "broadcaster"),
}


def site(
    site_id: str,
    kind: str = "bts",
    commune: str = "thanh-nua",
    *,
    name: str | None = None,
    parent: str | None = None,
    covers: tuple[str, ...] = (),
) -> Site:
    return Site(
        id=site_id,
        kind=kind,
        name=f"Trạm {site_id}" if name is None else name,
        commune=commune,
        owner="viettel" if kind == "bts" else "dien-bien-rtv",
        lat=21.4,
        lon=103.0,
        probe=SnmpProbe(address="127.0.0.1"),
        parent=parent,
        covers=covers,
    )


def inventory() -> dict[str, Site]:
    sites = [
        site("bts-vtl-thanh-nua-01"),
        # label values that need escaping: quote, backslash, newline (in the free-text name)
        site("bts-vtl-thanh-nua-02", name='BTS "Đồi A" \\ trạm\nmới'),
        site("loa-thanh-nua-01", "loudspeaker", covers=("Bản Ta Pô",)),
        site("loa-muong-phang-01", "loudspeaker", "muong-phang", covers=("Bản Co Củ", "Bản Phăng")),
        site("radio-muong-phang", "radio_station", "muong-phang", parent="bts-vtl-thanh-nua-01"),
    ]
    return {s.id: s for s in sites}


CODES = ["timeout", "auth", "on_battery", "wan_down", "behind_parent", "maintenance"]


def drive(live: LiveState, rng: random.Random, rounds: int = 3) -> None:
    """Random polls and transitions over every state, as a running daemon makes them."""
    now = time.time()
    for site_id in live.sites:
        for _ in range(rounds):
            ok = rng.random() < 0.7
            values: dict[str, float | str] = {}
            if ok and rng.random() < 0.8:
                values["device_uptime_seconds"] = rng.choice([0.0, 1.0, rng.uniform(1, 1e7)])
            live.apply_observation(Observation(site_id, now, ok, rng.uniform(0, 2), values))
            if rng.random() < 0.5:
                state = rng.choice(list(State))
                codes = tuple(rng.sample(CODES, rng.randrange(0, 3)))
                live.apply_transition(
                    Transition(site_id, state, now - 100, State.UNKNOWN, "x", codes)
                )


def test_fast_rendering_is_byte_for_byte_what_prometheus_client_renders() -> None:
    rng = random.Random(5)
    live = LiveState(inventory(), COMMUNES, OWNERS)
    fast = SiteExposition(live)
    reference = SiteCollector(live)
    assert fast.render() == generate_latest(reference)  # nothing polled yet: all unknown
    for i in range(20):  # values change between scrapes: the per-site memo must follow
        drive(live, rng, rounds=1)
        if i % 2:  # as the daemon does every second: the lines of the polled sites made ahead
            fast.update()
        assert fast.render() == generate_latest(reference)
    # a reload: one site gone, one added, a commune renamed; kept sites keep their values
    sites = dict(inventory())
    del sites["bts-vtl-thanh-nua-01"]
    sites["bts-vtl-muong-phang-01"] = site("bts-vtl-muong-phang-01", commune="muong-phang")
    communes = {**COMMUNES, "thanh-nua": replace(COMMUNES["thanh-nua"], name="Thanh Nưa mới")}
    live.replace_sites(sites, communes, OWNERS)
    drive(live, rng)
    body = fast.render()
    assert body == generate_latest(reference)
    assert 'name="Thanh Nưa mới"'.encode() in body and b'site="bts-vtl-thanh-nua-01"' not in body


def metrics_server(live: LiveState) -> HttpServer:
    registry, metrics = build_registry()
    metrics.polls.labels("snmp", "ok").inc()
    metrics.poll_errors.labels("snmp", "timeout").inc()
    server = HttpServer("127.0.0.1", 0, registry, live)
    server.start()
    return server


@pytest.fixture
def served() -> Iterator[tuple[LiveState, str]]:
    live = LiveState(inventory(), COMMUNES, OWNERS)
    drive(live, random.Random(1))
    live.apply_transition(
        Transition(
            "bts-vtl-thanh-nua-01",
            State.DOWN,
            1_700_000_000.5,
            State.UP,
            "snmp timeout",
            ("timeout",),
        )
    )
    live.apply_transition(Transition("loa-thanh-nua-01", State.UP, 1_700_000_100.0, State.DOWN))
    live.apply_transition(
        Transition(
            "bts-vtl-thanh-nua-02",
            State.DEGRADED,
            1_700_000_200.0,
            State.UP,
            "running on battery (mains failure); cabinet door open",
            ("on_battery", "door_open"),
        )
    )
    server = metrics_server(live)
    try:
        yield live, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:  # an error response holds its connection until closed
            return exc.code, dict(exc.headers), exc.read()


def test_metrics_are_served_plain_or_gzip_and_pass_promtool(served: tuple[LiveState, str]) -> None:
    _, url = served
    status, headers, plain = get(url + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    _, headers, packed = get(url + "/metrics", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    # the same text, but for the process' own CPU and memory, which move between scrapes
    unpacked = gzip.decompress(packed).decode().splitlines()
    assert [line for line in unpacked if "process_" not in line] == [
        line for line in plain.decode().splitlines() if "process_" not in line
    ]
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=plain, capture_output=True, timeout=30
    )
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


def families(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    _, _, body = get(url + "/metrics")
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_metric_names_and_labels_follow_prometheus_conventions(
    served: tuple[LiveState, str],
) -> None:
    _, url = served
    _, _, body = get(url + "/metrics")
    text = body.decode()
    helps = {line.split()[2]: line for line in text.splitlines() if line.startswith("# HELP")}
    types = {
        line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE")
    }
    for name, kind in types.items():
        if not name.startswith("districtmon_"):
            continue
        if kind == "counter":
            assert name.endswith("_total"), name
        else:
            assert not name.endswith("_total"), name
        # time is in seconds and a point in time says so
        assert not name.endswith(("_ms", "_milliseconds", "_minutes", "_hours")), name
        if "timestamp" in name or "since" in name:
            assert name.endswith("_timestamp_seconds"), name
    for name, series in families(url).items():
        for labels, _ in series:
            # never a label a scrape config sets on the target, never a reserved name
            assert not {"instance", "job", "__name__"} & labels.keys(), name
            assert not any(key.startswith("__") for key in labels), name
            if "name" in labels:  # free text only on the _info series
                assert name.endswith("_info"), name
    for name in types:
        if name.startswith("districtmon_site_") and name != "districtmon_site_info":
            assert "background polls" in helps[name] or "inventory" in helps[name], helps[name]
    assert sum(1 for name in types if name.endswith("_info") and "site" in name) == 1


def test_each_reason_code_of_a_site_not_up_is_a_series_and_up_sites_have_none(
    served: tuple[LiveState, str],
) -> None:
    live, url = served
    found = families(url)["districtmon_site_reason"]
    by_site: dict[str, set[str]] = {}
    for labels, value in found:
        assert value == 1.0
        assert set(labels) == {"site", "kind", "commune", "owner", "reason"}
        by_site.setdefault(labels["site"], set()).add(labels["reason"])
    assert by_site["bts-vtl-thanh-nua-01"] == {"timeout"}
    assert by_site["bts-vtl-thanh-nua-02"] == {"on_battery", "door_open"}
    assert "loa-thanh-nua-01" not in by_site  # up: no reason
    for site_id, codes in by_site.items():
        view = live.views[site_id]
        assert view.state is not State.UP and codes == set(view.codes)


def test_inventory_series_give_the_map_and_the_coverage(served: tuple[LiveState, str]) -> None:
    _, url = served
    found = families(url)
    communes = {labels["commune"]: labels for labels, _ in found["districtmon_commune_info"]}
    assert communes["muong-phang"]["name"] == "Mường Phăng"
    assert float(communes["thanh-nua"]["lat"]) == 21.432
    assert float(communes["thanh-nua"]["lon"]) == 102.998
    areas = {labels["commune"]: v for labels, v in found["districtmon_commune_areas"]}
    assert areas == {"thanh-nua": 2, "muong-phang": 3}
    covered = {labels["site"]: v for labels, v in found["districtmon_site_covered_areas"]}
    assert covered == {"loa-thanh-nua-01": 1, "loa-muong-phang-01": 2}  # loudspeakers only
    owners = {labels["owner"]: labels for labels, _ in found["districtmon_owner_info"]}
    assert owners["dien-bien-rtv"]["owner_kind"] == "broadcaster"
    info = {labels["site"]: labels for labels, _ in found["districtmon_site_info"]}
    assert info["bts-vtl-thanh-nua-02"]["name"] == 'BTS "Đồi A" \\ trạm\nmới'
    assert info["radio-muong-phang"]["parent"] == "bts-vtl-thanh-nua-01"


def test_api_lists_sites_with_state_reason_and_since_in_vietnamese(
    served: tuple[LiveState, str],
) -> None:
    live, url = served
    status, headers, body = get(url + "/api/v1/sites")
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Mường Phăng".encode() in body  # UTF-8 as is, not \\u escapes
    report = json.loads(body)
    assert report["count"] == len(live.sites) == len(report["sites"])
    by_id = {record["id"]: record for record in report["sites"]}
    down = by_id["bts-vtl-thanh-nua-01"]
    assert down["state"] == "down" and down["reason"] == "snmp timeout"
    assert down["reason_codes"] == ["timeout"]
    assert down["since"] == 1_700_000_000.5
    degraded = by_id["bts-vtl-thanh-nua-02"]
    assert degraded["reason_codes"] == ["on_battery", "door_open"]
    assert "cabinet door open" in degraded["reason"]
    assert by_id["loa-thanh-nua-01"]["reason_codes"] == []
    assert down["commune_name"] == "Thanh Nưa" and down["owner_name"] == "Viettel"
    view = live.views["bts-vtl-thanh-nua-01"]
    assert down["last_poll"] == view.last_poll and down["last_poll_ok"] == view.last_ok
    assert by_id["loa-muong-phang-01"]["covers"] == ["Bản Co Củ", "Bản Phăng"]


def test_api_filters_by_commune_owner_kind_and_state(served: tuple[LiveState, str]) -> None:
    _, url = served
    _, _, body = get(url + "/api/v1/sites?commune=muong-phang&kind=loudspeaker")
    assert [s["id"] for s in json.loads(body)["sites"]] == ["loa-muong-phang-01"]
    _, _, body = get(url + "/api/v1/sites?kind=bts&kind=radio_station&owner=viettel")
    assert {s["id"] for s in json.loads(body)["sites"]} == {
        "bts-vtl-thanh-nua-01",
        "bts-vtl-thanh-nua-02",
    }
    _, _, body = get(url + "/api/v1/sites?state=down")
    assert "bts-vtl-thanh-nua-01" in {s["id"] for s in json.loads(body)["sites"]}
    _, _, body = get(url + "/api/v1/sites?commune=nowhere")
    nothing = json.loads(body)
    assert (nothing["count"], nothing["sites"]) == (0, [])


def test_api_gives_one_site_or_a_clear_404(served: tuple[LiveState, str]) -> None:
    _, url = served
    status, _, body = get(url + "/api/v1/sites/loa-thanh-nua-01")
    record = json.loads(body)["site"]
    assert status == 200 and record["state"] == "up" and record["since"] == 1_700_000_100.0
    assert record["name"] == "Trạm loa-thanh-nua-01"
    status, _, body = get(url + "/api/v1/sites/no-such-site")
    assert status == 404 and json.loads(body) == {"error": "no such site: no-such-site"}
    request = urllib.request.Request(url + "/api/v1/sites", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    refused.value.close()
    assert refused.value.code == 405


def test_scrape_benchmark_smoke_run_measures_the_daemons_whole_body() -> None:
    """bench/scrape_bench.py --smoke: a few seconds, so that the bench keeps working as the code
    moves and keeps measuring what the daemon serves: on /metrics the state sets and device
    values, on /metrics/availability each site's availability (the bench itself checks that
    each is on its own path and not on the other)."""
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, str(root / "bench" / "scrape_bench.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines() if line.lstrip().startswith("300 ")]
    assert [r[1] for r in rows] == ["bench5", "shipped"], run.stdout
    for r in rows:
        body_mb, lines = float(r[2]), int(r[4].replace(",", ""))
        # 300 sites: at least their state sets and device values
        assert lines > 300 * (6 + 6) and body_mb > 0.3, run.stdout
        # the text made between scrapes for the sites polled meanwhile, as the daemon does
        assert float(r[14]) > 0 and r[16] in ("ok", "OVER"), run.stdout
        avail_mb, avail_lines = float(r[17]), int(r[18].replace(",", ""))
        # nearly every site's ratio and counted time over 4 windows, and the HELP/TYPE lines
        assert 0.95 * 300 * 8 < avail_lines <= 300 * 8 + 4 and avail_mb > 0.1, run.stdout
        assert float(r[19]) > 0 and float(r[20]) > 0, run.stdout
        # what a scrape of each path adds to the resident size: measured, never below 0
        assert float(r[15]) >= 0 and float(r[21]) >= 0, run.stdout


def test_device_values_are_exported_once_and_probe_measurements_stay_site_gauges() -> None:
    """What a device reports (SNMP profile values, pushed MQTT telemetry) is
    districtmon_device_*; what a probe measures (rtt, loss...) is a districtmon_site_* gauge
    and is not exported a second time as a device value."""
    from monitor.core.model import IcmpProbe, MqttProbe, Observation, Site, SnmpProbe
    from monitor.expose.device_metrics import DeviceValueCollector
    from monitor.state.live import LiveState

    bts = Site("bts-1", "bts", "BTS 1", "c", "o", 0.0, 0.0, SnmpProbe("127.0.0.1"))
    loa = Site("loa-1", "loudspeaker", "Loa 1", "c", "o", 0.0, 0.0, MqttProbe())
    vc = Site("vc-1", "video_endpoint", "VC 1", "c", "o", 0.0, 0.0, IcmpProbe("127.0.0.1"))
    live = LiveState({"bts-1": bts, "loa-1": loa, "vc-1": vc})
    live.apply_observation(Observation("bts-1", 1.0, True, values={"battery_volts": 54.5}))
    live.apply_observation(
        Observation("loa-1", 1.0, True, values={"battery_volts": 12.6}, probe="mqtt")
    )
    live.apply_observation(
        Observation("vc-1", 1.0, True, values={"rtt_seconds": 0.002}, probe="icmp")
    )
    families = {f.name: f for f in DeviceValueCollector(live).collect()}
    assert set(families) == {"districtmon_device_battery_volts"}
    samples = families["districtmon_device_battery_volts"].samples
    assert sorted((s.labels["site"], s.value) for s in samples) == [
        ("bts-1", 54.5),
        ("loa-1", 12.6),
    ]


def test_pushed_messages_and_traps_are_counted_but_not_timed_as_polls() -> None:
    """A pushed MQTT message or a trap answers no request: it counts as a poll taken, but
    its zero duration must not draw an MQTT line of "under a millisecond" in the poll
    duration quantiles of the monitor dashboard; an SNMP poll's duration is observed."""
    registry, metrics = build_registry()
    metrics.polled(Observation("bts-1", 1.0, True, duration=0.25, probe="snmp"))
    for n in range(3):
        metrics.polled(Observation("loa-1", 1.0 + n, True, probe="mqtt"))
    metrics.polled(Observation("bts-2", 1.0, False, error_reason="linkDown", probe="snmp_trap"))
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    polls = {
        (s.labels["probe"], s.labels["result"]): s.value
        for s in families["districtmon_polls"].samples
        if s.name == "districtmon_polls_total"
    }
    assert polls == {("snmp", "ok"): 1.0, ("mqtt", "ok"): 3.0, ("snmp_trap", "error"): 1.0}
    counts = {
        s.labels["probe"]: s.value
        for s in families["districtmon_poll_duration_seconds"].samples
        if s.name == "districtmon_poll_duration_seconds_count"
    }
    assert counts == {"snmp": 1.0}


def test_a_cluster_gone_offline_or_silent_no_longer_shows_what_it_last_reported() -> None:
    """A telemetry report may carry a few fields only, the others standing as last reported;
    but once the device is offline (its will) or silent past its heartbeat, its last signal
    strength and battery are not what it reports now: a panel must not show them as live,
    as none is shown for a device whose poll failed."""
    from monitor.core.model import MqttProbe, Observation, Site
    from monitor.expose.device_metrics import DeviceValueCollector
    from monitor.state.live import LiveState

    loa = Site("loa-1", "loudspeaker", "Loa 1", "c", "o", 0.0, 0.0, MqttProbe())
    live = LiveState({"loa-1": loa})
    report: dict[str, float | str] = {"battery_volts": 12.6, "rssi_dbm": -71.0}
    live.apply_observation(Observation("loa-1", 1.0, True, values=report, probe="mqtt"))
    live.apply_observation(
        Observation("loa-1", 2.0, True, values={"rssi_dbm": -73.0}, probe="mqtt")
    )

    def shown() -> dict[str, float]:
        return {f.name: f.samples[0].value for f in DeviceValueCollector(live).collect()}

    assert shown() == {
        "districtmon_device_battery_volts": 12.6,
        "districtmon_device_rssi_dbm": -73.0,
    }
    live.apply_observation(
        Observation("loa-1", 3.0, False, error="offline", error_reason="offline", probe="mqtt")
    )
    assert shown() == {}
    live.apply_observation(Observation("loa-1", 4.0, True, values=report, probe="mqtt"))
    assert shown()["districtmon_device_rssi_dbm"] == -71.0, "online again: its report shows"
    live.forget_values("loa-1")  # the monitor lost its broker: it cannot tell any more
    assert shown() == {}
