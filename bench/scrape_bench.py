"""How long a scrape of /metrics takes, and how big it is, for a province-sized inventory.

Builds a synthetic inventory in-process (default 20,000 sites over 25 communes, every kind,
realistic live values: most sites up, some down or unknown, poll times, durations, device
uptimes), serves it with the daemon's own HttpServer on 127.0.0.1 and scrapes it over HTTP the
way Prometheus does: with Prometheus 2.x's Accept header (OpenMetrics) and with the plain text
format, each uncompressed and gzip-compressed. Prints one table: time per scrape (median and
worst of N) and response size. Target: under 250 ms per scrape at 20,000 sites.

    .venv/bin/python bench/scrape_bench.py [--sites 20000] [--scrapes 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import unicodedata
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import make_wsgi_app

from monitor.core.model import (
    Commune,
    Observation,
    Owner,
    Site,
    SnmpProbe,
    State,
    Transition,
)
from monitor.expose.exposition import SiteExposition
from monitor.expose.http import HttpServer
from monitor.expose.self_metrics import build_registry
from monitor.expose.site_metrics import SiteCollector
from monitor.state.live import LiveState

TARGET_SECONDS = 0.250
# What Prometheus 2.42 sends: it prefers OpenMetrics, so prometheus-client answers with it.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
TEXT_ACCEPT = "text/plain;version=0.0.4"

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


def build_live(
    sites: dict[str, Site], communes: dict[str, Commune], owners: dict[str, Owner], seed: int = 6
) -> LiveState:
    """Live values as a running daemon holds them after a few minutes of polling: 96% up, 3%
    down, 1% never answered (unknown)."""
    rng = random.Random(seed)
    live = LiveState(sites, communes, owners)
    now = time.time()
    for site_id in sites:
        roll = rng.random()
        if roll < 0.01:
            continue
        ok = roll > 0.04
        since = now - rng.uniform(60, 30 * 86400)
        state, codes = (State.UP, ()) if ok else (State.DOWN, ("timeout",))
        live.apply_transition(Transition(site_id, state, since, State.UNKNOWN, "", codes))
        poll(live, rng, site_id, ok, now - rng.uniform(0, 60))
    return live


def poll(live: LiveState, rng: random.Random, site_id: str, ok: bool, at: float) -> None:
    values: dict[str, float | str] = {}
    if ok:
        values["device_uptime_seconds"] = rng.uniform(3600, 400 * 86400)
    live.apply_observation(Observation(site_id, at, ok, rng.uniform(0.002, 0.2), values))


def churn(live: LiveState, rng: random.Random, share: float) -> None:
    """What happens between two scrapes: a share of the sites is polled again (new poll time,
    duration and uptime), as the scheduler does over one scrape interval."""
    now = time.time()
    for site_id, view in live.views.items():
        if view.last_poll is not None and rng.random() < share:
            poll(live, rng, site_id, bool(view.last_ok), now)


class ReferenceServer(HttpServer):
    """/metrics through prometheus-client alone (SiteCollector in the registry, its own
    rendering and level-9 gzip): what the daemon served before monitor/exposition.py."""

    def __init__(self, live: LiveState) -> None:
        registry, _ = build_registry()
        registry.register(SiteCollector(live))
        super().__init__("127.0.0.1", 0, registry, live)
        self._reference = make_wsgi_app(registry)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        result: Iterable[bytes] = self._reference(environ, start_response)
        return result


def scrape(url: str, accept: str, gzip: bool) -> tuple[float, int]:
    headers = {"Accept": accept}
    if gzip:
        headers["Accept-Encoding"] = "gzip"
    request = urllib.request.Request(url, headers=headers)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        assert (response.headers.get("Content-Encoding") == "gzip") == gzip
    return time.perf_counter() - started, len(body)


def measure(
    server: HttpServer, live: LiveState, scrapes: int, share: float
) -> list[tuple[str, str, list[float], int]]:
    rng = random.Random(7)
    server.start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    rows = []
    try:
        scrape(url, TEXT_ACCEPT, False)  # warm-up: the first scrape of an inventory builds caches
        for label, accept in (("Prometheus", PROMETHEUS_ACCEPT), ("text 0.0.4", TEXT_ACCEPT)):
            for gzip in (False, True):
                times, size = [], 0
                for _ in range(scrapes):
                    churn(live, rng, share)
                    seconds, size = scrape(url, accept, gzip)
                    times.append(seconds)
                rows.append((label, "gzip" if gzip else "plain", times, size))
    finally:
        server.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=20_000)
    parser.add_argument("--scrapes", type=int, default=10)
    parser.add_argument(
        "--churn",
        type=float,
        default=0.25,
        help="share of sites polled again between two scrapes (0.25: 15 s scrapes, 60 s polls)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also measure prometheus-client's own rendering (the 'before' figures; slow)",
    )
    args = parser.parse_args()

    communes, owners, sites = build_inventory(args.sites)
    live = build_live(sites, communes, owners)
    samples = sum(1 for family in SiteCollector(live).collect() for _ in family.samples)
    started = time.perf_counter()
    SiteExposition(live).render()
    first = time.perf_counter() - started
    servers: list[tuple[str, HttpServer]] = []
    if args.reference:
        servers.append(("prometheus-client", ReferenceServer(live)))
    registry, _ = build_registry()
    servers.append(("districtmon", HttpServer("127.0.0.1", 0, registry, live)))

    print(
        f"/metrics for {args.sites:,} sites ({samples:,} site samples); {args.scrapes} scrapes "
        f"per row, {args.churn:.0%} of sites re-polled between scrapes"
    )
    print(
        f"{'renderer':<18} {'asked as':<11} {'encoding':<8} {'median ms':>9} {'worst ms':>9} "
        f"{'size':>9}  target {TARGET_SECONDS * 1000:.0f} ms"
    )
    for name, server in servers:
        for label, encoding, times, size in measure(server, live, args.scrapes, args.churn):
            median = statistics.median(times)
            print(
                f"{name:<18} {label:<11} {encoding:<8} {median * 1000:>9.1f} "
                f"{max(times) * 1000:>9.1f} {_size(size):>9}  "
                f"{'ok' if max(times) < TARGET_SECONDS else 'OVER'}"
            )
    print(f"first scrape after start or reload (builds the text cache): {first * 1000:.0f} ms")
    server = HttpServer("127.0.0.1", 0, registry, live)
    server.start()
    try:
        api = [scrape(f"http://127.0.0.1:{server.port}/api/v1/sites", "*/*", False)]
        api += [scrape(f"http://127.0.0.1:{server.port}/api/v1/sites", "*/*", False)]
    finally:
        server.stop()
    print(f"/api/v1/sites, every site: {api[-1][0] * 1000:.0f} ms, {_size(api[-1][1])}")
    return 0


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


if __name__ == "__main__":
    sys.exit(main())
