"""The device values and availability gauges the daemon serves from kept text are what the
daemon holds: byte for byte what prometheus-client writes for the same families, and, read
back with prometheus-client's own parser, the values of the live views and of the snapshot
the test made. The gzip body made from kept parts is one gzip member equal to the plain body.
"""

from __future__ import annotations

import gzip
import os
import random
import re
import time
import tracemalloc
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from isal import isal_zlib
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.model import (
    Commune,
    IcmpProbe,
    Observation,
    Owner,
    Sample,
    Site,
    SnmpProbe,
    State,
    Transition,
)
from monitor.expose import availability_metrics
from monitor.expose.availability_metrics import (
    AVAILABILITY_PATH,
    AvailabilityCollector,
    SiteAvailabilityCollector,
    availability_registry,
)
from monitor.expose.device_metrics import DeviceValueCollector
from monitor.expose.gzipparts import KEEP_FROM, PartsGzip, gzip_pieces
from monitor.expose.http import HttpServer
from monitor.expose.keptbody import KeptBody
from monitor.expose.mqtt_metrics import registered_counts
from monitor.expose.self_metrics import build_registry
from monitor.expose.textformat import Families, MetricsRegistry, value_text
from monitor.ledger.recent import AvailabilityGauges, Snapshot
from monitor.state.live import LiveState

COMMUNES = {"thanh-nua": Commune("thanh-nua", "Thanh Nưa", 21.4, 103.0, ("Bản Mển",))}
OWNERS = {"viettel": Owner("viettel", "Viettel", "operator")}
# interface aliases are typed by people: quotes, backslashes, newlines, Vietnamese
ALIASES = ['uplink "Đồi A"', "cổng \\ 2", "mới\ndòng", "wan"]


def sites(n: int) -> dict[str, Site]:
    found = {}
    for i in range(n):
        probe = IcmpProbe("127.0.0.1") if i % 5 == 4 else SnmpProbe("127.0.0.1")
        kind = "video_endpoint" if i % 5 == 4 else "bts"
        found[f"s-{i:03d}"] = Site(
            f"s-{i:03d}", kind, f"Trạm {i}", "thanh-nua", "viettel", 21.4, 103.0, probe
        )
    return found


def poll(live: LiveState, rng: random.Random, site_id: str) -> None:
    """A poll as the SNMP poller reports one: scalars, text, counts of missing and malformed
    values (mostly zero), table rows; sometimes a failure, which leaves no value."""
    if rng.random() < 0.15:
        live.apply_observation(Observation(site_id, time.time(), False, 1.0, {}))
        return
    values: dict[str, float | str] = {
        "battery_volts": rng.choice([0.0, 1.0, -0.0, 53.5, rng.uniform(-1e7, 1e7), 2e6]),
        "mains_ok": float(rng.random() < 0.8),
        "reboots_total": float(rng.randrange(3)),
        "snmp_values_missing": rng.choice([0.0, 0.0, 0.0, 2.0]),
        "snmp_values_malformed": rng.choice([0.0, 0.0, 1.0]),
        "sys_name": "text is not a series",
        "uptime_seconds": 100.0,  # districtmon_site_device_uptime_seconds, not a device value
        "rtt_seconds": 0.01,  # a probe measurement: districtmon_site_rtt_seconds
    }
    if rng.random() < 0.2:
        values["door_open"] = float("nan") if rng.random() < 0.5 else float("inf")
    samples = []
    for row in rng.sample(range(len(ALIASES)), rng.randrange(len(ALIASES) + 1)):
        labels = (("alias", ALIASES[row]), ("if", f"Gi0/{row}"))
        samples.append(Sample("if_oper_up", labels, float(rng.random() < 0.9)))
        samples.append(Sample("if_in_octets_total", labels, float(rng.randrange(2**40))))
    # a value under another label set than its family's: left out by both renderings
    if rng.random() < 0.1:
        samples.append(Sample("if_oper_up", (("port", "1"),), 1.0))
    samples.append(Sample("profile_info", (("chosen", "auto"), ("profile", "router")), 1.0))
    live.apply_observation(
        Observation(site_id, time.time(), True, 0.1, values, samples=tuple(samples))
    )


def reference(
    collector: DeviceValueCollector | AvailabilityCollector | SiteAvailabilityCollector,
) -> bytes:
    return generate_latest(Families(collector.collect()))


