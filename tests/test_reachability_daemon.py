"""The daemon process watching ICMP, TCP, HTTP(S) and DNS sites, end to end: each result lands
in state, ledger and /metrics like an SNMP site's.

The whole test runs inside a network namespace of its own (the daemon, its peers and the
scrapes are all born there), so that one address can be blackholed and another made lossy
without touching the machine's network."""

from __future__ import annotations

import functools
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import Daemon, free_tcp_port, wait_for
from netns import NetNs, silence_echo
from reachpeers import DOMAIN, Dnsmasq, HttpPeer, TcpListener, TlsFiles, closed_port, make_tls

from monitor.core.model import State
from monitor.ledger.records import read_intervals, read_runs

INTERVAL = 0.4
DOWN_AFTER = 3
UP_AFTER = 2
LABELS = {"kind": "portal", "commune": "thanh-xuong", "owner": "district-it"}


@dataclass
class District:
    daemon: Daemon
    config: Path
    tls: TlsFiles
    mail: TcpListener


def write_settings(root: Path, http_port: int) -> Path:
    (root / "inventory").mkdir(parents=True)
    (root / "districtmon.yaml").write_text(
        f"""
http: {{listen: "127.0.0.1:{http_port}"}}
ledger: {{path: ledger.sqlite}}
poll: {{interval_seconds: {INTERVAL}, timeout_seconds: 0.3, retries: 0}}
state: {{down_after: {DOWN_AFTER}, up_after: {UP_AFTER}}}
""",
        encoding="utf-8",
    )
    (root / "credentials.yaml").write_text("snmp: {}\n", encoding="utf-8")
    return root


def write_inventory(root: Path, probes: dict[str, tuple[str, str]]) -> None:
    """One commune, one owner, and a site per entry of `probes`: id -> (kind, probe YAML)."""
    sites = "\n".join(
        f"  - {{id: {site}, kind: {kind}, name: 'Dịch vụ {site}', commune: thanh-xuong,"
        f" owner: district-it, lat: 21.35, lon: 103.03, probe: {{{probe}}}}}"
        for site, (kind, probe) in probes.items()
    )
    (root / "inventory" / "district.yaml").write_text(
        f"""
communes:
  - {{id: thanh-xuong, name: Thanh Xương, lat: 21.346, lon: 103.03}}
owners:
  - {{id: district-it, name: Trung tâm Văn hóa - Thông tin huyện Điện Biên, kind: agency}}
sites:
{sites}
""",
        encoding="utf-8",
    )


def district_probes(peers: dict[str, object]) -> dict[str, tuple[str, str]]:
    fast_icmp = "count: 2, packet_interval_seconds: 0.02, timeout_seconds: 0.2"
    return {
        "vc-ok": ("video_endpoint", f"icmp: {{address: 127.0.0.1, {fast_icmp}}}"),
        "vc-lossy": (
            "video_endpoint",
            f"icmp: {{address: 127.0.0.6, {fast_icmp}, max_loss_ratio: 0.4}}",
        ),
        "vc-dead": ("video_endpoint", f"icmp: {{address: 127.99.0.1, {fast_icmp}}}"),
        "mail": ("portal", f"tcp: {{address: 127.0.0.1, port: {peers['mail']}}}"),
        "mail-closed": ("portal", f"tcp: {{address: 127.0.0.1, port: {peers['closed']}}}"),
        "web-ok": ("portal", f"http: {{url: '{peers['web']}/', body_matches: 'Điện Biên'}}"),
        "web-slow": (
            "portal",
            f"http: {{url: '{peers['web']}/slow', slow_seconds: 0.2, timeout_seconds: 2,"
            " interval_seconds: 1}",
        ),
        "web-503": ("portal", f"http: {{url: '{peers['web']}/status/503'}}"),
        "web-tls": (
            "portal",
            f"http: {{url: '{peers['tls']}/', ca_file: '{peers['ca']}', cert_expiry_days: 14}}",
        ),
        "dns-ok": (
            "portal",
            f"dns: {{server: 127.0.0.1, port: {peers['dns']}, name: portal.{DOMAIN},"
            " expect: [127.4.0.1]}",
        ),
        "dns-wrong": (
            "portal",
            f"dns: {{server: 127.0.0.1, port: {peers['dns']}, name: portal.{DOMAIN},"
            " expect: [127.4.0.9]}",
        ),
    }


