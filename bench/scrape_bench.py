"""What one scrape of /metrics costs the running daemon, and how big its body is.

Builds a province in-process (default 20,000 sites over 25 communes, every kind) and the
registries the way `districtmon run` builds them (monitor/runtime/daemon.py): the daemon's own
instruments, the MQTT counts, the availability gauges of every group over the four windows,
and the device values of every site, made from the shipped profiles (the values and table rows
each profile reads, as the SNMP poller names them), on /metrics; each site's availability over
the four windows on its own path, /metrics/availability. Live values are as after a few
minutes of polling: 96% up, 3% down, 1% never answered; between two scrapes a quarter of the
sites is polled again. One row per inventory size:

  render CPU s   the CPU the HTTP thread spends making the plain body of /metrics (it holds
                 the GIL)
  gzip CPU s     what compressing adds, at the daemon's level (scrape less render)
  scrape CPU s   making and compressing the body, as /metrics does for Prometheus
  scrape wall s  the same in wall time; HTTP wall s: a whole gzip scrape over 127.0.0.1
  upkeep CPU s   what the daemon spends between two scrapes making the text of the sites
                 polled meanwhile (gauges, device values), a second at a time, not in the
                 scrape's CPU: beside it; scrape +MB: how far a gzip scrape raised the
                 bench's resident size above what it held before (see avail +MB)
  avail ...      /metrics/availability: its plain body, and the CPU of a gzip scrape and the
                 wall time of one over HTTP, each the first after a refresh of the figures
                 (the one that makes and compresses the body; Prometheus scrapes that path
                 once a refresh, every 60 s, and between two refreshes it serves kept bytes);
                 avail +MB: how far that scrape raised the bench's resident size above what
                 it held before (its peak, VmHWM, started again just before it)

Target: a scrape of /metrics (what Prometheus asks for every 15 s), its CPU, in-process wall
time and HTTP wall time, gzip included, each within 250 ms at 20,000 sites (`ok`). The
availability path is not in that figure: it is shown beside it.

    .venv/bin/python bench/scrape_bench.py [--sites 20000,100000] [--scrapes 5] [--smoke]
"""

from __future__ import annotations

import argparse
import gzip
import random
import statistics
import sys
import tempfile
import time
import unicodedata
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config.problems import ConfigProblem
from monitor.config.profile_reader import load_profiles
from monitor.config.profiles import Profile, TableSpec
from monitor.config.settings import DEFAULT_OBJECTIVES
from monitor.core.model import (
    Commune,
    Observation,
    Owner,
    Sample,
    Site,
    SnmpProbe,
    State,
    Transition,
)
from monitor.expose.availability_metrics import (
    AVAILABILITY_PATH,
    SITE_RATIO,
    AvailabilityCollector,
    availability_registry,
)
from monitor.expose.device_metrics import DeviceValueCollector, profile_helps
from monitor.expose.http import GZIP_LEVEL, HttpServer
from monitor.expose.mqtt_metrics import registered_counts
from monitor.expose.objective_metrics import ObjectiveCollector
from monitor.expose.self_metrics import build_registry
from monitor.ledger.recent import GROUPS, WINDOWS, AvailabilityGauges, Snapshot
from monitor.state.live import LiveState

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 0.250
SCRAPE_SECONDS = 15  # Prometheus' scrape interval in the shipped prometheus.yml
# What Prometheus 2.42 sends: it prefers OpenMetrics, so prometheus-client answers with it.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)

