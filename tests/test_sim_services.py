"""The sites that are only pinged, connected to or fetched follow the world like the SNMP agents:
the daemon's own ICMP, TCP and HTTP probes see them answer, fail while a gateway they hang off
is cut, and answer again when it is back.

The shipped district is simulated inside a network namespace of the test's own (tests/netns.py):
its nftables table, its loopback addresses and ports are private to the test, and the probes
run in the namespace too."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns import NetNs
from simpeers import SHIPPED, Simulator, wait_until

from monitor.config.load import load_config
from monitor.config.settings import PollSettings
from monitor.core.model import IcmpProbe, Observation, Site
from monitor.probes.reach.http import HttpPoller
from monitor.probes.reach.icmp import IcmpPoller
from monitor.probes.reach.tcp import TcpPoller
from monitor.simulator.clock import ManualClock
from monitor.simulator.icmpcut import IcmpCut
from monitor.simulator.world import World

CONFIG = load_config(SHIPPED, environ={})
SETTINGS = PollSettings(timeout_seconds=1.0, retries=0)
BEHIND_CORE = {  # hanging off the district core router, directly or through another gateway
    "portal-huyen": "http",
    "dichvucong-huyen": "https",
    "vanban-huyen": "http",
    "mail-huyen": "tcp",
    "buu-dien-huyen": "tcp",  # behind the post office gateway
    "vc-muong-nha": "icmp",  # behind the Mường Nhà commune gateway
}
ON_THEIR_OWN = ["bdvhx-thanh-nua"]  # a post point on the operator's line: no parent


def fast(site: Site) -> Site:
    """The same site with a short ICMP burst, so a failed poll costs a fraction of a second."""
    probe = site.probe
    if isinstance(probe, IcmpProbe):
        quick = IcmpProbe(probe.address, count=2, packet_interval_seconds=0.05, timeout_seconds=0.3)
        return Site(**{**{f: getattr(site, f) for f in site.__dataclass_fields__}, "probe": quick})
    return site


async def _poll(site: Site) -> Observation:
    probe = site.probe
    poller = (
        IcmpPoller(SETTINGS)
        if isinstance(probe, IcmpProbe)
        else TcpPoller(SETTINGS)
        if site.id in ("mail-huyen", "buu-dien-huyen")
        else HttpPoller(SETTINGS)
    )
    return await poller.poll(fast(site))


def poll(site_id: str) -> Observation:
    return asyncio.run(_poll(CONFIG.sites[site_id]))


def answering(*sites: str) -> bool:
    return all(poll(s).ok for s in sites)


def silent(*sites: str) -> bool:
    return not any(poll(s).ok for s in sites)


def nft_tables(ns: NetNs) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", ns.name, "nft", "list", "tables"],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    return out.stdout


@pytest.fixture
def district(netns: NetNs) -> Iterator[tuple[NetNs, Simulator]]:
    netns.nft("table inet districtmon_sim_999999 {}\n")  # left by a simulator long gone
    with netns.entered(), Simulator(SHIPPED, "--speed", "60") as sim:
        sim.wait_ready(limit=40)
        yield netns, sim
    assert "districtmon_sim_" not in nft_tables(netns), "the table leaves with the simulator"


def test_every_service_answers_its_probe_as_it_expects(district: tuple[NetNs, Simulator]) -> None:
    ns, sim = district
    tables = nft_tables(ns)
    assert "districtmon_sim_999999" not in tables, "a stale table is cleared at start"
    assert tables.count("districtmon_sim_") == 1
    with ns.entered():
        start = sim.get("/truth")[1]["records"][0]
        assert start["icmp_cut"] is True
        for site in [*BEHIND_CORE, *ON_THEIR_OWN]:
            obs = poll(site)
            assert obs.ok and obs.degraded_reason is None, (site, obs)
        assert (
            sim.get("/stats")[1]["listening"] == 5
        )  # 3 web sites, the mail server, the post office


def test_a_cut_gateway_silences_its_icmp_tcp_and_http_children_until_it_is_back(
    district: tuple[NetNs, Simulator],
) -> None:
    ns, sim = district
    with ns.entered():
        assert answering(*BEHIND_CORE, *ON_THEIR_OWN)
        sim.ctl("/sites/gw-district-core/link-down")
        wait_until("everything behind the core silent", lambda: silent(*BEHIND_CORE), 10)
        for site in BEHIND_CORE:
            obs = poll(site)
            assert obs.error_reason in ("timeout", "refused"), (site, obs)
        assert answering(*ON_THEIR_OWN), "what does not hang off the core keeps answering"
        assert sim.state("vc-muong-nha")["why"] == "behind:gw-district-core"

        sim.ctl("/sites/gw-district-core/link-up")
        wait_until("everything back", lambda: answering(*BEHIND_CORE), 10)

        sim.ctl("/sites/gw-ubnd-muong-nha/link-down")  # the video endpoint's own gateway
        wait_until("the endpoint silent", lambda: silent("vc-muong-nha"), 10)
        assert answering("portal-huyen", "bdvhx-thanh-nua")
        sim.ctl("/sites/vc-muong-nha/down")  # it dies meanwhile: down after the link is back
        sim.ctl("/sites/gw-ubnd-muong-nha/link-up")
        assert sim.state("vc-muong-nha")["why"] == "failed"
        assert silent("vc-muong-nha")
        sim.ctl("/sites/vc-muong-nha/up")
        wait_until("the endpoint back", lambda: answering("vc-muong-nha"), 10)


def test_a_dead_web_site_refuses_and_a_slow_one_answers_late(
    district: tuple[NetNs, Simulator],
) -> None:
    ns, sim = district
    with ns.entered():
        sim.ctl("/sites/portal-huyen/down")
        obs = poll("portal-huyen")
        assert not obs.ok and obs.error_reason == "refused", obs
        assert answering("dichvucong-huyen"), "the neighbour on another address is unaffected"
        sim.ctl("/sites/portal-huyen/up")
        sim.ctl("/sites/dichvucong-huyen/slow?delay=1.5")
        obs = poll("dichvucong-huyen")
        assert not obs.ok and obs.error_reason == "timeout", obs
        sim.ctl("/sites/dichvucong-huyen/slow?delay=0")
        assert answering("portal-huyen", "dichvucong-huyen")


def test_without_nft_the_simulator_says_pings_cannot_be_cut(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    cut = IcmpCut(World(CONFIG, ManualClock()), nft=str(tmp_path / "no-nft"))
    with caplog.at_level(logging.WARNING, logger="monitor.simulator.icmpcut"):
        assert cut.start() is False
    assert not cut.enabled
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "ICMP sites cannot be cut" in warning.getMessage()
    assert "icmp_cut false" in warning.getMessage()
    cut.close()  # nothing to delete, nothing raised