def test_device_values_are_rendered_byte_for_byte_as_prometheus_client_renders_them() -> None:
    rng = random.Random(3)
    live = LiveState(sites(30), COMMUNES, OWNERS)
    devices = DeviceValueCollector(live, {"battery_volts": 'Battery "DC" \\ bus\nvolts.'})
    assert devices.render() == reference(devices) == b""  # nothing polled yet
    for _ in range(25):  # values, rows and aliases change between scrapes
        for site_id in rng.sample(list(live.sites), 12):
            poll(live, rng, site_id)
            if rng.random() < 0.3:  # the daemon makes the text of the polled sites every second
                devices.update()
        assert devices.render() == reference(devices)
    # a reload: sites gone and added; the kept label parts are those of the new table
    table = dict(live.sites)
    del table["s-000"]
    table["s-new"] = Site("s-new", "bts", "Mới", "thanh-nua", "viettel", 0, 0, SnmpProbe("x"))
    live.replace_sites(table)
    for site_id in table:
        poll(live, rng, site_id)
    body = devices.render()
    assert body == reference(devices)
    assert b'site="s-new"' in body and b'site="s-000"' not in body
    devices.helps = {"battery_volts": "Battery volts, from the reloaded profiles."}  # a reload
    body = devices.render()
    assert body == reference(devices) and b"from the reloaded profiles" in body


def test_between_scrapes_only_the_sites_a_poll_changed_have_their_text_made_again() -> None:
    """The daemon makes the text every second: a site's is made again when a poll replaced
    its values, not when only its state changed, and a scrape after that serves it made."""
    rng = random.Random(5)
    live = LiveState(sites(40), COMMUNES, OWNERS)
    devices = DeviceValueCollector(live)
    for site_id in live.sites:
        poll(live, rng, site_id)
    assert devices.update() == 40
    assert devices.update() == 0  # nothing polled since
    for site_id in ["s-003", "s-017"]:
        live.apply_transition(Transition(site_id, State.DOWN, time.time(), State.UP, "", ()))
    assert devices.update() == 0  # a change of state: the same values, the same text
    polled = ["s-000", "s-021", "s-039"]
    for site_id in polled:
        poll(live, rng, site_id)
    assert devices.update() == len(polled)
    assert devices.render() == reference(devices)
    live.forget_values("s-021")  # its broker lost: its values are not known now
    assert devices.update() == 1
    body = devices.render()
    assert body == reference(devices) and b'site="s-021"' not in body


def test_zero_counts_of_missing_and_malformed_values_are_left_out_and_others_shown() -> None:
    live = LiveState(sites(3), COMMUNES, OWNERS)
    counts = {"s-000": (0.0, 0.0), "s-001": (2.0, 0.0), "s-002": (0.0, 1.0)}
    for site_id, (missing, malformed) in counts.items():
        values: dict[str, float | str] = {
            "snmp_values_missing": missing,
            "snmp_values_malformed": malformed,
            "battery_volts": 53.5,
        }
        live.apply_observation(Observation(site_id, time.time(), True, 0.1, values))
    got = parsed(DeviceValueCollector(live).render())
    assert got["districtmon_device_snmp_values_missing"] == {"s-001": 2.0}
    assert got["districtmon_device_snmp_values_malformed"] == {"s-002": 1.0}
    assert got["districtmon_device_battery_volts"] == dict.fromkeys(counts, 53.5)


def parsed(body: bytes) -> dict[str, dict[str, float]]:
    """Sample name -> site -> value, read by prometheus-client's parser."""
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            key = sample.labels.get("site", "") + "/" + sample.labels.get("window", "")
            found.setdefault(sample.name, {})[key.strip("/")] = sample.value
    return found


def snapshot(site_ids: list[str], rng: random.Random) -> Snapshot:
    windows = ("1h", "24h", "7d", "30d")
    ratios = {s: {w: rng.uniform(0.9, 1.0) for w in windows} for s in site_ids[1:]}
    counted = {s: {w: rng.uniform(60, 1e6) for w in windows} for s in site_ids[1:]}
    ratios[site_ids[0]] = counted[site_ids[0]] = {}  # nothing counted yet: no series
    groups = {("commune", "thanh-nua"): {"1h": 0.99}, ("kind", "bts"): {"30d": 1.0}}
    return Snapshot(time.time(), ratios, groups, 0.1, counted, {("kind", "bts"): {"30d": 5.0}})