@pytest.fixture
def district(tmp_path: Path, netns: NetNs) -> Iterator[District]:
    netns.blackhole("127.99.0.1")
    silence_echo(netns, "127.0.0.6", every=2)  # one request of each 2-packet burst lost
    tls = make_tls(tmp_path / "tls", days_left=5)
    with (
        netns.entered(),
        HttpPeer() as web,
        HttpPeer(tls) as secure,
        TcpListener() as mail,
        closed_port() as closed,
        Dnsmasq(tmp_path / "dnsmasq.log") as dns,
    ):
        port = free_tcp_port()
        peers = {
            "web": web.url,
            "tls": secure.url,
            "ca": tls.ca,
            "mail": mail.port,
            "closed": closed,
            "dns": dns.port,
        }
        config = write_settings(tmp_path / "config", port)
        write_inventory(config, district_probes(peers))
        daemon = Daemon(config, port)
        try:
            yield District(daemon, config, tls, mail)
        finally:
            daemon.kill()


EXPECTED = {
    "vc-ok": State.UP,
    "vc-lossy": State.DEGRADED,
    "vc-dead": State.DOWN,
    "mail": State.UP,
    "mail-closed": State.DOWN,
    "web-ok": State.UP,
    "web-slow": State.DEGRADED,
    "web-503": State.DOWN,
    "web-tls": State.DEGRADED,
    "dns-ok": State.UP,
    "dns-wrong": State.DOWN,
}


def in_state(daemon: Daemon, site: str, state: State) -> Callable[[], bool]:
    """For `wait_for`: /metrics shows `site` in `state`."""
    return lambda: daemon.metric("districtmon_site_state", site=site, state=state.value) == 1


def test_every_probe_type_lands_in_state_ledger_and_metrics(district: District) -> None:
    daemon = district.daemon
    for site, state in EXPECTED.items():
        wait_for(f"{site} {state.value}", in_state(daemon, site, state), daemon)
    # degraded answers: up for availability, with the reason in the state
    for site in ("vc-lossy", "web-slow", "web-tls"):
        assert daemon.metric("districtmon_site_up", site=site) == 1
    for site in ("vc-dead", "mail-closed", "web-503", "dns-wrong"):
        assert daemon.metric("districtmon_site_up", site=site) == 0
    assert daemon.metric("districtmon_site_up", site="web-ok", **LABELS) == 1

    # the probes' own values, in base units
    metric = daemon.metric
    assert 0 < (metric("districtmon_site_rtt_seconds", site="vc-ok") or 0) < 0.2
    assert metric("districtmon_site_loss_ratio", site="vc-ok") == 0
    assert metric("districtmon_site_loss_ratio", site="vc-lossy") == 0.5
    assert metric("districtmon_site_loss_ratio", site="vc-dead") == 1
    assert metric("districtmon_site_rtt_seconds", site="vc-dead") is None  # nothing measured
    assert 0 < (metric("districtmon_site_connect_seconds", site="mail") or 0) < 0.3
    assert metric("districtmon_site_http_status", site="web-ok") == 200
    assert metric("districtmon_site_http_status", site="web-503") == 503
    assert metric("districtmon_site_http_status", site="mail-closed") is None
    assert (metric("districtmon_site_response_seconds", site="web-slow") or 0) >= 0.5
    assert metric("districtmon_site_cert_expiry_timestamp_seconds", site="web-tls") == (
        district.tls.not_after.timestamp()
    )
    assert metric("districtmon_site_cert_expiry_timestamp_seconds", site="web-ok") is None
    assert 0 < (metric("districtmon_site_response_seconds", site="dns-ok") or 0) < 0.3
    for probe, reason in (
        ("icmp", "unreachable"),
        ("tcp", "refused"),
        ("http", "status"),
        ("dns", "answer"),
    ):
        errors = metric("districtmon_poll_errors_total", probe=probe, reason=reason) or 0
        assert errors >= DOWN_AFTER, (probe, reason)
    for probe in ("icmp", "tcp", "http", "dns"):
        assert (metric("districtmon_polls_total", probe=probe, result="ok") or 0) >= 1

    # the families the probes added pass Prometheus' own linter, filled with real samples
    _, text = daemon.get("/metrics")
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr

    # a service that stops answering goes down after N polls, dated at the first failure
    closed_at = time.time()
    district.mail.close()
    wait_for("mail down", lambda: metric("districtmon_site_up", site="mail") == 0, daemon)
    assert daemon.stop() == 0

    ledger = district.config / "ledger.sqlite"
    history = {site: read_intervals(ledger, site) for site in EXPECTED}
    for site, state in EXPECTED.items():
        states = [interval.state for interval in history[site]]
        expected = [State.UNKNOWN, state] if site != "mail" else [State.UNKNOWN, State.UP]
        assert states[: len(expected)] == expected, (site, states)
    assert [i.state for i in history["mail"]] == [State.UNKNOWN, State.UP, State.DOWN]
    mail_down = history["mail"][2]
    assert closed_at <= mail_down.start <= closed_at + INTERVAL + 0.5
    assert mail_down.reason.startswith("tcp refused: connection refused")
    assert history["vc-lossy"][1].reason == "icmp loss 50% > 40%"
    assert history["vc-dead"][1].reason.startswith("icmp unreachable: send:")
    assert history["web-tls"][1].reason.startswith("certificate expires in 5.0 days (< 14)")
    assert history["web-slow"][1].reason.startswith("http response ")
    assert history["web-503"][1].reason == "http status: status 503, expected 2xx"
    assert history["dns-wrong"][1].reason.startswith("dns answer: portal.dienbien.test A is")
    assert all(i.end is not None for intervals in history.values() for i in intervals)
    [run] = read_runs(ledger)
    assert run.clean