KINDS = (
    ("bts", 0.62),
    ("loudspeaker", 0.2),
    ("gateway", 0.1),
    ("radio_station", 0.03),
    ("video_endpoint", 0.03),
    ("post_point", 0.02),
)
OWNERS = {
    "bts": ("viettel", "vnpt", "mobifone"),
    "loudspeaker": ("dien-bien-rtv",),
    "radio_station": ("dien-bien-rtv",),
    "gateway": ("district-it", "ubnd-huyen", "kho-bac", "bhxh-huyen"),
    "video_endpoint": ("district-it",),
    "post_point": ("buu-dien",),
}
SHORT = {
    "bts": "bts",
    "loudspeaker": "loa",
    "gateway": "gw",
    "radio_station": "radio",
    "video_endpoint": "vc",
    "post_point": "post",
    "viettel": "vtl",
    "vnpt": "vnp",
    "mobifone": "mbf",
    "dien-bien-rtv": "rtv",
    "district-it": "ubnd",
}
COMMUNE_NAMES = [
    "Thanh Nưa",
    "Thanh Luông",
    "Thanh Hưng",
    "Thanh Chăn",
    "Thanh Xương",
    "Thanh An",
    "Thanh Yên",
    "Noong Luống",
    "Noong Hẹt",
    "Sam Mứn",
    "Pom Lót",
    "Hua Thanh",
    "Thanh Nưa Hạ",
    "Mường Phăng",
    "Nà Nhạn",
    "Nà Tấu",
    "Pá Khoang",
    "Mường Pồn",
    "Na Ư",
    "Mường Nhà",
    "Mường Lói",
    "Phu Luông",
    "Núa Ngam",
    "Hẹ Muông",
    "Na Tông",
]


def slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text.lower().replace("đ", "d"))
    return "-".join("".join(c for c in plain if not unicodedata.combining(c)).split())


def build_inventory(
    n_sites: int, seed: int = 6
) -> tuple[dict[str, Commune], dict[str, Owner], dict[str, Site]]:
    rng = random.Random(seed)
    communes = {}
    for i, name in enumerate(COMMUNE_NAMES):
        cid = slug(name)
        areas = tuple(f"Bản {name} {j + 1}" for j in range(rng.randint(8, 16)))
        communes[cid] = Commune(cid, name, 21.1 + i * 0.02, 102.9 + i * 0.01, areas)
    owners = {
        oid: Owner(oid, oid.replace("-", " ").title(), "operator" if kind == "bts" else "agency")
        for kind, ids in OWNERS.items()
        for oid in ids
    }
    commune_ids = list(communes)
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    sites = {}
    for i in range(n_sites):
        kind = rng.choices(kinds, weights)[0]
        commune = communes[commune_ids[i % len(commune_ids)]]
        owner = rng.choice(OWNERS[kind])
        # ids shaped like the shipped inventory's: bts-vtl-thanh-nua-01, loa-thanh-nua-03...
        sid = f"{SHORT[kind]}-{SHORT.get(owner, owner)}-{commune.id}-{i // len(communes):03d}"
        covers = tuple(rng.sample(commune.areas, 2)) if kind == "loudspeaker" else ()
        sites[sid] = Site(
            id=sid,
            kind=kind,
            name=f"{kind} {owner} {commune.name} {i:05d}",
            commune=commune.id,
            owner=owner,
            lat=commune.lat + rng.uniform(-0.05, 0.05),
            lon=commune.lon + rng.uniform(-0.05, 0.05),
            probe=SnmpProbe(address=f"127.{10 + i // 65536}.{i // 256 % 256}.{i % 256}"),
            parent=None,
            covers=covers,
        )
    return communes, owners, sites


# The profile each kind is read through, as in the shipped example (monitor/examples/dienbien):
# the simulator's profiles carry the same values and tables as the real devices' ones.
PROFILE_OF_KIND = {
    "bts": "sim-bts",
    "loudspeaker": "sim-loudspeaker",
    "gateway": "router",
    "radio_station": "sim-radio",
    "video_endpoint": "linux-host",
    "post_point": "router",
}
# The profile bench/snmp_bench.py polls (5 OIDs: sysUpTime, sysName and three values), the
# fleet the running daemon is measured with there: six device values a site.
BENCH5 = """\
description: benchmark profile, 5 OIDs with sysUpTime and sysName
values:
  - {name: battery_volts, oid: 1.3.6.1.2.1.33.1.2.5.0, scale: 0.1}
  - {name: mains_ok, oid: 1.3.6.1.2.1.33.1.4.1.0, map: {5: 0, default: 1}}
  - {name: door_open, oid: 1.3.6.1.4.1.99999.1.3.0, map: {2: 1, default: 0}}
"""
ROWS = {"interfaces": 4, "cpus": 1, "sensors": 2, "boards": 1, "disks": 2, "storage": 2}


