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

import dns.message
import dns.query
import dns.rcode
import pytest
from netns import NetNs
from peers import free_udp_port
from simpeers import SHIPPED, Simulator, wait_until

from monitor.config.load import load_config
from monitor.config.settings import PollSettings
from monitor.core.model import IcmpProbe, Observation, Site
from monitor.probes.reach.dns import DnsPoller
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


def test_dns_sites_answer_their_names_until_their_gateway_is_cut(tmp_path: Path) -> None:
    dns_port, snmp_port = free_udp_port(), free_udp_port()
    config = tmp_path / "config"
    (config / "inventory").mkdir(parents=True)
    (config / "districtmon.yaml").write_text("{}\n", encoding="utf-8")
    (config / "credentials.yaml").write_bytes((SHIPPED / "credentials.yaml").read_bytes())
    server = f"server: 127.0.0.1, port: {dns_port}"
    agent = f"snmp: {{address: 127.3.0.1, port: {snmp_port}, credential: district-ro}}"
    (config / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-xuong, name: Thanh Xương, lat: 21.346, lon: 103.03}}
owners:
  - {{id: district-it, name: Trung tâm Văn hóa - Thông tin huyện Điện Biên, kind: agency}}
sites:
  - {{id: gw-core, kind: gateway, name: Core, commune: thanh-xuong, owner: district-it, lat: 21.3,
     lon: 103.0, probe: {{{agent}}}}}
  - {{id: dns-portal, kind: portal, name: DNS portal, commune: thanh-xuong, owner: district-it,
     lat: 21.3, lon: 103.0, parent: gw-core,
     probe: {{dns: {{{server}, name: portal.dienbien.example, expect: [127.4.0.1]}}}}}}
  - {{id: dns-mail, kind: portal, name: DNS mail, commune: thanh-xuong, owner: district-it,
     lat: 21.3, lon: 103.0, probe: {{dns: {{{server}, name: mail.dienbien.example, type: AAAA}}}}}}
""",
        encoding="utf-8",
    )
    loaded = load_config(config, environ={})
    poller = DnsPoller(SETTINGS)

    def ask(site: str) -> Observation:
        return asyncio.run(poller.poll(loaded.sites[site]))

    with Simulator(config) as sim:
        sim.wait_ready()
        portal = ask("dns-portal")
        assert portal.ok and portal.values["dns_answer"] == "127.4.0.1", portal
        assert ask("dns-mail").values["dns_answer"] == "2001:db8::1"
        sim.ctl("/sites/gw-core/link-down")
        silent_portal = ask("dns-portal")
        assert not silent_portal.ok and silent_portal.error_reason == "timeout", silent_portal
        assert ask("dns-mail").ok, "the server answers for the site that is not behind the cut"
        assert sim.state("dns-portal")["why"] == "behind:gw-core"
        sim.ctl("/sites/gw-core/link-up")
        assert ask("dns-portal").ok
        query = dns.message.make_query("nowhere.dienbien.example", "A")
        reply = dns.query.udp(query, "127.0.0.1", port=dns_port, timeout=2)
        assert reply.rcode() == dns.rcode.NXDOMAIN
