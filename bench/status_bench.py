"""What the status page weighs and how soon it shows, at province size.

Builds a province in-process (default 20,000 sites over 25 communes, every kind; 96% up, 3%
down, 1% never answered, as bench/scrape_bench.py does) behind the daemon's HTTP server, then
loads the page in headless Chromium (Debian's, through Playwright) as an operator's browser
would. One row per inventory size:

  page KB          the page itself (/status: markup, styles and script in one file)
  data KB          what it reads at each refresh (/api/v1/summary)
  first load KB    both: what a phone downloads to see the district (target: <= 200 KB)
  all sites KB     /api/v1/sites, what the page would read if it asked for every site
  summary ms       the server's time for one summary (median over 5, wall, over 127.0.0.1)
  first render ms  from navigation to the page drawn with its data (median over 3 loads)
  commune KB       what a commune's page reads at each refresh (the largest commune's
                   /api/v1/communes/{id}, live part: no ledger behind this province)
  commune ms       from navigation to that commune's page drawn (median over 3 loads)

    .venv/bin/python bench/status_bench.py [--sites 20000,100000] [--smoke]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from playwright.sync_api import sync_playwright
from scrape_bench import build_inventory

from monitor.core.model import State, Transition
from monitor.expose.commune import SITES_SHOWN
from monitor.expose.http import HttpServer
from monitor.expose.self_metrics import build_registry
from monitor.state.live import LiveState

CHROMIUM = "/usr/bin/chromium"
FIRST_LOAD_TARGET_KB = 200.0


def province(n_sites: int, seed: int = 6) -> LiveState:
    communes, owners, sites = build_inventory(n_sites, seed)
    live = LiveState(sites, communes, owners)
    rng = random.Random(seed)
    now = time.time()
    for site_id in sites:
        roll = rng.random()
        if roll < 0.01:
            continue  # never answered: unknown
        state, reason = (State.UP, "") if roll > 0.04 else (State.DOWN, "snmp timeout")
        since = now - rng.uniform(60, 30 * 86400)
        live.apply_transition(Transition(site_id, state, since, State.UNKNOWN, reason))
    return live


def fetch(url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        body = answer.read()
    return time.perf_counter() - start, body


def measure(n_sites: int, loads: int) -> dict[str, float]:
    live = province(n_sites)
    server = HttpServer("127.0.0.1", 0, build_registry()[0], live)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        page = fetch(base + "/status")[1]
        summaries = [fetch(base + "/api/v1/summary") for _ in range(5)]
        data = summaries[-1][1]
        every = fetch(base + "/api/v1/sites")[1]
        counts: dict[str, int] = {}
        for site in live.sites.values():
            counts[site.commune] = counts.get(site.commune, 0) + 1
        largest = max(counts, key=lambda c: counts[c])
        commune = fetch(f"{base}/api/v1/communes/{largest}")[1]
        renders = []
        commune_renders = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                for _ in range(loads):
                    tab = browser.new_page()
                    start = time.perf_counter()
                    tab.goto(base + "/?refresh=3600")
                    tab.wait_for_selector("body[data-updated]", timeout=60_000)
                    renders.append(time.perf_counter() - start)
                    drawn = tab.eval_on_selector_all("#wrong tbody tr[data-site]", "r => r.length")
                    assert drawn > 0, "the page drew no wrong site"
                    tab.close()
                    tab = browser.new_page()
                    start = time.perf_counter()
                    tab.goto(f"{base}/?refresh=3600#commune={largest}")
                    tab.wait_for_selector("#commune[data-updated]", timeout=60_000)
                    commune_renders.append(time.perf_counter() - start)
                    listed = tab.eval_on_selector_all("#commune-sites tbody tr", "r => r.length")
                    assert listed == min(counts[largest], SITES_SHOWN), "the commune's sites"
                    tab.close()
            finally:
                browser.close()
    finally:
        server.stop()
    return {
        "page": len(page) / 1024,
        "data": len(data) / 1024,
        "every": len(every) / 1024,
        "summary": statistics.median(t for t, _ in summaries) * 1000,
        "render": statistics.median(renders) * 1000,
        "commune": len(commune) / 1024,
        "commune_render": statistics.median(commune_renders) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", default="20000", help="inventory sizes, comma-separated")
    parser.add_argument("--smoke", action="store_true", help="300 sites, one load: seconds")
    args = parser.parse_args()
    sizes = [300] if args.smoke else [int(n) for n in args.sites.split(",")]
    loads = 1 if args.smoke else 3
    head = ("sites", "page KB", "data KB", "first load KB", "all sites KB", "summary ms",
            "first render ms", "commune KB", "commune ms")  # fmt: skip
    print("  ".join(f"{h:>15}" for h in head))
    over = False
    for n in sizes:
        f = measure(n, loads)
        first = f["page"] + f["data"]
        over = over or max(first, f["page"] + f["commune"]) > FIRST_LOAD_TARGET_KB
        cells = (f"{n:,}", f"{f['page']:.1f}", f"{f['data']:.1f}", f"{first:.1f}",
                 f"{f['every']:.1f}", f"{f['summary']:.1f}", f"{f['render']:.0f}",
                 f"{f['commune']:.1f}", f"{f['commune_render']:.0f}")  # fmt: skip
        print("  ".join(f"{c:>15}" for c in cells), flush=True)
    if over:
        print(f"a first load over {FIRST_LOAD_TARGET_KB:.0f} KB", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