def row_labels(table: TableSpec, row: int) -> tuple[tuple[str, str], ...]:
    """A table row's labels as the poller makes them (sorted by name); interface aliases
    are free text typed by people (Vietnamese, quotes), the hard case for escaping."""
    if not table.labels:
        return ((table.index, str(row + 1)),)
    labels = []
    for label in table.labels:
        if label.name == "alias":
            labels.append(("alias", f'uplink "{row}" tới Thanh Nưa\\cổng {row}'))
        else:
            labels.append((label.name, f"GigabitEthernet0/0/{row}"))
    return tuple(sorted(labels))


def device_values(
    profile: Profile, rng: random.Random, polls: int
) -> tuple[dict[str, float | str], list[Sample]]:
    """What one successful poll through `profile` leaves in the live view."""
    values: dict[str, float | str] = {}
    hidden = profile.hidden
    for spec in profile.scalars:
        if spec.name in hidden:
            continue
        if spec.kind == "text":
            values[spec.name] = "text"
        elif spec.is_counter:
            values[spec.name] = float(1000 * polls + rng.randrange(1000))
        elif spec.mapping is not None:
            values[spec.name] = float(rng.random() < 0.97)
        else:
            values[spec.name] = round(rng.uniform(0, 60), 2)
    values["reboots_total"] = 0.0
    values["snmp_values_missing"] = 0.0
    values["snmp_values_malformed"] = 0.0
    values["sys_name"] = "device"
    samples = []
    for table in profile.tables:
        for row in range(ROWS.get(table.name, 1)):
            labels = row_labels(table, row)
            for column in table.columns:
                if column.name in hidden:
                    continue
                if column.is_counter:
                    value = float(10_000_000 * polls + rng.randrange(10_000_000))
                else:
                    value = round(rng.uniform(0, 100), 1)
                samples.append(Sample(column.name, labels, value))
    info = (("chosen", "named"), ("profile", profile.id), ("vendor", profile.vendor))
    samples.append(Sample("profile_info", info, 1.0))
    return values, samples


class Fleet:
    """The live state of a province, and what one poll of a site changes in it."""

    def __init__(
        self,
        sites: dict[str, Site],
        live: LiveState,
        profiles: dict[str, Profile],
        profile_of_kind: dict[str, str],
    ) -> None:
        self.sites = sites
        self.live = live
        self.profiles = profiles
        self.profile_of_kind = profile_of_kind
        self.polls = 0

    def poll(self, rng: random.Random, site_id: str, ok: bool, at: float) -> None:
        values: dict[str, float | str] = {}
        samples: list[Sample] = []
        if ok:
            profile = self.profiles[self.profile_of_kind[self.sites[site_id].kind]]
            values, samples = device_values(profile, rng, self.polls)
            values["uptime_seconds"] = rng.uniform(3600, 400 * 86400)
        self.live.apply_observation(
            Observation(site_id, at, ok, rng.uniform(0.002, 0.2), values, samples=tuple(samples))
        )

    def churn(self, rng: random.Random, share: float) -> None:
        """What happens between two scrapes: a share of the sites is polled again (new poll
        time, duration, uptime and counters), as the scheduler does over one scrape interval."""
        self.polls += 1
        now = time.time()
        for site_id, view in self.live.views.items():
            if view.last_poll is not None and rng.random() < share:
                self.poll(rng, site_id, bool(view.last_ok), now)


def read_profiles(which: str) -> tuple[dict[str, Profile], dict[str, str]]:
    """The profiles and the one each kind is read through: `shipped` (config/profiles, as the
    example does) or `bench5` (every site through BENCH5)."""
    problems: list[ConfigProblem] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = ROOT / "config" / "profiles"
        if which == "bench5":
            folder = Path(tmp)
            (folder / "bench-5.yaml").write_text(BENCH5)
        profiles = load_profiles(folder, problems)
    if problems:
        raise SystemExit(f"profiles: {problems}")
    if which == "bench5":
        return profiles, dict.fromkeys(PROFILE_OF_KIND, "bench-5")
    return profiles, PROFILE_OF_KIND