def test_a_reload_adds_and_removes_reachability_sites(tmp_path: Path) -> None:
    with TcpListener() as listener:
        port = free_tcp_port()
        config = write_settings(tmp_path / "config", port)
        mail = ("portal", f"tcp: {{address: 127.0.0.1, port: {listener.port}}}")
        ping = ("video_endpoint", "icmp: {address: 127.0.0.1, count: 1}")
        write_inventory(config, {"mail": mail})
        daemon = Daemon(config, port)
        try:
            metric = daemon.metric
            wait_for("mail up", lambda: metric("districtmon_site_up", site="mail") == 1, daemon)
            assert metric("districtmon_site_up", site="vc-ok") is None
            write_inventory(config, {"vc-ok": ping})
            daemon.proc.send_signal(signal.SIGHUP)
            wait_for("vc-ok up", lambda: metric("districtmon_site_up", site="vc-ok") == 1, daemon)
            assert metric("districtmon_site_info", site="mail") is None
            assert (metric("districtmon_site_rtt_seconds", site="vc-ok") or 0) > 0
            assert daemon.stop() == 0
        finally:
            daemon.kill()
    ledger = config / "ledger.sqlite"
    assert [i.state for i in read_intervals(ledger, "vc-ok")] == [State.UNKNOWN, State.UP]
    assert all(i.end is not None for i in read_intervals(ledger, "mail"))


def test_each_probe_is_polled_at_its_own_interval_not_the_default(tmp_path: Path) -> None:
    """`interval_seconds` on an ICMP, TCP, HTTP or DNS probe is that site's rhythm: with the
    daemon's default at a minute, a site asking for a quarter of a second is polled several
    times within two seconds (at the default, at most once)."""
    fast = "interval_seconds: 0.25"
    with (
        HttpPeer() as web,
        TcpListener() as mail,
        Dnsmasq(tmp_path / "dnsmasq.log") as dns,
    ):
        port = free_tcp_port()
        config = write_settings(tmp_path / "config", port)
        settings = config / "districtmon.yaml"
        settings.write_text(
            settings.read_text().replace(f"interval_seconds: {INTERVAL}", "interval_seconds: 60")
        )
        write_inventory(
            config,
            {
                "vc": ("video_endpoint", f"icmp: {{address: 127.0.0.1, count: 1, {fast}}}"),
                "mail": ("portal", f"tcp: {{address: 127.0.0.1, port: {mail.port}, {fast}}}"),
                "web": ("portal", f"http: {{url: '{web.url}/', {fast}}}"),
                "dns": (
                    "portal",
                    f"dns: {{server: 127.0.0.1, port: {dns.port}, name: portal.{DOMAIN}, {fast}}}",
                ),
            },
        )
        daemon = Daemon(config, port)

        def polled_four_times(probe: str) -> bool:
            return (daemon.metric("districtmon_polls_total", probe=probe, result="ok") or 0) >= 4

        try:
            for probe in ("icmp", "tcp", "http", "dns"):
                wait_for(
                    f"4 polls of the {probe} site",
                    functools.partial(polled_four_times, probe),
                    daemon,
                    limit=5.0,
                )
        finally:
            daemon.kill()