def test_availability_text_is_made_once_per_snapshot_and_holds_the_snapshots_figures() -> None:
    """Each site's availability is kept only compressed, by the server (keptbody.py): its
    gzip is the same bytes between two refreshes, and holds the collector's text."""
    rng = random.Random(4)
    live = LiveState(sites(40), COMMUNES, OWNERS)
    gauges = AvailabilityGauges(Path("/nonexistent"))
    collector = SiteAvailabilityCollector(gauges, live)
    registry = MetricsRegistry()
    registry.register(collector)
    kept = KeptBody(registry, 1)
    groups = AvailabilityCollector(gauges, live)
    assert collector.render() == reference(collector)  # no refresh yet
    assert groups.render() == reference(groups)
    for _ in range(3):
        snap = snapshot(list(live.sites), rng)
        gauges.snapshot = snap
        packed = kept.gzip()
        assert kept.gzip() is packed  # a scrape between two refreshes makes nothing
        body = collector.render()
        assert gzip.decompress(packed) == kept.plain() == body == reference(collector)
        assert groups.render() is groups.render() == reference(groups)
        got = parsed(body) | parsed(groups.render())
        assert got["districtmon_site_availability_ratio"] == {
            f"{site}/{window}": ratio
            for site, by_window in snap.sites.items()
            for window, ratio in by_window.items()
        }
        assert got["districtmon_site_availability_counted_seconds"] == {
            f"{site}/{window}": seconds
            for site, by_window in snap.counted.items()
            for window, seconds in by_window.items()
        }
        assert got["districtmon_commune_availability_ratio"] == {"1h": 0.99}
    live.replace_sites({s: live.sites[s] for s in list(live.sites)[:5]})  # a reload
    body = collector.render()
    assert body == reference(collector) and b'site="s-010"' not in body