def build_fleet(
    sites: dict[str, Site],
    communes: dict[str, Commune],
    owners: dict[str, Owner],
    profiles: str = "shipped",
    seed: int = 6,
) -> Fleet:
    """Live values as a running daemon holds them after a few minutes of polling: 96% up, 3%
    down, 1% never answered (unknown)."""
    rng = random.Random(seed)
    fleet = Fleet(sites, LiveState(sites, communes, owners), *read_profiles(profiles))
    now = time.time()
    for site_id in sites:
        roll = rng.random()
        if roll < 0.01:
            continue
        ok = roll > 0.04
        since = now - rng.uniform(60, 30 * 86400)
        state, codes = (State.UP, ()) if ok else (State.DOWN, ("timeout",))
        fleet.live.apply_transition(Transition(site_id, state, since, State.UNKNOWN, "", codes))
        fleet.poll(rng, site_id, ok, now - rng.uniform(0, 60))
    return fleet


def availability(sites: dict[str, Site], seed: int = 8) -> Snapshot:
    """What the availability refresh (monitor/ledger/recent.py) leaves: every counted site
    over the four windows, and every commune, owner and kind."""
    rng = random.Random(seed)
    ratios: dict[str, dict[str, float]] = {}
    counted: dict[str, dict[str, float]] = {}
    for site_id in sites:
        if rng.random() < 0.01:
            ratios[site_id], counted[site_id] = {}, {}
            continue
        ratios[site_id] = {w: rng.uniform(0.95, 1.0) for w, _ in WINDOWS}
        counted[site_id] = {w: seconds * rng.uniform(0.9, 1.0) for w, seconds in WINDOWS}
    groups = {
        (group, getattr(site, group)): {w: 0.995 for w, _ in WINDOWS}
        for site in sites.values()
        for group in GROUPS
    }
    group_counted = {key: {w: s * 10 for w, s in WINDOWS} for key in groups}
    return Snapshot(time.time(), ratios, groups, 0.5, counted, group_counted)


def daemon_server(fleet: Fleet, gauges: AvailabilityGauges) -> HttpServer:
    """The HTTP server with the registry monitor/runtime/daemon.py builds (less the trap
    receiver's counts, off by default, and the ledger's lost-changes counter: one sample)."""
    registry, _metrics = build_registry("Asia/Ho_Chi_Minh")
    registered_counts(registry)  # the MQTT listener's counters
    registry.register(AvailabilityCollector(gauges, fleet.live))
    registry.register(DeviceValueCollector(fleet.live, profile_helps(fleet.profiles)))
    registry.register(ObjectiveCollector(lambda: fleet.live.sites, DEFAULT_OBJECTIVES))
    availability = availability_registry(gauges, fleet.live)
    return HttpServer("127.0.0.1", 0, registry, fleet.live, availability=availability)


def between_scrapes(fleet: Fleet, server: HttpServer, rng: random.Random, share: float) -> float:
    """One scrape interval of the daemon: `share` of the sites polled again over its
    SCRAPE_SECONDS, and every second the /metrics text made for the sites polled in it
    (monitor/runtime/daemon.py, METRICS_TEXT_SECONDS), but in the last second, whose polls
    the scrape finds still to be made (the scrape that comes just before a tick, the worse
    case). The CPU of those seconds' text."""
    cpu = 0.0
    for second in range(SCRAPE_SECONDS):
        fleet.churn(rng, share / SCRAPE_SECONDS)
        if second < SCRAPE_SECONDS - 1:
            started = time.thread_time()
            server.update_text()
            cpu += time.thread_time() - started
    return cpu


def _start_response(status: str, headers: list[tuple[str, str]]) -> None:
    assert status.startswith("200"), status


def render(server: HttpServer, encoding: str = "", path: str = "/metrics") -> bytes:
    """The body as the daemon serves `path` (gzip-compressed if asked)."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "HTTP_ACCEPT_ENCODING": encoding}
    return b"".join(server._app(environ, _start_response))


def timed(server: HttpServer, encoding: str, path: str = "/metrics") -> tuple[float, float, bytes]:
    """CPU (of this thread, the one that renders) and wall seconds of one body."""
    cpu, wall = time.thread_time(), time.perf_counter()
    body = render(server, encoding, path)
    return time.thread_time() - cpu, time.perf_counter() - wall, body


def scrape(url: str) -> tuple[float, int]:
    """One gzip scrape as Prometheus makes it: its wall time and the compressed size."""
    request = urllib.request.Request(
        url, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
        assert response.headers.get("Content-Encoding") == "gzip"
    return time.perf_counter() - started, len(body)


def _resident_mb(field: str) -> float:
    """This process's VmRSS, or its highest since `_forget_peak` (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _forget_peak() -> None:
    """Start VmHWM again from the RSS now (Linux: clear_refs 5), so that the next reading
    of it is the highest of what follows: what one availability scrape adds."""
    Path("/proc/self/clear_refs").write_text("5")


def measure(n_sites: int, profiles: str, scrapes: int, share: float) -> dict[str, float]:
    """Median figures of `scrapes` scrapes of an inventory of `n_sites`: each scrape of
    /metrics made once plain and once gzip-compressed in-process, then once over HTTP, a
    quarter of the sites re-polled before each (15 s scrapes, 60 s polls); then the
    availability refreshed and AVAILABILITY_PATH scraped gzip-compressed in-process, and
    refreshed again and scraped over HTTP: each of its scrapes is the first after a refresh,
    the one that pays (it is scraped once a refresh; between two it serves kept bytes)."""
    communes, owners, sites = build_inventory(n_sites)
    fleet = build_fleet(sites, communes, owners, profiles)
    gauges = AvailabilityGauges(Path("/nonexistent"))
    gauges.snapshot = availability(sites)
    server = daemon_server(fleet, gauges)
    rng = random.Random(7)
    started = time.perf_counter()
    body = render(server)  # the first scrape of an inventory builds what is kept for the next
    first = time.perf_counter() - started
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    keys = ["cpu", "wall", "gzip_cpu", "gzip_wall", "scrape", "gz", "avail_cpu", "avail_http"]
    keys += ["upkeep", "avail_peak", "gzip_peak"]
    rows: dict[str, list[float]] = {k: [] for k in keys}
    try:
        for i in range(scrapes):
            rows["upkeep"].append(between_scrapes(fleet, server, rng, share))
            cpu, wall, body = timed(server, "")
            rows["cpu"].append(cpu)
            rows["wall"].append(wall)
            rows["upkeep"].append(between_scrapes(fleet, server, rng, share))
            _forget_peak()  # then what is held: the peak that follows is never below it
            held = _resident_mb("VmRSS")
            cpu, wall, packed = timed(server, "gzip")
            rows["gzip_peak"].append(_resident_mb("VmHWM") - held)
            assert gzip.decompress(packed).count(b"\n") > len(sites)
            rows["gzip_cpu"].append(cpu)
            rows["gzip_wall"].append(wall)
            rows["upkeep"].append(between_scrapes(fleet, server, rng, share))
            seconds, size = scrape(url + "/metrics")
            rows["scrape"].append(seconds)
            rows["gz"].append(size)
            gauges.snapshot = availability(sites, seed=9 + i)
            _forget_peak()  # then what is held: the peak that follows is never below it
            held = _resident_mb("VmRSS")
            cpu, _wall, packed = timed(server, "gzip", AVAILABILITY_PATH)
            rows["avail_cpu"].append(cpu)
            rows["avail_peak"].append(_resident_mb("VmHWM") - held)
            gauges.snapshot = availability(sites, seed=99 + i)
            rows["avail_http"].append(scrape(url + AVAILABILITY_PATH)[0])
    finally:
        server.stop()
    # each site's availability is on its own path, not on /metrics: both bodies are checked
    assert SITE_RATIO.encode() + b"{" not in body
    # the objective each site is held to, as the daemon serves it (every bench kind has one)
    assert body.count(b"\ndistrictmon_site_objective_ratio{") == len(sites), "objectives"
    served = render(server, "", AVAILABILITY_PATH)
    counted = sum(1 for figures in gauges.snapshot.sites.values() if figures)
    assert served.count(SITE_RATIO.encode() + b"{") >= len(WINDOWS) * counted, "availability"
    figures = {key: statistics.median(values) for key, values in rows.items()}
    figures |= {"body": len(body), "lines": body.count(b"\n"), "first": first}
    figures |= {"avail_body": len(served), "avail_lines": served.count(b"\n")}
    figures["worst_gzip_cpu"] = max(rows["gzip_cpu"])
    figures["worst_scrape"] = max(rows["scrape"])
    return figures