def test_the_availability_body_is_made_and_compressed_a_few_sites_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its text is never held whole: each piece holds the lines of CHUNK_SITES sites at
    most, and the kept gzip of the pieces is the reference text."""
    monkeypatch.setattr(availability_metrics, "CHUNK_SITES", 7)
    live = LiveState(sites(40), COMMUNES, OWNERS)
    gauges = AvailabilityGauges(Path("/nonexistent"))
    gauges.snapshot = snapshot(list(live.sites), random.Random(5))
    collector = SiteAvailabilityCollector(gauges, live)
    registry = MetricsRegistry()
    registry.register(collector)
    pieces = list(collector.render_chunks())
    assert b"".join(pieces) == collector.render() == reference(collector)
    for piece in pieces:
        assert len(set(re.findall(rb'site="([^"]*)"', piece))) <= 7
    assert len(pieces) == 2 * (-(-40 // 7))  # two families, ceil(40 / 7) pieces each
    assert gzip.decompress(KeptBody(registry, 1).gzip()) == reference(collector)


def test_a_gzip_of_pieces_is_one_member_of_the_pieces_joined() -> None:
    rng = random.Random(3)
    for pieces in ([], [b""], [b"a"], [os.urandom(rng.randrange(300_000)) for _ in range(9)]):
        packed = gzip_pieces(iter(pieces), 1)
        decompressor = zlib.decompressobj(31)
        assert decompressor.decompress(packed) == b"".join(pieces)
        assert decompressor.eof and decompressor.unused_data == b""


def test_values_are_written_as_prometheus_client_writes_them() -> None:
    """floatToGoString is the ground truth; the fast path must agree on every kind of value."""
    from prometheus_client.utils import floatToGoString

    rng = random.Random(1)
    values = [0.0, -0.0, 1.0, -1.0, 1e6, 999999.5, 1234567.25, 1e16, 5e-324, 2.0**64]
    values += [float("inf"), float("-inf"), float("nan"), 3, True]
    values += [rng.uniform(-1e12, 1e12) for _ in range(5000)]
    values += [float(rng.randrange(10**15)) for _ in range(5000)]
    # spelt the Go way by the library: timestamps, uptimes, counters of 10^6 and more
    values += [1e6 + 0.5, 10_000_000.0, 9_999_999.999, 1.7e9, 1_700_000_000.000_001]
    values += [time.time() + rng.random() for _ in range(2000)]
    values += [rng.uniform(1e6, 1e16) for _ in range(5000)]
    values += [float(10**k) * rng.choice([1.0, 1.25, 7.0]) for k in range(6, 17)]
    for value in values:
        assert value_text(value) == floatToGoString(value).encode(), value  # type: ignore[no-untyped-call]


@pytest.fixture
def daemon_http() -> Iterator[tuple[LiveState, Snapshot, str]]:
    """An HttpServer with the registry the daemon builds (monitor/runtime/daemon.py)."""
    rng = random.Random(9)
    live = LiveState(sites(60), COMMUNES, OWNERS)
    for site_id in live.sites:
        live.apply_transition(Transition(site_id, State.UP, time.time(), State.UNKNOWN, "", ()))
        poll(live, rng, site_id)
    gauges = AvailabilityGauges(Path("/nonexistent"))
    gauges.snapshot = snapshot(list(live.sites), rng)
    registry, _metrics = build_registry()
    registered_counts(registry)
    registry.register(AvailabilityCollector(gauges, live))
    registry.register(DeviceValueCollector(live))
    availability = availability_registry(gauges, live)
    server = HttpServer("127.0.0.1", 0, registry, live, availability=availability)
    server.start()
    try:
        yield live, gauges.snapshot, f"http://127.0.0.1:{server.port}/metrics"
    finally:
        server.stop()


def fetch(url: str, encoding: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept-Encoding": encoding})
    with urllib.request.urlopen(request, timeout=10) as response:
        body: bytes = response.read()
        assert (response.headers.get("Content-Encoding") == "gzip") == (encoding == "gzip")
    return body


def test_metrics_serve_the_device_values_and_availability_the_daemon_holds(
    daemon_http: tuple[LiveState, Snapshot, str],
) -> None:
    live, snap, url = daemon_http
    for _ in range(3):  # twice the same parts (kept compressed), then changed ones
        plain = fetch(url, "")
        packed = fetch(url, "gzip")
        decompressor = zlib.decompressobj(31)
        unpacked = decompressor.decompress(packed) + decompressor.flush()
        assert decompressor.eof and decompressor.unused_data == b""  # one gzip member
        # the process' own figures (CPU seconds) move between two scrapes; nothing else did
        assert _without_process(unpacked) == _without_process(plain)
        got = parsed(plain)
        for site_id, view in live.views.items():
            for name, value in view.values.items():
                metric = f"districtmon_device_{name}"
                shown = got.get(metric, {}).get(site_id)
                # text, values other series carry, and zero counts of missing values: none
                not_series = isinstance(value, str) or name in ("uptime_seconds", "rtt_seconds")
                if not_series or (value == 0 and name.startswith("snmp_values_")):
                    assert shown is None, (site_id, name)
                else:
                    assert shown == value or (value != value and shown != shown), (site_id, name)
        held = {
            f"{site}/{window}": ratio
            for site, by_window in snap.sites.items()
            for window, ratio in by_window.items()
        }
        # each site's availability is served on its own path, and not on /metrics
        assert "districtmon_site_availability_ratio" not in got
        assert got["districtmon_commune_availability_ratio"] == {"1h": 0.99}
        per_site = gzip.decompress(fetch(url.removesuffix("/metrics") + AVAILABILITY_PATH, "gzip"))
        assert set(parsed(per_site)) == {
            "districtmon_site_availability_ratio",
            "districtmon_site_availability_counted_seconds",
        }
        assert parsed(per_site)["districtmon_site_availability_ratio"] == held
        rows = [
            (site_id, dict(sample.labels), sample.value)
            for site_id, view in live.views.items()
            for sample in view.samples
            if sample.name == "if_in_octets_total"
        ]
        served = [
            (s.labels["site"], {"alias": s.labels["alias"], "if": s.labels["if"]}, s.value)
            for family in text_string_to_metric_families(plain.decode())
            for s in family.samples
            if s.name == "districtmon_device_if_in_octets_total"
        ]
        assert served == rows and any("\n" in labels["alias"] for _, labels, _ in rows)
        rng = random.Random(len(plain))
        for site_id in rng.sample(list(live.sites), 20):
            poll(live, rng, site_id)


def _without_process(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if b"process_" not in line]


def test_kept_parts_that_their_makers_replaced_are_let_go_before_the_next_scrape() -> None:
    """Between two scrapes the packer holds the last body's large parts; those no one else
    holds any more are freed by forget_replaced (memory as tracemalloc counts it), and the
    parts still held keep their compressed bytes for the next body."""
    tracemalloc.start()  # it counts what is allocated from now on
    try:
        held, replaced = os.urandom(8 << 20), os.urandom(32 << 20)
        packer = PartsGzip(1)
        first = packer.compress([held, replaced])
        del replaced  # its maker made a new text: only the packer holds the old one
        before = tracemalloc.get_traced_memory()[0]
        forgotten = packer.forget_replaced()
        freed = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert freed >= 32 << 20 and forgotten == 1  # what is still held stays
    assert packer.forget_replaced() == 0
    again = packer.compress([held])
    assert gzip.decompress(again) == held
    assert again[10:-8].startswith(first[10 : 10 + 1024])  # the kept deflate of `held`


def test_gzip_from_kept_parts_is_one_member_equal_to_the_joined_parts() -> None:
    for length in (0, 1, 7, 4096, 300_001):
        a, b = os.urandom(977), os.urandom(length)
        assert isal_zlib.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    rng = random.Random(2)
    big = b"".join(b'districtmon_x{site="s-%d"} %d\n' % (i, i) for i in range(40_000))
    other = big.replace(b"x{", b"y{")
    assert len(big) >= KEEP_FROM
    packer = PartsGzip(1)
    for parts in (
        [b"# a\n", big, b"", b"small\n", other],
        [b"# b\n", big, b"", b"small\n", other],  # the same big parts: kept ones
        [big, other[: rng.randrange(len(other))], big],  # a part twice, a new one
        [],
        [b"just small"],
    ):
        packed = packer.compress(parts)
        decompressor = zlib.decompressobj(31)
        assert decompressor.decompress(packed) == b"".join(parts)
        assert decompressor.eof and decompressor.unused_data == b""
        assert gzip.decompress(packed) == b"".join(parts)