HEADER = (
    f"{'sites':>7} {'profiles':<8} {'body MB':>8} {'gzip MB':>8} {'lines':>9} "
    f"{'render CPU s':>12} {'render wall s':>13} {'gzip CPU s':>10} {'scrape CPU s':>12} "
    f"{'(worst)':>8} {'scrape wall s':>13} {'HTTP wall s':>11} {'(worst)':>8} {'first s':>8}"
    f" {'upkeep CPU s':>12} {'scrape +MB':>10}"
    f"  target {TARGET_SECONDS:.3f} s  "
    f"{'avail MB':>8} {'avail lines':>11} {'avail CPU s':>11} {'avail HTTP s':>12}"
    f" {'avail +MB':>9}"
)


def row(n_sites: int, profiles: str, f: dict[str, float]) -> str:
    """`gzip CPU s` is the scrape's CPU less the render's (medians)."""
    ok = max(f["gzip_cpu"], f["gzip_wall"], f["scrape"]) <= TARGET_SECONDS
    return (
        f"{n_sites:>7,} {profiles:<8} {f['body'] / 1e6:>8.1f} {f['gz'] / 1e6:>8.2f} "
        f"{int(f['lines']):>9,} {f['cpu']:>12.3f} {f['wall']:>13.3f} "
        f"{max(f['gzip_cpu'] - f['cpu'], 0.0):>10.3f} {f['gzip_cpu']:>12.3f} "
        f"{f['worst_gzip_cpu']:>8.3f} {f['gzip_wall']:>13.3f} {f['scrape']:>11.3f} "
        f"{f['worst_scrape']:>8.3f} {f['first']:>8.2f} {f['upkeep']:>12.3f} "
        f"{f['gzip_peak']:>10.0f}  "
        f"{'ok' if ok else 'OVER':<14}  "
        f"{f['avail_body'] / 1e6:>8.1f} {int(f['avail_lines']):>11,} {f['avail_cpu']:>11.3f} "
        f"{f['avail_http']:>12.3f} {f['avail_peak']:>9.0f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", default="20000", help="inventory sizes, comma-separated")
    parser.add_argument("--scrapes", type=int, default=5, help="scrapes per size (median)")
    parser.add_argument(
        "--churn",
        type=float,
        default=0.25,
        help="share of sites polled again between two scrapes (0.25: 15 s scrapes, 60 s polls)",
    )
    parser.add_argument(
        "--profiles",
        default="bench5,shipped",
        help="device profiles, comma-separated: bench5 (the 5-OID profile of "
        "bench/snmp_bench.py) and/or shipped (config/profiles, by kind)",
    )
    parser.add_argument("--smoke", action="store_true", help="300 sites, 2 scrapes: seconds")
    args = parser.parse_args()
    sizes = [300] if args.smoke else [int(n) for n in args.sites.split(",")]
    scrapes = 2 if args.smoke else args.scrapes
    print(
        "/metrics and /metrics/availability as the daemon serves them; median of "
        f"{scrapes} scrapes per size, {args.churn:.0%} of sites re-polled between scrapes, "
        f"gzip level {GZIP_LEVEL}"
    )
    print(HEADER)
    for n in sizes:
        for profiles in args.profiles.split(","):
            print(row(n, profiles, measure(n, profiles, scrapes, args.churn)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
